// Package oob implements Out-of-Band 2.0
// (https://identity.foundation/didcomm-messaging/spec/#out-of-band-messages):
// an invitation, passed outside DIDComm as a URL or QR code, that tells the
// receiver whom to talk to (from) and why (goal), and may carry the first
// messages of the interaction as attachments.
//
// The Service keeps the invitations the agent makes (records of kind
// "oob-invitation"), so that an inbound message whose pthid is one of them can
// be related to it, and accepts invitations from others, keeping a record of
// kind "connection" for each.
package oob

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
)

// PIURI is the protocol identifier of Out-of-Band 2.0.
const PIURI = "https://didcomm.org/out-of-band/2.0"

// InvitationType is the message type of an out-of-band invitation.
const InvitationType = PIURI + "/invitation"

// Roles of Out-of-Band 2.0.
const (
	RoleSender   = "sender"
	RoleReceiver = "receiver"
)

// AcceptDIDCommV2 is the accept value (profile) for DIDComm Messaging v2.
const AcceptDIDCommV2 = "didcomm/v2"

// QueryParam is the URL query parameter that holds an encoded invitation.
const QueryParam = "_oob"

// Record kinds the Service keeps in agent.Records.
const (
	KindInvitation = "oob-invitation" // invitations we made, by invitation id
	KindConnection = "connection"     // invitations we accepted, by invitation id
)

// MaxEncodedLen bounds the size of what Parse accepts.
const MaxEncodedLen = 256 << 10

// Invitation is an out-of-band invitation message.
type Invitation struct {
	Type string `json:"type"`
	// ID is the invitation's id, used by responses as their pthid.
	ID string `json:"id"`
	// From is the DID of the inviter, to be used for the interaction.
	From        string         `json:"from"`
	CreatedTime int64          `json:"created_time,omitempty"`
	ExpiresTime int64          `json:"expires_time,omitempty"`
	Body        InvitationBody `json:"body"`
	// Attachments hold the messages the receiver may act upon, in order of
	// the sender's preference; only one of them should be acted upon.
	Attachments []agent.Attachment `json:"attachments,omitempty"`
}

// InvitationBody is the body of an invitation.
type InvitationBody struct {
	// GoalCode is a self-attested code for the goal, e.g. "issue-vc".
	GoalCode string `json:"goal_code,omitempty"`
	// Goal is a self-attested, human-readable statement of the goal.
	Goal string `json:"goal,omitempty"`
	// Accept lists the DIDComm profiles the inviter accepts, most preferred first.
	Accept []string `json:"accept,omitempty"`
	// Label is a name for the inviter to show the invitee: not in
	// Out-of-Band 2.0 (agents that do not know it ignore it), carried as
	// ACA-Py's 1.1 invitations carry theirs.
	Label string `json:"label,omitempty"`
}

// Option sets an optional part of an invitation made by NewInvitation.
type Option func(*options)

type options struct {
	goalCode, goal string
	label          string
	accept         []string
	attachments    []agent.Attachment
	messages       []agent.Message
	expires        time.Time
}

// WithGoal sets the goal code and the human-readable goal.
func WithGoal(code, goal string) Option {
	return func(o *options) { o.goalCode, o.goal = code, goal }
}

// WithLabel sets the body's label, the inviter's name for the invitee.
func WithLabel(label string) Option {
	return func(o *options) { o.label = label }
}

// WithAccept sets the accepted profiles, replacing the default ["didcomm/v2"].
func WithAccept(profiles ...string) Option {
	return func(o *options) { o.accept = profiles }
}

// WithAttachment adds an attachment as is.
func WithAttachment(a agent.Attachment) Option {
	return func(o *options) { o.attachments = append(o.attachments, a) }
}

// WithMessage attaches a plaintext message as an inline JSON attachment. Its
// from defaults to the inviter and its pthid to the invitation's id, so that
// answers to it relate to the invitation.
func WithMessage(m agent.Message) Option {
	return func(o *options) { o.messages = append(o.messages, m) }
}

// WithExpiry sets the invitation's expires_time.
func WithExpiry(t time.Time) Option {
	return func(o *options) { o.expires = t }
}

// NewInvitation builds an invitation from the DID from with a fresh id.
// It accepts didcomm/v2 unless WithAccept says otherwise.
func NewInvitation(from string, opts ...Option) (Invitation, error) {
	o := options{accept: []string{AcceptDIDCommV2}}
	for _, opt := range opts {
		opt(&o)
	}
	inv := Invitation{
		Type: InvitationType,
		ID:   agent.NewID(),
		From: from,
		Body: InvitationBody{GoalCode: o.goalCode, Goal: o.goal, Accept: o.accept, Label: o.label},
	}
	if !o.expires.IsZero() {
		inv.ExpiresTime = o.expires.Unix()
	}
	inv.Attachments = append(inv.Attachments, o.attachments...)
	for _, m := range o.messages {
		if m.From == "" {
			m.From = from
		}
		if m.PThID == "" {
			m.PThID = inv.ID
		}
		b, err := json.Marshal(m)
		if err != nil {
			return Invitation{}, err
		}
		inv.Attachments = append(inv.Attachments, agent.Attachment{
			ID:        m.ID,
			MediaType: agent.MediaTypePlain,
			Data:      agent.AttachmentData{JSON: b},
		})
	}
	if err := inv.Validate(); err != nil {
		return Invitation{}, err
	}
	return inv, nil
}

