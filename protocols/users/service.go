package users

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
)

// ConfirmPath is the path of the confirmation link (GET shows the page,
// POST confirms); the token is its query parameter "token".
const ConfirmPath = "/v1/users/confirm"

// Defaults of Config.
const (
	DefaultConfirmTTL    = 15 * time.Minute
	DefaultUploadTTL     = 15 * time.Minute
	DefaultMaxNameLength = 100
	// MaxEmailLength is the longest address taken (RFC 5321's path limit).
	MaxEmailLength = 254
	// MaxWait bounds a long poll.
	MaxWait = 60 * time.Second
)

// Limiter is a rate limiter by key (internal/ratelimit.Limiter).
type Limiter interface {
	Allow(key string) (bool, time.Duration)
}

// Config configures a Service.
type Config struct {
	// Store holds the records and queues the mails.
	Store agent.Store
	// BaseURL is the agent's public base URL; the confirmation link is
	// BaseURL + ConfirmPath + "?token=...".
	BaseURL string
	// MailFrom is the sender address of the mails (email.address).
	MailFrom string
	// AgentName names the agent in the mails; BaseURL by default.
	AgentName string
	// Template is the mail template; DefaultTemplate when nil.
	Template *Template
	// ConfirmTTL is how long a confirmation link works (15 minutes).
	ConfirmTTL time.Duration
	// UploadTTL is how long a key-upload token works (15 minutes).
	UploadTTL time.Duration
	// MaxNameLength bounds a name, in characters (100).
	MaxNameLength int
	// PerAddress and PerIP rate-limit sign-up requests by address and by
	// client IP; nil allows all.
	PerAddress, PerIP Limiter
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger logs what happens, never a token.
	Logger *slog.Logger
}

// Service runs sign-up, confirmation, key upload and the operators' work
// on accounts. It is safe for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	waiters notifier
}

// New returns a Service; cfg.Store, BaseURL and MailFrom are required.
func New(cfg Config) (*Service, error) {
	if cfg.Store.Records == nil || cfg.Store.Committer == nil {
		return nil, errors.New("users: no store")
	}
	if cfg.BaseURL == "" || cfg.MailFrom == "" {
		return nil, errors.New("users: the public base URL and the mail sender address are required")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.AgentName == "" {
		cfg.AgentName = cfg.BaseURL
	}
	if cfg.Template == nil {
		t, err := ParseTemplate("")
		if err != nil {
			return nil, err
		}
		cfg.Template = t
	}
	if cfg.ConfirmTTL <= 0 {
		cfg.ConfirmTTL = DefaultConfirmTTL
	}
	if cfg.UploadTTL <= 0 {
		cfg.UploadTTL = DefaultUploadTTL
	}
	if cfg.MaxNameLength <= 0 {
		cfg.MaxNameLength = DefaultMaxNameLength
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Service{cfg: cfg, log: log, waiters: notifier{m: map[string][]chan struct{}{}}}, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// Errors of the token routes.
var (
	// ErrTokenGone: the link or token is unknown, used or expired (410).
	ErrTokenGone = agent.Errorf(agent.CodeGone, "this link or token is not valid: it was used already, has expired, or never existed")
)

// Receipt answers a sign-up request.
type Receipt struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CheckName checks a name: 1 to max characters of printable text.
func CheckName(name string, max int) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", invalid("name", "missing")
	case !utf8.ValidString(name):
		return "", invalid("name", "not UTF-8")
	case utf8.RuneCountInString(name) > max:
		return "", invalid("name", fmt.Sprintf("longer than %d characters", max))
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", invalid("name", "has control characters")
		}
	}
	return name, nil
}

