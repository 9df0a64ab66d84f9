package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/ratelimit"
)

// Public paths of the iden3 verifier. They must be those the protocol
// package builds its URLs with (iden3auth.Service.RequestURI, CallbackURL);
// a daemon test checks it.
const (
	// Iden3RequestPath prefixes the request_uri of a session.
	Iden3RequestPath = "/iden3/requests/"
	// Iden3CallbackPath takes the wallet's answer (?session=<id>).
	Iden3CallbackPath = "/iden3/callback"
)

// Iden3 is the iden3 verifier as the transport serves it: the admin API
// and the public routes wallets use. The daemon implements it over
// protocols/iden3auth. Errors are *agent.Error for the status.
type Iden3 interface {
	// CreateIden3Request makes a verification session.
	CreateIden3Request(ctx context.Context, req Iden3CreateRequest) (Iden3Created, error)
	// Iden3Session describes one.
	Iden3Session(ctx context.Context, id string) (Iden3Session, error)
	// Iden3Sessions lists them, in a state when state is set.
	Iden3Sessions(ctx context.Context, state, after string, limit int) ([]Iden3Session, error)
	// CancelIden3 cancels a pending session.
	CancelIden3(ctx context.Context, id string) (Iden3Session, error)
	// LoadIden3Schema puts a JSON-LD document into the schema cache.
	LoadIden3Schema(ctx context.Context, url string, doc []byte) error

	// Iden3Request returns the request JSON of a pending session (its
	// request_uri).
	Iden3Request(ctx context.Context, id string) ([]byte, error)
	// Iden3RequestQR returns the PNG QR code of the session's deep link.
	Iden3RequestQR(ctx context.Context, id string) ([]byte, error)
	// Iden3Answer verifies the wallet's answer (a JWZ) to a session.
	Iden3Answer(ctx context.Context, id string, token []byte) (Iden3Session, error)
	// Iden3Receive takes an iden3comm message of mediaType that came to
	// the DIDComm endpoint, and dispatches it by its thread.
	Iden3Receive(ctx context.Context, mediaType string, body []byte) (Iden3Session, error)
}

// Iden3CreateRequest is the body of POST /admin/iden3/requests.
type Iden3CreateRequest struct {
	// Reason is shown to the user by the wallet.
	Reason string `json:"reason"`
	// Scope are the proofs asked for: iden3comm
	// {id, circuitId, query, optional?, params?} objects.
	Scope []json.RawMessage `json:"scope"`
	// Message, when set, must come back in the signed response.
	Message string `json:"message,omitempty"`
	// ExpiresIn is the session's lifetime: a Go duration ("15m") or a
	// number of seconds; default iden3.default_expiry.
	ExpiresIn Seconds `json:"expires_in,omitempty"`
	// Chain is the "blockchain:network" whose verifier DID asks; default: the first resolver's.
	Chain string `json:"chain,omitempty"`
}

// Seconds is a duration in JSON: a Go duration string ("15m") or a number
// of seconds (900), kept as the Go duration string.
type Seconds string

// UnmarshalJSON reads a duration string or a whole number of seconds.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil && n != "" {
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || i < 0 {
			return errors.New("expires_in: a number of seconds must be a whole number")
		}
		*s = Seconds(strconv.FormatInt(i, 10) + "s")
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return errors.New("expires_in: a duration such as \"15m\" or a number of seconds")
	}
	*s = Seconds(str)
	return nil
}

// Iden3Created answers POST /admin/iden3/requests.
type Iden3Created struct {
	ID string `json:"id"`
	// RequestURI serves the request to the wallet.
	RequestURI string `json:"request_uri"`
	// DeepLink is iden3comm://?request_uri=<percent-encoded request_uri>.
	DeepLink string `json:"deep_link"`
	// QRPNGURL is a PNG QR code of the deep link.
	QRPNGURL string `json:"qr_png_url"`
	// InlineLink carries the request itself: iden3comm://?i_m=<base64>.
	InlineLink string `json:"inline_link"`
	// Request is the authorization request message.
	Request json.RawMessage `json:"request"`
}

