package privado

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/agentd/agentd/agent"
)

// Record kinds (agent.Records).
const (
	KindExchange    = "privado-exchange"    // Exchange, by id
	KindAPIKey      = "privado-apikey"      // keyIndex, by the hex SHA-256 of an API key
	KindInteraction = "privado-interaction" // Interaction, by id (ids sort by creation)
	KindToken       = "privado-token"       // tokenIndex, by the hex SHA-256 of a consent token
	KindSession     = "privado-session"     // sessionIndex, by iden3 session id
	// The interaction indexes (index.go): newest first, all of them, by
	// user and by exchange; and the undecided ones by consent expiry.
	KindNewest     = "privado-newest"
	KindByUser     = "privado-by-user"
	KindByExchange = "privado-by-exchange"
	KindPending    = "privado-pending"
)

// ExchangeState is the state of an exchange.
type ExchangeState string

// The exchange states: disabled is final (its key no longer works).
const (
	ExchangeActive   ExchangeState = "active"
	ExchangeDisabled ExchangeState = "disabled"
)

// Exchange is a registered exchange (VASP) as stored.
type Exchange struct {
	ID                string         `json:"id"`
	Name              string         `json:"name"`
	CallbackAllowList []string       `json:"callback_allow_list"`
	ProofTemplate     map[string]any `json:"proof_template,omitempty"`
	State             ExchangeState  `json:"state"`
	// KeyHash is the hex SHA-256 of the API key.
	KeyHash string `json:"key_hash"`
	// SealedSecret is the HMAC secret sealed under the store's master key
	// (additional data: "privado-exchange:" + ID).
	SealedSecret []byte    `json:"sealed_secret"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
	KeysRotated  time.Time `json:"keys_rotated"`
}

// ExchangeView is what the APIs show of an exchange: no key, no secret.
type ExchangeView struct {
	ID                string         `json:"id"`
	Name              string         `json:"name"`
	CallbackAllowList []string       `json:"callback_allow_list"`
	ProofTemplate     map[string]any `json:"proof_template,omitempty"`
	State             ExchangeState  `json:"state"`
	Created           time.Time      `json:"created"`
	Updated           time.Time      `json:"updated"`
	KeysRotated       time.Time      `json:"keys_rotated"`
}

func (e *Exchange) view() ExchangeView {
	return ExchangeView{ID: e.ID, Name: e.Name, CallbackAllowList: e.CallbackAllowList, ProofTemplate: e.ProofTemplate,
		State: e.State, Created: e.Created, Updated: e.Updated, KeysRotated: e.KeysRotated}
}

// Credentials are an exchange's API key and HMAC secret, shown once.
type Credentials struct {
	ID         string `json:"id"`
	APIKey     string `json:"api_key"`
	HMACSecret string `json:"hmac_secret"`
}

// SharedProof is the verified proof of an interaction.
type SharedProof struct {
	// Kind is "mtp" (the full proof) or "sig" (the signature proof).
	Kind      string `json:"proofKind"`
	CircuitID string `json:"circuitId"`
	// Token is the wallet's JWZ authorization response.
	Token      string    `json:"proof"`
	Issuer     string    `json:"issuer,omitempty"`
	UserDID    string    `json:"userDid,omitempty"`
	VerifiedAt time.Time `json:"verifiedAt"`
}

// Interaction is one proof request as stored.
type Interaction struct {
	ID           string `json:"id"`
	ExchangeID   string `json:"vasp_id"`
	ExchangeName string `json:"vasp_name"`
	UserID       string `json:"user_id"`
	// UserReference is the reference as the exchange gave it.
	UserReference string         `json:"userReference"`
	Challenge     uint32         `json:"challenge"`
	Callback      string         `json:"callback"`
	Query         map[string]any `json:"query"`
	State         State          `json:"state"`
	History       []Transition   `json:"history"`
	Created       time.Time      `json:"created"`
	Updated       time.Time      `json:"updated"`
	// ConsentExpires is when the consent link expires.
	ConsentExpires time.Time `json:"consent_expires"`
	// SessionID is the iden3 session made on consent; ProofExpires its expiry.
	SessionID    string       `json:"session_id,omitempty"`
	ProofExpires time.Time    `json:"proof_expires,omitzero"`
	Proof        *SharedProof `json:"proof,omitempty"`
}

// Effective is the state as of now: an undecided interaction past its
// consent expiry is expired.
func (in *Interaction) Effective(now time.Time) State {
	if in.State == StateProofRequest && !now.Before(in.ConsentExpires) {
		return StateExpired
	}
	if in.State == StateGivenConsent && !in.ProofExpires.IsZero() && !now.Before(in.ProofExpires) {
		return StateExpired
	}
	return in.State
}

// InteractionView is what the APIs show of an interaction.
type InteractionView struct {
	ID             string       `json:"id"`
	VASPID         string       `json:"vasp_id"`
	VASPName       string       `json:"vasp_name"`
	UserReference  string       `json:"userReference"`
	Challenge      uint32       `json:"challenge"`
	State          State        `json:"state"`
	What           string       `json:"what"`
	Created        time.Time    `json:"created"`
	Updated        time.Time    `json:"updated"`
	ConsentExpires time.Time    `json:"consentExpires"`
	ProofExpires   time.Time    `json:"proofExpires,omitzero"`
	ProofKind      string       `json:"proofKind,omitempty"`
	CircuitID      string       `json:"circuitId,omitempty"`
	Issuer         string       `json:"issuer,omitempty"`
	VerifiedAt     *time.Time   `json:"verifiedAt,omitempty"`
	History        []Transition `json:"history"`
}

// View is the interaction as of now.
func (in *Interaction) View(now time.Time) InteractionView {
	v := InteractionView{ID: in.ID, VASPID: in.ExchangeID, VASPName: in.ExchangeName, UserReference: in.UserReference,
		Challenge: in.Challenge, State: in.Effective(now), What: Describe(in.Query), Created: in.Created, Updated: in.Updated,
		ConsentExpires: in.ConsentExpires, ProofExpires: in.ProofExpires, History: in.History}
	if p := in.Proof; p != nil {
		at := p.VerifiedAt
		v.ProofKind, v.CircuitID, v.Issuer, v.VerifiedAt = p.Kind, p.CircuitID, p.Issuer, &at
	}
	return v
}

type keyIndex struct {
	ExchangeID string `json:"exchange_id"`
}

type tokenIndex struct {
	InteractionID string    `json:"interaction_id"`
	UserID        string    `json:"user_id"`
	Expires       time.Time `json:"expires"`
}

type sessionIndex struct {
	InteractionID string `json:"interaction_id"`
}

// secretBytes is the size of tokens, API keys and HMAC secrets: 256 bits,
// 43 base64url characters.
const secretBytes = 32

func newSecret() string {
	b := make([]byte, secretBytes)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validSecret reports whether s looks like one newSecret makes.
func validSecret(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

func hashKey(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// newExchangeID is 16 random bytes in hex.
func newExchangeID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newInteractionID is the creation time (Unix nanoseconds, big-endian)
// and 8 random bytes, in hex: ids sort by creation.
func newInteractionID(now time.Time) string {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(now.UnixNano()))
	rand.Read(b[8:])
	return hex.EncodeToString(b)
}

func validHexID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && id == stringsToLower(id)
}

func stringsToLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func getIn(ctx context.Context, w *agent.Work, kind, id string, v any) error {
	b, err := w.Get(ctx, kind, id)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func isNotFound(err error) bool { return errors.Is(err, agent.ErrNotFound) }
