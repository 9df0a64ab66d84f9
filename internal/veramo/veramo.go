// Package veramo lets Go tests use Veramo 7 (@veramo/did-comm, the DIDComm
// v2 plugin of the Veramo TypeScript framework) as a third-party peer.
//
// Start launches interop/veramo/driver.mjs under Node.js and talks to it with
// line-delimited JSON over stdin/stdout (the ops are described in
// interop/veramo/README.md). The peer has one identity, a did:key made from
// an Ed25519 key Start generates, so a test can also read what agentd sends
// to the peer with its own envelope code (Peer.Keys). Other parties' DID
// documents travel with each request.
//
// The npm dependencies must be installed first, from the committed lock file:
//
//	npm ci --prefix interop/veramo
//
// (make test does this). Start fails the test, never skips it, when Node.js or
// the packages are missing.
package veramo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/internal/nodepeer"
)

// Version is the @veramo/did-comm release the harness expects in
// interop/veramo/node_modules (pinned by interop/veramo/package-lock.json).
const Version = "7.0.1"

// DefaultTimeout bounds a single call to the peer process.
const DefaultTimeout = 60 * time.Second

// Packing modes of Veramo's packDIDCommMessage.
const (
	PackingJWS       = "jws"
	PackingAnoncrypt = "anoncrypt"
	PackingAuthcrypt = "authcrypt"
)

// Peer is a running Veramo peer process. Its methods may be called from any
// goroutine; calls are serialised. Unlike didcomm-node the peer keeps state
// (its identity), so a peer that died is not restarted.
type Peer struct {
	// Timeout bounds each call; DefaultTimeout when zero.
	Timeout time.Duration

	// DID is the peer's did:key.
	DID string
	// Doc is the peer's DID document as Veramo resolves it.
	Doc map[string]any
	// Signing is the peer's Ed25519 key; its ID is the authentication key ID
	// Veramo signs with.
	Signing keys.PrivateKey
	// Agreement is the X25519 key agreement key derived from Signing; its ID
	// is the keyAgreement key ID of the did:key document.
	Agreement keys.PrivateKey

	proc *nodepeer.Proc
}

// Error is an error the peer reported for one request.
type Error struct {
	// Op is the request op, e.g. "unpack".
	Op string
	// Message is Veramo's error text.
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return fmt.Sprintf("veramo %s: %s", e.Op, e.Message) }

// ModuleRoot walks up from the working directory to the directory holding
// go.mod.
func ModuleRoot() (string, error) { return nodepeer.ModuleRoot() }

var requirement = nodepeer.Requirement{
	Driver:      "veramo",
	Package:     "@veramo/did-comm",
	Version:     Version,
	NodeVersion: ">= 20",
	InstallHint: installHint,
}

const installHint = "run `make test` or `npm ci --prefix interop/veramo` from the repository root"

// Start launches a Veramo peer for the test, gives it a fresh did:key and
// registers a cleanup that stops it. It fails the test (t.Fatal) when
// Node.js is not on PATH or the packages of interop/veramo are not installed.
func Start(t testing.TB) *Peer {
	t.Helper()
	dir, err := requirement.Check()
	if err != nil {
		t.Fatalf("veramo: %v", err)
	}
	proc, err := nodepeer.Start(dir, "driver.mjs")
	if err != nil {
		t.Fatalf("veramo: %v", err)
	}
	p := &Peer{proc: proc}
	t.Cleanup(p.Close)
	res, err := p.call("ping", nil)
	if err != nil {
		t.Fatalf("veramo: peer did not start: %v", err)
	}
	var ping struct{ Version string }
	json.Unmarshal(res, &ping)
	if ping.Version != Version {
		t.Fatalf("veramo: peer reports @veramo/did-comm %q, want %s", ping.Version, Version)
	}
	if err := p.init(); err != nil {
		t.Fatalf("veramo: %v", err)
	}
	return p
}

// init creates the peer's did:key from a fresh Ed25519 key and checks that
// Veramo derives the same DID and key IDs agentd does.
func (p *Peer) init() error {
	seed := make([]byte, 32)
	rand.Read(seed)
	sk, err := keys.FromPrivate(keys.Ed25519, "", seed)
	if err != nil {
		return err
	}
	res, err := p.call("init", map[string]any{"privateKeyHex": hex.EncodeToString(seed)})
	if err != nil {
		return err
	}
	var out struct {
		DID         string         `json:"did"`
		DIDDocument map[string]any `json:"didDocument"`
	}
	if err := json.Unmarshal(res, &out); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	want := "did:key:" + sk.PublicKey.Multikey()
	if out.DID != want {
		return fmt.Errorf("init: Veramo made %s from the key, want %s", out.DID, want)
	}
	xk, err := sk.ToX25519()
	if err != nil {
		return err
	}
	p.DID, p.Doc = out.DID, out.DIDDocument
	sk.ID = out.DID + "#" + sk.PublicKey.Multikey()
	xk.ID = out.DID + "#" + xk.PublicKey.Multikey()
	p.Signing, p.Agreement = sk, xk
	for _, rel := range []struct{ name, kid string }{{"authentication", sk.ID}, {"keyAgreement", xk.ID}} {
		list, _ := out.DIDDocument[rel.name].([]any)
		if len(list) != 1 || list[0] != rel.kid {
			return fmt.Errorf("init: Veramo's %s is %v, want [%s]", rel.name, list, rel.kid)
		}
	}
	return nil
}

