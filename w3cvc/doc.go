// Package w3cvc issues, holds and verifies W3C Verifiable Credentials and
// Presentations, and evaluates DIF Presentation Exchange v2 definitions and
// submissions, for the agent's Present Proof 3.0 and Issue Credential 3.0
// exchanges with W3C formats.
//
// Formats: VC-JWT and VP-JWT in the VCDM 1.1 JWT encoding (jwt_vc_json,
// jwt_vp_json; EdDSA, ES256, ES256K and the other JOSE algorithms of
// agent/keys), and JSON-LD credentials and presentations with a Data
// Integrity proof (ldp_vc, ldp_vp): Ed25519Signature2020 and
// DataIntegrityProof with the eddsa-rdfc-2022 cryptosuite, both issued and
// verified. JSON-LD is canonicalised with RDFC-1.0 (URDNA2015, json-gold as
// used by github.com/trustbloc/vc-go) in safe mode: a term the contexts do
// not define is refused rather than silently left unsigned.
//
// Contexts are never fetched: the W3C credentials v1 and v2, examples v1,
// ed25519-2020, data-integrity v1 and v2, status list 2021 and presentation
// submission contexts are embedded, others can be added with
// [RegisterContext]; an unknown context is an error.
//
// Issuer: [IssueJWT], [IssueLDP] with a [Signer] ([KeySigner] adapts an
// agent/keys private key). Holder: [ParseCredential] (no signature check),
// [Match] and [BuildSubmission] on a [Definition], then [Present].
// Verifier: [NewVerifier], [Verifier.VerifyCredential] and
// [Verifier.VerifyPresentation], which check the signatures against the
// signers' DID documents (did:key, did:web, did:peer through the configured
// resolver; a credential's key must be in the issuer's assertionMethod, a
// presentation's in the holder's authentication), validity periods, the
// presentation's challenge, domain and holder, the credentials' status
// (BitstringStatusListEntry and StatusList2021Entry; the list credential is
// fetched, verified and cached) and, when asked, the presentation
// submission against a definition ([EvaluateSubmission]).
//
// Errors are [*Error] values with a stable Reason code.
//
// Selective disclosure is not supported: a definition with
// constraints.limit_disclosure "required" (which [DefinitionFromNegotiation]
// produces for PREDICATE attributes) is refused by [BuildSubmission] and
// [EvaluateSubmission] with ErrSelectiveDisclosureUnsupported.
//
// [Negotiation] is the GraphQL API's W3CProofNegotiation, mapped to a
// Definition by [DefinitionFromNegotiation] and back, best effort, by
// [NegotiationFromDefinition].
//
// Inputs are bounded: see the Max constants.
package w3cvc
