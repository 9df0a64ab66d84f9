package provecontrol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentd/agentd/agent"
)

// Record kinds in agent.Records.
const (
	// Verifier role.
	KindChallenge    = "pc-challenge"    // Challenge, by challenge id
	KindVerification = "pc-verification" // Verification, by credential id
	KindLink         = "pc-link"         // link, by the hex SHA-256 of its token
	KindLetter       = "pc-letter"       // Letter record, by challenge id
	// User role.
	KindRequest    = "pc-request"    // Request, by request message id
	KindReceived   = "pc-received"   // Received challenge, by challenge id
	KindCredential = "pc-credential" // Credential, by credential id
)

// Challenge is a challenge the verifier issued, as stored. It holds no
// secret: only the SHA-256 of the expected proof.
type Challenge struct {
	ID               string           `json:"id"`
	Verifier         string           `json:"verifier"`
	User             string           `json:"user"`
	VerificationType VerificationType `json:"verification_type"`
	Subject          string           `json:"subject"`
	// RequestID is the id of the requestverification it answers; empty when
	// the operator started it.
	RequestID   string         `json:"request_id,omitempty"`
	State       ChallengeState `json:"state"`
	Created     time.Time      `json:"created"`
	Expires     time.Time      `json:"expires"`
	Updated     time.Time      `json:"updated"`
	Attempts    int            `json:"attempts"`
	MaxAttempts int            `json:"max_attempts"`
	// Channel says how the challenge was delivered (see the Channel constants).
	Channel string `json:"channel"`
	// Reason explains a final state other than confirmed (no secrets).
	Reason string `json:"reason,omitempty"`
	// CredentialID is the credential issued on confirmation.
	CredentialID string `json:"credential_id,omitempty"`
	// ProofDigest is the SHA-256 of the expected proof.
	ProofDigest []byte `json:"proof_digest"`
}

// Channels a challenge is delivered over.
const (
	ChannelDIDComm = "didcomm"      // to the user's DIDComm endpoint or return route (Domain)
	ChannelSubject = "subject-did"  // to the subject DID's endpoint, encrypted to its keys (DID)
	ChannelMail    = "mail"         // by the email transport (Email)
	ChannelSMS     = "sms"          // one-time link by SMS (Tel)
	ChannelDiscord = "discord"      // one-time link by Discord direct message (Discord)
	ChannelIP      = "ip-wellknown" // POSTed to the IP's well-known path (IP)
	ChannelLetter  = "letter"       // one-time link in a printed letter (Address)
)

// moveTo changes the state as the transition table allows.
func (c *Challenge) moveTo(next ChallengeState, at time.Time, reason string) error {
	if !c.State.CanMoveTo(next) {
		return transitionError(c.State, next)
	}
	c.State, c.Updated, c.Reason = next, at, reason
	return nil
}

// ChallengeView is what the admin API shows of a challenge: no secret, no
// proof digest. State is the effective state (a pending challenge past its
// expiry shows as expired).
type ChallengeView struct {
	ID                string           `json:"id"`
	Verifier          string           `json:"verifier"`
	User              string           `json:"user"`
	VerificationType  VerificationType `json:"verification_type"`
	Subject           string           `json:"subject"`
	RequestID         string           `json:"request_id,omitempty"`
	State             ChallengeState   `json:"state"`
	Channel           string           `json:"channel"`
	Created           time.Time        `json:"created"`
	Expires           time.Time        `json:"expires"`
	Updated           time.Time        `json:"updated"`
	Attempts          int              `json:"attempts"`
	AttemptsRemaining int              `json:"attempts_remaining"`
	Reason            string           `json:"reason,omitempty"`
	CredentialID      string           `json:"credential_id,omitempty"`
}

