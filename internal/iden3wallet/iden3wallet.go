// Package iden3wallet lets Go tests use a complete, offline iden3 world made
// of third-party parts: a local chain (anvil) running the real iden3 State
// contract, an issuer and a holder wallet of @0xpolygonid/js-sdk that issue
// credentials and answer iden3comm authorization requests with fresh
// zero-knowledge proofs, and @iden3/js-iden3-auth as a second verifier.
//
// Start launches interop/iden3/peer.mjs under Node.js over internal/nodepeer
// (line-delimited JSON; the ops are described in interop/iden3/README.md),
// starts the chain and creates both identities. The npm packages and the
// circuit files must be installed first:
//
//	make deps
//
// The circuit files (about 200 MB, package @rarimo/zkp-gen-iden3) live
// outside the work tree, in CircuitsCacheDir. Start fails, never skips, when
// Node.js, the packages or the circuit files are missing, with that advice.
//
// What a verifier of this world must be configured with: DID method
// polygonid, blockchain polygon, network amoy (go-iden3-core and
// js-iden3-core know this network; id type 0x0213), chain id 80002, the RPC
// URL and State contract address of Chain, and the JSON-LD documents of
// SchemaFiles.
package iden3wallet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/nodepeer"
)

// Versions of the npm packages the harness expects (pinned in
// interop/iden3/package.json and its lock file).
const (
	// JSSDKVersion is the @0xpolygonid/js-sdk release of the wallets.
	JSSDKVersion = "1.45.0"
	// JSAuthVersion is the @iden3/js-iden3-auth release of the second verifier.
	JSAuthVersion = "1.14.0"
	// ContractsVersion is the @iden3/contracts release the State contract comes from.
	ContractsVersion = "3.4.0"
	// AnvilVersion is the @foundry-rs/anvil-linux-amd64 release of the chain.
	AnvilVersion = "1.7.1"
	// CircuitsPackage is the npm package that ships the circuit files.
	CircuitsPackage = "@rarimo/zkp-gen-iden3"
	// CircuitsVersion is its pinned release.
	CircuitsVersion = "2.0.0-rc.34"
)

// The DID network the harness's identities live on.
const (
	// DIDMethod is the DID method of the issuer and the holder.
	DIDMethod = "polygonid"
	// Blockchain is the DID blockchain.
	Blockchain = "polygon"
	// Network is the DID network.
	Network = "amoy"
	// ResolverKey is the key of the state resolver map of go-iden3-auth and
	// js-iden3-auth ("<blockchain>:<network>").
	ResolverKey = Blockchain + ":" + Network
	// ChainID is the chain id anvil runs with: amoy's, so that neither side
	// registers a network.
	ChainID = 80002
)

// The credential the issuer issues, and the documents that describe it.
const (
	// SchemaContextURL is the JSON-LD context of KYCAgeCredential; a query's
	// "context".
	SchemaContextURL = "https://raw.githubusercontent.com/iden3/claim-schema-vocab/main/schemas/json-ld/kyc-v3.json-ld"
	// SchemaJSONURL is the JSON schema the credentials name in
	// credentialSchema (read by the issuer only).
	SchemaJSONURL = "https://raw.githubusercontent.com/iden3/claim-schema-vocab/main/schemas/json/KYCAgeCredential-v3.json"
	// SchemaType is the credential type; a query's "type".
	SchemaType = "KYCAgeCredential"
	// DefaultBirthday is the credentialSubject.birthday Issue gives
	// (YYYYMMDD, an integer).
	DefaultBirthday = 19960424
	// DefaultDocumentType is the credentialSubject.documentType Issue gives.
	DefaultDocumentType = 99
)

// Circuit ids the harness proves.
const (
	CircuitAuthV2 = "authV2"
	CircuitSigV2  = "credentialAtomicQuerySigV2"
	CircuitMTPV2  = "credentialAtomicQueryMTPV2"
)

// CircuitIDs are the circuits whose files the cache must hold (and whose
// verification keys are checked against go-iden3-auth's).
var CircuitIDs = []string{
	CircuitAuthV2, CircuitSigV2, CircuitMTPV2,
	"credentialAtomicQuerySigV2OnChain", "credentialAtomicQueryMTPV2OnChain",
}

// Kind is the kind of proof a credential carries.
type Kind string