// CheckEmail checks a plain address (local@domain, no display name) and
// returns it with its domain lower-cased.
func CheckEmail(addr string) (string, error) {
	if addr == "" {
		return "", invalid("email", "missing")
	}
	if len(addr) > MaxEmailLength {
		return "", invalid("email", fmt.Sprintf("longer than %d characters", MaxEmailLength))
	}
	for _, r := range addr {
		if r <= 0x20 || r >= 0x7f {
			return "", invalid("email", "not a plain mail address (local@domain)")
		}
	}
	a, err := mail.ParseAddress(addr)
	at := strings.LastIndexByte(addr, '@')
	if err != nil || a.Name != "" || a.Address != addr || at <= 0 {
		return "", invalid("email", "not a plain mail address (local@domain)")
	}
	domain := strings.ToLower(addr[at+1:])
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", invalid("email", "the domain is not a mail domain")
	}
	for _, c := range domain {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return "", invalid("email", "the domain is not a mail domain")
		}
	}
	return addr[:at] + "@" + domain, nil
}

// limit applies a limiter; over it, a rate-limited error with the wait.
func limit(l Limiter, key, what string) error {
	if l == nil {
		return nil
	}
	if ok, wait := l.Allow(key); !ok {
		return &agent.Error{Code: agent.CodeRateLimited, Comment: "too many sign-up requests " + what + ": try again later", RetryAfter: wait}
	}
	return nil
}

// RequestSignup takes a sign-up (or claim) request from clientIP: it
// stores the request and the hash of a fresh token and queues the
// confirmation mail, in one unit of work. The answer is the same whether
// or not the address has an account.
func (s *Service) RequestSignup(ctx context.Context, name, email, clientIP string) (Receipt, error) {
	name, err := CheckName(name, s.cfg.MaxNameLength)
	if err != nil {
		return Receipt{}, err
	}
	email, err = CheckEmail(email)
	if err != nil {
		return Receipt{}, err
	}
	if err := limit(s.cfg.PerIP, clientIP, "from this IP address"); err != nil {
		return Receipt{}, err
	}
	if err := limit(s.cfg.PerAddress, emailKey(email), "for this mail address"); err != nil {
		return Receipt{}, err
	}
	now := s.now()
	req := Request{ID: newID(), Name: name, Email: email, State: RequestPending, Created: now, Updated: now,
		Expires: now.Add(s.cfg.ConfirmTTL)}
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		token := newToken()
		r := req
		r.TokenHash = hashToken(token)
		action := "create"
		var ix emailIndex
		if err := getIn(ctx, w, KindEmail, emailKey(email), &ix); err == nil {
			action = "claim"
		} else if !isNotFound(err) {
			return err
		}
		msg, err := s.cfg.Template.compose("", s.cfg.MailFrom, email, MailData{
			Name: name, Email: email, Action: action, Agent: s.cfg.AgentName,
			Link:    s.cfg.BaseURL + ConfirmPath + "?token=" + token,
			Expires: r.Expires.Format(time.RFC1123), TTL: s.cfg.ConfirmTTL.String(),
		}, now)
		if err != nil {
			return fmt.Errorf("composing the confirmation mail: %w", err)
		}
		if err := w.PutJSON(KindRequest, r.ID, &r); err != nil {
			return err
		}
		if err := w.PutJSON(KindToken, tokenKey(token), &tokenIndex{RequestID: r.ID}); err != nil {
			return err
		}
		w.Enqueue(s.mail(email, "users/confirm", msg))
		return nil
	})
	if err != nil {
		return Receipt{}, err
	}
	s.log.InfoContext(ctx, "sign-up requested", "request", req.ID)
	return Receipt{ID: req.ID, ExpiresAt: req.Expires}, nil
}

func (s *Service) mail(to, what string, msg []byte) *agent.OutboundMessage {
	return &agent.OutboundMessage{To: to, Endpoint: "mailto:" + to, MediaType: MediaTypeMail, MessageType: what, Payload: msg}
}

// ConfirmView is what the confirmation page shows before the button.
type ConfirmView struct {
	Name    string    `json:"name"`
	Email   string    `json:"email"`
	Action  string    `json:"action"` // "create" or "claim"
	Expires time.Time `json:"expires"`
}

