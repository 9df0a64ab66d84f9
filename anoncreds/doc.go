// Package anoncreds verifies and creates AnonCreds v1 presentations (the
// CL-signature format of Hyperledger AnonCreds, as produced by anoncreds-rs,
// ACA-Py, Credo and Identus) in pure Go.
//
// Verifier: [ParsePresentationRequest], [ParsePresentation], [ParseSchema],
// [ParseCredentialDefinition], then [VerifyPresentation].
//
// Holder: [NewLinkSecret]; [CreateCredentialRequest] on an issuer's
// [CredentialOffer] (it checks the issuer's key-correctness proof);
// [ProcessCredential] on the issued credential (it checks the
// signature-correctness proof); [CreatePresentation] with one or more
// credentials, revealed attributes and groups, unrevealed and self-attested
// attributes, and predicates of every type. The holder's exponentiations
// with secret exponents (link secret, attribute values, blinding factors,
// the proofs' randomness) are constant-time (filippo.io/bigmod); its
// additions and multiplications of secrets use math/big, which is not.
//
// The package is self-contained: it depends on the standard library and
// filippo.io/bigmod only.
// It parses the legacy AnonCreds JSON objects (schema, credential
// definition, presentation request and presentation, with legacy Indy
// identifiers or did:-qualified ones) and verifies the primary proof of a
// presentation (equality proof, the four predicate types >=, >, <=, <, and
// the aggregated Fiat–Shamir challenge), bit for bit as anoncreds-rs does.
//
// Beyond what anoncreds-rs checks, [VerifyPresentation] also refuses:
//   - a revealed value whose raw form does not encode to the proven value
//     (encode(raw) != encoded, RFC 0037 encoding; the AnonCreds
//     specification makes this check mandatory for verifiers);
//   - an attribute restriction of the form attr::NAME::value whose
//     attribute is not revealed by the same credential, and an
//     attr::NAME::marker whose attribute is not in the credential's schema;
//   - a predicate proof whose response for the attribute differs from the
//     equality proof's (the predicate would not be about the credential);
//   - a sub-proof that no referent uses;
//   - (as anoncreds-rs does) sub-proofs whose link-secret responses differ,
//     i.e. credentials of different holders;
//   - a credential definition whose schemaId names another schema than the
//     presentation's identifier.
//
// Revocation is not supported yet: a request that needs a non-revocation
// proof (a non_revoked interval on a referent answered by a credential whose
// definition supports revocation), and a presentation that carries a
// timestamp or a non-revocation proof, are refused with
// [ErrNonRevocationUnsupported]. A non_revoked interval on a credential that
// cannot be revoked is satisfied, as in anoncreds-rs; a revocable
// credential presented without non_revoked (its identifier naming its
// registry, as anoncreds-rs writes it) verifies.
//
// Every input is bounded (JSON size, number sizes, counts), so malformed or
// hostile input gives an error, never a panic or unbounded work. Errors never
// include secret material; the verifier handles none.
package anoncreds
