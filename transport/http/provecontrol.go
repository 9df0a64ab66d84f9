package http

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
)

// ProveControlAdmin is the Prove Control part of the admin API, for both
// roles. The daemon implements it over the protocol. Unknown ids are errors
// wrapping agent.ErrNotFound (or with agent.CodeNotFound).
type ProveControlAdmin interface {
	// StartChallenge challenges a user DID (verifier role, no request).
	StartChallenge(ctx context.Context, user, verificationType, subject string) (Challenge, error)
	// Challenges lists the verifier's challenges, in a state when state is set.
	Challenges(ctx context.Context, state, after string, limit int) ([]Challenge, error)
	// Challenge describes one of the verifier's challenges.
	Challenge(ctx context.Context, id string) (Challenge, error)
	// Verifications lists the verifier's confirmed verifications.
	Verifications(ctx context.Context, after string, limit int) ([]Verification, error)
	// Letters lists the Address letter queue (unsent only when unsent).
	Letters(ctx context.Context, unsent bool, after string, limit int) ([]Letter, error)
	// LetterPDF returns a letter's PDF.
	LetterPDF(ctx context.Context, id string) ([]byte, error)
	// MarkLetterSent records that a letter was mailed.
	MarkLetterSent(ctx context.Context, id string) (Letter, error)

	// RequestVerification asks a verifier DID for a challenge (user role)
	// and waits up to wait for an answer over DIDComm.
	RequestVerification(ctx context.Context, verifier, verificationType, subject string, wait time.Duration) (RequestOutcome, error)
	// Requests lists the requests sent.
	Requests(ctx context.Context, after string, limit int) ([]VerificationRequest, error)
	// ReceivedChallenges lists the challenges received.
	ReceivedChallenges(ctx context.Context, after string, limit int) ([]ReceivedChallenge, error)
	// ReceivedChallenge describes one (with the TXT record of a Domain challenge).
	ReceivedChallenge(ctx context.Context, id string) (ReceivedChallenge, error)
	// Prove sends the prove for a received challenge and waits up to wait.
	Prove(ctx context.Context, id string, wait time.Duration) (ProveOutcome, error)
	// ImportChallenge takes a challenge as a mail (.eml) or a packed message.
	ImportChallenge(ctx context.Context, raw []byte) ([]ReceivedChallenge, error)
	// FetchChallenge fetches a challenge from a one-time link URL.
	FetchChallenge(ctx context.Context, url string) (ReceivedChallenge, error)
	// Credentials lists the credentials the agent holds.
	Credentials(ctx context.Context, after string, limit int) ([]Credential, error)
	// Credential returns one held credential.
	Credential(ctx context.Context, id string) (Credential, error)
}

// Challenge is the verifier's view of a challenge it issued (no secret, no
// proof).
type Challenge struct {
	ID                string    `json:"id"`
	Verifier          string    `json:"verifier"`
	User              string    `json:"user"`
	VerificationType  string    `json:"verification_type"`
	Subject           string    `json:"subject"`
	RequestID         string    `json:"request_id,omitempty"`
	State             string    `json:"state"`
	Channel           string    `json:"channel"`
	Created           time.Time `json:"created"`
	Expires           time.Time `json:"expires"`
	Updated           time.Time `json:"updated"`
	Attempts          int       `json:"attempts"`
	AttemptsRemaining int       `json:"attempts_remaining"`
	Reason            string    `json:"reason,omitempty"`
	CredentialID      string    `json:"credential_id,omitempty"`
}

// Verification is a confirmed verification, kept by the verifier.
type Verification struct {
	ID               string    `json:"id"`
	ChallengeID      string    `json:"challenge_id"`
	Verifier         string    `json:"verifier"`
	User             string    `json:"user"`
	VerificationType string    `json:"verification_type"`
	Subject          string    `json:"subject"`
	Confirmed        time.Time `json:"confirmed"`
	Expires          time.Time `json:"expires"`
	// Credential is the issued VC as a JWT.
	Credential string `json:"credential"`
}

// Letter is a letter of the Address verification queue (its PDF is
// summarised by its size).
type Letter struct {
	ID             string    `json:"id"`
	User           string    `json:"user"`
	Address        string    `json:"address"`
	Created        time.Time `json:"created"`
	Expires        time.Time `json:"expires"`
	Sent           time.Time `json:"sent,omitzero"`
	Bytes          int       `json:"bytes"`
	ChallengeState string    `json:"challenge_state"`
}

