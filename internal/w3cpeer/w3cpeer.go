// Package w3cpeer lets Go tests check package w3cvc against independent
// implementations: @sphereon/pex (DIF Presentation Exchange) and
// did-jwt-vc (JWT VCs and VPs, did:key), run under Node.js by
// interop/w3c/peer.mjs (line-delimited JSON, internal/nodepeer).
//
// The npm dependencies must be installed first, from the committed lock file
// (make deps, or make test, does it):
//
//	npm ci --prefix interop/w3c --ignore-scripts
//
// Start fails the test, never skips it, when Node.js or the packages are
// missing.
package w3cpeer

import (
	"context"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/nodepeer"
)

// Versions of the npm packages the peer needs.
const (
	PEXVersion      = "4.1.0"
	DIDJWTVCVersion = "4.0.16"
)

// DefaultTimeout bounds one call to the peer.
const DefaultTimeout = 60 * time.Second

var requirement = nodepeer.Requirement{
	Driver:      "w3c",
	Package:     "@sphereon/pex",
	Version:     PEXVersion,
	NodeVersion: ">= 20",
	InstallHint: "run `make deps` from the repository root (npm ci --prefix interop/w3c --ignore-scripts)",
}

// Peer is a running peer process. Calls are serialised.
type Peer struct{ proc *nodepeer.Proc }

// Start launches the peer. It fails t when Node.js or the packages are
// missing, advising make deps.
func Start(t testing.TB) *Peer {
	t.Helper()
	dir, err := requirement.Check()
	if err != nil {
		t.Fatalf("w3c peer: %v", err)
	}
	proc, err := nodepeer.Start(dir, "peer.mjs")
	if err != nil {
		t.Fatalf("w3c peer: %v", err)
	}
	p := &Peer{proc: proc}
	t.Cleanup(p.Close)
	var v struct{ PEX, DIDJwtVc string }
	if err := p.call("ping", nil, &v); err != nil {
		t.Fatalf("w3c peer did not start: %v", err)
	}
	if v.PEX != PEXVersion || v.DIDJwtVc != DIDJWTVCVersion {
		t.Fatalf("w3c peer: @sphereon/pex %q and did-jwt-vc %q installed, want %s and %s; %s",
			v.PEX, v.DIDJwtVc, PEXVersion, DIDJWTVCVersion, requirement.InstallHint)
	}
	return p
}

// Close ends the process.
func (p *Peer) Close() { p.proc.Close() }

func (p *Peer) call(op string, req map[string]any, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	return p.proc.Result(ctx, op, req, out)
}

// Evaluation is @sphereon/pex's verdict.
type Evaluation struct {
	AreRequiredCredentialsPresent string   // "info", "warn" or "error"
	Descriptors                   []string // input descriptor ids of the submission it built (credentials)
	Errors                        []string
}

// EvaluateCredentials runs pex.evaluateCredentials(definition, credentials);
// credentials are compact JWTs (JSON strings) or JSON-LD objects.
func (p *Peer) EvaluateCredentials(definition any, credentials []any) (Evaluation, error) {
	var e Evaluation
	err := p.call("pexEvaluateCredentials", map[string]any{"definition": definition, "credentials": credentials}, &e)
	return e, err
}

// EvaluatePresentation runs pex.evaluatePresentation(definition,
// presentation) on the presentation's submission; presentation is a
// compact JWT (a JSON string) or a JSON-LD object.
func (p *Peer) EvaluatePresentation(definition, presentation any) (Evaluation, error) {
	var e Evaluation
	err := p.call("pexEvaluatePresentation", map[string]any{"definition": definition, "presentation": presentation}, &e)
	return e, err
}

// VerifyCredential has did-jwt-vc verify a VC-JWT; it returns the issuer.
func (p *Peer) VerifyCredential(jwt string) (issuer string, err error) {
	var r struct{ Issuer string }
	err = p.call("verifyCredential", map[string]any{"jwt": jwt}, &r)
	return r.Issuer, err
}

// VerifyPresentation has did-jwt-vc verify a VP-JWT with the challenge and
// domain; it returns the holder and the number of credentials.
func (p *Peer) VerifyPresentation(jwt, challenge, domain string) (holder string, credentials int, err error) {
	var r struct {
		Holder      string
		Credentials int
	}
	err = p.call("verifyPresentation", map[string]any{"jwt": jwt, "challenge": challenge, "domain": domain}, &r)
	return r.Holder, r.Credentials, err
}

// Issue has did-jwt-vc issue a VC-JWT about subject with the claims, from a
// fresh did:key issuer; expired makes it expired already.
func (p *Peer) Issue(subject string, claims map[string]any, expired bool) (jwt, issuer string, err error) {
	var r struct{ JWT, Issuer string }
	err = p.call("issue", map[string]any{"subject": subject, "claims": claims, "expired": expired}, &r)
	return r.JWT, r.Issuer, err
}

// Present has did-jwt-vc make a VP-JWT of the credentials from a fresh
// did:key holder.
func (p *Peer) Present(credentials []string, challenge, domain string) (jwt, holder string, err error) {
	var r struct{ JWT, Holder string }
	err = p.call("present", map[string]any{"credentials": credentials, "challenge": challenge, "domain": domain}, &r)
	return r.JWT, r.Holder, err
}
