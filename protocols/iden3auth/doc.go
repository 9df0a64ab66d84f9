// Package iden3auth is agentd as an iden3comm verifier: the authorization
// protocol of iden3 / Privado ID wallets
// (https://iden3-communication.io/authorization/1.0/request and
// .../response), with zero-knowledge proofs checked against the chain.
//
// A verification session is one authorization request the operator made:
//
//	Create   stores the request (id = thid = a random UUID, callbackUrl
//	         pointing back at agentd, the verifier DID of the chosen chain)
//	         as a pending Session;
//	Request  serves it to the wallet (request_uri, QR code);
//	Verify   takes the wallet's answer, a JWZ-packed authorization
//	         response, and records the verdict.
//
// Verify accepts an answer only when go-iden3-auth's FullVerify passes
// with the stored request (the JWZ authV2 proof and the GIST root on
// chain; for every requested scope the credential proof, its requestID,
// the query, the issuer's states on chain, the proof's age) and, which the
// library does not check, the response's thid is the request's, it
// answers no scope that was not requested, and the session is still
// pending and unexpired. The verified result, the state change, the
// replay key of the response and the operator's webhook are committed in
// one unit of work: each response is accepted once, and a refused
// response changes nothing. Other services react to verdicts in that same
// unit of work through verdict hooks (OnVerdict; protocols/privado moves
// its interaction and queues the exchange's callback there), and Recheck
// verifies an accepted token again, against the chain as it is now,
// changing nothing.
//
// A session's states (see State):
//
//	pending ──> verified    a response passed every check (final)
//	        ──> failed      reserved for a verdict against the user (final)
//	        ──> cancelled   the operator cancelled it (final)
//	        ──> expired     its expiry passed (final; a pending session past
//	                        its expiry is shown as expired)
package iden3auth