func (c *Challenge) view(now time.Time) ChallengeView {
	st := c.State
	if st == StatePending && !now.Before(c.Expires) {
		st = StateExpired
	}
	return ChallengeView{
		ID: c.ID, Verifier: c.Verifier, User: c.User, VerificationType: c.VerificationType, Subject: c.Subject,
		RequestID: c.RequestID, State: st, Channel: c.Channel, Created: c.Created, Expires: c.Expires, Updated: c.Updated,
		Attempts: c.Attempts, AttemptsRemaining: max(0, c.MaxAttempts-c.Attempts), Reason: c.Reason, CredentialID: c.CredentialID,
	}
}

// Verification is a confirmed verification, kept by the verifier: who
// proved control of what, and the credential issued for it.
type Verification struct {
	ID               string           `json:"id"` // the credential id (jti without urn:uuid:)
	ChallengeID      string           `json:"challenge_id"`
	Verifier         string           `json:"verifier"`
	User             string           `json:"user"`
	VerificationType VerificationType `json:"verification_type"`
	Subject          string           `json:"subject"`
	Confirmed        time.Time        `json:"confirmed"`
	Expires          time.Time        `json:"expires"`
	Credential       string           `json:"credential"` // the VC JWT
}

// Request is a requestverification the user sent.
type Request struct {
	ID               string           `json:"id"`
	Verifier         string           `json:"verifier"`
	User             string           `json:"user"`
	VerificationType VerificationType `json:"verification_type"`
	Subject          string           `json:"subject"`
	Sent             time.Time        `json:"sent"`
	// ChallengeID is the challenge that answered it, once it came.
	ChallengeID string `json:"challenge_id,omitempty"`
	// Problem is the verifier's problem code, if it refused the request.
	Problem        string `json:"problem,omitempty"`
	ProblemComment string `json:"problem_comment,omitempty"`
}

// Received is a challenge the user received, as stored. It keeps the proof
// computed on receipt, not the secret.
type Received struct {
	ID               string           `json:"id"`
	Verifier         string           `json:"verifier"`
	User             string           `json:"user"`
	VerificationType VerificationType `json:"verification_type"`
	Subject          string           `json:"subject"`
	RequestID        string           `json:"request_id,omitempty"`
	// Requested tells whether it answers a request of ours (false: the
	// verifier's operator started it).
	Requested bool      `json:"requested"`
	State     HeldState `json:"state"`
	Received  time.Time `json:"received"`
	Expires   time.Time `json:"expires,omitzero"`
	Updated   time.Time `json:"updated"`
	// Transport is how it arrived (http, smtp, link, import, ip...).
	Transport string `json:"transport"`
	Proves    int    `json:"proves"`
	// Problem is the verifier's last problem code about it.
	Problem        string `json:"problem,omitempty"`
	ProblemComment string `json:"problem_comment,omitempty"`
	CredentialID   string `json:"credential_id,omitempty"`
	Proof          string `json:"proof"`
}

func (r *Received) moveTo(next HeldState, at time.Time) error {
	if !r.State.CanMoveTo(next) {
		return transitionError(r.State, next)
	}
	r.State, r.Updated = next, at
	return nil
}

// TXTRecord is the DNS record a user publishes for a Domain challenge.
type TXTRecord struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// DomainRecord returns the TXT record that proves a Domain challenge: its
// name is "<challenge id>.<domain>", its value the proof.
func DomainRecord(challengeID, domain, proof string) TXTRecord {
	return TXTRecord{Name: challengeID + "." + domain, Type: "TXT", Value: proof}
}

// ReceivedView is what the admin API shows of a received challenge: no
// secret, and the proof only inside the TXT record of a Domain challenge,
// which is published anyway.
type ReceivedView struct {
	ID               string           `json:"id"`
	Verifier         string           `json:"verifier"`
	User             string           `json:"user"`
	VerificationType VerificationType `json:"verification_type"`
	Subject          string           `json:"subject"`
	RequestID        string           `json:"request_id,omitempty"`
	Requested        bool             `json:"requested"`
	State            HeldState        `json:"state"`
	Received         time.Time        `json:"received"`
	Expires          time.Time        `json:"expires,omitzero"`
	Transport        string           `json:"transport"`
	Proves           int              `json:"proves"`
	Problem          string           `json:"problem,omitempty"`
	ProblemComment   string           `json:"problem_comment,omitempty"`
	CredentialID     string           `json:"credential_id,omitempty"`
	// DNSRecord is the TXT record to publish before proving a Domain challenge.
	DNSRecord *TXTRecord `json:"dns_record,omitempty"`
}