const (
	// KindSig is a credential with a BJJSignature2021 proof only: usable at
	// once, with credentialAtomicQuerySigV2.
	KindSig Kind = "sig"
	// KindMTP is a credential whose claim is also in the issuer's claims
	// tree, delivered at once with an Iden3SparseMerkleTreeProof (for
	// credentialAtomicQueryMTPV2) against the issuer's new state, which is on
	// chain only after PublishIssuerState: until then verifiers refuse the
	// MTP proof ("state is not genesis and not registered in the smart
	// contract"), afterwards the same proof is accepted.
	KindMTP Kind = "mtp"
	// KindMTPOnPublish is a credential whose claim is in the issuer's claims
	// tree but which the holder first gets with its signature proof only; the
	// Iden3SparseMerkleTreeProof is added to the holder's copy when the issuer
	// publishes (as an issuer node does). Until then the wallet skips an
	// optional MTPV2 scope and answers the SigV2 one: the "MTP if ready, else
	// signature" case.
	KindMTPOnPublish Kind = "mtp-on-publish"
)

// Subject is the credentialSubject of an issued KYCAgeCredential; zero
// fields take DefaultBirthday and DefaultDocumentType. Distinct values let a
// request's query pick one credential among several.
type Subject struct {
	// Birthday is YYYYMMDD as an integer.
	Birthday int
	// DocumentType is an integer.
	DocumentType int
}

// DefaultTimeout bounds one call to the harness; proofs take seconds each
// (snarkjs on two cores), more under load.
const DefaultTimeout = 3 * time.Minute

const installHint = "run `make deps` from the repository root"

// ChainInfo is where the local chain is.
type ChainInfo struct {
	// RPCURL is anvil's JSON-RPC endpoint, http://127.0.0.1:<port>.
	RPCURL string `json:"rpc_url"`
	// StateContract is the address of the State proxy.
	StateContract string `json:"state_contract"`
	// ChainID is the chain id (ChainID).
	ChainID int64 `json:"chain_id"`
}

// Credential is one issued credential, as the holder keeps it.
type Credential struct {
	// ID is the credential id (urn:uuid).
	ID string `json:"credential_id"`
	// Kind is the kind asked for.
	Kind Kind `json:"kind"`
	// JSON is the W3C credential with its proofs.
	JSON json.RawMessage `json:"credential"`
	// IssuerState is, for KindMTP and KindMTPOnPublish, the issuer state
	// (decimal) with the claim in its tree, unpublished; "" for KindSig.
	IssuerState string `json:"issuer_state"`
}

// Published is the result of PublishIssuerState.
type Published struct {
	// State is the issuer's state now on chain (decimal).
	State string `json:"state"`
	// Tx is the transaction hash; "" when nothing had changed.
	Tx string `json:"tx"`
	// Changed is false when the state was already published.
	Changed bool `json:"changed"`
	// Updated lists the KindMTPOnPublish credentials that got their
	// Iden3SparseMerkleTreeProof.
	Updated []string `json:"updated_credentials"`
}

// Answer is the holder's answer to an authorization request.
type Answer struct {
	// Token is the JWZ (application/iden3-zkp-json) authorization response.
	Token string `json:"token"`
	// Request is the request as the wallet fetched it.
	Request json.RawMessage `json:"request"`
	// Response is the authorization response inside Token.
	Response json.RawMessage `json:"response"`
	// Status is the HTTP status of the POST to the callback URL (0 if not
	// posted).
	Status int `json:"status"`
	// Body is the callback's response body.
	Body string `json:"body"`
	// Prove is how long the wallet took to make the proofs and the JWZ.
	Prove time.Duration `json:"-"`
	// ProveMS is Prove in milliseconds, as the harness reports it.
	ProveMS int64 `json:"prove_ms"`
}

// Verdict is what js-iden3-auth said about a token.
type Verdict struct {
	// OK is true when fullVerify accepted the token.
	OK bool `json:"ok"`
	// Error is its reason for refusing.
	Error string `json:"error"`
}

// Error is an error the harness reported for one request.
type Error struct {
	// Op is the request op, e.g. "answer".
	Op string
	// Message is the error text.
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return fmt.Sprintf("iden3 harness %s: %s", e.Op, e.Message) }

var requirement = nodepeer.Requirement{
	Driver:      "iden3",
	Package:     "@0xpolygonid/js-sdk",
	Version:     JSSDKVersion,
	NodeVersion: ">= 20",
	InstallHint: installHint,
}

// CircuitsCacheDir is where make deps installs the circuit package:
// $AGENTD_IDEN3_CIRCUITS_CACHE if set, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/agentd/iden3-circuits.
func CircuitsCacheDir() (string, error) {
	if d := os.Getenv("AGENTD_IDEN3_CIRCUITS_CACHE"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "agentd", "iden3-circuits"), nil
}

