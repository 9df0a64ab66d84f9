package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
)

// Paths of the public user-account routes. UsersConfirmPath must be the
// protocol's (users.ConfirmPath); a daemon test checks it.
const (
	UsersRequestsPath = "/v1/users/requests"
	UsersConfirmPath  = "/v1/users/confirm"
)

// UserSignup is the public part of user accounts: sign-up, confirmation,
// polling and the key upload. The daemon implements it over package
// protocols/users. Errors are *agent.Error values naming the field.
type UserSignup interface {
	// RequestSignup takes a sign-up or claim request from clientIP.
	RequestSignup(ctx context.Context, name, email, clientIP string) (SignupReceipt, error)
	// SignupConfirmation says what the token's link would confirm,
	// changing nothing; agent.CodeGone when it is used or expired.
	SignupConfirmation(ctx context.Context, token string) (SignupConfirmation, error)
	// ConfirmSignup uses the token: agent.CodeGone (used, expired),
	// agent.CodeConflict (the address's account is confirmed already).
	ConfirmSignup(ctx context.Context, token string) (SignupConfirmed, error)
	// SignupStatus returns a request's state, waiting up to wait while it
	// is pending; the first answer after the confirmation has the
	// key-upload token.
	SignupStatus(ctx context.Context, id string, wait time.Duration) (SignupStatus, error)
	// UploadUserKeys stores a user's public keys with a key-upload token.
	UploadUserKeys(ctx context.Context, id, token string, keys UserKeys) (User, error)
}

// UsersAdmin is the operators' part of user accounts.
type UsersAdmin interface {
	// Users lists accounts, in a state and with an address containing
	// email when they are set.
	Users(ctx context.Context, state, email, after string, limit int) ([]User, error)
	// User describes one account.
	User(ctx context.Context, id string) (User, error)
	// CreateUser creates an unclaimed account for an address.
	CreateUser(ctx context.Context, email, name, reference string) (User, error)
	// DisableUser disables an account (final).
	DisableUser(ctx context.Context, id string) (User, error)
	// DeleteUser deletes an account.
	DeleteUser(ctx context.Context, id string) error
	// IssueKeyUploadToken gives a confirmed or active account a fresh
	// key-upload token (for a key replacement).
	IssueKeyUploadToken(ctx context.Context, id string) (KeyUploadToken, error)
}

// SignupRequest is the body of POST /v1/users/requests.
type SignupRequest struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// SignupReceipt answers a sign-up request (the same for every address).
type SignupReceipt struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SignupConfirmation is what a confirmation link would confirm.
type SignupConfirmation struct {
	Name    string    `json:"name"`
	Email   string    `json:"email"`
	Action  string    `json:"action"`
	Expires time.Time `json:"expires"`
}

// SignupConfirmed is the outcome of a confirmation.
type SignupConfirmed struct {
	// Action is "created" or "claimed".
	Action string `json:"action"`
	User   User   `json:"user"`
}

// SignupStatus is the state of a sign-up request.
type SignupStatus struct {
	ID                 string    `json:"id"`
	State              string    `json:"state"`
	ExpiresAt          time.Time `json:"expires_at"`
	UserID             string    `json:"user_id,omitempty"`
	Claimed            bool      `json:"claimed,omitempty"`
	KeyUploadToken     string    `json:"key_upload_token,omitempty"`
	KeyUploadExpiresAt time.Time `json:"key_upload_expires_at,omitzero"`
}

// UserKeys are a user's public keys in Zenflows' shape.
type UserKeys struct {
	EthereumAddress string      `json:"ethereum_address"`
	Pubkeys         UserPubkeys `json:"pubkeys"`
}

// UserPubkeys is the "pubkeys" dictionary.
type UserPubkeys struct {
	ECDH    string `json:"ecdh_public_key"`
	EdDSA   string `json:"eddsa_public_key"`
	Reflow  string `json:"reflow_public_key"`
	Schnorr string `json:"schnorr_public_key"`
}

// KeyCheck is what was checked of one key.
type KeyCheck struct {
	Field    string `json:"field"`
	Encoding string `json:"encoding"`
	Bytes    int    `json:"bytes"`
	Checked  string `json:"checked"`
}

// User is an account.
type User struct {
	ID        string     `json:"id"`
	Email     string     `json:"email"`
	Name      string     `json:"name,omitempty"`
	Reference string     `json:"reference,omitempty"`
	State     string     `json:"state"`
	Created   time.Time  `json:"created"`
	Updated   time.Time  `json:"updated"`
	Confirmed time.Time  `json:"confirmed,omitzero"`
	DID       string     `json:"did,omitempty"`
	DIDs      []UserDID  `json:"dids,omitempty"`
	Keys      *UserKeys  `json:"keys,omitempty"`
	Checks    []KeyCheck `json:"checks,omitempty"`
}

// UserDID is another DID a user registered (their wallet's).
type UserDID struct {
	DID        string    `json:"did"`
	Registered time.Time `json:"registered"`
}

