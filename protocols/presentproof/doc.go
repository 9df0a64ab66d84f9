// Package presentproof is Present Proof 3.0
// (https://didcomm.org/present-proof/3.0) in both roles, as the cloud
// agent's proof exchanges (aip.ProofExchanges, seed 004): a VERIFIER
// requests a presentation from a connection and verifies it; a PROVER
// receives a request, lists the held credentials that can answer each
// referent and presents.
//
// Messages: propose-presentation, request-presentation (will_confirm),
// presentation, ack, and Report Problem 2.0 problem reports whose pthid is
// the exchange's thread (HandleProblem, ProblemReports; a problem-report
// typed under this protocol's PIURI is taken too). Attachment formats: W3C
// through DIF Presentation Exchange (dif/presentation-exchange/
// definitions@v1.0 and submission@v1.0, see W3C), AnonCreds
// (anoncreds/proof-request@v1.0, anoncreds/proof@v1.0; hlindy/proof-req@v2.0
// and hlindy/proof@v2.0 accepted, and answered in kind).
//
// States follow the seed's table (aip.CanMove): role fixed, never
// backwards, each transition stored with the message that caused it and
// the messages it sends in one unit of work: the handler's in.Work for
// inbound messages, one agent.Store.Update for API calls (packed with the
// Messenger beforehand, the state checked again inside the update).
//
//	VERIFIER: SendRequest → REQUEST; propose-presentation → PROPOSAL,
//	          RequestFromProposal → REQUEST; presentation → PRESENTED; once
//	          that is committed the presentation is verified and the exchange
//	          goes to DONE with verificationResult VERIFIED or NOT_VERIFIED
//	          and the reasons (a failed verification is NOT_VERIFIED, never
//	          ABANDONED). When the request asked for confirmation
//	          (Config.WillConfirm), DONE also sends an ack (VERIFIED) or a
//	          problem report e.p.msg.presentation-not-verified (NOT_VERIFIED).
//	PROVER:   request-presentation → REQUEST; SendProposal → PROPOSAL (a
//	          request on its thread → REQUEST); AcceptRequest → PRESENTED,
//	          then DONE on the ack, or DONE at once when no confirmation was
//	          asked for.
//	both:     a problem report received abandons a live exchange (errorMessage
//	          says why); Delete sends a problem report e.p.req.abandoned when
//	          the exchange is live, then deletes it.
//
// Messages are taken only from an authenticated sender with a connection,
// and only on that connection's threads. Listings read indexes (newest
// first, by role and state, by connection, by both) and merge them, so a
// filtered page reads about what it returns; the next token is the last
// sort key, stable under concurrent inserts.
//
// Not supported (refused, never faked): AnonCreds non-revocation proofs (a
// request that needs one for a revocable credential: AcceptRequest fails
// with e.p.msg.unsupported; a presentation carrying one is NOT_VERIFIED),
// DIF limit_disclosure "required" (PREDICATE attributes of a W3C request),
// counter-proposals (a proposal on a live thread), links-only attachments.
package presentproof
