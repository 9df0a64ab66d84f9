package users

import (
	"github.com/agentd/agentd/agent"
)

// RequestState is the state of a sign-up request.
type RequestState string

// Sign-up request states.
const (
	// RequestPending: the confirmation mail is out, the link not yet used.
	RequestPending RequestState = "pending"
	// RequestConfirmed: the link was used and the account created or claimed.
	RequestConfirmed RequestState = "confirmed"
	// RequestExpired: the link was not used in time, or could not be used
	// (the address's account was confirmed already, or disabled).
	RequestExpired RequestState = "expired"
)

var requestMoves = map[RequestState][]RequestState{
	RequestPending: {RequestConfirmed, RequestExpired},
}

// CanMoveTo reports whether the transition table allows s → next.
func (s RequestState) CanMoveTo(next RequestState) bool { return allowed(requestMoves[s], next) }

// AccountState is the state of an account.
type AccountState string

// Account states.
const (
	// AccountUnclaimed: an operator created it; nobody confirmed the address yet.
	AccountUnclaimed AccountState = "unclaimed"
	// AccountConfirmed: the address is confirmed; no keys yet.
	AccountConfirmed AccountState = "confirmed"
	// AccountActive: the user's public keys are stored.
	AccountActive AccountState = "active"
	// AccountDisabled: an operator disabled it (final).
	AccountDisabled AccountState = "disabled"
)

var accountMoves = map[AccountState][]AccountState{
	AccountUnclaimed: {AccountConfirmed, AccountDisabled},
	AccountConfirmed: {AccountActive, AccountDisabled},
	AccountActive:    {AccountDisabled},
}

// CanMoveTo reports whether the transition table allows s → next.
func (s AccountState) CanMoveTo(next AccountState) bool { return allowed(accountMoves[s], next) }

// Valid reports whether s is one of the account states.
func (s AccountState) Valid() bool {
	switch s {
	case AccountUnclaimed, AccountConfirmed, AccountActive, AccountDisabled:
		return true
	}
	return false
}

func allowed[S comparable](moves []S, next S) bool {
	for _, m := range moves {
		if m == next {
			return true
		}
	}
	return false
}

// transitionError is the conflict of a move the table refuses.
func transitionError[S ~string](from, to S) error {
	return agent.Errorf(agent.CodeConflict, "cannot go from %s to %s", from, to)
}

// invalid is the error of a bad input field: it names the field.
func invalid(field, reason string) error {
	return agent.Errorf(agent.CodeMsg, "%s: %s", field, reason)
}