// CreateUserRequest is the body of POST /admin/users.
type CreateUserRequest struct {
	Email     string `json:"email"`
	Name      string `json:"name,omitempty"`
	Reference string `json:"reference,omitempty"`
}

// KeyUploadToken is a fresh key-upload token.
type KeyUploadToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NewUsersAPI returns the user-account routes: the public ones over
// signup, the admin ones over admin (either may be nil).
func NewUsersAPI(signup UserSignup, admin UsersAdmin) Feature {
	return &usersAPI{signup: signup, admin: admin}
}

type usersAPI struct {
	signup UserSignup
	admin  UsersAdmin
}

// maxUsersBody bounds the public request bodies.
const maxUsersBody = 16 << 10

// Routes implements Feature.
func (u *usersAPI) Routes(r *Routes) {
	if u.signup != nil {
		r.Public("POST "+UsersRequestsPath, "users-request", u.request)
		r.Public("GET "+UsersRequestsPath+"/{id}", "users-status", u.status)
		r.Public("GET "+UsersConfirmPath, "users-confirm-page", u.confirmPage)
		r.Public("POST "+UsersConfirmPath, "users-confirm", u.confirm)
		r.Public("PUT /v1/users/{id}/keys", "users-keys", u.keys)
	}
	if u.admin == nil {
		return
	}
	r.Admin("GET /admin/users", Op{Summary: "List the user accounts", Response: Page[User]{Key: "users"},
		Query: append([]Param{{Name: "state", Description: "unclaimed, confirmed, active or disabled"},
			{Name: "email", Description: "a part of the address (case-insensitive)"}}, pageQuery...)}, u.list)
	r.Admin("POST /admin/users", Op{Summary: "Create an unclaimed account for an address",
		Request: CreateUserRequest{}, Response: User{}, Status: http.StatusCreated}, u.create)
	r.Admin("GET /admin/users/{id}", Op{Summary: "Describe a user account", Response: User{}}, u.get)
	r.Admin("POST /admin/users/{id}/disable", Op{Summary: "Disable a user account (final)", Response: User{}}, u.disable)
	r.Admin("DELETE /admin/users/{id}", Op{Summary: "Delete a user account"}, u.delete)
	r.Admin("POST /admin/users/{id}/key-upload-token", Op{Summary: "Give an account a fresh key-upload token (key replacement)",
		Response: KeyUploadToken{}, Status: http.StatusCreated}, u.uploadToken)
}

// readStrict reads a JSON body into v, refusing unknown members, trailing
// data and other media types; its errors name the field.
func readStrict(w http.ResponseWriter, r *http.Request, v any) error {
	return readStrictN(w, r, v, maxUsersBody)
}

// readStrictN is readStrict with a body limit of max bytes.
func readStrictN(w http.ResponseWriter, r *http.Request, v any, max int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return agent.Errorf(agent.CodeMediaType, "body: the content type must be application/json")
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		if _, err := dec.Token(); err != io.EOF {
			return agent.Errorf(agent.CodeMsg, "body: data after the JSON object")
		}
		return nil
	case errors.As(err, &mbe):
		return agent.Errorf(agent.CodeTooLarge, "body: larger than %d bytes", max)
	case errors.As(err, &te):
		return agent.Errorf(agent.CodeMsg, "%s: must be a %s", te.Field, te.Type)
	case strings.HasPrefix(err.Error(), `json: unknown field "`):
		name := strings.TrimSuffix(strings.TrimPrefix(err.Error(), `json: unknown field "`), `"`)
		return agent.Errorf(agent.CodeMsg, "%s: unknown field", name)
	case errors.Is(err, io.EOF):
		return agent.Errorf(agent.CodeMsg, "body: empty, a JSON object is expected")
	}
	return agent.Errorf(agent.CodeMsg, "body: not valid JSON")
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
}

func (u *usersAPI) request(w http.ResponseWriter, r *http.Request) {
	var req SignupRequest
	if err := readStrict(w, r, &req); err != nil {
		fail(w, r, err)
		return
	}
	rec, err := u.signup.RequestSignup(r.Context(), req.Name, req.Email, clientIP(r))
	noStore(w)
	respond(w, r, http.StatusAccepted, rec, err)
}

func (u *usersAPI) status(w http.ResponseWriter, r *http.Request) {
	wait, err := parseWait(r.URL.Query().Get("wait"), 0)
	if err != nil {
		fail(w, r, err)
		return
	}
	st, err := u.signup.SignupStatus(r.Context(), r.PathValue("id"), wait)
	noStore(w)
	respond(w, r, http.StatusOK, st, err)
}

func (u *usersAPI) keys(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		fail(w, r, agent.Errorf(agent.CodeForbidden, "token: send the key-upload token as Authorization: Bearer <token>"))
		return
	}
	var k UserKeys
	if err := readStrict(w, r, &k); err != nil {
		fail(w, r, err)
		return
	}
	v, err := u.signup.UploadUserKeys(r.Context(), r.PathValue("id"), token, k)
	noStore(w)
	respond(w, r, http.StatusOK, v, err)
}

