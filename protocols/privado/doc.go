// Package privado is the proof-request service between exchanges (VASPs)
// and their users (seed 000): an exchange asks for a zero-knowledge proof
// about one of its users, bound to a challenge it chose; the user is mailed
// a consent link and gives or refuses consent; on consent the user's iden3
// wallet answers an authorization request of the iden3 verifier
// (protocols/iden3auth) and the verified proof is posted to the exchange's
// callback; the exchange can have a proof verified again later.
//
// An Exchange is registered by an operator with a callback allow-list and a
// proof template (the iden3 query: credential type, schema, allowed
// issuers, conditions). Its API key is stored as a SHA-256 only; its HMAC
// secret, which signs the callbacks, is sealed at rest (Sealer) and shown
// once, with the key, when it is made.
//
// An Interaction is one proof request. Its states only move forward:
//
//	ProofRequest ──> GivenConsent ──> ProofShared
//	             ──> NotGivenConsent
//	             ──> Expired          (no decision before the consent link expired)
//	GivenConsent ──> Expired          (no verified answer before the iden3 request expired)
//	             ──> Failed           (Config.MaxAttempts answers of the wallet refused, or
//	                                   its verified answer held no credential proof)
//
// Each transition is recorded in the interaction's history with its cause
// and time, in the same unit of work (agent.Store.Update) as everything it
// causes: the consent mail, the iden3 session index, the callback to the
// exchange (queued in the outbox, so it is durable, retried and
// dead-lettered). The verdict of the iden3 session is taken by a hook run
// inside the verifier's own unit of work (iden3auth.Service.OnVerdict):
// the session's verdict, the interaction's new state and the callback
// commit together or not at all.
//
// # What binds a proof to the exchange's challenge
//
// The iden3 request asks for two alternative, optional scopes with the same
// query: credentialAtomicQueryMTPV2 (the full proof: the credential is in
// the issuer's published tree) with scope id = challenge, and
// credentialAtomicQuerySigV2 (the issuer's signature, usable before the
// issuer published its state) with scope id = SigScopeID(challenge) =
// challenge+1, or 1 for 4294967295. The request's body.message is the
// challenge in decimal: the wallet's authV2 proof signs the hash of the
// whole response, message included, and each credential proof's requestID
// public input is its scope id. The full proof is preferred; the shared
// proof's kind is stated ("mtp" or "sig").
//
// # Tokens
//
// The consent token of the mail is 256 random bits (43 base64url
// characters); only its SHA-256 is stored. It decides once (the decision
// needs the interaction to be in ProofRequest), expires after ConsentTTL,
// and until then also reads the user's interactions. Tokens, API keys and
// secrets are never logged or put into errors.
package privado
