package users

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
)

// Record kinds in agent.Records.
const (
	KindRequest = "user-request" // Request, by id
	KindAccount = "user-account" // Account, by id
	KindToken   = "user-token"   // tokenIndex, by the hex SHA-256 of a confirmation token
	KindEmail   = "user-email"   // emailIndex, by the lower-cased address
	// KindReference indexes accounts by the reference an operator or an
	// exchange gave them (an emailIndex, by the reference).
	KindReference = "user-reference"
	KindDID       = "user-did" // didIndex, by DID
)

// Request is a sign-up request as stored. It holds no token: only the
// SHA-256 of the confirmation token.
type Request struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Email   string       `json:"email"`
	State   RequestState `json:"state"`
	Created time.Time    `json:"created"`
	Expires time.Time    `json:"expires"`
	Updated time.Time    `json:"updated"`
	// Reason explains an expired request that was refused at confirmation.
	Reason string `json:"reason,omitempty"`
	// TokenHash is the SHA-256 of the confirmation token.
	TokenHash []byte `json:"token_hash"`
	// AccountID is the account created or claimed on confirmation.
	AccountID string `json:"account_id,omitempty"`
	// Claimed tells that the confirmation claimed an existing account.
	Claimed bool `json:"claimed,omitempty"`
	// UploadIssued tells that the key-upload token was handed out (once).
	UploadIssued bool `json:"upload_issued,omitempty"`
}

func (r *Request) moveTo(next RequestState, at time.Time) error {
	if !r.State.CanMoveTo(next) {
		return transitionError(r.State, next)
	}
	r.State, r.Updated = next, at
	return nil
}

// effective is the state as of now: a pending request past its expiry is expired.
func (r *Request) effective(now time.Time) RequestState {
	if r.State == RequestPending && !now.Before(r.Expires) {
		return RequestExpired
	}
	return r.State
}

// Account is a user account as stored.
type Account struct {
	ID        string       `json:"id"`
	Email     string       `json:"email"`
	Name      string       `json:"name,omitempty"`
	Reference string       `json:"reference,omitempty"`
	State     AccountState `json:"state"`
	Created   time.Time    `json:"created"`
	Updated   time.Time    `json:"updated"`
	Confirmed time.Time    `json:"confirmed,omitzero"`
	// Keys are the public keys as received and what was checked.
	Keys *CheckedKeys `json:"keys,omitempty"`
	// DID is the did:key derived from the EdDSA key.
	DID string `json:"did,omitempty"`
	// DIDs are the other DIDs the user registered (DID registration).
	DIDs []DIDView `json:"dids,omitempty"`
	// UploadHash and UploadExpires are the current key-upload token's
	// SHA-256 and expiry, while there is one.
	UploadHash    []byte    `json:"upload_hash,omitempty"`
	UploadExpires time.Time `json:"upload_expires,omitzero"`
}

func (a *Account) moveTo(next AccountState, at time.Time) error {
	if !a.State.CanMoveTo(next) {
		return transitionError(a.State, next)
	}
	a.State, a.Updated = next, at
	return nil
}

// AccountView is what the APIs show of an account: no token hash.
type AccountView struct {
	ID        string       `json:"id"`
	Email     string       `json:"email"`
	Name      string       `json:"name,omitempty"`
	Reference string       `json:"reference,omitempty"`
	State     AccountState `json:"state"`
	Created   time.Time    `json:"created"`
	Updated   time.Time    `json:"updated"`
	Confirmed time.Time    `json:"confirmed,omitzero"`
	DID       string       `json:"did,omitempty"`
	DIDs      []DIDView    `json:"dids,omitempty"`
	Keys      *PublicKeys  `json:"keys,omitempty"`
	Checks    []KeyCheck   `json:"checks,omitempty"`
}

func (a *Account) view() AccountView {
	v := AccountView{ID: a.ID, Email: a.Email, Name: a.Name, Reference: a.Reference, State: a.State,
		Created: a.Created, Updated: a.Updated, Confirmed: a.Confirmed, DID: a.DID, DIDs: a.DIDs}
	if a.Keys != nil {
		k := a.Keys.Received
		v.Keys, v.Checks = &k, a.Keys.Checks
	}
	return v
}

type tokenIndex struct {
	RequestID string `json:"request_id"`
}

type emailIndex struct {
	AccountID string `json:"account_id"`
}

type didIndex struct {
	AccountID string `json:"account_id"`
}

// tokenBytes is the size of a token: 256 random bits, 43 base64url characters.
const tokenBytes = 32

func newToken() string {
	b := make([]byte, tokenBytes)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(token string) []byte {
	s := sha256.Sum256([]byte(token))
	return s[:]
}

func tokenKey(token string) string { return hex.EncodeToString(hashToken(token)) }

// validToken reports whether token looks like one newToken makes.
func validToken(token string) bool {
	if len(token) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(token)
	return err == nil
}

// sameToken compares a token with a stored hash in constant time.
func sameToken(token string, hash []byte) bool {
	return len(hash) == sha256.Size && subtle.ConstantTimeCompare(hashToken(token), hash) == 1
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func emailKey(addr string) string { return strings.ToLower(addr) }

func getIn(ctx context.Context, w *agent.Work, kind, id string, v any) error {
	b, err := w.Get(ctx, kind, id)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func isNotFound(err error) bool { return errors.Is(err, agent.ErrNotFound) }