// CircuitsDir returns the directory holding <circuit>/circuit.wasm,
// circuit_final.zkey and verification_key.json for every CircuitIDs entry,
// or an error naming the fix when the package is missing, incomplete or of
// another version.
func CircuitsDir() (string, error) {
	cache, err := CircuitsCacheDir()
	if err != nil {
		return "", err
	}
	pkgDir := filepath.Join(cache, "node_modules", filepath.FromSlash(CircuitsPackage))
	raw, err := os.ReadFile(filepath.Join(pkgDir, "package.json"))
	if err != nil {
		return "", fmt.Errorf("the circuit files (%s) are not installed in %s (%v); %s", CircuitsPackage, cache, err, installHint)
	}
	var meta struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil || meta.Version != CircuitsVersion {
		return "", fmt.Errorf("%s in %s has version %q, want %s; %s", CircuitsPackage, cache, meta.Version, CircuitsVersion, installHint)
	}
	dir := filepath.Join(pkgDir, "assets")
	for _, c := range CircuitIDs {
		for _, f := range []string{"circuit.wasm", "circuit_final.zkey", "verification_key.json"} {
			if st, err := os.Stat(filepath.Join(dir, c, f)); err != nil || st.Size() == 0 {
				return "", fmt.Errorf("circuit file %s/%s missing or empty in %s; %s", c, f, dir, installHint)
			}
		}
	}
	return dir, nil
}

// Check reports, with an error naming the fix, whether Start can run: Node.js
// on PATH, interop/iden3/node_modules installed at the pinned versions and
// the circuit files in the cache. It returns the harness directory and the
// circuits directory.
func Check() (harnessDir, circuitsDir string, err error) {
	harnessDir, err = requirement.Check()
	if err != nil {
		return "", "", err
	}
	for pkg, want := range map[string]string{
		"@iden3/js-iden3-auth":          JSAuthVersion,
		"@iden3/contracts":              ContractsVersion,
		"@foundry-rs/anvil-linux-amd64": AnvilVersion,
	} {
		r := nodepeer.Requirement{Driver: "iden3", Package: pkg, Version: want, NodeVersion: ">= 20", InstallHint: installHint}
		if _, err := r.Check(); err != nil {
			return "", "", err
		}
	}
	circuitsDir, err = CircuitsDir()
	if err != nil {
		return "", "", err
	}
	return harnessDir, circuitsDir, nil
}

// SchemaFiles maps each JSON-LD document URL the harness's credentials use
// (the W3C credentials context, the iden3 proofs context, the KYC context and
// the KYCAgeCredential JSON schema) to its committed file under
// interop/iden3/schemas. A verifier preloads them into its document cache.
func SchemaFiles() (map[string]string, error) {
	root, err := nodepeer.ModuleRoot()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, "interop", "iden3", "schemas")
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	var index map[string]string
	if err := json.Unmarshal(raw, &index); err != nil {
		return nil, fmt.Errorf("interop/iden3/schemas/index.json: %w", err)
	}
	out := make(map[string]string, len(index))
	for url, file := range index {
		out[url] = filepath.Join(dir, file)
	}
	return out, nil
}

// Wallet is a running harness: the chain, the issuer and the holder. Its
// methods may be called from any goroutine; calls are serialised.
type Wallet struct {
	// Timeout bounds each call; DefaultTimeout when zero.
	Timeout time.Duration

	proc      *nodepeer.Proc
	chain     ChainInfo
	issuerDID string
	holderDID string

	closeOnce sync.Once
}

// Start launches the harness, starts a fresh chain (anvil on a free port,
// the Poseidon libraries, State behind an ERC1967Proxy, initialised) and
// creates the issuer (an Ethereum-controlled identity, anvil's account 1,
// whose genesis auth state is published on chain at once) and the holder.
// Close stops all of it.
func Start(ctx context.Context) (*Wallet, error) {
	dir, circuits, err := Check()
	if err != nil {
		return nil, fmt.Errorf("iden3wallet: %w", err)
	}
	proc, err := nodepeer.Start(dir, "peer.mjs")
	if err != nil {
		return nil, fmt.Errorf("iden3wallet: %w", err)
	}
	w := &Wallet{proc: proc}
	var ping struct {
		Versions map[string]string `json:"versions"`
	}
	if err := w.call(ctx, "ping", nil, &ping); err != nil {
		w.Close()
		return nil, err
	}
	if v := ping.Versions["js-sdk"]; v != JSSDKVersion {
		w.Close()
		return nil, fmt.Errorf("iden3wallet: harness runs js-sdk %q, want %s; %s", v, JSSDKVersion, installHint)
	}
	if err := w.call(ctx, "chain", map[string]any{"chain_id": ChainID}, &w.chain); err != nil {
		w.Close()
		return nil, err
	}
	var ids struct {
		Issuer string `json:"issuer_did"`
		Holder string `json:"holder_did"`
	}
	if err := w.call(ctx, "setup", map[string]any{"circuits_dir": circuits}, &ids); err != nil {
		w.Close()
		return nil, err
	}
	w.issuerDID, w.holderDID = ids.Issuer, ids.Holder
	return w, nil
}