// pending returns the pending request behind token in w, or ErrTokenGone.
func (s *Service) pending(ctx context.Context, w *agent.Work, token string) (*Request, error) {
	if !validToken(token) {
		return nil, ErrTokenGone
	}
	var ix tokenIndex
	if err := getIn(ctx, w, KindToken, tokenKey(token), &ix); err != nil {
		if isNotFound(err) {
			return nil, ErrTokenGone
		}
		return nil, err
	}
	var r Request
	if err := getIn(ctx, w, KindRequest, ix.RequestID, &r); err != nil {
		if isNotFound(err) {
			return nil, ErrTokenGone
		}
		return nil, err
	}
	if !sameToken(token, r.TokenHash) || r.effective(s.now()) != RequestPending {
		return nil, ErrTokenGone
	}
	return &r, nil
}

// ConfirmInfo says what the link of token would confirm. It changes
// nothing (mail scanners and link previews fetch links).
func (s *Service) ConfirmInfo(ctx context.Context, token string) (ConfirmView, error) {
	w := s.cfg.Store.New()
	r, err := s.pending(ctx, w, token)
	if err != nil {
		return ConfirmView{}, err
	}
	v := ConfirmView{Name: r.Name, Email: r.Email, Action: "create", Expires: r.Expires}
	var ix emailIndex
	if getIn(ctx, w, KindEmail, emailKey(r.Email), &ix) == nil {
		v.Action = "claim"
	}
	return v, nil
}

// Confirmed is the outcome of a confirmation.
type Confirmed struct {
	// Action is "created" or "claimed".
	Action  string      `json:"action"`
	Account AccountView `json:"account"`
}

// Confirm uses the token of a confirmation link: the account is created,
// or claimed when the address has an unclaimed one. A token that is
// unknown, used or expired is ErrTokenGone; an address whose account is
// confirmed already is a conflict (the request expires and the owner gets
// a notice mail).
func (s *Service) Confirm(ctx context.Context, token string) (Confirmed, error) {
	var out Confirmed
	var refused error
	var reqID string
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		out, refused = Confirmed{}, nil
		r, err := s.pending(ctx, w, token)
		if err != nil {
			return err
		}
		reqID = r.ID
		now := s.now()
		w.Delete(KindToken, tokenKey(token))
		var acc Account
		var ix emailIndex
		err = getIn(ctx, w, KindEmail, emailKey(r.Email), &ix)
		switch {
		case isNotFound(err):
			acc = Account{ID: newID(), Email: r.Email, Name: r.Name, State: AccountConfirmed, Created: now, Updated: now, Confirmed: now}
			if err := w.PutJSON(KindEmail, emailKey(r.Email), &emailIndex{AccountID: acc.ID}); err != nil {
				return err
			}
			out.Action = "created"
		case err != nil:
			return err
		default:
			if err := getIn(ctx, w, KindAccount, ix.AccountID, &acc); err != nil {
				return err
			}
			if acc.State != AccountUnclaimed {
				r.Reason = "the account is " + string(acc.State) + " already"
				if err := r.moveTo(RequestExpired, now); err != nil {
					return err
				}
				if err := w.PutJSON(KindRequest, r.ID, r); err != nil {
					return err
				}
				if acc.State != AccountDisabled {
					msg, err := s.cfg.Template.compose("notice_", s.cfg.MailFrom, acc.Email, MailData{
						Name: acc.Name, Email: acc.Email, Action: "claim", Agent: s.cfg.AgentName}, now)
					if err != nil {
						return fmt.Errorf("composing the notice mail: %w", err)
					}
					w.Enqueue(s.mail(acc.Email, "users/notice", msg))
				}
				refused = agent.Errorf(agent.CodeConflict, "the account of this address is %s already: it cannot be claimed again", acc.State)
				return nil
			}
			acc.Name = r.Name
			if err := acc.moveTo(AccountConfirmed, now); err != nil {
				return err
			}
			acc.Confirmed = now
			out.Action = "claimed"
		}
		r.AccountID, r.Claimed = acc.ID, out.Action == "claimed"
		if err := r.moveTo(RequestConfirmed, now); err != nil {
			return err
		}
		if err := w.PutJSON(KindRequest, r.ID, r); err != nil {
			return err
		}
		if err := w.PutJSON(KindAccount, acc.ID, &acc); err != nil {
			return err
		}
		out.Account = acc.view()
		return nil
	})
	if err != nil {
		return Confirmed{}, err
	}
	s.waiters.notify(reqID)
	if refused != nil {
		s.log.InfoContext(ctx, "sign-up refused: account confirmed already", "request", reqID)
		return Confirmed{}, refused
	}
	s.log.InfoContext(ctx, "sign-up confirmed", "request", reqID, "account", out.Account.ID, "action", out.Action)
	return out, nil
}

