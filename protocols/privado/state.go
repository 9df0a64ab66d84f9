package privado

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// State is the state of an interaction (the seed's names).
type State string

// The interaction states.
const (
	StateProofRequest    State = "ProofRequest"
	StateGivenConsent    State = "GivenConsent"
	StateNotGivenConsent State = "NotGivenConsent"
	StateProofShared     State = "ProofShared"
	StateExpired         State = "Expired"
	StateFailed          State = "Failed"
)

// ErrTransition is returned (wrapped) for a state change the table does
// not allow.
var ErrTransition = errors.New("privado: state transition not allowed")

// transitions is the forward-only transition table.
var transitions = map[State][]State{
	StateProofRequest: {StateGivenConsent, StateNotGivenConsent, StateExpired},
	StateGivenConsent: {StateProofShared, StateExpired, StateFailed},
}

// Valid reports whether s is a state.
func (s State) Valid() bool {
	switch s {
	case StateProofRequest, StateGivenConsent, StateNotGivenConsent, StateProofShared, StateExpired, StateFailed:
		return true
	}
	return false
}

// Final reports whether no transition leaves s.
func (s State) Final() bool { return len(transitions[s]) == 0 }

// CanMoveTo reports whether the table allows s -> next.
func (s State) CanMoveTo(next State) bool { return slices.Contains(transitions[s], next) }

// Transition is one recorded state change: what caused it and when.
type Transition struct {
	From  State     `json:"from,omitempty"`
	To    State     `json:"to"`
	At    time.Time `json:"at"`
	Cause string    `json:"cause"`
}

// moveTo changes the state as the table allows and records why.
func (in *Interaction) moveTo(next State, at time.Time, cause string) error {
	if !in.State.CanMoveTo(next) {
		return fmt.Errorf("%w: %s -> %s", ErrTransition, in.State, next)
	}
	in.History = append(in.History, Transition{From: in.State, To: next, At: at, Cause: cause})
	in.State, in.Updated = next, at
	return nil
}
