package http

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
)

// Public paths of Prove Control. They must be those the protocol package
// uses (provecontrol.LinkPath, provecontrol.WellKnownPath); a daemon test
// checks it.
const (
	// ChallengeLinkPath prefixes the one-time links that serve an encrypted
	// challenge (Tel, Discord, Address verification).
	ChallengeLinkPath = "/c/"
	// ChallengeWellKnownPath is where the agent takes challenges POSTed to
	// the IP address it controls (IP verification, user role).
	ChallengeWellKnownPath = "/.well-known/provecontrol/challenge"
)

// Errors a ChallengeEndpoints returns for links.
var (
	// ErrLinkUnknown makes GET /c/{token} answer 404.
	ErrLinkUnknown = errors.New("unknown link")
	// ErrLinkGone makes GET /c/{token} answer 410.
	ErrLinkGone = errors.New("the link was used already or has expired")
)

// ChallengeEndpoints serves the public Prove Control routes. The daemon
// implements it over the protocol; the transport knows nothing of the
// protocol beyond these calls.
type ChallengeEndpoints interface {
	// FetchLink returns the packed challenge behind a one-time link token,
	// once; ErrLinkUnknown or ErrLinkGone (wrapped or not) otherwise.
	FetchLink(ctx context.Context, token string) (payload []byte, mediaType string, err error)
	// ReceiveChallenge takes a packed verificationchallenge POSTed to the
	// well-known path. An error is an *agent.Error for the status.
	ReceiveChallenge(ctx context.Context, raw []byte) error
}

// maxChallengeBody bounds a challenge POSTed to the well-known path.
const maxChallengeBody = 64 << 10

// challengeRoutes adds the public Prove Control routes.
func (s *server) challengeRoutes(route func(pattern, name string, h http.HandlerFunc)) {
	c := s.cfg.Challenges
	if c == nil {
		return
	}
	route("GET "+ChallengeLinkPath+"{token}", "challenge-link", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Robots-Tag", "noindex")
		if !acceptsEncrypted(r.Header.Get("Accept")) {
			// A browser or a link preview: explain, and keep the link for the wallet.
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, linkPage)
			return
		}
		payload, mt, err := c.FetchLink(r.Context(), r.PathValue("token"))
		switch {
		case errors.Is(err, ErrLinkUnknown):
			writeJSON(w, http.StatusNotFound, errorBody{Error: "not-found", Reason: "no such link"})
		case errors.Is(err, ErrLinkGone):
			writeJSON(w, http.StatusGone, errorBody{Error: "gone", Reason: "the link was used already or has expired"})
		case err != nil:
			writeError(w, err)
		default:
			w.Header().Set("Content-Type", mt)
			w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
			w.WriteHeader(http.StatusOK)
			w.Write(payload)
		}
	})
	route("POST "+ChallengeWellKnownPath, "challenge-wellknown", func(w http.ResponseWriter, r *http.Request) {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != agent.MediaTypeEncrypted {
			writeError(w, agent.Errorf(agent.CodeMediaType, "content type must be %s", agent.MediaTypeEncrypted))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxChallengeBody))
		if err != nil {
			writeError(w, agent.Errorf(agent.CodeTooLarge, "a challenge is at most %d bytes", maxChallengeBody))
			return
		}
		if err := c.ReceiveChallenge(r.Context(), body); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// acceptsEncrypted reports whether an Accept header asks for a DIDComm
// encrypted message.
func acceptsEncrypted(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == agent.MediaTypeEncrypted && params["q"] != "0" {
			return true
		}
	}
	return false
}

