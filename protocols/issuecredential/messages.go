package issuecredential

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/agentd/agentd/agent"
)

// PIURI is the protocol identifier of Issue Credential 3.0.
const PIURI = "https://didcomm.org/issue-credential/3.0"

// Message types.
const (
	ProposeType       = PIURI + "/propose-credential"
	OfferType         = PIURI + "/offer-credential"
	RequestType       = PIURI + "/request-credential"
	IssueType         = PIURI + "/issue-credential"
	AckType           = PIURI + "/ack"
	ProblemReportType = PIURI + "/problem-report"
)

// PreviewType is the type of a credential preview.
const PreviewType = PIURI + "/credential-preview"

// Attachment formats (the Issue Credential 3.0 attachment registry). The
// hlindy/* names are accepted on input as the AnonCreds ones. For VC-JWT,
// which the registry does not name, the agent uses the DIF claim format
// designation: the offer and request carry the credential to be issued as
// "jwt_vc_json-detail@v1.0" ({"credential": {...}}) and the issued
// credential is "jwt_vc_json" (the compact JWT as a JSON string).
const (
	FormatAnoncredsOffer   = "anoncreds/credential-offer@v1.0"
	FormatAnoncredsRequest = "anoncreds/credential-request@v1.0"
	FormatAnoncredsCred    = "anoncreds/credential@v1.0"
	FormatHLIndyOffer      = "hlindy/cred-abstract@v2.0"
	FormatHLIndyRequest    = "hlindy/cred-req@v2.0"
	FormatHLIndyCred       = "hlindy/cred@v2.0"
	FormatLDProofDetail    = "aries/ld-proof-vc-detail@v1.0"
	FormatLDProofVC        = "aries/ld-proof-vc@v1.0"
	FormatJWTDetail        = "jwt_vc_json-detail@v1.0"
	FormatJWTVC            = "jwt_vc_json"
)

// family is the credential family of an attachment format.
type family string

const (
	famAnoncreds family = "anoncreds"
	famLDP       family = "ldp"
	famJWT       family = "jwt"
)

// formats maps each accepted format onto its family and its step.
var formats = map[string]struct {
	fam  family
	step string
}{
	FormatAnoncredsOffer: {famAnoncreds, "offer"}, FormatHLIndyOffer: {famAnoncreds, "offer"},
	FormatAnoncredsRequest: {famAnoncreds, "request"}, FormatHLIndyRequest: {famAnoncreds, "request"},
	FormatAnoncredsCred: {famAnoncreds, "credential"}, FormatHLIndyCred: {famAnoncreds, "credential"},
	FormatLDProofDetail: {famLDP, "offer"}, FormatLDProofVC: {famLDP, "credential"},
	FormatJWTDetail: {famJWT, "offer"}, FormatJWTVC: {famJWT, "credential"},
}

// OfferBody is the body of offer-credential.
type OfferBody struct {
	GoalCode          string   `json:"goal_code,omitempty"`
	Comment           string   `json:"comment,omitempty"`
	ReplacementID     string   `json:"replacement_id,omitempty"`
	MultipleAvailable string   `json:"multiple_available,omitempty"`
	CredentialPreview *Preview `json:"credential_preview,omitempty"`
}

// ProposeBody is the body of propose-credential.
type ProposeBody struct {
	GoalCode          string   `json:"goal_code,omitempty"`
	Comment           string   `json:"comment,omitempty"`
	CredentialPreview *Preview `json:"credential_preview,omitempty"`
}

// RequestBody is the body of request-credential.
type RequestBody struct {
	GoalCode string `json:"goal_code,omitempty"`
	Comment  string `json:"comment,omitempty"`
}

// IssueBody is the body of issue-credential.
type IssueBody struct {
	GoalCode      string `json:"goal_code,omitempty"`
	Comment       string `json:"comment,omitempty"`
	ReplacementID string `json:"replacement_id,omitempty"`
	MoreAvailable string `json:"more_available,omitempty"`
}

// AckBody is the body of ack.
type AckBody struct {
	Status string `json:"status"`
}