// Validate checks what Out-of-Band 2.0 requires of an invitation: its type,
// an id, and a from that is a DID; and that inline JSON attachments are JSON.
// Its error is an *agent.Error with code
// e.p.msg.
func (inv Invitation) Validate() error {
	switch {
	case inv.Type != InvitationType:
		return agent.Errorf(agent.CodeMsg, "not an out-of-band invitation: type is %q, want %q", inv.Type, InvitationType)
	case inv.ID == "":
		return agent.Errorf(agent.CodeMsg, "invitation has no id")
	case inv.From == "":
		return agent.Errorf(agent.CodeMsg, "invitation has no from")
	case !strings.HasPrefix(inv.From, "did:"):
		return agent.Errorf(agent.CodeMsg, "invitation from is not a DID: %q", inv.From)
	}
	for i, a := range inv.Attachments {
		if len(a.Data.JSON) > 0 && !json.Valid(a.Data.JSON) || len(a.Data.JWS) > 0 && !json.Valid(a.Data.JWS) {
			return agent.Errorf(agent.CodeMsg, "attachment %d holds invalid JSON", i)
		}
	}
	return nil
}

// Expired reports whether the invitation has an expires_time before now.
func (inv Invitation) Expired(now time.Time) bool {
	return inv.ExpiresTime != 0 && now.Unix() >= inv.ExpiresTime
}

// Encode returns the invitation's compact JSON, base64url-encoded without
// padding: the value of the _oob parameter. It panics if an attachment holds
// invalid JSON, which Validate rules out (NewInvitation and Parse validate).
func (inv Invitation) Encode() string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(inv); err != nil {
		panic("oob: invitation cannot be marshalled: " + err.Error()) // all its fields are marshallable
	}
	return base64.RawURLEncoding.EncodeToString(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// URL returns base with the encoded invitation in its _oob query parameter:
// base?_oob=..., or base&_oob=... when base already has a query. base should
// lead a browser to instructions for people without an agent.
func (inv Invitation) URL(base string) string {
	frag := ""
	if i := strings.IndexByte(base, '#'); i >= 0 {
		base, frag = base[:i], base[i:]
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = ""
		}
	}
	return base + sep + QueryParam + "=" + inv.Encode() + frag
}

// Parse reads an invitation from a URL with an _oob parameter, from the bare
// encoded value, or from its JSON. It is lenient about the encoding (padded
// or not, base64url or standard base64) and about the "@id" and "mime_type"
// attachment fields of earlier drafts, and strict about content: the result
// passes Validate. Its errors are *agent.Error with code e.p.msg.
func Parse(s string) (Invitation, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxEncodedLen {
		return Invitation{}, agent.Errorf(agent.CodeMsg, "invitation longer than %d bytes", MaxEncodedLen)
	}
	if s == "" {
		return Invitation{}, agent.Errorf(agent.CodeMsg, "empty invitation")
	}
	raw := []byte(s)
	if s[0] != '{' {
		enc := s
		if strings.ContainsAny(s, ":?") {
			v, err := oobParam(s)
			if err != nil {
				return Invitation{}, err
			}
			enc = v
		}
		b, err := decodeBase64(enc)
		if err != nil {
			return Invitation{}, agent.Wrap(agent.CodeMsg, err, "the _oob value is not valid base64url")
		}
		raw = b
	}
	return parseJSON(raw)
}

// oobParam returns the _oob value of an invitation URL. It reads the raw
// query rather than url.Values, which would turn a '+' of standard base64
// into a space.
func oobParam(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", agent.Wrap(agent.CodeMsg, err, "invitation is not a valid URL")
	}
	short := false
	for kv := range strings.SplitSeq(u.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case QueryParam:
			v, err := url.PathUnescape(v)
			if err != nil {
				return "", agent.Wrap(agent.CodeMsg, err, "the _oob parameter is badly escaped")
			}
			if v == "" {
				return "", agent.Errorf(agent.CodeMsg, "the _oob parameter is empty")
			}
			return v, nil
		case "_oobid":
			short = true
		}
	}
	if short {
		return "", agent.Errorf(agent.CodeMsg, "short invitation URLs (_oobid) must be resolved to a full one first")
	}
	return "", agent.Errorf(agent.CodeMsg, "URL has no _oob parameter")
}

