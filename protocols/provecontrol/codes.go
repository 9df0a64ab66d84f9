package provecontrol

// Problem codes of Prove Control. Each failure has its own, so that a wallet
// can tell what went wrong. They follow Report Problem 2.0: "e.p" codes end
// the exchange (a new request is needed), "e.m" codes fail only the message
// (the user may send a corrected prove while the challenge is pending). The
// descriptors start with the registered ones (msg, trust, req, xfer).
const (
	// CodeTo: to does not hold exactly one DID.
	CodeTo = "e.p.msg.provecontrol.to"
	// CodeFrom: from is missing.
	CodeFrom = "e.p.msg.provecontrol.from"
	// CodeThread: prove or confirmverification without thid.
	CodeThread = "e.p.msg.provecontrol.thid"
	// CodeBody: the body is malformed or lacks a member.
	CodeBody = "e.p.msg.provecontrol.body"
	// CodeVerificationType: verification_type is not one of the seven.
	CodeVerificationType = "e.p.msg.provecontrol.verification-type"
	// CodeSubject: the subject is not valid for its type (not an email
	// address, a domain, a DID with an endpoint, a phone number in E.164, a
	// Discord user id, a public IP address, a postal address).
	CodeSubject = "e.p.msg.provecontrol.subject"
	// CodeUnauthenticated: a request or prove whose sender is not
	// authenticated (neither authcrypted nor signed by from).
	CodeUnauthenticated = "e.p.trust.provecontrol.unauthenticated"
	// CodeTypeUnavailable: the verifier does not offer this verification
	// type (its channel is not configured).
	CodeTypeUnavailable = "e.p.req.provecontrol.type-unavailable"
	// CodeTooManyPending: the user or the subject already has the most
	// pending challenges the verifier allows.
	CodeTooManyPending = "e.p.req.provecontrol.too-many-pending"
	// CodeDelivery: the challenge could not be handed to its channel.
	CodeDelivery = "e.p.xfer.provecontrol.delivery"
	// CodeUnknownChallenge: thid names no challenge (of this verifier, or
	// held by this user).
	CodeUnknownChallenge = "e.p.msg.provecontrol.unknown-challenge"
	// CodeWrongUser: the prove comes from a DID other than the challenged user.
	CodeWrongUser = "e.p.trust.provecontrol.wrong-user"
	// CodeTypeMismatch: the prove's verification_type is not the challenge's.
	CodeTypeMismatch = "e.m.msg.provecontrol.type-mismatch"
	// CodeSubjectMismatch: the prove's subject is not the challenge's.
	CodeSubjectMismatch = "e.m.msg.provecontrol.subject-mismatch"
	// CodeWrongProof: the proof does not match; it counts as an attempt.
	CodeWrongProof = "e.m.trust.provecontrol.wrong-proof"
	// CodeDNSRecord: Domain: no TXT record "<challenge id>.<domain>" holds
	// the proof; it counts as an attempt.
	CodeDNSRecord = "e.m.trust.provecontrol.dns-record"
	// CodeDNSLookup: Domain: the TXT lookup failed (server failure,
	// timeout); it does not count as an attempt.
	CodeDNSLookup = "e.m.xfer.provecontrol.dns-lookup"
	// CodeExpired: the challenge expired.
	CodeExpired = "e.p.req.time.provecontrol.expired"
	// CodeAttemptsExhausted: the challenge failed after too many wrong proofs.
	CodeAttemptsExhausted = "e.p.req.provecontrol.attempts-exhausted"
	// CodeAlreadyConfirmed: the challenge succeeded before; it succeeds at
	// most once (a replayed prove).
	CodeAlreadyConfirmed = "e.p.req.provecontrol.already-confirmed"
	// CodeUnencrypted: a verificationchallenge that was not encrypted.
	CodeUnencrypted = "e.p.trust.crypto.provecontrol.unencrypted"
	// CodeUnsigned: a confirmverification that was not signed by its from.
	CodeUnsigned = "e.p.trust.provecontrol.unsigned"
	// CodeCredential: the credential attached to a confirmverification is
	// missing or does not verify.
	CodeCredential = "e.p.trust.provecontrol.credential"
	// CodeWrongVerifier: a confirmverification from a DID other than the
	// challenge's verifier.
	CodeWrongVerifier = "e.p.trust.provecontrol.wrong-verifier"
	// CodeRequestMismatch: a challenge answering our request with another
	// verifier, type or subject than we asked for.
	CodeRequestMismatch = "e.p.msg.provecontrol.request-mismatch"
	// CodeNotProved: a confirmverification for a challenge we never proved,
	// or one already confirmed.
	CodeNotProved = "e.p.msg.provecontrol.not-proved"
)
