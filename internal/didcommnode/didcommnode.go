// Package didcommnode lets Go tests use didcomm-node 0.4.1, the DIDComm v2
// reference implementation (sicpa-dlab/didcomm-rust compiled to WASM), as a
// third-party peer.
//
// Start launches interop/didcomm-node/peer.js under Node.js and talks to it
// with line-delimited JSON over stdin/stdout (the protocol is described in
// interop/didcomm-node/README.md). Every call carries the DID documents and
// secrets didcomm-node may use, so the peer keeps no state between calls.
//
// The npm dependency must be installed first:
//
//	npm ci --prefix interop/didcomm-node
//
// (make test does this). Start fails the test, never skips it, when Node.js or
// the package is missing.
package didcommnode

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/nodepeer"
)

// Version is the didcomm-node release the harness expects in
// interop/didcomm-node/node_modules.
const Version = "0.4.1"

// Anonymous-encryption algorithm names accepted by didcomm-node in the
// enc_alg_anon option (and reported in unpack metadata).
const (
	// EncAlgAnonA256CBCHS512 is ECDH-ES+A256KW with A256CBC-HS512.
	EncAlgAnonA256CBCHS512 = "A256cbcHs512EcdhEsA256kw"
	// EncAlgAnonXC20P is ECDH-ES+A256KW with XC20P (the library default).
	EncAlgAnonXC20P = "Xc20pEcdhEsA256kw"
	// EncAlgAnonA256GCM is ECDH-ES+A256KW with A256GCM.
	EncAlgAnonA256GCM = "A256gcmEcdhEsA256kw"
	// EncAlgAuthA256CBCHS512 is ECDH-1PU+A256KW with A256CBC-HS512, the only
	// authenticated-encryption algorithm (enc_alg_auth) didcomm-node supports.
	EncAlgAuthA256CBCHS512 = "A256cbcHs512Ecdh1puA256kw"
)

// DefaultTimeout bounds a single call to the peer process.
const DefaultTimeout = 60 * time.Second

// Peer is a running didcomm-node peer process. Its methods may be called from
// any goroutine; calls are serialised.
type Peer struct {
	// Timeout bounds each call; DefaultTimeout when zero.
	Timeout time.Duration

	dir string

	mu     sync.Mutex
	proc   *nodepeer.Proc // the node peer.js child, nil until the next Call starts one
	closed bool
}

// Error is an error reported by the peer for one request.
type Error struct {
	// Op is the request op, e.g. "unpack".
	Op string
	// Kind is the didcomm-node error name (e.g. "DIDCommMalformed",
	// "DIDCommUnsupported") when the library reported one, else "".
	Kind string
	// Message is the full error text returned by the peer.
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("didcomm-node %s: %s", e.Op, e.Message)
}

// ModuleRoot walks up from the working directory to the directory holding
// go.mod.
func ModuleRoot() (string, error) { return nodepeer.ModuleRoot() }

var requirement = nodepeer.Requirement{
	Driver:      "didcomm-node",
	Package:     "didcomm-node",
	Version:     Version,
	NodeVersion: ">= 18",
	InstallHint: installHint,
}

const installHint = "run `make test` or `npm ci --prefix interop/didcomm-node` from the repository root"

// Start launches a didcomm-node peer for the test and registers a cleanup
// that stops it. It fails the test (t.Fatal) when Node.js is not on PATH or
// interop/didcomm-node/node_modules/didcomm-node is not installed.
func Start(t testing.TB) *Peer {
	t.Helper()
	dir, err := requirement.Check()
	if err != nil {
		t.Fatalf("didcommnode: %v", err)
	}
	p := &Peer{dir: dir}
	t.Cleanup(p.Close)
	res, err := p.Call(map[string]any{"op": "ping"})
	if err != nil {
		t.Fatalf("didcommnode: peer did not start: %v", err)
	}
	if v, _ := res["version"].(string); v != Version {
		t.Fatalf("didcommnode: peer reports didcomm-node %q, want %s", v, Version)
	}
	return p
}

// stop ends the child process. p.mu is held.
func (p *Peer) stop() {
	if p.proc != nil {
		p.proc.Close() // peer.js exits at EOF
		p.proc = nil
	}
}

// Close stops the peer process. Start registers it with t.Cleanup; calling it
// again is harmless.
func (p *Peer) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.stop()
}