// RequestStatus is what the front end learns by polling a request.
type RequestStatus struct {
	ID        string       `json:"id"`
	State     RequestState `json:"state"`
	ExpiresAt time.Time    `json:"expires_at"`
	// UserID is the account, once confirmed.
	UserID string `json:"user_id,omitempty"`
	// Claimed tells that an existing account was claimed.
	Claimed bool `json:"claimed,omitempty"`
	// KeyUploadToken is given once, in the first answer after the
	// confirmation, with its expiry.
	KeyUploadToken     string    `json:"key_upload_token,omitempty"`
	KeyUploadExpiresAt time.Time `json:"key_upload_expires_at,omitzero"`
}

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

var errNoRequest = agent.Errorf(agent.CodeNotFound, "no such sign-up request")

func (s *Service) loadRequest(ctx context.Context, id string) (*Request, error) {
	if !validID(id) {
		return nil, errNoRequest
	}
	b, err := s.cfg.Store.Records.Get(ctx, KindRequest, id)
	if err != nil {
		if isNotFound(err) {
			return nil, errNoRequest
		}
		return nil, err
	}
	var r Request
	return &r, json.Unmarshal(b, &r)
}

// Poll returns the state of request id, waiting up to wait (at most
// MaxWait) while it is pending. The first answer after the confirmation
// carries the key-upload token; later ones do not.
func (s *Service) Poll(ctx context.Context, id string, wait time.Duration) (RequestStatus, error) {
	r, err := s.loadRequest(ctx, id)
	if err != nil {
		return RequestStatus{}, err
	}
	if wait > 0 && r.effective(s.now()) == RequestPending {
		ch, cancel := s.waiters.wait(id)
		defer cancel()
		// Read again: a confirmation between the first read and wait is seen.
		if r, err = s.loadRequest(ctx, id); err != nil {
			return RequestStatus{}, err
		}
		if r.effective(s.now()) == RequestPending {
			d := min(wait, MaxWait, r.Expires.Sub(s.now())+time.Millisecond)
			t := time.NewTimer(d)
			select {
			case <-ch:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
			if r, err = s.loadRequest(ctx, id); err != nil {
				return RequestStatus{}, err
			}
		}
	}
	st := RequestStatus{ID: r.ID, State: r.effective(s.now()), ExpiresAt: r.Expires, UserID: r.AccountID, Claimed: r.Claimed}
	if st.State != RequestConfirmed || r.UploadIssued {
		return st, nil
	}
	var token string
	var expires time.Time
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		token = ""
		var cur Request
		if err := getIn(ctx, w, KindRequest, id, &cur); err != nil {
			return err
		}
		if cur.UploadIssued {
			return nil
		}
		var acc Account
		if err := getIn(ctx, w, KindAccount, cur.AccountID, &acc); err != nil {
			if isNotFound(err) {
				return nil // deleted by an operator meanwhile
			}
			return err
		}
		cur.UploadIssued = true
		if err := w.PutJSON(KindRequest, id, &cur); err != nil {
			return err
		}
		if acc.State != AccountConfirmed && acc.State != AccountActive {
			return nil
		}
		t := newToken()
		expires = s.now().Add(s.cfg.UploadTTL)
		acc.UploadHash, acc.UploadExpires = hashToken(t), expires
		if err := w.PutJSON(KindAccount, acc.ID, &acc); err != nil {
			return err
		}
		token = t
		return nil
	})
	if err != nil {
		return RequestStatus{}, err
	}
	st.KeyUploadToken, st.KeyUploadExpiresAt = token, expires
	return st, nil
}

var errNoAccount = agent.Errorf(agent.CodeNotFound, "no such user")