// pageHeaders are the headers of the confirmation pages: never cached,
// never framed (the button must not be clickjacked), no referrer (the URL
// holds the token), no scripts.
func pageHeaders(w http.ResponseWriter) {
	noStore(w)
	h := w.Header()
	h.Set("X-Robots-Tag", "noindex")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
}

func (u *usersAPI) confirmPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	info, err := u.signup.SignupConfirmation(r.Context(), token)
	pageHeaders(w)
	if err != nil {
		writePage(w, statusOf(err), pageData{Title: "This link can no longer be used", Message: pageMessage(r, err)})
		return
	}
	what := "create an account"
	if info.Action == "claim" {
		what = "claim the account"
	}
	writePage(w, http.StatusOK, pageData{
		Title:   "Confirm your account",
		Message: fmt.Sprintf("Confirm that you want to %s for %s with the name %s. The link expires at %s.", what, info.Email, info.Name, info.Expires.UTC().Format(time.RFC1123)),
		Token:   token, Button: "Confirm",
	})
}

// wantsHTML reports whether a confirmation POST came from the page's form
// (or a browser) rather than an API client.
func wantsHTML(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded" || strings.Contains(r.Header.Get("Accept"), "text/html")
}

func (u *usersAPI) confirm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUsersBody)
	token := r.FormValue("token")
	res, err := u.signup.ConfirmSignup(r.Context(), token)
	if !wantsHTML(r) {
		noStore(w)
		respond(w, r, http.StatusOK, res, err)
		return
	}
	pageHeaders(w)
	if err != nil {
		title := "This link can no longer be used"
		if agent.HasCode(err, agent.CodeConflict) {
			title = "This account is confirmed already"
		}
		writePage(w, statusOf(err), pageData{Title: title, Message: pageMessage(r, err)})
		return
	}
	msg := "Your account for " + res.User.Email + " is created. Go back to the application to finish: it now asks for your public keys."
	if res.Action == "claimed" {
		msg = "You claimed the account for " + res.User.Email + ". Go back to the application to finish: it now asks for your public keys."
	}
	writePage(w, http.StatusOK, pageData{Title: "Account confirmed", Message: msg})
}

// pageMessage is the peer-safe reason of err for a page; an internal
// error shows no detail and is logged (without the query, which holds the
// token).
func pageMessage(r *http.Request, err error) string {
	if statusOf(err) >= 500 {
		loggerOf(r).Error("http: internal error", "method", r.Method, "path", r.URL.Path, "err", causeChain(err))
		return "Something went wrong on our side. Please try again later."
	}
	return agent.ErrorComment(err)
}

type pageData struct {
	Title, Message string
	Token, Button  string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:36em;margin:3em auto;padding:0 1em}button{font-size:1.1em;padding:.5em 1.5em}</style>
</head><body>
<h1 id="title">{{.Title}}</h1>
<p id="message">{{.Message}}</p>
{{if .Token}}<form method="post" action="` + UsersConfirmPath + `">
<input type="hidden" name="token" value="{{.Token}}">
<button type="submit" id="confirm">{{.Button}}</button>
</form>{{end}}
</body></html>
`))

func writePage(w http.ResponseWriter, status int, d pageData) {
	w.WriteHeader(status)
	pageTemplate.Execute(w, d)
}

func (u *usersAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	list(w, r, "users", func(v User) string { return v.ID },
		func(ctx context.Context, after string, limit int) ([]User, error) {
			return u.admin.Users(ctx, q.Get("state"), q.Get("email"), after, limit)
		})
}

func (u *usersAPI) create(w http.ResponseWriter, r *http.Request) {
	var req CreateUserRequest
	if err := readStrict(w, r, &req); err != nil {
		fail(w, r, err)
		return
	}
	v, err := u.admin.CreateUser(r.Context(), req.Email, req.Name, req.Reference)
	respond(w, r, http.StatusCreated, v, err)
}

func (u *usersAPI) get(w http.ResponseWriter, r *http.Request) {
	v, err := u.admin.User(r.Context(), r.PathValue("id"))
	respond(w, r, http.StatusOK, v, notFound(err, "user"))
}

func (u *usersAPI) disable(w http.ResponseWriter, r *http.Request) {
	v, err := u.admin.DisableUser(r.Context(), r.PathValue("id"))
	respond(w, r, http.StatusOK, v, notFound(err, "user"))
}

func (u *usersAPI) delete(w http.ResponseWriter, r *http.Request) {
	respondEmpty(w, r, notFound(u.admin.DeleteUser(r.Context(), r.PathValue("id")), "user"))
}

func (u *usersAPI) uploadToken(w http.ResponseWriter, r *http.Request) {
	v, err := u.admin.IssueKeyUploadToken(r.Context(), r.PathValue("id"))
	noStore(w)
	respond(w, r, http.StatusCreated, v, notFound(err, "user"))
}

// UsersDisabled is the feature of an agent without user accounts: the
// admin routes under /admin/users say so.
func UsersDisabled() Feature {
	return FeatureFunc(func(r *Routes) {
		r.Disabled("/admin/users", "user accounts are off (users.enabled, and email.address for the mails)")
	})
}