// linkPage is what a browser sees at a one-time link.
const linkPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>Verification link</title></head>
<body><h1>Verification link</h1>
<p>This is a one-time link to an encrypted verification challenge. Open it in your DIDComm wallet
(or paste it into <code>agentctl verify fetch</code>): the wallet fetches the challenge with
<code>Accept: application/didcomm-encrypted+json</code>. Opening it here did not use it up.</p>
</body></html>
`

// ProveControlAdmin is the Prove Control part of the admin API, for both
// roles. The daemon implements it; results are written as JSON as they are.
// Unknown ids are errors wrapping agent.ErrNotFound.
type ProveControlAdmin interface {
	// StartChallenge challenges a user DID (verifier role, no request).
	StartChallenge(ctx context.Context, user, verificationType, subject string) (any, error)
	// Challenges lists the verifier's challenges, in a state when state is set.
	Challenges(ctx context.Context, state, after string, limit int) (any, error)
	// Challenge describes one of the verifier's challenges.
	Challenge(ctx context.Context, id string) (any, error)
	// Verifications lists the verifier's confirmed verifications.
	Verifications(ctx context.Context, after string, limit int) (any, error)
	// Letters lists the Address letter queue (unsent only when unsent).
	Letters(ctx context.Context, unsent bool, after string, limit int) (any, error)
	// LetterPDF returns a letter's PDF.
	LetterPDF(ctx context.Context, id string) ([]byte, error)
	// MarkLetterSent records that a letter was mailed.
	MarkLetterSent(ctx context.Context, id string) (any, error)

	// RequestVerification asks a verifier DID for a challenge (user role)
	// and waits up to wait for an answer over DIDComm.
	RequestVerification(ctx context.Context, verifier, verificationType, subject string, wait time.Duration) (any, error)
	// Requests lists the requests sent.
	Requests(ctx context.Context, after string, limit int) (any, error)
	// ReceivedChallenges lists the challenges received.
	ReceivedChallenges(ctx context.Context, after string, limit int) (any, error)
	// ReceivedChallenge describes one (with the TXT record of a Domain challenge).
	ReceivedChallenge(ctx context.Context, id string) (any, error)
	// Prove sends the prove for a received challenge and waits up to wait.
	Prove(ctx context.Context, id string, wait time.Duration) (any, error)
	// ImportChallenge takes a challenge as a mail (.eml) or a packed message.
	ImportChallenge(ctx context.Context, raw []byte) (any, error)
	// FetchChallenge fetches a challenge from a one-time link URL.
	FetchChallenge(ctx context.Context, url string) (any, error)
	// Credentials lists the credentials the agent holds.
	Credentials(ctx context.Context, after string, limit int) (any, error)
	// Credential returns one held credential.
	Credential(ctx context.Context, id string) (any, error)
}

// maxImportBody bounds an imported mail or message.
const maxImportBody = 4 << 20

// proveControlRoutes adds the Prove Control admin endpoints to mux.
func (s *server) proveControlRoutes(mux *http.ServeMux) {
	a := s.cfg.ProveControl
	if a == nil {
		return
	}
	page := func(w http.ResponseWriter, r *http.Request) (string, int, bool) {
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				writeError(w, agent.Errorf(agent.CodeMsg, "limit must be between 1 and 1000"))
				return "", 0, false
			}
			limit = n
		}
		return r.URL.Query().Get("after"), limit, true
	}
	wait := func(w http.ResponseWriter, s string, def time.Duration) (time.Duration, bool) {
		if s == "" {
			return def, true
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > 2*time.Minute {
			writeError(w, agent.Errorf(agent.CodeMsg, "wait must be a duration between 0s and 2m"))
			return 0, false
		}
		return d, true
	}
	respond := func(w http.ResponseWriter, status int, key string, v any, err error, what string) {
		if err != nil {
			writeError(w, notFound(err, what))
			return
		}
		if key != "" {
			v = map[string]any{key: v}
		}
		writeJSON(w, status, v)
	}
	listing := func(key string, fn func(ctx context.Context, after string, limit int) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			after, limit, ok := page(w, r)
			if !ok {
				return
			}
			v, err := fn(r.Context(), after, limit)
			respond(w, http.StatusOK, key, v, err, "")
		}
	}

	// Verifier role.
	mux.HandleFunc("POST /admin/provecontrol/challenges", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			User             string `json:"user"`
			VerificationType string `json:"verification_type"`
			Subject          string `json:"subject"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.User == "" || req.VerificationType == "" || req.Subject == "" {
			writeError(w, agent.Errorf(agent.CodeMsg, "user, verification_type and subject are required"))
			return
		}
		v, err := a.StartChallenge(r.Context(), req.User, req.VerificationType, req.Subject)
		respond(w, http.StatusCreated, "", v, err, "")
	})
	mux.HandleFunc("GET /admin/provecontrol/challenges", func(w http.ResponseWriter, r *http.Request) {
		after, limit, ok := page(w, r)
		if !ok {
			return
		}
		v, err := a.Challenges(r.Context(), r.URL.Query().Get("state"), after, limit)
		respond(w, http.StatusOK, "challenges", v, err, "")
	})
	mux.HandleFunc("GET /admin/provecontrol/challenges/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := a.Challenge(r.Context(), r.PathValue("id"))
		respond(w, http.StatusOK, "", v, err, "challenge")
	})
	mux.HandleFunc("GET /admin/provecontrol/verifications", listing("verifications", a.Verifications))
	mux.HandleFunc("GET /admin/provecontrol/letters", func(w http.ResponseWriter, r *http.Request) {
		after, limit, ok := page(w, r)
		if !ok {
			return
		}
		v, err := a.Letters(r.Context(), r.URL.Query().Get("unsent") == "true", after, limit)
		respond(w, http.StatusOK, "letters", v, err, "")
	})
	mux.HandleFunc("GET /admin/provecontrol/letters/{id}/pdf", func(w http.ResponseWriter, r *http.Request) {
		pdf, err := a.LetterPDF(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, notFound(err, "letter"))
			return
		}
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Disposition", `attachment; filename="letter-`+safeFilename(r.PathValue("id"))+`.pdf"`)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		w.Write(pdf)
	})
	mux.HandleFunc("POST /admin/provecontrol/letters/{id}/sent", func(w http.ResponseWriter, r *http.Request) {
		v, err := a.MarkLetterSent(r.Context(), r.PathValue("id"))
		respond(w, http.StatusOK, "", v, err, "letter")
	})

	// User role.
	mux.HandleFunc("POST /admin/provecontrol/requests", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Verifier         string `json:"verifier"`
			VerificationType string `json:"verification_type"`
			Subject          string `json:"subject"`
			Wait             string `json:"wait"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.Verifier == "" || req.VerificationType == "" || req.Subject == "" {
			writeError(w, agent.Errorf(agent.CodeMsg, "verifier, verification_type and subject are required"))
			return
		}
		d, ok := wait(w, req.Wait, 10*time.Second)
		if !ok {
			return
		}
		v, err := a.RequestVerification(r.Context(), req.Verifier, req.VerificationType, req.Subject, d)
		respond(w, http.StatusCreated, "", v, err, "")
	})
	mux.HandleFunc("GET /admin/provecontrol/requests", listing("requests", a.Requests))
	mux.HandleFunc("GET /admin/provecontrol/received", listing("challenges", a.ReceivedChallenges))
	mux.HandleFunc("GET /admin/provecontrol/received/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := a.ReceivedChallenge(r.Context(), r.PathValue("id"))
		respond(w, http.StatusOK, "", v, err, "received challenge")
	})
	mux.HandleFunc("POST /admin/provecontrol/received/{id}/prove", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Wait string `json:"wait"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		d, ok := wait(w, req.Wait, 20*time.Second)
		if !ok {
			return
		}
		v, err := a.Prove(r.Context(), r.PathValue("id"), d)
		respond(w, http.StatusOK, "", v, err, "received challenge")
	})
	mux.HandleFunc("POST /admin/provecontrol/import", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxImportBody))
		if err != nil {
			writeError(w, agent.Errorf(agent.CodeTooLarge, "an imported mail or message is at most %d bytes", maxImportBody))
			return
		}
		if len(body) == 0 {
			writeError(w, agent.Errorf(agent.CodeMsg, "the body must be a mail (.eml) or a packed DIDComm message"))
			return
		}
		v, err := a.ImportChallenge(r.Context(), body)
		respond(w, http.StatusOK, "", v, err, "")
	})
	mux.HandleFunc("POST /admin/provecontrol/fetch", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			URL string `json:"url"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.URL == "" {
			writeError(w, agent.Errorf(agent.CodeMsg, "url (the one-time link) is required"))
			return
		}
		v, err := a.FetchChallenge(r.Context(), req.URL)
		respond(w, http.StatusOK, "", v, err, "")
	})
	mux.HandleFunc("GET /admin/credentials", listing("credentials", a.Credentials))
	mux.HandleFunc("GET /admin/credentials/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := a.Credential(r.Context(), r.PathValue("id"))
		respond(w, http.StatusOK, "", v, err, "credential")
	})
}

// safeFilename keeps the characters of id that are safe in a file name.
func safeFilename(id string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, id)
}