// Preview is a credential preview.
type Preview struct {
	Type string      `json:"type"`
	ID   string      `json:"id,omitempty"`
	Body PreviewBody `json:"body"`
}

// PreviewBody holds the previewed attributes.
type PreviewBody struct {
	Attributes []PreviewAttribute `json:"attributes"`
}

// PreviewAttribute is one previewed attribute.
type PreviewAttribute struct {
	Name     string `json:"name"`
	MimeType string `json:"mime-type,omitempty"`
	Value    string `json:"value"`
}

// LDProofDetail is the aries/ld-proof-vc-detail@v1.0 attachment (and the
// shape of jwt_vc_json-detail@v1.0, without options).
type LDProofDetail struct {
	Credential map[string]any `json:"credential"`
	Options    *LDProofOpts   `json:"options,omitempty"`
}

// LDProofOpts are the proof options of an ld-proof-vc-detail.
type LDProofOpts struct {
	ProofType string `json:"proofType"`
}

// maxAttachment bounds a decoded attachment.
const maxAttachment = 1 << 20

// jsonAttachment builds an inline JSON attachment of the format.
func jsonAttachment(format string, v any) (agent.Attachment, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return agent.Attachment{}, err
	}
	return agent.Attachment{ID: agent.NewID(), MediaType: "application/json", Format: format, Data: agent.AttachmentData{JSON: b}}, nil
}

// attachmentData returns the content of an inline attachment: its JSON, or
// its base64 decoded.
func attachmentData(a agent.Attachment) ([]byte, error) {
	switch {
	case len(a.Data.JSON) > 0:
		if len(a.Data.JSON) > maxAttachment {
			return nil, agent.Errorf(agent.CodeTooLarge, "attachment %s is too large", a.Format)
		}
		return a.Data.JSON, nil
	case a.Data.Base64 != "":
		if len(a.Data.Base64) > maxAttachment*4/3+4 {
			return nil, agent.Errorf(agent.CodeTooLarge, "attachment %s is too large", a.Format)
		}
		b, err := base64.StdEncoding.DecodeString(a.Data.Base64)
		if err != nil {
			if b, err = base64.RawURLEncoding.DecodeString(a.Data.Base64); err != nil {
				return nil, agent.Errorf(agent.CodeMsg, "attachment %s: base64 data is malformed", a.Format)
			}
		}
		return b, nil
	}
	return nil, agent.Errorf(agent.CodeMsg, "attachment %s: only inline data (json or base64) is supported", a.Format)
}

// pick returns the one attachment of msg for step, its family and data.
// Formats the agent does not know are ignored; none known is an error.
func pick(msg agent.Message, step string) (agent.Attachment, family, []byte, error) {
	var found []agent.Attachment
	for _, a := range msg.Attachments {
		f, ok := formats[a.Format]
		// W3C requests repeat the offer's detail format.
		if ok && (f.step == step || step == "request" && f.fam != famAnoncreds && f.step == "offer") {
			found = append(found, a)
		}
	}
	switch len(found) {
	case 0:
		return agent.Attachment{}, "", nil, agent.Errorf(agent.CodeMsg, "%s: no attachment in a supported format (%s)", msg.Type, supported(step))
	case 1:
	default:
		return agent.Attachment{}, "", nil, agent.Errorf(agent.CodeMsg, "%s: more than one credential attachment; one format per exchange", msg.Type)
	}
	b, err := attachmentData(found[0])
	if err != nil {
		return agent.Attachment{}, "", nil, err
	}
	return found[0], formats[found[0].Format].fam, b, nil
}

func supported(step string) string {
	switch step {
	case "offer":
		return fmt.Sprintf("%s, %s, %s, %s", FormatAnoncredsOffer, FormatHLIndyOffer, FormatLDProofDetail, FormatJWTDetail)
	case "request":
		return fmt.Sprintf("%s, %s, %s, %s", FormatAnoncredsRequest, FormatHLIndyRequest, FormatLDProofDetail, FormatJWTDetail)
	}
	return fmt.Sprintf("%s, %s, %s, %s", FormatAnoncredsCred, FormatHLIndyCred, FormatLDProofVC, FormatJWTVC)
}