// VerificationRequest is a requestverification the user sent.
type VerificationRequest struct {
	ID               string    `json:"id"`
	Verifier         string    `json:"verifier"`
	User             string    `json:"user"`
	VerificationType string    `json:"verification_type"`
	Subject          string    `json:"subject"`
	Sent             time.Time `json:"sent"`
	ChallengeID      string    `json:"challenge_id,omitempty"`
	Problem          string    `json:"problem,omitempty"`
	ProblemComment   string    `json:"problem_comment,omitempty"`
}

// ReceivedChallenge is the user's view of a challenge it received.
type ReceivedChallenge struct {
	ID               string    `json:"id"`
	Verifier         string    `json:"verifier"`
	User             string    `json:"user"`
	VerificationType string    `json:"verification_type"`
	Subject          string    `json:"subject"`
	RequestID        string    `json:"request_id,omitempty"`
	Requested        bool      `json:"requested"`
	State            string    `json:"state"`
	Received         time.Time `json:"received"`
	Expires          time.Time `json:"expires,omitzero"`
	Transport        string    `json:"transport"`
	Proves           int       `json:"proves"`
	Problem          string    `json:"problem,omitempty"`
	ProblemComment   string    `json:"problem_comment,omitempty"`
	CredentialID     string    `json:"credential_id,omitempty"`
	// DNSRecord is the TXT record to publish before proving a Domain challenge.
	DNSRecord *TXTRecord `json:"dns_record,omitempty"`
}

// TXTRecord is a DNS record to publish.
type TXTRecord struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Problem is a problem report of the verifier.
type Problem struct {
	Code    string `json:"code"`
	Comment string `json:"comment,omitempty"`
}

// RequestOutcome answers POST /admin/provecontrol/requests: the request,
// and the challenge or the verifier's problem if one came within the wait.
type RequestOutcome struct {
	Request   VerificationRequest `json:"request"`
	Challenge *ReceivedChallenge  `json:"challenge,omitempty"`
	Problem   *Problem            `json:"problem,omitempty"`
}

// ProveOutcome answers POST /admin/provecontrol/received/{id}/prove.
type ProveOutcome struct {
	Challenge  ReceivedChallenge `json:"challenge"`
	Answered   bool              `json:"answered"`
	Credential *Credential       `json:"credential,omitempty"`
	Problem    *Problem          `json:"problem,omitempty"`
}

// Credential is a credential the agent holds.
type Credential struct {
	ID               string    `json:"id"`
	Issuer           string    `json:"issuer"`
	Holder           string    `json:"holder"`
	VerificationType string    `json:"verification_type"`
	Subject          string    `json:"subject"`
	Types            []string  `json:"types"`
	Format           string    `json:"format"`
	IssuedAt         time.Time `json:"issued"`
	Expires          time.Time `json:"expires"`
	ChallengeID      string    `json:"challenge_id"`
	Received         time.Time `json:"received"`
	JWT              string    `json:"jwt"`
	// Confirmation is the signed confirmverification message (a JWS).
	Confirmation json.RawMessage `json:"confirmation,omitempty"`
}

// StartChallengeRequest is the body of POST /admin/provecontrol/challenges.
type StartChallengeRequest struct {
	User             string `json:"user"`
	VerificationType string `json:"verification_type"`
	Subject          string `json:"subject"`
}

// RequestVerificationRequest is the body of POST /admin/provecontrol/requests.
type RequestVerificationRequest struct {
	Verifier         string `json:"verifier"`
	VerificationType string `json:"verification_type"`
	Subject          string `json:"subject"`
	// Wait is how long to wait for the answer (Go duration, at most 2m; default 10s).
	Wait string `json:"wait,omitempty"`
}

// ProveRequest is the body of POST /admin/provecontrol/received/{id}/prove.
type ProveRequest struct {
	// Wait is how long to wait for the confirmation (Go duration, at most 2m; default 20s).
	Wait string `json:"wait,omitempty"`
}

// FetchRequest is the body of POST /admin/provecontrol/fetch.
type FetchRequest struct {
	// URL is the one-time link.
	URL string `json:"url"`
}

// ImportResponse answers POST /admin/provecontrol/import.
type ImportResponse struct {
	Challenges []ReceivedChallenge `json:"challenges"`
}

// maxImportBody bounds an imported mail or message.
const maxImportBody = 4 << 20

// NewProveControlAPI returns the Prove Control admin API over svc.
func NewProveControlAPI(svc ProveControlAdmin) Feature { return &proveControlAPI{svc: svc} }

type proveControlAPI struct{ svc ProveControlAdmin }

