package provecontrol

import (
	"errors"
	"fmt"
	"slices"
)

// ErrTransition is returned (wrapped) for a state change the state machine
// does not allow, such as leaving a final state or going back.
var ErrTransition = errors.New("provecontrol: state transition not allowed")

// ChallengeState is the state of a challenge the verifier issued.
//
//	pending ──> confirmed    the right proof came in time (at most once)
//	        ──> expired      the expiry passed
//	        ──> failed       the attempts ran out
//	        ──> undelivered  the channel refused the challenge
//
// Every state but pending is final.
type ChallengeState string

// The challenge states.
const (
	StatePending     ChallengeState = "pending"
	StateConfirmed   ChallengeState = "confirmed"
	StateExpired     ChallengeState = "expired"
	StateFailed      ChallengeState = "failed"
	StateUndelivered ChallengeState = "undelivered"
)

// challengeTransitions is the verifier's transition table.
var challengeTransitions = map[ChallengeState][]ChallengeState{
	StatePending: {StateConfirmed, StateExpired, StateFailed, StateUndelivered},
}

// Valid reports whether s is a challenge state.
func (s ChallengeState) Valid() bool {
	switch s {
	case StatePending, StateConfirmed, StateExpired, StateFailed, StateUndelivered:
		return true
	}
	return false
}

// Final reports whether no transition leaves s.
func (s ChallengeState) Final() bool { return len(challengeTransitions[s]) == 0 }

// CanMoveTo reports whether the table allows s -> next.
func (s ChallengeState) CanMoveTo(next ChallengeState) bool {
	return slices.Contains(challengeTransitions[s], next)
}

// HeldState is the state of a challenge the user received.
//
//	received ──> proved ──> confirmed   the verifier confirmed (credential stored)
//	                    ──> proved      the prove was sent again (after an e.m problem)
//	                    ──> rejected    the verifier answered with an e.p problem
//
// confirmed and rejected are final.
type HeldState string

// The held-challenge states.
const (
	HeldReceived  HeldState = "received"
	HeldProved    HeldState = "proved"
	HeldConfirmed HeldState = "confirmed"
	HeldRejected  HeldState = "rejected"
)

// heldTransitions is the user's transition table.
var heldTransitions = map[HeldState][]HeldState{
	HeldReceived: {HeldProved},
	HeldProved:   {HeldProved, HeldConfirmed, HeldRejected},
}

// Final reports whether no transition leaves s.
func (s HeldState) Final() bool { return len(heldTransitions[s]) == 0 }

// CanMoveTo reports whether the table allows s -> next.
func (s HeldState) CanMoveTo(next HeldState) bool {
	return slices.Contains(heldTransitions[s], next)
}

func transitionError[S ~string](from, to S) error {
	return fmt.Errorf("%w: %s -> %s", ErrTransition, from, to)
}
