// Package users keeps the agent's user accounts, as Zenflows' user creation
// describes them: a person asks to create or claim an account with a name
// and a mail address, confirms it by a one-time link mailed to that
// address, and then uploads only the public keys of a keyring their own
// front end made (the agent never holds a user's secret keys).
//
// Two records have explicit states that only move forward (state.go): a
// sign-up request (pending → confirmed | expired) and an account
// (unclaimed → confirmed → active, or disabled by an operator). Everything
// is stored through the agent's unit of work (agent.Store.Update): a
// request, its token index and its confirmation mail (queued in the
// outbox) commit together or not at all.
//
// One-time tokens (the confirmation link's and the key upload's) are 256
// random bits; only their SHA-256 is stored, they are compared in constant
// time, and they are never logged or put into an error.
package users