// Call sends one raw request and returns the decoded response. The "id"
// member is set by Call. A response with an "error" member is returned as an
// *Error (together with the response). If the peer process has died (for
// example after a WASM panic) the next Call starts a fresh one.
func (p *Peer) Call(req map[string]any) (map[string]any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	op, _ := req["op"].(string)
	if p.closed {
		return nil, fmt.Errorf("didcomm-node %s: peer is closed", op)
	}
	if p.proc != nil {
		select {
		case <-p.proc.Done():
			p.stop()
		default:
		}
	}
	if p.proc == nil {
		proc, err := nodepeer.Start(p.dir, "peer.js")
		if err != nil {
			return nil, fmt.Errorf("didcomm-node %s: %w", op, err)
		}
		p.proc = proc
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var resp map[string]any
	if err := p.proc.Call(ctx, op, req, &resp); err != nil {
		p.stop() // out of step, or dead: the next Call starts a fresh one
		return nil, fmt.Errorf("didcomm-node %s: %w", op, err)
	}
	if fatal, _ := resp["fatal"].(bool); fatal {
		// peer.js exits after a WASM panic; the next Call starts a new one.
		p.stop()
	}
	if e, ok := resp["error"]; ok {
		kind, _ := resp["error_kind"].(string)
		return resp, &Error{Op: op, Kind: kind, Message: fmt.Sprint(e)}
	}
	return resp, nil
}

// request builds a request map, leaving out nil docs/secrets.
func request(op string, docs, secrets []any, kv ...any) map[string]any {
	req := map[string]any{"op": op}
	if docs != nil {
		req["did_docs"] = docs
	}
	if secrets != nil {
		req["secrets"] = secrets
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req[kv[i].(string)] = kv[i+1]
	}
	return req
}

// nullable maps "" to JSON null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (p *Peer) packed(op string, req map[string]any) (string, map[string]any, error) {
	resp, err := p.Call(req)
	if err != nil {
		return "", nil, err
	}
	packed, ok := resp["packed"].(string)
	if !ok {
		return "", nil, fmt.Errorf("didcomm-node %s: response has no packed string", op)
	}
	meta, _ := resp["metadata"].(map[string]any)
	return packed, meta, nil
}

// PackEncrypted encrypts msg (a plaintext DIDComm message: a map, struct or
// json.RawMessage in didcomm-node's Message shape) for to (a DID or key ID).
// from is the sender DID or key ID for authcrypt, or "" for anoncrypt; signBy
// is a DID or key ID to sign with first, or "". opts is passed through as
// didcomm-node's PackEncryptedOptions (protect_sender, forward,
// forward_headers, messaging_service, enc_alg_auth, enc_alg_anon); nil means
// the library defaults, which include forward: true. docs are the DID
// documents the library may resolve and secrets the private keys it may use.
// It returns the packed JSON string and the library's PackEncryptedMetadata.
func (p *Peer) PackEncrypted(msg any, to, from, signBy string, opts map[string]any, docs, secrets []any) (packed string, meta map[string]any, err error) {
	if opts == nil {
		opts = map[string]any{}
	}
	return p.packed("pack_encrypted", request("pack_encrypted", docs, secrets,
		"message", msg, "to", to, "from", nullable(from), "sign_by", nullable(signBy), "options", opts))
}

// PackSigned signs msg with signBy (a DID or key ID of an authentication
// key) and returns the JWS JSON string and the PackSignedMetadata
// (sign_by_kid).
func (p *Peer) PackSigned(msg any, signBy string, docs, secrets []any) (packed string, meta map[string]any, err error) {
	return p.packed("pack_signed", request("pack_signed", docs, secrets, "message", msg, "sign_by", signBy))
}

// PackPlaintext returns msg as a DIDComm plaintext JSON string (typ is filled
// in; a from_prior JWT in msg is verified against docs).
func (p *Peer) PackPlaintext(msg any, docs []any) (string, error) {
	packed, _, err := p.packed("pack_plaintext", request("pack_plaintext", docs, nil, "message", msg))
	return packed, err
}

