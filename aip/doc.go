// Package aip is the vocabulary of the agent's cloud-agent admin API (the
// "Aries Interop Profile" exchanges of seed 004): connections and their
// exchanges, basic messages, held credentials, AnonCreds schemas and
// credential definitions, credential exchanges and proof exchanges, as
// the GraphQL admin API shows them, and the service interfaces that API
// resolves onto.
//
// The package holds types and interfaces only, like agent/: the DIDComm
// protocols that implement the services live in protocols/ (connections,
// basic messages, Issue Credential 3.0, Present Proof 3.0) and the GraphQL
// mount in transport/graphql. Errors are *agent.Error values: each
// transport maps their codes onto its own statuses (the GraphQL layer onto
// extensions.code, see ErrorKind).
//
// Every record has a UUID id and ISO 8601 timestamps; states move only
// forward (see the transition tables in states.go). Listings page newest
// first with an opaque, stable nextToken.
package aip
