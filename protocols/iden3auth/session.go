package iden3auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/iden3/iden3comm/v2/protocol"
)

// KindSession is the agent.Records kind of verification sessions, by
// session id.
const KindSession = "iden3-session"

// ErrTransition is returned (wrapped) for a state change the table does
// not allow, such as leaving a final state.
var ErrTransition = errors.New("iden3auth: state transition not allowed")

// State is the state of a verification session.
type State string

// The session states.
const (
	StatePending   State = "pending"
	StateVerified  State = "verified"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
	StateExpired   State = "expired"
)

// transitions is the transition table: every state but pending is final.
var transitions = map[State][]State{
	StatePending: {StateVerified, StateFailed, StateCancelled, StateExpired},
}

// Valid reports whether s is a session state.
func (s State) Valid() bool {
	switch s {
	case StatePending, StateVerified, StateFailed, StateCancelled, StateExpired:
		return true
	}
	return false
}

// Final reports whether no transition leaves s.
func (s State) Final() bool { return len(transitions[s]) == 0 }

// CanMoveTo reports whether the table allows s -> next.
func (s State) CanMoveTo(next State) bool { return slices.Contains(transitions[s], next) }

// Session is a verification session as stored: the authorization request
// served to the wallet and, once answered, the verdict.
type Session struct {
	ID string `json:"id"`
	// Chain is the "blockchain:network" whose verifier DID sent the request.
	Chain   string                               `json:"chain"`
	Request protocol.AuthorizationRequestMessage `json:"request"`
	State   State                                `json:"state"`
	// Reason explains a final state other than verified (no secrets).
	Reason  string    `json:"reason,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Updated time.Time `json:"updated"`
	// Result is the verified result, set with the verified state.
	Result *Result `json:"result,omitempty"`
	// ResponseID is the id of the accepted response message.
	ResponseID string `json:"response_id,omitempty"`
	// MaxRefusals is the number of refused answers that fail the session
	// (0: no limit); Refusals counts them while it is above 0.
	MaxRefusals int `json:"max_refusals,omitempty"`
	Refusals    int `json:"refusals,omitempty"`
	// Token is the accepted response (the wallet's JWZ token) as the
	// verdict hooks see it; it is not stored with the session.
	Token string `json:"-"`
}

// moveTo changes the state as the transition table allows.
func (s *Session) moveTo(next State, at time.Time, reason string) error {
	if !s.State.CanMoveTo(next) {
		return fmt.Errorf("%w: %s -> %s", ErrTransition, s.State, next)
	}
	s.State, s.Updated, s.Reason = next, at, reason
	return nil
}

// Effective is the state as of now: a pending session past its expiry is
// expired.
func (s *Session) Effective(now time.Time) State {
	if s.State == StatePending && !now.Before(s.Expires) {
		return StateExpired
	}
	return s.State
}

// View is the session as of now (State is the effective state).
func (s Session) View(now time.Time) Session {
	s.State = s.Effective(now)
	return s
}

// Result is what a verified response proved.
type Result struct {
	// UserDID is the DID of the user whose wallet answered (the response's
	// from, proved by the authV2 proof).
	UserDID string `json:"user_did"`
	// Scopes are the verified proofs, one per answered scope.
	Scopes   []ScopeResult `json:"scopes"`
	Verified time.Time     `json:"verified"`
}

// Proof kinds, from the verified proof: the circuit for the V2 circuits,
// the proofType public signal for V3.
const (
	ProofKindSig = "sig" // BJJSignature2021: the issuer signed the claim
	ProofKindMTP = "mtp" // Iden3SparseMerkleTreeProof: the claim is in the issuer's published tree
)

// ScopeResult is one verified credential proof.
type ScopeResult struct {
	ID        uint32 `json:"id"`
	CircuitID string `json:"circuitId"`
	// ProofKind is sig or mtp (empty for circuits without an issuer
	// credential proof, such as linkedMultiQuery).
	ProofKind string `json:"proofKind,omitempty"`
	// Issuer is the DID of the credential's issuer.
	Issuer string `json:"issuer,omitempty"`
	// Timestamp is when the proof was made (its timestamp signal, Unix seconds).
	Timestamp int64 `json:"timestamp,omitempty"`
	// VerifiablePresentation holds the disclosed values of a
	// selective-disclosure request, as the wallet presented them.
	VerifiablePresentation json.RawMessage `json:"vp,omitempty"`
	// OperatorOutput is the V3 operatorOutput signal (the disclosed value
	// of a non-merklized selective disclosure), as a decimal string.
	OperatorOutput string `json:"operatorOutput,omitempty"`
	// Nullifier is the V3 nullifier (decimal), when a nullifierSessionId was asked.
	Nullifier string `json:"nullifier,omitempty"`
	// LinkID is the V3 / linkedMultiQuery linkID (decimal), when nonzero.
	LinkID string `json:"linkId,omitempty"`
}
