// Package anoncreds verifies and creates AnonCreds v1 presentations and
// issues AnonCreds v1 credentials (the CL-signature format of Hyperledger
// AnonCreds, as produced by anoncreds-rs, ACA-Py, Credo and Identus) in pure
// Go.
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
// Issuer: [NewSchema]; [NewCredentialDefinition] generates the CL primary
// key (n = pq of 2,048 bits, p = 2p'+1 and q = 2q'+1 safe primes searched
// for on every core with a sieve, S a generator of the quadratic residues,
// Z, Rctxt and one R per attribute plus master_secret) and its
// key-correctness proof; [CredentialDefinitionPrivate] is the secret part
// (p', q'), in anoncreds-rs's JSON form for the caller to seal, redacted by
// fmt; [NewCredentialOffer] draws the 80-bit nonce; [IssueCredential]
// checks the holder's [CredentialRequest] (the blinded-secrets correctness
// proof against the offer's nonce, the definition, a blinded link secret in
// the quadratic residues) and signs the values, all of the schema's
// attributes and no other, returning the credential with its
// signature-correctness proof. Revocation cannot be asked for
// ([ErrNonRevocationUnsupported]). The objects are anoncreds-rs's JSON
// forms: anoncreds-rs accepts the key-correctness proof, processes the
// credentials and signs with the private key (internal/anoncredsoracle).
//
// The issuer's arithmetic with its secrets is constant time where it
// exponentiates: S^x for the key's secret exponents and the proof's
// randomness, the signature A = Q^(e^-1 mod p'q'), Q^r of the
// signature-correctness proof, the inverse of S^v” U Rctxt^m2 Π R^m and
// Euler's criterion on U all run modulo p and q with exponents reduced
// modulo p' and q' (filippo.io/bigmod); e^-1 mod p'q' and q^-1 mod p are
// Fermat inversions (x^(r-2) mod r) combined by CRT in bigmod, and
// se = r - c·e^-1 mod p'q' is computed there too. Not constant time: the
// safe-prime search and the primality tests (math/big; a rejected candidate
// tells nothing about the key, the accepted one is tested a fixed number of
// times), the key-correctness proof's responses c·x + x̃ (math/big
// multiplication and addition, as in the holder), the draw of random
// numbers below p'q' (crypto/rand.Int's rejection sampling), the key's
// set-up from p' and q' (2p'+1, the products, with math/big), and the byte length of each attribute value
// (a small integer or a 256-bit hash) in S^v” Rctxt^m2 Π R^m. The request
// check works on public values with math/big.
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
