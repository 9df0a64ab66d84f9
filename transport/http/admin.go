package http

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/agentd/agentd/agent"
)

// AdminService is what operators can do through the core admin API. The
// daemon implements it over the agent and its protocols.
type AdminService interface {
	// Ping sends a Trust Ping to a DID and waits for the response.
	Ping(ctx context.Context, to string) (time.Duration, error)
	// Discover asks a DID which protocols matching match it supports.
	Discover(ctx context.Context, to, match string) ([]Disclosure, error)
	// CreateInvitation makes a new Out-of-Band invitation.
	CreateInvitation(ctx context.Context, goalCode, goal string) (invitation Invitation, url string, err error)
	// AcceptInvitation accepts an Out-of-Band invitation given as URL or JSON.
	AcceptInvitation(ctx context.Context, invitation string) (Connection, error)
	// OutboxDepth counts pending and dead messages.
	OutboxDepth(ctx context.Context) (pending, dead int, err error)
	// DeadLetters lists dead letters after the cursor after, as
	// agent.OutboxStore.Dead does (a bare id that is no longer a dead
	// letter is an error wrapping agent.ErrNotFound).
	DeadLetters(ctx context.Context, after string, limit int) ([]*agent.OutboundMessage, error)
	// RetryDeadLetter moves a dead letter back into the outbox; an unknown
	// id is an error wrapping agent.ErrNotFound.
	RetryDeadLetter(ctx context.Context, id string) error
	// DeleteDeadLetter drops a dead letter; an unknown id is an error
	// wrapping agent.ErrNotFound.
	DeleteDeadLetter(ctx context.Context, id string) error
}

// Invitation is an Out-of-Band 2.0 invitation message.
type Invitation struct {
	Type        string             `json:"type"`
	ID          string             `json:"id"`
	From        string             `json:"from"`
	CreatedTime int64              `json:"created_time,omitempty"`
	ExpiresTime int64              `json:"expires_time,omitempty"`
	Body        InvitationBody     `json:"body"`
	Attachments []agent.Attachment `json:"attachments,omitempty"`
}

// InvitationBody is the body of an invitation.
type InvitationBody struct {
	GoalCode string   `json:"goal_code,omitempty"`
	Goal     string   `json:"goal,omitempty"`
	Accept   []string `json:"accept,omitempty"`
	// Label is the inviter's name for the invitee (not in the Out-of-Band
	// 2.0 spec; other agents ignore it).
	Label string `json:"label,omitempty"`
}

// Connection is an accepted invitation.
type Connection struct {
	InvitationID string    `json:"invitation_id"`
	TheirDID     string    `json:"their_did"`
	GoalCode     string    `json:"goal_code,omitempty"`
	Goal         string    `json:"goal,omitempty"`
	Accept       []string  `json:"accept,omitempty"`
	AcceptedAt   time.Time `json:"accepted_at"`
}

// Disclosure is a feature a peer disclosed (Discover Features 2.0).
type Disclosure struct {
	FeatureType string   `json:"feature-type"`
	ID          string   `json:"id"`
	Roles       []string `json:"roles,omitempty"`
}

// PingRequest is the body of POST /admin/ping.
type PingRequest struct {
	// To is the DID to ping.
	To string `json:"to"`
}

// PingResponse answers POST /admin/ping.
type PingResponse struct {
	To string `json:"to"`
	// RTTMillis is the round trip time in milliseconds.
	RTTMillis float64 `json:"rttMillis"`
}

// DiscoverRequest is the body of POST /admin/discover.
type DiscoverRequest struct {
	To string `json:"to"`
	// Match is the protocol URI pattern; "*" when empty.
	Match string `json:"match,omitempty"`
}

// DiscoverResponse answers POST /admin/discover.
type DiscoverResponse struct {
	Disclosures []Disclosure `json:"disclosures"`
}

