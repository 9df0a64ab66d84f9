// Package credstore is the agent's credential store (aip.Credentials): the
// credentials it holds, W3C (VC-JWT and JSON-LD) and AnonCreds, and the
// AnonCreds objects it issues with (schemas, credential definitions) or
// resolves (schemas and credential definitions of other issuers).
//
// Held credentials are records written in the caller's unit of work (Put),
// so that Issue Credential 3.0 stores a credential with the exchange state
// that received it. They are listed newest first through index records
// (all, by format, by credential definition), with an opaque nextToken
// that stays good under concurrent inserts (protocols/internal/listing).
//
// Secrets are sealed at rest with the store's Sealer: the holder's
// AnonCreds link secret (created once, on first use) and the private keys
// of the credential definitions the agent creates. Neither ever appears in
// an error, a log line or an API answer.
//
// Schema and credential definition identifiers: the agent names what it
// creates in the did:-qualified style of the AnonCreds methods, under its
// own DID (the issuer id):
//
//	schema:   <issuerDID>/anoncreds/v0/SCHEMA/<name>/<version>
//	cred def: <issuerDID>/anoncreds/v0/CLAIM_DEF/<h>/<tag>
//
// where h is the first 16 hex digits of the SHA-256 of the schema id (the
// ledger's sequence number has no equivalent without a ledger). Name,
// version and tag are path-escaped.
//
// Resolution (ResolveSchema, ResolveCredDef), in order: the local records
// (objects created here or imported by the operator, see Import and
// ImportHandler), the directory of files (Config.Dir, read at start), then,
// for an id that is an https URL or a did:web DID URL, the object fetched
// over HTTPS (Config.Web: size and time limits, public addresses only
// unless allowed, cached in memory for Config.WebCacheTTL). A did:web DID
// URL did:web:host[:path...]/rest names https://host[/path...]/rest. No
// ledger is consulted. Revocation is not supported: a revocable credential
// definition is refused on creation and on import.
package credstore