// Routes implements Feature.
func (p *proveControlAPI) Routes(r *Routes) {
	const pc = "/admin/provecontrol"
	// Verifier role.
	r.Admin("POST "+pc+"/challenges", Op{Summary: "Challenge a user DID without a request (verifier role)",
		Request: StartChallengeRequest{}, Response: Challenge{}, Status: http.StatusCreated}, p.startChallenge)
	r.Admin("GET "+pc+"/challenges", Op{Summary: "List the challenges issued",
		Response: Page[Challenge]{Key: "challenges"},
		Query:    append([]Param{{Name: "state", Description: "pending, confirmed, expired, failed or undelivered"}}, pageQuery...)}, p.listChallenges)
	r.Admin("GET "+pc+"/challenges/{id}", Op{Summary: "Describe an issued challenge", Response: Challenge{}}, p.getChallenge)
	r.Admin("GET "+pc+"/verifications", Op{Summary: "List the confirmed verifications",
		Response: Page[Verification]{Key: "verifications"}, Query: pageQuery}, p.listVerifications)
	r.Admin("GET "+pc+"/letters", Op{Summary: "List the Address letter queue",
		Response: Page[Letter]{Key: "letters"},
		Query:    append([]Param{{Name: "unsent", Type: "boolean", Description: "only the letters not marked as sent"}}, pageQuery...)}, p.listLetters)
	r.Admin("GET "+pc+"/letters/{id}/pdf", Op{Summary: "A letter's PDF", ResponseType: "application/pdf"}, p.letterPDF)
	r.Admin("POST "+pc+"/letters/{id}/sent", Op{Summary: "Mark a letter as mailed", Response: Letter{}}, p.markSent)

	// User role.
	r.Admin("POST "+pc+"/requests", Op{Summary: "Ask a verifier DID for a challenge and wait for the answer (user role)",
		Request: RequestVerificationRequest{}, Response: RequestOutcome{}, Status: http.StatusCreated}, p.request)
	r.Admin("GET "+pc+"/requests", Op{Summary: "List the verification requests sent",
		Response: Page[VerificationRequest]{Key: "requests"}, Query: pageQuery}, p.listRequests)
	r.Admin("GET "+pc+"/received", Op{Summary: "List the challenges received",
		Response: Page[ReceivedChallenge]{Key: "challenges"}, Query: pageQuery}, p.listReceived)
	r.Admin("GET "+pc+"/received/{id}", Op{Summary: "Describe a received challenge (Domain: with its TXT record)",
		Response: ReceivedChallenge{}}, p.getReceived)
	r.Admin("POST "+pc+"/received/{id}/prove", Op{Summary: "Send the proof and wait for the confirmation",
		Request: ProveRequest{}, Response: ProveOutcome{}}, p.prove)
	r.Admin("POST "+pc+"/import", Op{Summary: "Take a challenge from a mail (.eml) or a packed message",
		RequestType: "application/octet-stream", Response: ImportResponse{}}, p.importChallenge)
	r.Admin("POST "+pc+"/fetch", Op{Summary: "Take a challenge from a one-time link",
		Request: FetchRequest{}, Response: ReceivedChallenge{}}, p.fetch)
	r.Admin("GET /admin/credentials", Op{Summary: "List the credentials the agent holds",
		Response: Page[Credential]{Key: "credentials"}, Query: pageQuery}, p.listCredentials)
	r.Admin("GET /admin/credentials/{id}", Op{Summary: "A credential the agent holds", Response: Credential{}}, p.getCredential)
}

// parseWait reads a wait duration: def when empty, at most 2 minutes.
func parseWait(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > 2*time.Minute {
		return 0, agent.Errorf(agent.CodeMsg, "wait must be a duration between 0s and 2m")
	}
	return d, nil
}