// Iden3Session is a verification session.
type Iden3Session struct {
	ID string `json:"id"`
	// State is pending, verified, failed, cancelled or expired.
	State string `json:"state"`
	// Reason explains a final state other than verified.
	Reason  string    `json:"reason,omitempty"`
	Chain   string    `json:"chain"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Updated time.Time `json:"updated"`
	// Request is the authorization request message.
	Request json.RawMessage `json:"request"`
	// Result is what the accepted response proved.
	Result *Iden3Result `json:"result,omitempty"`
}

// Iden3Result is what a verified response proved.
type Iden3Result struct {
	UserDID  string             `json:"user_did"`
	Verified time.Time          `json:"verified"`
	Scopes   []Iden3ScopeResult `json:"scopes"`
}

// Iden3ScopeResult is one verified credential proof.
type Iden3ScopeResult struct {
	ID        uint32 `json:"id"`
	CircuitID string `json:"circuitId"`
	// ProofKind is sig or mtp, from the verified proof.
	ProofKind              string          `json:"proofKind,omitempty"`
	Issuer                 string          `json:"issuer,omitempty"`
	Timestamp              int64           `json:"timestamp,omitempty"`
	VerifiablePresentation json.RawMessage `json:"vp,omitempty"`
	OperatorOutput         string          `json:"operatorOutput,omitempty"`
	Nullifier              string          `json:"nullifier,omitempty"`
	LinkID                 string          `json:"linkId,omitempty"`
}

// Iden3SchemaLoad is the body of POST /admin/iden3/schemas.
type Iden3SchemaLoad struct {
	// URL is the schema's URL, as requests' query.context name it.
	URL string `json:"url"`
	// Document is the JSON-LD document.
	Document json.RawMessage `json:"document"`
}

// Iden3Answered is the callback's answer to the wallet.
type Iden3Answered struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// Body limits of the iden3 routes.
const (
	maxIden3Token  = 1 << 20
	maxIden3Schema = 4 << 20
)

// NewIden3API returns the iden3 verifier's admin API and public routes.
// answers, when not nil, limits the answers each client IP may post to the
// callback (each costs a proof verification): over it, 429 with
// Retry-After.
func NewIden3API(svc Iden3, answers *ratelimit.Limiter) Feature {
	return &iden3API{svc: svc, answers: answers}
}

type iden3API struct {
	svc     Iden3
	answers *ratelimit.Limiter
}

// Routes implements Feature.
func (a *iden3API) Routes(r *Routes) {
	const p = "/admin/iden3"
	r.Admin("POST "+p+"/requests", Op{Summary: "Create an iden3 authorization request (verification session)",
		Request: Iden3CreateRequest{}, Response: Iden3Created{}, Status: http.StatusCreated}, a.create)
	r.Admin("GET "+p+"/requests", Op{Summary: "List the verification sessions",
		Response: Page[Iden3Session]{Key: "requests"},
		Query:    append([]Param{{Name: "state", Description: "pending, verified, failed, cancelled or expired"}}, pageQuery...)}, a.list)
	r.Admin("GET "+p+"/requests/{id}", Op{Summary: "Describe a verification session and its result", Response: Iden3Session{}}, a.get)
	r.Admin("DELETE "+p+"/requests/{id}", Op{Summary: "Cancel a pending verification session", Response: Iden3Session{}}, a.cancel)
	r.Admin("POST "+p+"/schemas", Op{Summary: "Put a JSON-LD schema into the verifier's schema cache", Request: Iden3SchemaLoad{}}, a.loadSchema)

	r.Public("GET "+Iden3RequestPath+"{id}", "iden3-request", a.request)
	r.Public("GET "+Iden3RequestPath+"{id}/qr.png", "iden3-request-qr", a.qr)
	r.Public("POST "+Iden3CallbackPath, "iden3-callback", a.callback)
	for _, mt := range Iden3MediaTypes {
		r.EndpointMediaType(mt, a.receive)
	}
}

// Iden3MediaTypes are the iden3comm envelopes the DIDComm endpoint hands
// to the iden3 verifier (Iden3.Iden3Receive).
var Iden3MediaTypes = []string{
	"application/iden3-zkp-json",
	"application/iden3comm-plain-json",
	"application/iden3comm-signed-json",
	"application/iden3comm-encrypted-json",
}

// receive answers an iden3comm message posted to the DIDComm endpoint: 200
// with the session's state once verified and recorded, an error otherwise.
func (a *iden3API) receive(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := readToken(w, r)
	if err != nil {
		fail(w, r, err)
		return
	}
	sess, err := a.svc.Iden3Receive(r.Context(), mt, body)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Iden3Answered{ID: sess.ID, State: sess.State})
}

func (a *iden3API) create(w http.ResponseWriter, r *http.Request) {
	var req Iden3CreateRequest
	if !readJSON(w, r, &req) {
		return
	}
	if len(req.Scope) == 0 {
		fail(w, r, errRequired("scope is required: a list of {id, circuitId, query} proof requests"))
		return
	}
	v, err := a.svc.CreateIden3Request(r.Context(), req)
	respond(w, r, http.StatusCreated, v, err)
}

func (a *iden3API) list(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	list(w, r, "requests", func(s Iden3Session) string { return s.ID },
		func(ctx context.Context, after string, limit int) ([]Iden3Session, error) {
			return a.svc.Iden3Sessions(ctx, state, after, limit)
		})
}

func (a *iden3API) get(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.Iden3Session(r.Context(), r.PathValue("id"))
	respond(w, r, http.StatusOK, v, notFound(err, "session"))
}

func (a *iden3API) cancel(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.CancelIden3(r.Context(), r.PathValue("id"))
	respond(w, r, http.StatusOK, v, notFound(err, "session"))
}

func (a *iden3API) loadSchema(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxIden3Schema+4096))
	if err != nil {
		fail(w, r, agent.Errorf(agent.CodeTooLarge, "a schema is at most %d bytes", maxIden3Schema))
		return
	}
	var req Iden3SchemaLoad
	if err := json.Unmarshal(body, &req); err != nil {
		fail(w, r, agent.Errorf(agent.CodeMsg, "request body is not valid JSON: %s", err))
		return
	}
	if req.URL == "" || len(req.Document) == 0 {
		fail(w, r, errRequired("url and document are required"))
		return
	}
	respondEmpty(w, r, a.svc.LoadIden3Schema(r.Context(), req.URL, req.Document))
}

// request serves a session's request_uri: the request JSON the wallet
// fetches.
func (a *iden3API) request(w http.ResponseWriter, r *http.Request) {
	b, err := a.svc.Iden3Request(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, notFound(err, "session"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

func (a *iden3API) qr(w http.ResponseWriter, r *http.Request) {
	png, err := a.svc.Iden3RequestQR(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, notFound(err, "session"))
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(png)))
	w.WriteHeader(http.StatusOK)
	w.Write(png)
}

// callback takes the wallet's answer: the JWZ as the raw body, whatever
// its content type (Privado ID wallets send text/plain).
func (a *iden3API) callback(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("session")
	if id == "" {
		fail(w, r, errRequired("the session query parameter is required (the request's callbackUrl has it)"))
		return
	}
	if a.answers != nil {
		if ok, wait := a.answers.Allow(clientIP(r)); !ok {
			e := agent.Errorf(agent.CodeRateLimited, "too many answers from this address; try again later")
			e.RetryAfter = wait
			fail(w, r, e)
			return
		}
	}
	body, err := readToken(w, r)
	if err != nil {
		fail(w, r, err)
		return
	}
	s, err := a.svc.Iden3Answer(r.Context(), id, body)
	respond(w, r, http.StatusOK, Iden3Answered{ID: s.ID, State: s.State}, notFound(err, "session"))
}

// readToken reads a JWZ body of at most maxIden3Token bytes.
func readToken(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxIden3Token))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, agent.Errorf(agent.CodeTooLarge, "the token exceeds the limit of %d bytes", maxIden3Token)
		}
		return nil, agent.Wrap(agent.CodeXfer, err, "could not read the request body")
	}
	return body, nil
}
