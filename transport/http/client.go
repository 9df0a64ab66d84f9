package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client is a typed client of a daemon's public and admin HTTP API, with
// the request and response types the server uses (agentctl is built on
// it). Its zero value is not usable: set BaseURL and, for /admin/, Token.
type Client struct {
	// BaseURL is the daemon's base URL, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Token is the admin bearer token.
	Token string
	// HTTP is the client to use; http.DefaultClient when nil.
	HTTP *http.Client
}

// ErrNoToken is returned for an admin call when the Client has no token.
var ErrNoToken = errors.New("no admin token: set AGENTD_ADMIN_TOKEN or --token-file (the daemon writes DATA_DIR/admin.token on first start)")

// rawBody is a request body sent as it is (not as JSON).
type rawBody []byte

// Do sends a request and decodes the JSON answer into out (nil: ignored).
// body is encoded as JSON; a non-2xx answer is an error quoting the
// server's reason and code.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	data, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

func (c *Client) send(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case rawBody:
		rd, ct = bytes.NewReader(b), "application/octet-stream"
	default:
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd, ct = bytes.NewReader(raw), "application/json"
	}
	base := strings.TrimRight(c.BaseURL, "/")
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if strings.HasPrefix(path, "/admin/") {
		if c.Token == "" {
			return nil, ErrNoToken
		}
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach agentd at %s: %w", base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e ErrorBody
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, &APIError{Status: resp.StatusCode, Code: e.Error, Reason: e.Reason, Method: method, Path: path}
		}
		return nil, &APIError{Status: resp.StatusCode, Method: method, Path: path}
	}
	return data, nil
}

// APIError is a non-2xx answer.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Code and Reason are the error body's error and reason, if it had one.
	Code, Reason string
	// Method and Path are those of the request.
	Method, Path string
}

// Error quotes the method, path, reason and code of the answer.
func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%s %s: %s (%s)", e.Method, e.Path, e.Reason, e.Code)
}

func get[T any](ctx context.Context, c *Client, path string) (T, error) {
	var v T
	err := c.Do(ctx, "GET", path, nil, &v)
	return v, err
}

func post[T any](ctx context.Context, c *Client, path string, body any) (T, error) {
	var v T
	err := c.Do(ctx, "POST", path, body, &v)
	return v, err
}