// list answers a paged list route: fetch gets the items of the page.
func list[T any](w http.ResponseWriter, r *http.Request, key string, id func(T) string,
	fetch func(ctx context.Context, after string, limit int) ([]T, error)) {
	page, err := parsePage(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	items, err := fetch(r.Context(), page.After, page.Limit)
	respond(w, r, http.StatusOK, newPage(key, items, page, id), err)
}

func (p *proveControlAPI) startChallenge(w http.ResponseWriter, r *http.Request) {
	var req StartChallengeRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.User == "" || req.VerificationType == "" || req.Subject == "" {
		fail(w, r, errRequired("user, verification_type and subject are required"))
		return
	}
	v, err := p.svc.StartChallenge(r.Context(), req.User, req.VerificationType, req.Subject)
	respond(w, r, http.StatusCreated, v, err)
}

func (p *proveControlAPI) listChallenges(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	list(w, r, "challenges", func(c Challenge) string { return c.ID },
		func(ctx context.Context, after string, limit int) ([]Challenge, error) {
			return p.svc.Challenges(ctx, state, after, limit)
		})
}

func (p *proveControlAPI) getChallenge(w http.ResponseWriter, r *http.Request) {
	v, err := p.svc.Challenge(r.Context(), r.PathValue("id"))
	respond(w, r, http.StatusOK, v, notFound(err, "challenge"))
}

func (p *proveControlAPI) listVerifications(w http.ResponseWriter, r *http.Request) {
	list(w, r, "verifications", func(v Verification) string { return v.ID }, p.svc.Verifications)
}

func (p *proveControlAPI) listLetters(w http.ResponseWriter, r *http.Request) {
	unsent := r.URL.Query().Get("unsent") == "true"
	list(w, r, "letters", func(l Letter) string { return l.ID },
		func(ctx context.Context, after string, limit int) ([]Letter, error) {
			return p.svc.Letters(ctx, unsent, after, limit)
		})
}

func (p *proveControlAPI) letterPDF(w http.ResponseWriter, r *http.Request) {
	pdf, err := p.svc.LetterPDF(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, notFound(err, "letter"))
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", `attachment; filename="letter-`+safeFilename(r.PathValue("id"))+`.pdf"`)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(pdf)
}

func (p *proveControlAPI) markSent(w http.ResponseWriter, r *http.Request) {
	v, err := p.svc.MarkLetterSent(r.Context(), r.PathValue("id"))
	respond(w, r, http.StatusOK, v, notFound(err, "letter"))
}

func (p *proveControlAPI) request(w http.ResponseWriter, r *http.Request) {
	var req RequestVerificationRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Verifier == "" || req.VerificationType == "" || req.Subject == "" {
		fail(w, r, errRequired("verifier, verification_type and subject are required"))
		return
	}
	d, err := parseWait(req.Wait, 10*time.Second)
	if err != nil {
		fail(w, r, err)
		return
	}
	v, err := p.svc.RequestVerification(r.Context(), req.Verifier, req.VerificationType, req.Subject, d)
	respond(w, r, http.StatusCreated, v, err)
}

func (p *proveControlAPI) listRequests(w http.ResponseWriter, r *http.Request) {
	list(w, r, "requests", func(v VerificationRequest) string { return v.ID }, p.svc.Requests)
}

func (p *proveControlAPI) listReceived(w http.ResponseWriter, r *http.Request) {
	list(w, r, "challenges", func(v ReceivedChallenge) string { return v.ID }, p.svc.ReceivedChallenges)
}

func (p *proveControlAPI) getReceived(w http.ResponseWriter, r *http.Request) {
	v, err := p.svc.ReceivedChallenge(r.Context(), r.PathValue("id"))
	respond(w, r, http.StatusOK, v, notFound(err, "received challenge"))
}

func (p *proveControlAPI) prove(w http.ResponseWriter, r *http.Request) {
	var req ProveRequest
	if !readJSON(w, r, &req) {
		return
	}
	d, err := parseWait(req.Wait, 20*time.Second)
	if err != nil {
		fail(w, r, err)
		return
	}
	v, err := p.svc.Prove(r.Context(), r.PathValue("id"), d)
	respond(w, r, http.StatusOK, v, notFound(err, "received challenge"))
}

func (p *proveControlAPI) importChallenge(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxImportBody))
	if err != nil {
		fail(w, r, agent.Errorf(agent.CodeTooLarge, "an imported mail or message is at most %d bytes", maxImportBody))
		return
	}
	if len(body) == 0 {
		fail(w, r, errRequired("the body must be a mail (.eml) or a packed DIDComm message"))
		return
	}
	v, err := p.svc.ImportChallenge(r.Context(), body)
	respond(w, r, http.StatusOK, ImportResponse{Challenges: v}, err)
}

func (p *proveControlAPI) fetch(w http.ResponseWriter, r *http.Request) {
	var req FetchRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.URL == "" {
		fail(w, r, errRequired("url (the one-time link) is required"))
		return
	}
	v, err := p.svc.FetchChallenge(r.Context(), req.URL)
	respond(w, r, http.StatusOK, v, err)
}

func (p *proveControlAPI) listCredentials(w http.ResponseWriter, r *http.Request) {
	list(w, r, "credentials", func(c Credential) string { return c.ID }, p.svc.Credentials)
}

func (p *proveControlAPI) getCredential(w http.ResponseWriter, r *http.Request) {
	v, err := p.svc.Credential(r.Context(), r.PathValue("id"))
	respond(w, r, http.StatusOK, v, notFound(err, "credential"))
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
