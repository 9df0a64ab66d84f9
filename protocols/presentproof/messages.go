package presentproof

import (
	"encoding/json"
	"fmt"

	"github.com/agentd/agentd/agent"
)

// PIURI is the protocol identifier of Present Proof 3.0.
const PIURI = "https://didcomm.org/present-proof/3.0"

// Message types of Present Proof 3.0. Problem reports are Report Problem
// 2.0's (agent.ProblemReportType); a problem report typed under this
// protocol's PIURI, as some stacks send it, is taken as one too.
const (
	TypePropose       = PIURI + "/propose-presentation"
	TypeRequest       = PIURI + "/request-presentation"
	TypePresentation  = PIURI + "/presentation"
	TypeAck           = PIURI + "/ack"
	TypeProblemReport = PIURI + "/problem-report"
)

// Roles of Present Proof 3.0, as Discover Features names them.
const (
	RoleVerifier = "verifier"
	RoleProver   = "prover"
)

// Attachment formats (the Present Proof 3.0 / 2.0 attachment registries).
const (
	// FormatDIFDefinition is a request (or proposal) for W3C credentials: a
	// DIF presentation definition with options (challenge, domain).
	FormatDIFDefinition = "dif/presentation-exchange/definitions@v1.0"
	// FormatDIFSubmission is a W3C verifiable presentation with a
	// presentation_submission.
	FormatDIFSubmission = "dif/presentation-exchange/submission@v1.0"
	// FormatAnoncredsRequest and FormatAnoncredsProof are AnonCreds
	// presentation requests and presentations (Aries RFC 0771).
	FormatAnoncredsRequest = "anoncreds/proof-request@v1.0"
	FormatAnoncredsProof   = "anoncreds/proof@v1.0"
	// FormatIndyRequest and FormatIndyProof are the same objects under the
	// names of Aries RFC 0592, which ACA-Py still sends; accepted, never sent.
	FormatIndyRequest = "hlindy/proof-req@v2.0"
	FormatIndyProof   = "hlindy/proof@v2.0"
)

// ProposeBody is the body of propose-presentation.
type ProposeBody struct {
	GoalCode string `json:"goal_code,omitempty"`
	Comment  string `json:"comment,omitempty"`
}

// RequestBody is the body of request-presentation. WillConfirm asks the
// prover to expect an ack (or a problem report) after its presentation.
type RequestBody struct {
	GoalCode    string `json:"goal_code,omitempty"`
	Comment     string `json:"comment,omitempty"`
	WillConfirm bool   `json:"will_confirm,omitempty"`
}

// PresentationBody is the body of presentation.
type PresentationBody struct {
	GoalCode string `json:"goal_code,omitempty"`
	Comment  string `json:"comment,omitempty"`
}

// AckBody is the body of ack (Present Proof 3.0 adopts the ack message; the
// status is "OK" when sent by this agent).
type AckBody struct {
	Status string `json:"status,omitempty"`
}

// DIFRequest is the JSON of a dif/presentation-exchange/definitions@v1.0
// attachment.
type DIFRequest struct {
	Options                DIFOptions      `json:"options"`
	PresentationDefinition json.RawMessage `json:"presentation_definition"`
}

// DIFOptions binds a presentation to a request.
type DIFOptions struct {
	Challenge string `json:"challenge,omitempty"`
	Domain    string `json:"domain,omitempty"`
}

// maxAttachment bounds an attachment's JSON (a presentation with a few
// JSON-LD credentials stays far below).
const maxAttachment = 2 << 20

// formatAttachment finds the one attachment of msg with a format this
// package knows for its message kind, and returns it with its JSON. More
// than one known format, or none, is an error (CodeMsgUnsupported when the
// message has attachments but none in a known format).
func formatAttachment(msg agent.Message, known ...string) (agent.Attachment, []byte, error) {
	var found []agent.Attachment
	for _, a := range msg.Attachments {
		for _, k := range known {
			if a.Format == k {
				found = append(found, a)
			}
		}
	}
	switch {
	case len(found) == 0 && len(msg.Attachments) == 0:
		return agent.Attachment{}, nil, agent.Errorf(agent.CodeMsg, "%s has no attachment", shortType(msg.Type))
	case len(found) == 0:
		return agent.Attachment{}, nil, agent.Errorf(agent.CodeMsgUnsupported, "%s has no attachment in a supported format (%v)", shortType(msg.Type), known)
	case len(found) > 1:
		return agent.Attachment{}, nil, agent.Errorf(agent.CodeMsg, "%s has more than one format attachment; one is supported", shortType(msg.Type))
	}
	a := found[0]
	data, err := attachmentJSON(a)
	if err != nil {
		return agent.Attachment{}, nil, err
	}
	return a, data, nil
}

// attachmentJSON is an attachment's content: inline JSON, or base64 of
// JSON. Links are not fetched.
func attachmentJSON(a agent.Attachment) ([]byte, error) {
	switch {
	case len(a.Data.JSON) > 0:
		if len(a.Data.JSON) > maxAttachment {
			return nil, agent.Errorf(agent.CodeTooLarge, "attachment larger than %d bytes", maxAttachment)
		}
		return a.Data.JSON, nil
	case a.Data.Base64 != "":
		if len(a.Data.Base64) > maxAttachment*4/3+4 {
			return nil, agent.Errorf(agent.CodeTooLarge, "attachment larger than %d bytes", maxAttachment)
		}
		b, err := decodeBase64(a.Data.Base64)
		if err != nil {
			return nil, agent.Wrap(agent.CodeMsg, err, "attachment data is not base64")
		}
		return b, nil
	}
	return nil, agent.Errorf(agent.CodeMsg, "attachment %q has no inline data (links are not fetched)", a.ID)
}

// jsonAttachment builds an attachment of format carrying v inline.
func jsonAttachment(format string, v any) (agent.Attachment, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return agent.Attachment{}, fmt.Errorf("attachment %s: %w", format, err)
	}
	return agent.Attachment{ID: agent.NewID(), MediaType: "application/json", Format: format, Data: agent.AttachmentData{JSON: b}}, nil
}

func shortType(t string) string {
	if len(t) > len(PIURI)+1 && t[:len(PIURI)] == PIURI {
		return t[len(PIURI)+1:]
	}
	return t
}