// Keys returns the peer's private keys (signing and key agreement).
func (p *Peer) Keys() []keys.PrivateKey { return []keys.PrivateKey{p.Signing, p.Agreement} }

// PackSigned signs msg with Veramo (packDIDCommMessage with packing "jws")
// and returns the JWS Veramo writes, in Flattened JSON serialization
// (kid in the protected header), and the same signature in General JSON
// serialization. msg's from must be the peer's DID.
func (p *Peer) PackSigned(msg any, docs []any) (flattened, general string, err error) {
	res, err := p.call("pack", map[string]any{"message": msg, "packing": PackingJWS, "docs": nonNil(docs)})
	if err != nil {
		return "", "", err
	}
	var out struct{ Message, General string }
	if err := json.Unmarshal(res, &out); err != nil || out.Message == "" || out.General == "" {
		return "", "", fmt.Errorf("veramo pack: response %s", res)
	}
	return out.Message, out.General, nil
}

// Pack packs msg with Veramo's packDIDCommMessage: packing is PackingJWS,
// PackingAnoncrypt or PackingAuthcrypt; options are Veramo's
// IDIDCommOptions (alg, enc, bcc, recipientKids), nil for its defaults
// (ECDH-ES+A256KW or ECDH-1PU+A256KW with A256GCM). docs are the DID
// documents of the recipients.
func (p *Peer) Pack(msg any, packing string, options map[string]any, docs []any) (string, error) {
	req := map[string]any{"message": msg, "packing": packing, "docs": nonNil(docs)}
	if options != nil {
		req["options"] = options
	}
	res, err := p.call("pack", req)
	if err != nil {
		return "", err
	}
	var out struct{ Message string }
	if err := json.Unmarshal(res, &out); err != nil || out.Message == "" {
		return "", fmt.Errorf("veramo pack: response %s", res)
	}
	return out.Message, nil
}

// Sent is one message Veramo handed to its transport.
type Sent struct {
	// Endpoint is the service endpoint URI it was for.
	Endpoint string `json:"endpoint"`
	// Message is the packed message.
	Message string `json:"message"`
}

// Send packs msg for its first to as Pack does and sends it the way Veramo's
// sendDIDCommMessage does: when the recipient's DIDComm service lists
// routing keys, the message is wrapped in a routing/2.0 forward for each key,
// anoncrypted to it. Nothing leaves the process: the driver's transport
// records what it was given and Send returns it, with the packed message
// before wrapping (inner), for the test to post and compare.
func (p *Peer) Send(msg any, packing string, options map[string]any, docs []any) (inner string, sent []Sent, err error) {
	req := map[string]any{"message": msg, "packing": packing, "docs": nonNil(docs)}
	if options != nil {
		req["options"] = options
	}
	res, err := p.call("send", req)
	if err != nil {
		return "", nil, err
	}
	var out struct {
		Inner string `json:"inner"`
		Sent  []Sent `json:"sent"`
	}
	if err := json.Unmarshal(res, &out); err != nil {
		return "", nil, fmt.Errorf("veramo send: response %s", res)
	}
	return out.Inner, out.Sent, nil
}

// Unpack opens packed with Veramo's unpackDIDCommMessage as the peer and
// returns the message and Veramo's metaData (packing: "jws", "anoncrypt",
// "authcrypt" or "none").
func (p *Peer) Unpack(packed string, docs []any) (msg, meta map[string]any, err error) {
	res, err := p.call("unpack", map[string]any{"message": packed, "docs": nonNil(docs)})
	if err != nil {
		return nil, nil, err
	}
	var out struct {
		Message  map[string]any `json:"message"`
		MetaData map[string]any `json:"metaData"`
	}
	if err := json.Unmarshal(res, &out); err != nil {
		return nil, nil, fmt.Errorf("veramo unpack: response %s", res)
	}
	return out.Message, out.MetaData, nil
}

func nonNil(docs []any) []any {
	if docs == nil {
		return []any{}
	}
	return docs
}

// Close stops the peer process. Start registers it with t.Cleanup; calling it
// again is harmless.
func (p *Peer) Close() { p.proc.Close() }

// call sends one request and returns the result member of the response.
func (p *Peer) call(op string, req map[string]any) (json.RawMessage, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var resp struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Error  string          `json:"error"`
	}
	if err := p.proc.Call(ctx, op, req, &resp); err != nil {
		return nil, fmt.Errorf("veramo %s: %w", op, err)
	}
	if !resp.OK {
		return nil, &Error{Op: op, Message: resp.Error}
	}
	return resp.Result, nil
}