func (r *Received) view() ReceivedView {
	v := ReceivedView{
		ID: r.ID, Verifier: r.Verifier, User: r.User, VerificationType: r.VerificationType, Subject: r.Subject,
		RequestID: r.RequestID, Requested: r.Requested, State: r.State, Received: r.Received, Expires: r.Expires,
		Transport: r.Transport, Proves: r.Proves, Problem: r.Problem, ProblemComment: r.ProblemComment, CredentialID: r.CredentialID,
	}
	if r.VerificationType == Domain {
		rec := DomainRecord(r.ID, r.Subject, r.Proof)
		v.DNSRecord = &rec
	}
	return v
}

// Credential is a credential the user holds: the verified VC JWT and what it
// states.
type Credential struct {
	ID               string           `json:"id"` // jti without urn:uuid:
	Issuer           string           `json:"issuer"`
	Holder           string           `json:"holder"`
	VerificationType VerificationType `json:"verification_type"`
	Subject          string           `json:"subject"`
	Types            []string         `json:"types"`
	Format           string           `json:"format"`
	IssuedAt         time.Time        `json:"issued"`
	Expires          time.Time        `json:"expires"`
	ChallengeID      string           `json:"challenge_id"`
	Received         time.Time        `json:"received"`
	JWT              string           `json:"jwt"`
	// Confirmation is the signed confirmverification message (a JWS), the
	// verifier's non-repudiable statement, as received.
	Confirmation json.RawMessage `json:"confirmation,omitempty"`
}

// store wraps agent.Records with JSON and listing helpers.
type store struct{ r agent.Records }

func (s store) get(ctx context.Context, kind, id string, v any) error {
	b, err := s.r.Get(ctx, kind, id)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("provecontrol: record %s/%s is corrupt: %w", kind, id, err)
	}
	return nil
}

// getIn reads a record through the unit of work w (the commit checks it is
// unchanged).
func getIn(ctx context.Context, w *agent.Work, kind, id string, v any) error {
	b, err := w.Get(ctx, kind, id)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("provecontrol: record %s/%s is corrupt: %w", kind, id, err)
	}
	return nil
}

// each calls fn for every record of kind after the id after ("" for the
// start), in id order, until fn returns false or an error.
func each[T any](ctx context.Context, s store, kind, after string, fn func(id string, v *T) (bool, error)) error {
	for {
		recs, err := s.r.List(ctx, kind, after, 256)
		if err != nil {
			return err
		}
		for _, r := range recs {
			var v T
			if err := json.Unmarshal(r.Value, &v); err != nil {
				return fmt.Errorf("provecontrol: record %s/%s is corrupt: %w", kind, r.ID, err)
			}
			more, err := fn(r.ID, &v)
			if err != nil || !more {
				return err
			}
		}
		if len(recs) < 256 {
			return nil
		}
		after = recs[len(recs)-1].ID
	}
}

// list returns up to limit records of kind after the id after, converted by
// view; keep filters them.
func list[T, V any](ctx context.Context, s store, kind, after string, limit int, keep func(*T) bool, view func(*T) V) ([]V, error) {
	out := []V{}
	err := each(ctx, s, kind, after, func(_ string, v *T) (bool, error) {
		if keep == nil || keep(v) {
			out = append(out, view(v))
		}
		return len(out) < limit, nil
	})
	return out, err
}

// notFound is the API-facing error for an unknown id: code
// agent.CodeNotFound, naming what was looked for, wrapping agent.ErrNotFound.
func notFound(what, id string) error {
	return agent.Wrap(agent.CodeNotFound, agent.ErrNotFound, fmt.Sprintf("%s %s not found", what, clip(id, 60)))
}

func isNotFound(err error) bool { return errors.Is(err, agent.ErrNotFound) }