// Chain returns where the chain is.
func (w *Wallet) Chain() ChainInfo { return w.chain }

// IssuerDID is the issuer's DID (did:polygonid:polygon:amoy:…).
func (w *Wallet) IssuerDID() string { return w.issuerDID }

// HolderDID is the holder's DID, the subject of every credential and the
// sender of every answer.
func (w *Wallet) HolderDID() string { return w.holderDID }

// Issue has the issuer issue a KYCAgeCredential (DefaultBirthday,
// DefaultDocumentType) to the holder, with the proofs of kind.
func (w *Wallet) Issue(ctx context.Context, kind Kind) (Credential, error) {
	return w.IssueSubject(ctx, kind, Subject{})
}

// IssueSubject is Issue with the given credentialSubject values.
func (w *Wallet) IssueSubject(ctx context.Context, kind Kind, sub Subject) (Credential, error) {
	if sub.Birthday == 0 {
		sub.Birthday = DefaultBirthday
	}
	if sub.DocumentType == 0 {
		sub.DocumentType = DefaultDocumentType
	}
	var c Credential
	err := w.call(ctx, "issue", map[string]any{"kind": string(kind), "birthday": sub.Birthday, "document_type": sub.DocumentType}, &c)
	return c, err
}

// PublishIssuerState publishes the issuer's current state on chain
// (State.transitStateGeneric from the issuer's Ethereum account), which
// makes its MTP credentials provable, and hands the holder the MTP proofs of
// its KindMTPOnPublish credentials. Only the latest state is published: a
// KindMTP credential whose state was superseded before publishing stays
// unprovable by MTP.
func (w *Wallet) PublishIssuerState(ctx context.Context) (Published, error) {
	var p Published
	err := w.call(ctx, "publish_issuer_state", nil, &p)
	return p, err
}

// Answer has the holder answer the authorization request at requestURI, an
// iden3comm://?request_uri=<percent-encoded URL> (or ?i_m=<base64>) deep link
// or a plain http(s) URL: it fetches the request, makes the JWZ response with
// js-sdk's AuthHandler and POSTs it to body.callbackUrl as text/plain, as
// Privado ID wallets do.
func (w *Wallet) Answer(ctx context.Context, requestURI string) (Answer, error) {
	return w.answer(ctx, map[string]any{"request_uri": requestURI, "post": true})
}

// AnswerRequest is Answer for a request given inline; it posts to the
// callback only when post is true.
func (w *Wallet) AnswerRequest(ctx context.Context, requestJSON []byte, post bool) (Answer, error) {
	return w.answer(ctx, map[string]any{"request_json": string(requestJSON), "post": post})
}

func (w *Wallet) answer(ctx context.Context, req map[string]any) (Answer, error) {
	var a Answer
	err := w.call(ctx, "answer", req, &a)
	a.Prove = time.Duration(a.ProveMS) * time.Millisecond
	return a, err
}

// VerifyJS has @iden3/js-iden3-auth fullVerify token against requestJSON,
// with a state resolver for ResolverKey on this chain. A refusal is a
// Verdict with OK false, not an error.
func (w *Wallet) VerifyJS(ctx context.Context, token string, requestJSON []byte) (Verdict, error) {
	var v Verdict
	if !json.Valid(requestJSON) {
		return v, errors.New("iden3wallet: VerifyJS: request is not JSON")
	}
	err := w.call(ctx, "verify", map[string]any{
		"token": token, "request": json.RawMessage(requestJSON),
		"rpc_url": w.chain.RPCURL, "state_contract": w.chain.StateContract,
	}, &v)
	return v, err
}

// Close stops the harness and its chain. After a call fails with an error
// that is not an *Error (a timeout, the process gone), the harness is out of
// step: Close it and Start another. Calling it again is harmless.
func (w *Wallet) Close() {
	w.closeOnce.Do(func() { w.proc.Close() })
}

// call runs one op and decodes its result into out.
func (w *Wallet) call(ctx context.Context, op string, req map[string]any, out any) error {
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var resp struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Error  string          `json:"error"`
	}
	if err := w.proc.Call(ctx, op, req, &resp); err != nil {
		return fmt.Errorf("iden3 harness %s: %w", op, err)
	}
	if !resp.OK {
		return &Error{Op: op, Message: resp.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, out); err != nil {
		return fmt.Errorf("iden3 harness %s: bad result %s: %w", op, truncate(string(resp.Result), 200), err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
