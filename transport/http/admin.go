package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/agentd/agentd/agent"
)

// AdminService is what operators can do through the admin API. The daemon
// implements it over the agent and its protocols.
type AdminService interface {
	// Ping sends a Trust Ping to a DID and waits for the response.
	Ping(ctx context.Context, to string) (time.Duration, error)
	// Discover asks a DID which protocols matching match it supports.
	Discover(ctx context.Context, to, match string) (any, error)
	// CreateInvitation makes a new Out-of-Band invitation.
	CreateInvitation(ctx context.Context, goalCode, goal string) (invitation any, url string, err error)
	// AcceptInvitation accepts an Out-of-Band invitation given as URL or JSON.
	AcceptInvitation(ctx context.Context, invitation string) (any, error)
	// OutboxDepth counts pending and dead messages.
	OutboxDepth(ctx context.Context) (pending, dead int, err error)
	// DeadLetters lists dead letters after the id after.
	DeadLetters(ctx context.Context, after string, limit int) ([]*agent.OutboundMessage, error)
	// RetryDeadLetter moves a dead letter back into the outbox.
	RetryDeadLetter(ctx context.Context, id string) error
	// DeleteDeadLetter drops a dead letter.
	DeleteDeadLetter(ctx context.Context, id string) error
}

// maxAdminBody bounds admin request bodies.
const maxAdminBody = 64 << 10

func (s *server) adminRoutes() http.Handler {
	mux := http.NewServeMux()
	a := s.cfg.Admin
	mux.HandleFunc("GET /admin/did", s.did)
	mux.HandleFunc("POST /admin/ping", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			To string `json:"to"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.To == "" {
			writeError(w, agent.Errorf(agent.CodeMsg, "to is required"))
			return
		}
		rtt, err := a.Ping(r.Context(), req.To)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"to": req.To, "rttMillis": float64(rtt.Microseconds()) / 1000})
	})
	mux.HandleFunc("POST /admin/discover", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			To    string `json:"to"`
			Match string `json:"match"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.To == "" {
			writeError(w, agent.Errorf(agent.CodeMsg, "to is required"))
			return
		}
		if req.Match == "" {
			req.Match = "*"
		}
		d, err := a.Discover(r.Context(), req.To, req.Match)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"disclosures": d})
	})
	mux.HandleFunc("POST /admin/invitations", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			GoalCode string `json:"goal_code"`
			Goal     string `json:"goal"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		inv, url, err := a.CreateInvitation(r.Context(), req.GoalCode, req.Goal)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"invitation": inv, "url": url})
	})
	mux.HandleFunc("POST /admin/invitations/accept", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Invitation string `json:"invitation"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.Invitation == "" {
			writeError(w, agent.Errorf(agent.CodeMsg, "invitation (URL or JSON) is required"))
			return
		}
		conn, err := a.AcceptInvitation(r.Context(), req.Invitation)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, conn)
	})
	mux.HandleFunc("GET /admin/outbox", func(w http.ResponseWriter, r *http.Request) {
		p, d, err := a.OutboxDepth(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"pending": p, "dead": d})
	})
	mux.HandleFunc("GET /admin/deadletters", func(w http.ResponseWriter, r *http.Request) {
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				writeError(w, agent.Errorf(agent.CodeMsg, "limit must be between 1 and 1000"))
				return
			}
			limit = n
		}
		list, err := a.DeadLetters(r.Context(), r.URL.Query().Get("after"), limit)
		if err != nil {
			writeError(w, err)
			return
		}
		out := make([]deadLetter, 0, len(list))
		for _, m := range list {
			out = append(out, deadLetter{ID: m.ID, To: m.To, Endpoint: m.Endpoint, MessageType: m.MessageType,
				Bytes: len(m.Payload), Attempts: m.Attempts, CreatedAt: m.CreatedAt, DeadAt: m.DeadAt, LastError: m.LastError})
		}
		writeJSON(w, http.StatusOK, map[string]any{"deadLetters": out})
	})
	mux.HandleFunc("POST /admin/deadletters/{id}/retry", func(w http.ResponseWriter, r *http.Request) {
		if err := a.RetryDeadLetter(r.Context(), r.PathValue("id")); err != nil {
			writeError(w, notFound(err, "dead letter"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /admin/deadletters/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := a.DeleteDeadLetter(r.Context(), r.PathValue("id")); err != nil {
			writeError(w, notFound(err, "dead letter"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s.mediationRoutes(mux)
	s.proveControlRoutes(mux)
	mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not-found", Reason: "no admin endpoint " + r.Method + " " + r.URL.Path})
	})
	return mux
}

// deadLetter is the operator's view of a dead letter (the encrypted payload is
// summarised by its size).
type deadLetter struct {
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

func notFound(err error, what string) error {
	if errors.Is(err, agent.ErrNotFound) {
		return &notFoundError{what}
	}
	return err
}

type notFoundError struct{ what string }

func (e *notFoundError) Error() string { return e.what + " not found" }

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		writeError(w, agent.Errorf(agent.CodeTooLarge, "request body too large"))
		return false
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, agent.Errorf(agent.CodeMsg, "request body is not valid JSON: %s", err))
		return false
	}
	return true
}
