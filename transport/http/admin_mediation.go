package http

import (
	"context"
	"net/http"
	"time"
)

// MediatorAdmin is what operators can do with the mediator through the admin
// API. The daemon implements it when the mediator is enabled.
type MediatorAdmin interface {
	// MediationGrants lists grants in client DID order after the DID after.
	MediationGrants(ctx context.Context, after string, limit int) ([]MediationGrant, error)
	// MediationGrant describes one client: its grant, its recipient DIDs and
	// their queue. An unknown client is an error wrapping agent.ErrNotFound.
	MediationGrant(ctx context.Context, did string) (MediationGrant, error)
	// GrantMediation grants mediation to a DID whatever the policy.
	GrantMediation(ctx context.Context, did string) (MediationGrant, error)
	// RevokeMediation ends a client's mediation and drops its queued messages.
	RevokeMediation(ctx context.Context, did string) error
	// MediationQueue describes the whole queue and the live connections.
	MediationQueue(ctx context.Context) (MediationQueue, error)
	// CreateMediationInvitation makes an Out-of-Band invitation good for one
	// grant under the invitation policy.
	CreateMediationInvitation(ctx context.Context) (invitation Invitation, url string, err error)
}

// MediationGrant is the operator's view of a mediation grant.
type MediationGrant struct {
	ClientDID string `json:"client_did"`
	// State is granted or revoked.
	State       string    `json:"state"`
	Version     string    `json:"version,omitempty"`
	MediatorDID string    `json:"mediator_did,omitempty"`
	RoutingDID  string    `json:"routing_did,omitempty"`
	GrantedAt   time.Time `json:"granted_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Invitation is the mediation invitation the grant was made for.
	Invitation string `json:"invitation,omitempty"`
	// Recipients are the client's registered recipient DIDs (one grant only).
	Recipients     []MediationRecipient `json:"recipients,omitempty"`
	RecipientCount int                  `json:"recipient_count"`
	// Queue is the client's queue (one grant only).
	Queue *MediationQueueStats `json:"queue,omitempty"`
}

// MediationRecipient is a recipient DID a client registered.
type MediationRecipient struct {
	ClientDID string `json:"client_did"`
	// Registered is the value as the client gave it (a DID or a key id).
	Registered string    `json:"recipient_did"`
	AddedAt    time.Time `json:"added_at"`
}

// MediationQueueStats describes queued messages.
type MediationQueueStats struct {
	Messages int       `json:"messages"`
	Bytes    int64     `json:"bytes"`
	Oldest   time.Time `json:"oldest,omitzero"`
	Newest   time.Time `json:"newest,omitzero"`
}

// MediationQueue answers GET /admin/mediation/queue: the whole queue, the
// clients and the live connections.
type MediationQueue struct {
	RoutingDID             string `json:"routing_did"`
	Policy                 string `json:"policy"`
	Messages               int    `json:"messages"`
	Bytes                  int64  `json:"bytes"`
	RecipientsWithMessages int    `json:"recipients_with_messages"`
	Clients                int    `json:"clients"`
	Revoked                int    `json:"revoked"`
	Recipients             int    `json:"recipients"`
	LiveSessions           int    `json:"live_sessions"`
	WebSockets             int64  `json:"websockets"`
	Pushed                 int64  `json:"pushed"`
	PushSkipped            int64  `json:"push_skipped"`
	PushFailed             int64  `json:"push_failed"`
}

// GrantRequest is the body of POST /admin/mediation/grants.
type GrantRequest struct {
	DID string `json:"did"`
}

// NewMediationAPI returns the mediator's admin API over svc.
func NewMediationAPI(svc MediatorAdmin) Feature { return &mediationAPI{svc: svc} }

// MediationDisabled answers the mediator's admin paths with 404 "the
// mediator is not enabled", for a daemon whose mediator is off.
func MediationDisabled() Feature {
	return FeatureFunc(func(r *Routes) {
		r.Disabled("/admin/mediation/", "the mediator is not enabled (mediator.enabled)")
	})
}

type mediationAPI struct{ svc MediatorAdmin }

// Routes implements Feature.
func (m *mediationAPI) Routes(r *Routes) {
	r.Admin("GET /admin/mediation/grants", Op{Summary: "List mediation grants in client DID order",
		Response: Page[MediationGrant]{Key: "grants"}, Query: pageQuery}, m.listGrants)
	r.Admin("GET /admin/mediation/grants/{did}", Op{Summary: "Describe a client: its grant, recipient DIDs and queue",
		Response: MediationGrant{}}, m.getGrant)
	r.Admin("POST /admin/mediation/grants", Op{Summary: "Grant mediation to a DID whatever the policy",
		Request: GrantRequest{}, Response: MediationGrant{}, Status: http.StatusCreated}, m.grant)
	r.Admin("DELETE /admin/mediation/grants/{did}", Op{Summary: "Revoke a client's mediation and drop its queued messages"}, m.revoke)
	r.Admin("GET /admin/mediation/queue", Op{Summary: "Describe the queue, the clients and the live connections",
		Response: MediationQueue{}}, m.queue)
	r.Admin("POST /admin/mediation/invitations", Op{Summary: "Make a mediation invitation (good for one grant)",
		Response: InvitationResponse{}, Status: http.StatusCreated}, m.invite)
}

func (m *mediationAPI) listGrants(w http.ResponseWriter, r *http.Request) {
	page, err := parsePage(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	list, err := m.svc.MediationGrants(r.Context(), page.After, page.Limit)
	respond(w, r, http.StatusOK, newPage("grants", list, page, func(g MediationGrant) string { return g.ClientDID }), err)
}

func (m *mediationAPI) getGrant(w http.ResponseWriter, r *http.Request) {
	g, err := m.svc.MediationGrant(r.Context(), r.PathValue("did"))
	respond(w, r, http.StatusOK, g, notFound(err, "mediation grant"))
}

func (m *mediationAPI) grant(w http.ResponseWriter, r *http.Request) {
	var req GrantRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.DID == "" {
		fail(w, r, errRequired("did is required"))
		return
	}
	g, err := m.svc.GrantMediation(r.Context(), req.DID)
	respond(w, r, http.StatusCreated, g, err)
}

func (m *mediationAPI) revoke(w http.ResponseWriter, r *http.Request) {
	respondEmpty(w, r, notFound(m.svc.RevokeMediation(r.Context(), r.PathValue("did")), "mediation grant"))
}

func (m *mediationAPI) queue(w http.ResponseWriter, r *http.Request) {
	q, err := m.svc.MediationQueue(r.Context())
	respond(w, r, http.StatusOK, q, err)
}

func (m *mediationAPI) invite(w http.ResponseWriter, r *http.Request) {
	inv, url, err := m.svc.CreateMediationInvitation(r.Context())
	respond(w, r, http.StatusCreated, InvitationResponse{Invitation: inv, URL: url}, err)
}