// UploadKeys stores the public keys of account id, with the key-upload
// token given by Poll (or IssueUploadToken): they are checked first
// (CheckKeys), and nothing is stored when they fail. The token works once;
// the account becomes active and gets its did:key.
func (s *Service) UploadKeys(ctx context.Context, id, token string, k PublicKeys) (AccountView, error) {
	if !validID(id) {
		return AccountView{}, errNoAccount
	}
	if token == "" {
		return AccountView{}, agent.Errorf(agent.CodeForbidden, "token: the key-upload token is required (Authorization: Bearer)")
	}
	checked, err := CheckKeys(k)
	if err != nil {
		return AccountView{}, err
	}
	pub, err := keys.NewPublic(keys.Ed25519, "", checked.Ed25519)
	if err != nil {
		return AccountView{}, invalid(fEdDSA, "not an Ed25519 key")
	}
	userDID := did.KeyDID(pub)
	var out AccountView
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		var acc Account
		if err := getIn(ctx, w, KindAccount, id, &acc); err != nil {
			if isNotFound(err) {
				return errNoAccount
			}
			return err
		}
		now := s.now()
		if len(acc.UploadHash) == 0 || !now.Before(acc.UploadExpires) {
			return ErrTokenGone
		}
		if !validToken(token) || !sameToken(token, acc.UploadHash) {
			return agent.Errorf(agent.CodeForbidden, "token: not this account's key-upload token")
		}
		switch acc.State {
		case AccountConfirmed:
			if err := acc.moveTo(AccountActive, now); err != nil {
				return err
			}
		case AccountActive:
			acc.Updated = now
		default:
			return agent.Errorf(agent.CodeConflict, "the account is %s", acc.State)
		}
		var dx didIndex
		switch err := getIn(ctx, w, KindDID, userDID, &dx); {
		case err == nil && dx.AccountID != acc.ID:
			return agent.Errorf(agent.CodeConflict, "%s: this key belongs to another account", fEdDSA)
		case err != nil && !isNotFound(err):
			return err
		}
		if acc.DID != "" && acc.DID != userDID {
			w.Delete(KindDID, acc.DID)
		}
		if err := w.PutJSON(KindDID, userDID, &didIndex{AccountID: acc.ID}); err != nil {
			return err
		}
		acc.Keys, acc.DID = &checked, userDID
		acc.UploadHash, acc.UploadExpires = nil, time.Time{}
		if err := w.PutJSON(KindAccount, acc.ID, &acc); err != nil {
			return err
		}
		out = acc.view()
		return nil
	})
	if err != nil {
		return AccountView{}, err
	}
	s.log.InfoContext(ctx, "user keys stored", "account", id, "did", userDID)
	return out, nil
}

// UploadToken is a fresh key-upload token an operator hands to a user.
type UploadToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// IssueUploadToken gives a confirmed or active account a fresh key-upload
// token (replacing any earlier one): a second key upload needs one.
func (s *Service) IssueUploadToken(ctx context.Context, id string) (UploadToken, error) {
	var out UploadToken
	err := s.update(ctx, id, func(acc *Account, now time.Time) error {
		if acc.State != AccountConfirmed && acc.State != AccountActive {
			return agent.Errorf(agent.CodeConflict, "the account is %s: only a confirmed or active account takes keys", acc.State)
		}
		t := newToken()
		out = UploadToken{Token: t, ExpiresAt: now.Add(s.cfg.UploadTTL)}
		acc.UploadHash, acc.UploadExpires = hashToken(t), out.ExpiresAt
		return nil
	})
	if err != nil {
		return UploadToken{}, err
	}
	return out, nil
}

// update changes account id with fn in a unit of work.
func (s *Service) update(ctx context.Context, id string, fn func(*Account, time.Time) error) error {
	if !validID(id) {
		return errNoAccount
	}
	return s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		var acc Account
		if err := getIn(ctx, w, KindAccount, id, &acc); err != nil {
			if isNotFound(err) {
				return errNoAccount
			}
			return err
		}
		if err := fn(&acc, s.now()); err != nil {
			return err
		}
		return w.PutJSON(KindAccount, id, &acc)
	})
}

