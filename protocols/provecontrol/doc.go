// Package provecontrol implements the Prove Control protocol
// (https://fmgp.app/provecontrol/1, as specified and implemented by
// scala-did): a Verifier, a DID that others trust, challenges a User DID to
// prove that it controls another identity (an email address, a domain,
// another DID, a phone number, a Discord account, an IP address or a postal
// address), and confirms it with a signed statement that carries a W3C
// Verifiable Credential.
//
// The four messages, with the snake_case bodies of scala-did:
//
//	requestverification   User -> Verifier  {verification_type, subject}            (optional)
//	verificationchallenge Verifier -> User  {verification_type, subject, secret}    always encrypted; thid = the request's id
//	prove                 User -> Verifier  {verification_type, subject, proof}     thid = the challenge's id
//	confirmverification   Verifier -> User  {verification_type, subject} + VC       signed; thid = the challenge's id
//
// Every message has exactly one DID in to and a from. The proof is the
// lowercase hex SHA-256 of "verifier|user|verification_type|subject|secret"
// (CalculateProof), where verifier is the challenge's from and user its to.
//
// The challenge travels over the channel its verification type names, so
// that only who controls the subject can read the secret: by mail to the
// address (Email), over DIDComm to the user (Domain, where the user then
// publishes the proof in a TXT record named "<challenge id>.<domain>"),
// encrypted to the subject DID's keys at its own endpoint (DID), as a
// one-time link by SMS (Tel) or Discord direct message (Discord), POSTed to
// http://<subject>/.well-known/provecontrol/challenge (IP), or printed in a
// letter the operator mails (Address).
//
// A Service plays both roles; which one handles a message follows from its
// type. The verifier's challenges follow an explicit state machine
// (ChallengeState): pending, then exactly one of confirmed, expired, failed
// (attempts exhausted) or undelivered, never back. The user's received
// challenges follow HeldState: received, proved, then confirmed or rejected.
// Every bad message is answered with a problem report of its own code (see
// the Code constants) and changes nothing, except that a wrong proof from the
// challenged user counts as an attempt. Secrets are never stored: the
// verifier keeps a digest of the expected proof, and nothing secret appears
// in logs, errors or the views the admin API shows.
//
// Intake (intake.go) takes challenges that reach the user outside the
// DIDComm endpoint: a one-time link it fetches, a mail or packed message the
// operator imports, or a POST to the well-known challenge path.
package provecontrol