// InvitationRequest is the body of POST /admin/invitations.
type InvitationRequest struct {
	GoalCode string `json:"goal_code,omitempty"`
	Goal     string `json:"goal,omitempty"`
}

// AcceptRequest is the body of POST /admin/invitations/accept.
type AcceptRequest struct {
	// Invitation is the invitation as URL or JSON.
	Invitation string `json:"invitation"`
}

// OutboxResponse answers GET /admin/outbox.
type OutboxResponse struct {
	Pending int `json:"pending"`
	Dead    int `json:"dead"`
}

// DeadLetter is the operator's view of a dead letter (the encrypted payload
// is summarised by its size).
type DeadLetter struct {
	ID          string    `json:"id"`
	To          string    `json:"to"`
	Endpoint    string    `json:"endpoint"`
	MessageType string    `json:"messageType,omitempty"`
	Bytes       int       `json:"bytes"`
	Attempts    int       `json:"attempts"`
	CreatedAt   time.Time `json:"createdAt"`
	DeadAt      time.Time `json:"deadAt"`
	LastError   string    `json:"lastError,omitempty"`
}

// NewAdminAPI returns the core admin API (ping, discover, invitations,
// outbox, dead letters) over svc.
func NewAdminAPI(svc AdminService) Feature { return &adminAPI{svc: svc} }

type adminAPI struct{ svc AdminService }

// Routes implements Feature.
func (a *adminAPI) Routes(r *Routes) {
	r.Admin("POST /admin/ping", Op{Summary: "Send a Trust Ping and wait for the response",
		Request: PingRequest{}, Response: PingResponse{}}, a.ping)
	r.Admin("POST /admin/discover", Op{Summary: "Ask a DID which protocols it supports (Discover Features 2.0)",
		Request: DiscoverRequest{}, Response: DiscoverResponse{}}, a.discover)
	r.Admin("POST /admin/invitations", Op{Summary: "Make an Out-of-Band invitation",
		Request: InvitationRequest{}, Response: InvitationResponse{}, Status: http.StatusCreated}, a.createInvitation)
	r.Admin("POST /admin/invitations/accept", Op{Summary: "Accept an Out-of-Band invitation (URL or JSON)",
		Request: AcceptRequest{}, Response: Connection{}}, a.acceptInvitation)
	r.Admin("GET /admin/outbox", Op{Summary: "Count pending and dead outbound messages",
		Response: OutboxResponse{}}, a.outbox)
	r.Admin("GET /admin/deadletters", Op{Summary: "List dead letters",
		Response: Page[DeadLetter]{Key: "deadLetters"}, Query: pageQuery}, a.deadLetters)
	r.Admin("POST /admin/deadletters/{id}/retry", Op{Summary: "Move a dead letter back into the outbox"}, a.retryDeadLetter)
	r.Admin("DELETE /admin/deadletters/{id}", Op{Summary: "Delete a dead letter"}, a.deleteDeadLetter)
}

func (a *adminAPI) ping(w http.ResponseWriter, r *http.Request) {
	var req PingRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.To == "" {
		fail(w, r, agent.Errorf(agent.CodeMsg, "to is required"))
		return
	}
	rtt, err := a.svc.Ping(r.Context(), req.To)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, PingResponse{To: req.To, RTTMillis: float64(rtt.Microseconds()) / 1000})
}

func (a *adminAPI) discover(w http.ResponseWriter, r *http.Request) {
	var req DiscoverRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.To == "" {
		fail(w, r, agent.Errorf(agent.CodeMsg, "to is required"))
		return
	}
	if req.Match == "" {
		req.Match = "*"
	}
	d, err := a.svc.Discover(r.Context(), req.To, req.Match)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, DiscoverResponse{Disclosures: d})
}

func (a *adminAPI) createInvitation(w http.ResponseWriter, r *http.Request) {
	var req InvitationRequest
	if !readJSON(w, r, &req) {
		return
	}
	inv, url, err := a.svc.CreateInvitation(r.Context(), req.GoalCode, req.Goal)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, InvitationResponse{Invitation: inv, URL: url})
}