// decodeBase64 decodes base64url or standard base64, with or without padding,
// ignoring line breaks and spaces that copying may have added.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		case '+':
			return '-'
		case '/':
			return '_'
		}
		return r
	}, s)
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// legacyAttachment holds the attachment fields of earlier drafts of the spec.
type legacyAttachment struct {
	AtID     string `json:"@id"`
	MimeType string `json:"mime_type"`
}

func parseJSON(raw []byte) (Invitation, error) {
	var inv Invitation
	if err := json.Unmarshal(raw, &inv); err != nil {
		return Invitation{}, agent.Wrap(agent.CodeMsg, err, "invitation is not valid JSON: "+jsonErrorText(err))
	}
	if len(inv.Attachments) > 0 {
		var legacy struct {
			Attachments []legacyAttachment `json:"attachments"`
		}
		if json.Unmarshal(raw, &legacy) == nil && len(legacy.Attachments) == len(inv.Attachments) {
			for i, l := range legacy.Attachments {
				if inv.Attachments[i].ID == "" {
					inv.Attachments[i].ID = l.AtID
				}
				if inv.Attachments[i].MediaType == "" {
					inv.Attachments[i].MediaType = l.MimeType
				}
			}
		}
	}
	if err := inv.Validate(); err != nil {
		return Invitation{}, err
	}
	return inv, nil
}

// jsonErrorText describes a JSON error without quoting the input.
func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + te.Field + " has the wrong type"
	}
	return "syntax error"
}

// Messages returns the plaintext messages attached to the invitation, in the
// inviter's order of preference: inline JSON or base64 attachments that hold
// a message with an id and a type. Attachments by link or signed ones are
// left out, as are those that are not messages. A message without from gets
// the inviter's DID and one without pthid the invitation's id; one whose from
// is another DID than the inviter's is an error.
//
// These messages came outside any DIDComm envelope: nothing authenticates
// them beyond the channel the invitation came through.
func (inv Invitation) Messages() ([]agent.Message, error) {
	var out []agent.Message
	for i, a := range inv.Attachments {
		var raw []byte
		switch {
		case len(a.Data.JSON) > 0:
			raw = a.Data.JSON
		case a.Data.Base64 != "":
			b, err := decodeBase64(a.Data.Base64)
			if err != nil {
				continue
			}
			raw = b
		default:
			continue
		}
		var m agent.Message
		if json.Unmarshal(raw, &m) != nil || m.ID == "" || m.Type == "" {
			continue
		}
		if m.From == "" {
			m.From = inv.From
		} else if agent.DIDOf(m.From) != agent.DIDOf(inv.From) {
			return nil, agent.Errorf(agent.CodeTrust, "attachment %d is from %s, not the inviter %s", i, m.From, inv.From)
		}
		if m.PThID == "" {
			m.PThID = inv.ID
		}
		out = append(out, m)
	}
	return out, nil
}

// acceptsV2 reports whether the accept list allows DIDComm v2: absent, or
// holding didcomm/v2 (with or without parameters).
func acceptsV2(accept []string) bool {
	if len(accept) == 0 {
		return true
	}
	return slices.ContainsFunc(accept, func(a string) bool {
		p, _, _ := strings.Cut(a, ";")
		return strings.TrimSpace(p) == AcceptDIDCommV2
	})
}

// Connection is the record of an accepted invitation, kept in agent.Records
// as kind "connection" under the invitation's id.
type Connection struct {
	// InvitationID is the id of the accepted invitation, which answers use as pthid.
	InvitationID string `json:"invitation_id"`
	// TheirDID is the inviter's DID.
	TheirDID   string    `json:"their_did"`
	GoalCode   string    `json:"goal_code,omitempty"`
	Goal       string    `json:"goal,omitempty"`
	Accept     []string  `json:"accept,omitempty"`
	AcceptedAt time.Time `json:"accepted_at"`

	// Messages are the attached messages for the caller to process (see
	// Invitation.Messages), returned only by the Accept call that first
	// accepted the invitation, so that they are acted upon once.
	Messages []agent.Message `json:"-"`
	// Existing is true when the invitation had been accepted before.
	Existing bool `json:"-"`
}

// stored is an invitation we made, as kept in Records.
type stored struct {
	Invitation Invitation `json:"invitation"`
	CreatedAt  time.Time  `json:"created_at"`
}

// Service keeps the invitations the agent makes and accepts.
type Service struct {
	records agent.Records
	log     *slog.Logger
	now     func() time.Time
	mu      sync.Mutex // serialises Accept's check-then-put
}

// New returns a Service keeping its records in records; logger defaults to
// slog.Default().
func New(records agent.Records, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{records: records, log: logger.With("protocol", PIURI), now: time.Now}
}

