package http

import (
	"context"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

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

// ChallengeEndpoints serves the public Prove Control routes. The daemon
// implements it over the protocol; the transport knows nothing of the
// protocol beyond these calls.
type ChallengeEndpoints interface {
	// FetchLink returns the packed challenge behind a one-time link token,
	// once; otherwise an *agent.Error with agent.CodeNotFound (no such
	// link: 404) or agent.CodeGone (used or expired: 410).
	FetchLink(ctx context.Context, token string) (payload []byte, mediaType string, err error)
	// ReceiveChallenge takes a packed verificationchallenge POSTed to the
	// well-known path. An error is an *agent.Error for the status.
	ReceiveChallenge(ctx context.Context, raw []byte) error
}

// maxChallengeBody bounds a challenge POSTed to the well-known path.
const maxChallengeBody = 64 << 10

// NewChallengeLinks returns the public Prove Control routes over svc: the
// one-time links (GET /c/{token}) and the IP well-known path.
func NewChallengeLinks(svc ChallengeEndpoints) Feature { return &challengeLinks{svc: svc} }

type challengeLinks struct{ svc ChallengeEndpoints }

// Routes implements Feature.
func (c *challengeLinks) Routes(r *Routes) {
	r.Public("GET "+ChallengeLinkPath+"{token}", "challenge-link", c.fetchLink)
	r.Public("POST "+ChallengeWellKnownPath, "challenge-wellknown", c.receive)
}

func (c *challengeLinks) fetchLink(w http.ResponseWriter, r *http.Request) {
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
	payload, mt, err := c.svc.FetchLink(r.Context(), r.PathValue("token"))
	if err != nil {
		fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", mt)
	w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
	w.WriteHeader(http.StatusOK)
	w.Write(payload)
}

func (c *challengeLinks) receive(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != agent.MediaTypeEncrypted {
		fail(w, r, agent.Errorf(agent.CodeMediaType, "content type must be %s", agent.MediaTypeEncrypted))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxChallengeBody))
	if err != nil {
		fail(w, r, agent.Errorf(agent.CodeTooLarge, "a challenge is at most %d bytes", maxChallengeBody))
		return
	}
	respondStatus(w, r, http.StatusAccepted, c.svc.ReceiveChallenge(r.Context(), body))
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