// Unpack decrypts and verifies packed (any DIDComm envelope) and returns the
// plaintext message and the UnpackMetadata. opts is passed through as
// UnpackOptions (expect_decrypt_by_all_keys, unwrap_re_wrapping_forward; both
// default false). When the result is a routing Forward message, the response
// also has a "forward" member; use Call to see it, or UnpackForward.
func (p *Peer) Unpack(packed string, opts map[string]any, docs, secrets []any) (msg map[string]any, meta map[string]any, err error) {
	resp, err := p.unpack(packed, opts, docs, secrets)
	if err != nil {
		return nil, nil, err
	}
	msg, _ = resp["message"].(map[string]any)
	meta, _ = resp["metadata"].(map[string]any)
	return msg, meta, nil
}

// Forward is the parsed content of a routing/2.0 forward message.
type Forward struct {
	// Next is body.next: the DID or key ID the forwarded message is for.
	Next string
	// ForwardedMsg is the JSON of the first attachment (the message to pass on).
	ForwardedMsg json.RawMessage
}

// UnpackForward is Unpack for a mediator: it also returns the parsed Forward
// when the unpacked message is a routing/2.0 forward, or nil otherwise.
func (p *Peer) UnpackForward(packed string, opts map[string]any, docs, secrets []any) (msg, meta map[string]any, fwd *Forward, err error) {
	resp, err := p.unpack(packed, opts, docs, secrets)
	if err != nil {
		return nil, nil, nil, err
	}
	msg, _ = resp["message"].(map[string]any)
	meta, _ = resp["metadata"].(map[string]any)
	if f, ok := resp["forward"].(map[string]any); ok {
		fwd = &Forward{}
		fwd.Next, _ = f["next"].(string)
		if fwd.ForwardedMsg, err = json.Marshal(f["forwarded_msg"]); err != nil {
			return nil, nil, nil, err
		}
	}
	return msg, meta, fwd, nil
}

func (p *Peer) unpack(packed string, opts map[string]any, docs, secrets []any) (map[string]any, error) {
	if opts == nil {
		opts = map[string]any{}
	}
	return p.Call(request("unpack", docs, secrets, "packed", packed, "options", opts))
}

// WrapInForward wraps an already packed message for to in anoncrypted
// routing/2.0 forward messages, one layer per routing key: routingKeys[0]
// receives the outermost envelope, whose body.next is routingKeys[1] (or to
// for the last key). routingKeys must not be empty. headers are extra headers
// for every forward message (may be nil); encAlgAnon "" means
// EncAlgAnonXC20P. docs must resolve every routing key.
func (p *Peer) WrapInForward(packed string, headers map[string]any, to string, routingKeys []string, encAlgAnon string, docs []any) (string, error) {
	if headers == nil {
		headers = map[string]any{}
	}
	if encAlgAnon == "" {
		encAlgAnon = EncAlgAnonXC20P
	}
	if routingKeys == nil {
		routingKeys = []string{}
	}
	out, _, err := p.packed("wrap_in_forward", request("wrap_in_forward", docs, nil,
		"packed", packed, "headers", headers, "to", to, "routing_keys", routingKeys, "enc_alg_anon", encAlgAnon))
	return out, err
}

// PackFromPrior signs a from_prior claim set ({"iss", "sub", "iat", ...}) as
// a compact JWT with a key of iss (issuerKID, or any authentication key with
// a secret when ""). It returns the JWT and the key ID used.
func (p *Peer) PackFromPrior(fromPrior any, issuerKID string, docs, secrets []any) (jwt, kid string, err error) {
	resp, err := p.Call(request("from_prior_pack", docs, secrets, "from_prior", fromPrior, "issuer_kid", nullable(issuerKID)))
	if err != nil {
		return "", "", err
	}
	jwt, _ = resp["from_prior_jwt"].(string)
	kid, _ = resp["issuer_kid"].(string)
	return jwt, kid, nil
}

// UnpackFromPrior verifies a from_prior JWT and returns its claims and the
// issuer key ID that signed it.
func (p *Peer) UnpackFromPrior(jwt string, docs []any) (claims map[string]any, kid string, err error) {
	resp, err := p.Call(request("from_prior_unpack", docs, nil, "from_prior_jwt", jwt))
	if err != nil {
		return nil, "", err
	}
	claims, _ = resp["from_prior"].(map[string]any)
	kid, _ = resp["issuer_kid"].(string)
	return claims, kid, nil
}