// query renders p (and extra parameters) as a query string.
func (p PageRequest) query(extra url.Values) string {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	if p.After != "" {
		q.Set("after", p.After)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

func esc(s string) string { return url.PathEscape(s) }

// DID returns the agent's DID and DID document (GET /did).
func (c *Client) DID(ctx context.Context) (DIDResponse, error) {
	return get[DIDResponse](ctx, c, "/did")
}

// Invitation returns the standing invitation (GET /invitation).
func (c *Client) Invitation(ctx context.Context) (InvitationResponse, error) {
	return get[InvitationResponse](ctx, c, "/invitation")
}

// Health checks the daemon's health (GET /healthz); unhealthy is an error.
func (c *Client) Health(ctx context.Context) (HealthResponse, error) {
	return get[HealthResponse](ctx, c, "/healthz")
}

// CreateInvitation makes an invitation (POST /admin/invitations).
func (c *Client) CreateInvitation(ctx context.Context, req InvitationRequest) (InvitationResponse, error) {
	return post[InvitationResponse](ctx, c, "/admin/invitations", req)
}

// AcceptInvitation accepts an invitation URL or JSON.
func (c *Client) AcceptInvitation(ctx context.Context, invitation string) (Connection, error) {
	return post[Connection](ctx, c, "/admin/invitations/accept", AcceptRequest{Invitation: invitation})
}

// Ping sends a Trust Ping.
func (c *Client) Ping(ctx context.Context, to string) (PingResponse, error) {
	return post[PingResponse](ctx, c, "/admin/ping", PingRequest{To: to})
}

// Discover asks a DID for its protocols.
func (c *Client) Discover(ctx context.Context, to, match string) (DiscoverResponse, error) {
	return post[DiscoverResponse](ctx, c, "/admin/discover", DiscoverRequest{To: to, Match: match})
}

// Outbox counts pending and dead messages.
func (c *Client) Outbox(ctx context.Context) (OutboxResponse, error) {
	return get[OutboxResponse](ctx, c, "/admin/outbox")
}

// DeadLetters lists a page of dead letters.
func (c *Client) DeadLetters(ctx context.Context, p PageRequest) (Page[DeadLetter], error) {
	return get[Page[DeadLetter]](ctx, c, "/admin/deadletters"+p.query(nil))
}

// RetryDeadLetter moves a dead letter back into the outbox.
func (c *Client) RetryDeadLetter(ctx context.Context, id string) error {
	return c.Do(ctx, "POST", "/admin/deadletters/"+esc(id)+"/retry", nil, nil)
}

// DeleteDeadLetter deletes a dead letter.
func (c *Client) DeleteDeadLetter(ctx context.Context, id string) error {
	return c.Do(ctx, "DELETE", "/admin/deadletters/"+esc(id), nil, nil)
}

// MediationGrants lists a page of mediation grants.
func (c *Client) MediationGrants(ctx context.Context, p PageRequest) (Page[MediationGrant], error) {
	return get[Page[MediationGrant]](ctx, c, "/admin/mediation/grants"+p.query(nil))
}

// MediationGrant describes one client's grant.
func (c *Client) MediationGrant(ctx context.Context, did string) (MediationGrant, error) {
	return get[MediationGrant](ctx, c, "/admin/mediation/grants/"+esc(did))
}

// GrantMediation grants mediation to a DID.
func (c *Client) GrantMediation(ctx context.Context, did string) (MediationGrant, error) {
	return post[MediationGrant](ctx, c, "/admin/mediation/grants", GrantRequest{DID: did})
}

// RevokeMediation revokes a DID's mediation.
func (c *Client) RevokeMediation(ctx context.Context, did string) error {
	return c.Do(ctx, "DELETE", "/admin/mediation/grants/"+esc(did), nil, nil)
}

// MediationQueue describes the mediator's queue.
func (c *Client) MediationQueue(ctx context.Context) (MediationQueue, error) {
	return get[MediationQueue](ctx, c, "/admin/mediation/queue")
}

// CreateMediationInvitation makes a mediation invitation.
func (c *Client) CreateMediationInvitation(ctx context.Context) (InvitationResponse, error) {
	return post[InvitationResponse](ctx, c, "/admin/mediation/invitations", nil)
}

const pcPath = "/admin/provecontrol"

// StartChallenge challenges a user DID (verifier role).
func (c *Client) StartChallenge(ctx context.Context, req StartChallengeRequest) (Challenge, error) {
	return post[Challenge](ctx, c, pcPath+"/challenges", req)
}

// Challenges lists a page of issued challenges, in state when it is set.
func (c *Client) Challenges(ctx context.Context, state string, p PageRequest) (Page[Challenge], error) {
	var q url.Values
	if state != "" {
		q = url.Values{"state": {state}}
	}
	return get[Page[Challenge]](ctx, c, pcPath+"/challenges"+p.query(q))
}

// Challenge describes an issued challenge.
func (c *Client) Challenge(ctx context.Context, id string) (Challenge, error) {
	return get[Challenge](ctx, c, pcPath+"/challenges/"+esc(id))
}

// Verifications lists a page of confirmed verifications.
func (c *Client) Verifications(ctx context.Context, p PageRequest) (Page[Verification], error) {
	return get[Page[Verification]](ctx, c, pcPath+"/verifications"+p.query(nil))
}

// Letters lists a page of the letter queue (only unsent letters when unsent).
func (c *Client) Letters(ctx context.Context, unsent bool, p PageRequest) (Page[Letter], error) {
	var q url.Values
	if unsent {
		q = url.Values{"unsent": {"true"}}
	}
	return get[Page[Letter]](ctx, c, pcPath+"/letters"+p.query(q))
}

// LetterPDF returns a letter's PDF.
func (c *Client) LetterPDF(ctx context.Context, id string) ([]byte, error) {
	return c.send(ctx, "GET", pcPath+"/letters/"+esc(id)+"/pdf", nil)
}

// MarkLetterSent records that a letter was mailed.
func (c *Client) MarkLetterSent(ctx context.Context, id string) (Letter, error) {
	return post[Letter](ctx, c, pcPath+"/letters/"+esc(id)+"/sent", nil)
}

// RequestVerification asks a verifier for a challenge (user role).
func (c *Client) RequestVerification(ctx context.Context, req RequestVerificationRequest) (RequestOutcome, error) {
	return post[RequestOutcome](ctx, c, pcPath+"/requests", req)
}

// Requests lists a page of the requests sent.
func (c *Client) Requests(ctx context.Context, p PageRequest) (Page[VerificationRequest], error) {
	return get[Page[VerificationRequest]](ctx, c, pcPath+"/requests"+p.query(nil))
}

// ReceivedChallenges lists a page of the challenges received.
func (c *Client) ReceivedChallenges(ctx context.Context, p PageRequest) (Page[ReceivedChallenge], error) {
	return get[Page[ReceivedChallenge]](ctx, c, pcPath+"/received"+p.query(nil))
}

// ReceivedChallenge describes a received challenge.
func (c *Client) ReceivedChallenge(ctx context.Context, id string) (ReceivedChallenge, error) {
	return get[ReceivedChallenge](ctx, c, pcPath+"/received/"+esc(id))
}

// Prove sends the proof of a received challenge and waits for the answer.
func (c *Client) Prove(ctx context.Context, id string, req ProveRequest) (ProveOutcome, error) {
	return post[ProveOutcome](ctx, c, pcPath+"/received/"+esc(id)+"/prove", req)
}

// ImportChallenge takes a challenge from a mail (.eml) or a packed message.
func (c *Client) ImportChallenge(ctx context.Context, raw []byte) (ImportResponse, error) {
	return post[ImportResponse](ctx, c, pcPath+"/import", rawBody(raw))
}

// FetchChallenge takes a challenge from a one-time link.
func (c *Client) FetchChallenge(ctx context.Context, link string) (ReceivedChallenge, error) {
	return post[ReceivedChallenge](ctx, c, pcPath+"/fetch", FetchRequest{URL: link})
}

// Credentials lists a page of the credentials held.
func (c *Client) Credentials(ctx context.Context, p PageRequest) (Page[Credential], error) {
	return get[Page[Credential]](ctx, c, "/admin/credentials"+p.query(nil))
}

// Credential returns a credential held.
func (c *Client) Credential(ctx context.Context, id string) (Credential, error) {
	return get[Credential](ctx, c, "/admin/credentials/"+esc(id))
}

const iden3Path = "/admin/iden3"

// CreateIden3Request creates an iden3 authorization request (a verification session).
func (c *Client) CreateIden3Request(ctx context.Context, req Iden3CreateRequest) (Iden3Created, error) {
	return post[Iden3Created](ctx, c, iden3Path+"/requests", req)
}

// Iden3Session describes a verification session and its result.
func (c *Client) Iden3Session(ctx context.Context, id string) (Iden3Session, error) {
	return get[Iden3Session](ctx, c, iden3Path+"/requests/"+esc(id))
}

// Iden3Sessions lists a page of verification sessions, in state when it is set.
func (c *Client) Iden3Sessions(ctx context.Context, state string, p PageRequest) (Page[Iden3Session], error) {
	var q url.Values
	if state != "" {
		q = url.Values{"state": {state}}
	}
	return get[Page[Iden3Session]](ctx, c, iden3Path+"/requests"+p.query(q))
}

// CancelIden3 cancels a pending verification session.
func (c *Client) CancelIden3(ctx context.Context, id string) (Iden3Session, error) {
	var v Iden3Session
	err := c.Do(ctx, "DELETE", iden3Path+"/requests/"+esc(id), nil, &v)
	return v, err
}

// LoadIden3Schema puts a JSON-LD document into the verifier's schema cache
// under url.
func (c *Client) LoadIden3Schema(ctx context.Context, url string, doc []byte) error {
	return c.Do(ctx, "POST", iden3Path+"/schemas", Iden3SchemaLoad{URL: url, Document: doc}, nil)
}

const usersAdminPath = "/admin/users"

// Users lists a page of user accounts, in state and with an address
// containing email when they are set.
func (c *Client) Users(ctx context.Context, state, email string, p PageRequest) (Page[User], error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if email != "" {
		q.Set("email", email)
	}
	return get[Page[User]](ctx, c, usersAdminPath+p.query(q))
}

// User describes a user account.
func (c *Client) User(ctx context.Context, id string) (User, error) {
	return get[User](ctx, c, usersAdminPath+"/"+esc(id))
}

// CreateUser creates an unclaimed account for an address.
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (User, error) {
	return post[User](ctx, c, usersAdminPath, req)
}

// DisableUser disables a user account (final).
func (c *Client) DisableUser(ctx context.Context, id string) (User, error) {
	return post[User](ctx, c, usersAdminPath+"/"+esc(id)+"/disable", nil)
}

// DeleteUser deletes a user account.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	return c.Do(ctx, "DELETE", usersAdminPath+"/"+esc(id), nil, nil)
}

// IssueKeyUploadToken gives an account a fresh key-upload token.
func (c *Client) IssueKeyUploadToken(ctx context.Context, id string) (KeyUploadToken, error) {
	return post[KeyUploadToken](ctx, c, usersAdminPath+"/"+esc(id)+"/key-upload-token", nil)
}

// RequestSignup asks for an account (public; the confirmation is mailed).
func (c *Client) RequestSignup(ctx context.Context, req SignupRequest) (SignupReceipt, error) {
	return post[SignupReceipt](ctx, c, UsersRequestsPath, req)
}

// SignupStatus returns a sign-up request's state, waiting up to wait
// while it is pending.
func (c *Client) SignupStatus(ctx context.Context, id string, wait time.Duration) (SignupStatus, error) {
	q := ""
	if wait > 0 {
		q = "?wait=" + wait.String()
	}
	return get[SignupStatus](ctx, c, UsersRequestsPath+"/"+esc(id)+q)
}

const privadoAdminPath = "/admin/privado"

// CreateExchange registers an exchange; the answer holds its API key and
// HMAC secret, shown this once.
func (c *Client) CreateExchange(ctx context.Context, req CreateExchangeRequest) (ExchangeCredentials, error) {
	return post[ExchangeCredentials](ctx, c, privadoAdminPath+"/exchanges", req)
}

// Exchanges lists the exchanges.
func (c *Client) Exchanges(ctx context.Context, p PageRequest) (Page[PrivadoExchange], error) {
	return get[Page[PrivadoExchange]](ctx, c, privadoAdminPath+"/exchanges"+p.query(url.Values{}))
}

// Exchange describes an exchange.
func (c *Client) Exchange(ctx context.Context, id string) (PrivadoExchange, error) {
	return get[PrivadoExchange](ctx, c, privadoAdminPath+"/exchanges/"+esc(id))
}

// RotateExchangeKeys gives an exchange a new API key and HMAC secret.
func (c *Client) RotateExchangeKeys(ctx context.Context, id string) (ExchangeCredentials, error) {
	return post[ExchangeCredentials](ctx, c, privadoAdminPath+"/exchanges/"+esc(id)+"/rotate-keys", nil)
}

// DisableExchange disables an exchange (final).
func (c *Client) DisableExchange(ctx context.Context, id string) (PrivadoExchange, error) {
	return post[PrivadoExchange](ctx, c, privadoAdminPath+"/exchanges/"+esc(id)+"/disable", nil)
}

// Interactions lists proof requests newest first, by exchange, user and
// state when they are set.
func (c *Client) Interactions(ctx context.Context, vaspID, userID, state string, p PageRequest) (Page[PrivadoInteraction], error) {
	q := url.Values{}
	for k, v := range map[string]string{"vasp_id": vaspID, "user_id": userID, "state": state} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return get[Page[PrivadoInteraction]](ctx, c, privadoAdminPath+"/interactions"+p.query(q))
}

// Interaction describes a proof request.
func (c *Client) Interaction(ctx context.Context, id string) (PrivadoInteraction, error) {
	return get[PrivadoInteraction](ctx, c, privadoAdminPath+"/interactions/"+esc(id))
}
