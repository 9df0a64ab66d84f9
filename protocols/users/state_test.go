package users

import "testing"

func TestTransitionsOnlyForward(t *testing.T) {
	for _, c := range []struct {
		from, to AccountState
		ok       bool
	}{
		{AccountUnclaimed, AccountConfirmed, true},
		{AccountConfirmed, AccountActive, true},
		{AccountActive, AccountDisabled, true},
		{AccountUnclaimed, AccountDisabled, true},
		{AccountActive, AccountConfirmed, false},
		{AccountConfirmed, AccountUnclaimed, false},
		{AccountDisabled, AccountActive, false},
		{AccountDisabled, AccountUnclaimed, false},
		{AccountUnclaimed, AccountActive, false},
	} {
		if got := c.from.CanMoveTo(c.to); got != c.ok {
			t.Errorf("%s → %s: %v, want %v", c.from, c.to, got, c.ok)
		}
	}
	for _, c := range []struct {
		from, to RequestState
		ok       bool
	}{
		{RequestPending, RequestConfirmed, true},
		{RequestPending, RequestExpired, true},
		{RequestConfirmed, RequestPending, false},
		{RequestExpired, RequestConfirmed, false},
		{RequestConfirmed, RequestExpired, false},
	} {
		if got := c.from.CanMoveTo(c.to); got != c.ok {
			t.Errorf("%s → %s: %v, want %v", c.from, c.to, got, c.ok)
		}
	}
}
