package http

import (
	"context"
	"net/http"
	"strconv"

	"github.com/agentd/agentd/agent"
)

// MediatorAdmin is what operators can do with the mediator through the admin
// API. The daemon implements it when the mediator is enabled. Results are
// written as JSON as they are.
type MediatorAdmin interface {
	// MediationGrants lists grants in client DID order after the DID after.
	MediationGrants(ctx context.Context, after string, limit int) (any, error)
	// MediationGrant describes one client: its grant, its recipient DIDs and
	// their queue. An unknown client is an error wrapping agent.ErrNotFound.
	MediationGrant(ctx context.Context, did string) (any, error)
	// GrantMediation grants mediation to a DID whatever the policy.
	GrantMediation(ctx context.Context, did string) (any, error)
	// RevokeMediation ends a client's mediation and drops its queued messages.
	RevokeMediation(ctx context.Context, did string) error
	// MediationQueue describes the whole queue and the live connections.
	MediationQueue(ctx context.Context) (any, error)
	// CreateMediationInvitation makes an Out-of-Band invitation good for one
	// grant under the invitation policy.
	CreateMediationInvitation(ctx context.Context) (invitation any, url string, err error)
}

// mediationRoutes adds the mediator's admin endpoints to mux.
func (s *server) mediationRoutes(mux *http.ServeMux) {
	a := s.cfg.Mediator
	if a == nil {
		mux.HandleFunc("/admin/mediation/", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusNotFound, errorBody{Error: "not-found", Reason: "the mediator is not enabled (mediator.enabled)"})
		})
		return
	}
	mux.HandleFunc("GET /admin/mediation/grants", func(w http.ResponseWriter, r *http.Request) {
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				writeError(w, agent.Errorf(agent.CodeMsg, "limit must be between 1 and 1000"))
				return
			}
			limit = n
		}
		list, err := a.MediationGrants(r.Context(), r.URL.Query().Get("after"), limit)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"grants": list})
	})
	mux.HandleFunc("GET /admin/mediation/grants/{did}", func(w http.ResponseWriter, r *http.Request) {
		g, err := a.MediationGrant(r.Context(), r.PathValue("did"))
		if err != nil {
			writeError(w, notFound(err, "mediation grant"))
			return
		}
		writeJSON(w, http.StatusOK, g)
	})
	mux.HandleFunc("POST /admin/mediation/grants", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			DID string `json:"did"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.DID == "" {
			writeError(w, agent.Errorf(agent.CodeMsg, "did is required"))
			return
		}
		g, err := a.GrantMediation(r.Context(), req.DID)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, g)
	})
	mux.HandleFunc("DELETE /admin/mediation/grants/{did}", func(w http.ResponseWriter, r *http.Request) {
		if err := a.RevokeMediation(r.Context(), r.PathValue("did")); err != nil {
			writeError(w, notFound(err, "mediation grant"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /admin/mediation/queue", func(w http.ResponseWriter, r *http.Request) {
		q, err := a.MediationQueue(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, q)
	})
	mux.HandleFunc("POST /admin/mediation/invitations", func(w http.ResponseWriter, r *http.Request) {
		inv, url, err := a.CreateMediationInvitation(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"invitation": inv, "url": url})
	})
}