// Protocol describes Out-of-Band 2.0 for the router and Discover Features.
// Invitations reach the agent through its API (Parse, Accept), not as DIDComm
// messages: the handler refuses an invitation sent over DIDComm with
// e.p.msg.unsupported rather than act on attachments nobody asked for.
func (s *Service) Protocol() agent.Protocol {
	return agent.Protocol{PIURI: PIURI, Roles: []string{RoleSender, RoleReceiver}, Handler: agent.HandlerFunc(s.handle)}
}

func (s *Service) handle(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	s.log.InfoContext(ctx, "refusing out-of-band message sent over DIDComm", "type", in.Message.Type, "from", in.Message.From)
	return nil, agent.Errorf(agent.CodeMsgUnsupported, "out-of-band invitations are not accepted as DIDComm messages")
}

// Create makes an invitation from the DID from (see NewInvitation) and
// remembers it, so that Invitation and Related find it.
func (s *Service) Create(ctx context.Context, from string, opts ...Option) (Invitation, error) {
	inv, err := NewInvitation(from, opts...)
	if err != nil {
		return Invitation{}, err
	}
	b, err := json.Marshal(stored{Invitation: inv, CreatedAt: s.now().UTC()})
	if err != nil {
		return Invitation{}, err
	}
	if err := s.records.Put(ctx, KindInvitation, inv.ID, b); err != nil {
		return Invitation{}, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	return inv, nil
}

// Invitation returns the invitation we made with the given id, or an error
// wrapping agent.ErrNotFound.
func (s *Service) Invitation(ctx context.Context, id string) (Invitation, error) {
	b, err := s.records.Get(ctx, KindInvitation, id)
	if err != nil {
		return Invitation{}, err
	}
	var st stored
	if err := json.Unmarshal(b, &st); err != nil {
		return Invitation{}, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	return st.Invitation, nil
}

// Related returns the invitation we made that m answers: the one whose id is
// m's pthid. It returns an error wrapping agent.ErrNotFound when m has no
// pthid or the pthid is not one of our invitations. Whether an expired
// invitation still counts is the caller's choice (Invitation.Expired).
func (s *Service) Related(ctx context.Context, m agent.Message) (Invitation, error) {
	if m.PThID == "" {
		return Invitation{}, agent.ErrNotFound
	}
	return s.Invitation(ctx, m.PThID)
}

// Accept accepts an invitation: it checks it (valid, not expired, offering
// DIDComm v2), records a connection to the inviter, and returns the
// connection with the invitation's attached messages for the caller to
// process. Accepting an invitation again returns the recorded connection with
// Existing set and no messages; an invitation whose id was accepted before
// from another DID is refused.
func (s *Service) Accept(ctx context.Context, inv Invitation) (Connection, error) {
	if err := inv.Validate(); err != nil {
		return Connection{}, err
	}
	now := s.now()
	if inv.Expired(now) {
		return Connection{}, agent.Errorf(agent.CodeMsgExpired, "invitation expired")
	}
	if !acceptsV2(inv.Body.Accept) {
		return Connection{}, agent.Errorf(agent.CodeMsgUnsupported, "invitation does not accept %s", AcceptDIDCommV2)
	}
	msgs, err := inv.Messages()
	if err != nil {
		return Connection{}, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if c, err := s.Connection(ctx, inv.ID); err == nil {
		if agent.DIDOf(c.TheirDID) != agent.DIDOf(inv.From) {
			return Connection{}, agent.Errorf(agent.CodeMsg, "invitation id %s was already accepted from another DID", inv.ID)
		}
		c.Existing = true
		return c, nil
	} else if !errors.Is(err, agent.ErrNotFound) {
		return Connection{}, err
	}
	c := Connection{
		InvitationID: inv.ID,
		TheirDID:     inv.From,
		GoalCode:     inv.Body.GoalCode,
		Goal:         inv.Body.Goal,
		Accept:       inv.Body.Accept,
		AcceptedAt:   now.UTC(),
	}
	b, err := json.Marshal(c)
	if err != nil {
		return Connection{}, err
	}
	if err := s.records.Put(ctx, KindConnection, inv.ID, b); err != nil {
		return Connection{}, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	s.log.InfoContext(ctx, "accepted out-of-band invitation", "invitation", inv.ID, "from", inv.From, "goal_code", inv.Body.GoalCode, "messages", len(msgs))
	c.Messages = msgs
	return c, nil
}

// Connection returns the connection recorded for the accepted invitation
// with the given id, or an error wrapping agent.ErrNotFound.
func (s *Service) Connection(ctx context.Context, invitationID string) (Connection, error) {
	b, err := s.records.Get(ctx, KindConnection, invitationID)
	if err != nil {
		return Connection{}, err
	}
	var c Connection
	if err := json.Unmarshal(b, &c); err != nil {
		return Connection{}, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	return c, nil
}