// CreateAccount creates an unclaimed account for an address (an operator
// or an exchange creating it beforehand); a sign-up confirmed from that
// address claims it. An address that has an account is a conflict.
func (s *Service) CreateAccount(ctx context.Context, email, name, reference string) (AccountView, error) {
	email, err := CheckEmail(email)
	if err != nil {
		return AccountView{}, err
	}
	if name != "" {
		if name, err = CheckName(name, s.cfg.MaxNameLength); err != nil {
			return AccountView{}, err
		}
	}
	if len(reference) > 200 {
		return AccountView{}, invalid("reference", "longer than 200 characters")
	}
	now := s.now()
	acc := Account{ID: newID(), Email: email, Name: name, Reference: reference, State: AccountUnclaimed, Created: now, Updated: now}
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		var ix emailIndex
		switch err := getIn(ctx, w, KindEmail, emailKey(email), &ix); {
		case err == nil:
			return agent.Errorf(agent.CodeConflict, "email: this address has an account (%s)", ix.AccountID)
		case !isNotFound(err):
			return err
		}
		if err := w.PutJSON(KindEmail, emailKey(email), &emailIndex{AccountID: acc.ID}); err != nil {
			return err
		}
		if reference != "" {
			switch err := getIn(ctx, w, KindReference, reference, &ix); {
			case err == nil:
				return agent.Errorf(agent.CodeConflict, "reference: already names account %s", ix.AccountID)
			case !isNotFound(err):
				return err
			}
			if err := w.PutJSON(KindReference, reference, &emailIndex{AccountID: acc.ID}); err != nil {
				return err
			}
		}
		return w.PutJSON(KindAccount, acc.ID, &acc)
	})
	if err != nil {
		return AccountView{}, err
	}
	return acc.view(), nil
}

// AccountByReference returns the account an operator or an exchange
// created with reference, through its index.
func (s *Service) AccountByReference(ctx context.Context, reference string) (AccountView, error) {
	return s.indexed(ctx, KindReference, reference)
}

// AccountByEmail returns the account of a mail address, through its index.
func (s *Service) AccountByEmail(ctx context.Context, email string) (AccountView, error) {
	return s.indexed(ctx, KindEmail, emailKey(email))
}

// indexed returns the account an index entry names.
func (s *Service) indexed(ctx context.Context, kind, key string) (AccountView, error) {
	if key == "" {
		return AccountView{}, errNoAccount
	}
	b, err := s.cfg.Store.Records.Get(ctx, kind, key)
	if err != nil {
		if isNotFound(err) {
			return AccountView{}, errNoAccount
		}
		return AccountView{}, err
	}
	var ix emailIndex
	if err := json.Unmarshal(b, &ix); err != nil {
		return AccountView{}, err
	}
	return s.Account(ctx, ix.AccountID)
}

// Account returns account id.
func (s *Service) Account(ctx context.Context, id string) (AccountView, error) {
	if !validID(id) {
		return AccountView{}, errNoAccount
	}
	b, err := s.cfg.Store.Records.Get(ctx, KindAccount, id)
	if err != nil {
		if isNotFound(err) {
			return AccountView{}, errNoAccount
		}
		return AccountView{}, err
	}
	var acc Account
	if err := json.Unmarshal(b, &acc); err != nil {
		return AccountView{}, err
	}
	return acc.view(), nil
}

// Filter selects accounts in a list: by state, and by a part of the
// address (case-insensitive).
type Filter struct {
	State AccountState
	Email string
}

// Accounts lists accounts in id order after the id after, up to limit.
func (s *Service) Accounts(ctx context.Context, f Filter, after string, limit int) ([]AccountView, error) {
	if f.State != "" && !f.State.Valid() {
		return nil, invalid("state", "must be unclaimed, confirmed, active or disabled")
	}
	needle := strings.ToLower(f.Email)
	var out []AccountView
	for len(out) < limit {
		recs, err := s.cfg.Store.Records.List(ctx, KindAccount, after, 200)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			after = r.ID
			var acc Account
			if json.Unmarshal(r.Value, &acc) != nil {
				continue
			}
			if (f.State == "" || acc.State == f.State) && strings.Contains(strings.ToLower(acc.Email), needle) {
				out = append(out, acc.view())
				if len(out) == limit {
					break
				}
			}
		}
		if len(recs) < 200 {
			break
		}
	}
	return out, nil
}