func (a *adminAPI) acceptInvitation(w http.ResponseWriter, r *http.Request) {
	var req AcceptRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Invitation == "" {
		fail(w, r, agent.Errorf(agent.CodeMsg, "invitation (URL or JSON) is required"))
		return
	}
	conn, err := a.svc.AcceptInvitation(r.Context(), req.Invitation)
	respond(w, r, http.StatusOK, conn, err)
}

func (a *adminAPI) outbox(w http.ResponseWriter, r *http.Request) {
	p, d, err := a.svc.OutboxDepth(r.Context())
	respond(w, r, http.StatusOK, OutboxResponse{Pending: p, Dead: d}, err)
}

func (a *adminAPI) deadLetters(w http.ResponseWriter, r *http.Request) {
	page, err := parsePage(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	list, err := a.svc.DeadLetters(r.Context(), page.After, page.Limit)
	if isStoreMiss(err) {
		// A bare id that is no longer a dead letter: its position is
		// unknown. The next values this route gives are positions
		// (agent.DeadLetterCursor) that stay good when letters go.
		err = agent.Wrap(agent.CodeNotFound, err, fmt.Sprintf("after: %.80q is not a dead letter (retried or deleted since?): pass the next value of the previous page, which stays good", page.After))
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	out := make([]DeadLetter, 0, len(list))
	for _, m := range list {
		out = append(out, DeadLetter{ID: m.ID, To: m.To, Endpoint: m.Endpoint, MessageType: m.MessageType,
			Bytes: len(m.Payload), Attempts: m.Attempts, CreatedAt: m.CreatedAt, DeadAt: m.DeadAt, LastError: m.LastError})
	}
	// next is the position of the page's last letter, not its id: it stays
	// good when that letter is retried or deleted meanwhile.
	writeJSON(w, http.StatusOK, newPage("deadLetters", out, page, func(d DeadLetter) string {
		return agent.DeadLetterCursor(&agent.OutboundMessage{ID: d.ID, DeadAt: d.DeadAt})
	}))
}

func (a *adminAPI) retryDeadLetter(w http.ResponseWriter, r *http.Request) {
	err := a.svc.RetryDeadLetter(r.Context(), r.PathValue("id"))
	respondEmpty(w, r, notFound(err, "dead letter"))
}

func (a *adminAPI) deleteDeadLetter(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteDeadLetter(r.Context(), r.PathValue("id"))
	respondEmpty(w, r, notFound(err, "dead letter"))
}

// maxAdminBody bounds admin request bodies.
const maxAdminBody = 64 << 10

// fail answers err through writeError with the logger of the server that
// serves r (see loggerKey).
func fail(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, loggerOf(r), err)
}

// respond answers v with status, or err.
func respond(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

// respondEmpty answers 204, or err.
func respondEmpty(w http.ResponseWriter, r *http.Request, err error) {
	respondStatus(w, r, http.StatusNoContent, err)
}

// notFound turns a store miss (agent.ErrNotFound) into an e.p.req.not-found
// error naming what was looked for; other errors are returned as they are.
func notFound(err error, what string) error {
	if err == nil {
		return nil
	}
	if isStoreMiss(err) {
		return agent.Wrap(agent.CodeNotFound, err, what+" not found")
	}
	return err
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		fail(w, r, agent.Errorf(agent.CodeTooLarge, "request body too large"))
		return false
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		fail(w, r, agent.Errorf(agent.CodeMsg, "request body is not valid JSON: %s", err))
		return false
	}
	return true
}

// respondStatus answers status without a body, or err.
func respondStatus(w http.ResponseWriter, r *http.Request, status int, err error) {
	if err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(status)
}

// errRequired is the error of a request missing a field.
func errRequired(comment string) error { return agent.Errorf(agent.CodeMsg, "%s", comment) }