// Disable disables account id (final): it can no longer be claimed, take
// keys, or be looked up by its DID.
func (s *Service) Disable(ctx context.Context, id string) (AccountView, error) {
	var out AccountView
	err := s.update(ctx, id, func(acc *Account, now time.Time) error {
		if err := acc.moveTo(AccountDisabled, now); err != nil {
			return err
		}
		acc.UploadHash, acc.UploadExpires = nil, time.Time{}
		out = acc.view()
		return nil
	})
	return out, err
}

// Delete deletes account id and its indexes; its address can sign up anew.
func (s *Service) Delete(ctx context.Context, id string) error {
	if !validID(id) {
		return errNoAccount
	}
	return s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		var acc Account
		if err := getIn(ctx, w, KindAccount, id, &acc); err != nil {
			if isNotFound(err) {
				return errNoAccount
			}
			return err
		}
		w.Delete(KindAccount, id)
		w.Delete(KindEmail, emailKey(acc.Email))
		if acc.Reference != "" {
			w.Delete(KindReference, acc.Reference)
		}
		if acc.DID != "" {
			w.Delete(KindDID, acc.DID)
		}
		for _, d := range acc.DIDs {
			w.Delete(KindDID, d.DID)
		}
		return nil
	})
}

// UserByDID returns the account whose DID (the did:key of its EdDSA key)
// is userDID: messages authenticated by that DID come from that user. A
// disabled account is not found.
func (s *Service) UserByDID(ctx context.Context, userDID string) (AccountView, error) {
	b, err := s.cfg.Store.Records.Get(ctx, KindDID, agent.DIDOf(userDID))
	if err != nil {
		if isNotFound(err) {
			return AccountView{}, errNoAccount
		}
		return AccountView{}, err
	}
	var ix didIndex
	if err := json.Unmarshal(b, &ix); err != nil {
		return AccountView{}, err
	}
	v, err := s.Account(ctx, ix.AccountID)
	if err != nil {
		return AccountView{}, err
	}
	if v.State == AccountDisabled {
		return AccountView{}, errNoAccount
	}
	return v, nil
}

// Sweep marks the pending requests past their expiry expired, drops their
// token index, and deletes requests older than retention. It returns how
// many records it changed.
func (s *Service) Sweep(ctx context.Context, retention time.Duration) (int, error) {
	now := s.now()
	n, after := 0, ""
	for {
		recs, err := s.cfg.Store.Records.List(ctx, KindRequest, after, 200)
		if err != nil {
			return n, err
		}
		for _, rec := range recs {
			after = rec.ID
			var r Request
			if json.Unmarshal(rec.Value, &r) != nil {
				continue
			}
			old := now.Sub(r.Expires) > retention
			if !old && r.effective(now) == r.State {
				continue
			}
			err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
				var cur Request
				if err := getIn(ctx, w, KindRequest, r.ID, &cur); err != nil {
					return err
				}
				w.Delete(KindToken, hex.EncodeToString(cur.TokenHash))
				if old {
					w.Delete(KindRequest, r.ID)
					return nil
				}
				if cur.effective(now) != RequestExpired || cur.State != RequestPending {
					return nil
				}
				cur.Reason = "the link was not used in time"
				if err := cur.moveTo(RequestExpired, now); err != nil {
					return err
				}
				return w.PutJSON(KindRequest, r.ID, &cur)
			})
			if err == nil {
				n++
			}
		}
		if len(recs) < 200 {
			return n, nil
		}
	}
}

// notifier wakes long polls of a request.
type notifier struct {
	mu sync.Mutex
	m  map[string][]chan struct{}
}

func (n *notifier) wait(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.m[id] = append(n.m[id], ch)
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		l := n.m[id]
		for i, c := range l {
			if c == ch {
				l = append(l[:i], l[i+1:]...)
				break
			}
		}
		if len(l) == 0 {
			delete(n.m, id)
		} else {
			n.m[id] = l
		}
	}
}

func (n *notifier) notify(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.m[id] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
