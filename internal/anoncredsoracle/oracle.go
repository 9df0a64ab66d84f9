// Package anoncredsoracle lets Go tests use anoncreds-rs as an independent
// AnonCreds oracle: the WebAssembly build of anoncreds-rs shipped inside the
// npm package @hyperledger/identus-sdk, run under Node.js by
// interop/anoncreds/oracle.mjs (line-delimited JSON, internal/nodepeer).
//
// The oracle issues credentials from a stored test issuer key (no safe-prime
// generation), creates presentations and verifies them, and reports how long
// anoncreds-rs took for each. As a holder (StartHolder, Request, Process,
// PresentWith, VerifyWith) it checks the Go issuer: anoncreds-rs's
// createCredentialRequest verifies a Go key-correctness proof and its
// processCredential a Go signature-correctness proof.
//
// The npm dependencies must be installed first, from the committed lock file
// (make deps, or make test, does it):
//
//	npm ci --prefix interop/anoncreds --ignore-scripts
//
// Start fails the test, never skips it, when Node.js or the package is missing.
package anoncredsoracle

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/nodepeer"
)

// Version is the @hyperledger/identus-sdk release the oracle needs (its
// WASM chunk file names are those of this build).
const Version = "7.0.0"

// DefaultTimeout bounds one call to the oracle.
const DefaultTimeout = 120 * time.Second

var requirement = nodepeer.Requirement{
	Driver:      "anoncreds",
	Package:     "@hyperledger/identus-sdk",
	Version:     Version,
	NodeVersion: ">= 20",
	InstallHint: "run `make deps` from the repository root (npm ci --prefix interop/anoncreds --ignore-scripts)",
}

// Oracle is a running anoncreds-rs process. Calls are serialised.
type Oracle struct {
	proc *nodepeer.Proc
	// LinkSecret is the oracle holder's link secret (decimal), a test
	// secret, so that Go can present the credentials the oracle holds.
	LinkSecret string
}

// Issuer is the test issuer the oracle signs with: the public objects and
// the private key, as anoncreds-rs serialises them.
type Issuer struct {
	SchemaID, CredDefID string
	Schema, CredDef     json.RawMessage
	CredDefPrivate      json.RawMessage
	KeyCorrectnessProof json.RawMessage
}

// Start launches the oracle and loads the issuer. It fails t when Node.js or
// the npm package is missing, advising make deps.
func Start(t testing.TB, iss Issuer) *Oracle {
	t.Helper()
	o := StartHolder(t)
	var setup struct{ LinkSecret string }
	if err := o.call("setup", map[string]any{
		"schemaId": iss.SchemaID, "credDefId": iss.CredDefID,
		"schema": iss.Schema, "credDef": iss.CredDef,
		"credDefPrivate": iss.CredDefPrivate, "keyCorrectnessProof": iss.KeyCorrectnessProof,
	}, &setup); err != nil {
		t.Fatalf("anoncreds oracle setup: %v", err)
	}
	o.LinkSecret = setup.LinkSecret
	return o
}

// StartHolder launches the oracle without an issuer: an anoncreds-rs holder
// (Request, Process, PresentWith) and verifier (VerifyWith) for an issuer
// outside it.
func StartHolder(t testing.TB) *Oracle {
	t.Helper()
	dir, err := requirement.Check()
	if err != nil {
		t.Fatalf("anoncreds oracle: %v", err)
	}
	proc, err := nodepeer.Start(dir, "oracle.mjs")
	if err != nil {
		t.Fatalf("anoncreds oracle: %v", err)
	}
	o := &Oracle{proc: proc}
	t.Cleanup(o.Close)
	var ping struct{ Version string }
	if err := o.call("ping", nil, &ping); err != nil {
		t.Fatalf("anoncreds oracle did not start: %v", err)
	}
	if ping.Version != Version {
		t.Fatalf("anoncreds oracle: @hyperledger/identus-sdk %q installed, want %s; %s", ping.Version, Version, requirement.InstallHint)
	}
	return o
}

// Close ends the process.
func (o *Oracle) Close() { o.proc.Close() }

func (o *Oracle) call(op string, req map[string]any, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	return o.proc.Result(ctx, op, req, out)
}

// Nonce returns a fresh presentation request nonce from anoncreds-rs.
func (o *Oracle) Nonce() (string, error) {
	var r struct{ Nonce string }
	err := o.call("nonce", nil, &r)
	return r.Nonce, err
}

// Issue has the issuer sign a credential with the raw values for the
// oracle's holder, who processes it. It returns a handle for Present, the
// processed credential and the time anoncreds-rs took.
func (o *Oracle) Issue(values map[string]string) (handle string, credential json.RawMessage, d time.Duration, err error) {
	var r struct {
		Handle     string
		Credential json.RawMessage
		MS         float64
	}
	err = o.call("issue", map[string]any{"values": values}, &r)
	return r.Handle, r.Credential, ms(r.MS), err
}

// Offer returns a fresh credential offer of the issuer, for a holder
// outside the oracle.
func (o *Oracle) Offer() (json.RawMessage, error) {
	var r struct{ Offer json.RawMessage }
	err := o.call("offer", nil, &r)
	return r.Offer, err
}

// IssueFor has the issuer sign another holder's credential request for the
// offer, with the raw values; it returns the credential as issued.
func (o *Oracle) IssueFor(offer, request json.RawMessage, values map[string]string) (json.RawMessage, error) {
	var r struct{ Credential json.RawMessage }
	err := o.call("issueFor", map[string]any{"offer": offer, "request": request, "values": values}, &r)
	return r.Credential, err
}

// Present has the holder answer request with the credential, revealing
// every requested attribute.
func (o *Oracle) Present(handle string, request json.RawMessage) (presentation json.RawMessage, d time.Duration, err error) {
	var r struct {
		Presentation json.RawMessage
		MS           float64
	}
	err = o.call("present", map[string]any{"handle": handle, "request": request}, &r)
	return r.Presentation, ms(r.MS), err
}

// Verify has anoncreds-rs verify the presentation (an error of
// anoncreds-rs counts as invalid). d is the time of the verification call
// alone, without JSON parsing.
func (o *Oracle) Verify(presentation, request json.RawMessage) (valid bool, d time.Duration, err error) {
	var r struct {
		Valid bool
		MS    float64
	}
	err = o.call("verify", map[string]any{"presentation": presentation, "request": request}, &r)
	return r.Valid, ms(r.MS), err
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// Request has the oracle's holder answer an offer of an outside issuer
// (anoncreds-rs's createCredentialRequest, which checks the offer's key
// correctness proof against credDef). The handle names the request for
// Process.
func (o *Oracle) Request(credDef, offer json.RawMessage, entropy string) (handle string, request json.RawMessage, err error) {
	var r struct {
		Handle  string
		Request json.RawMessage
	}
	err = o.call("request", map[string]any{"credDef": credDef, "offer": offer, "entropy": entropy}, &r)
	return r.Handle, r.Request, err
}

// Process has the oracle's holder process the credential issued for the
// request handle (anoncreds-rs's processCredential, which checks the
// signature correctness proof). The handle then names the credential for
// PresentWith.
func (o *Oracle) Process(handle string, credential, credDef json.RawMessage) (json.RawMessage, error) {
	var r struct{ Credential json.RawMessage }
	err := o.call("process", map[string]any{"handle": handle, "credential": credential, "credDef": credDef}, &r)
	return r.Credential, err
}

// PresentWith is Present with the given schemas and credential definitions
// (identifier -> JSON) instead of the setup issuer's.
func (o *Oracle) PresentWith(handle string, request json.RawMessage, schemas, credDefs map[string]json.RawMessage) (json.RawMessage, error) {
	var r struct{ Presentation json.RawMessage }
	err := o.call("present", map[string]any{"handle": handle, "request": request, "schemas": schemas, "credDefs": credDefs}, &r)
	return r.Presentation, err
}

// VerifyWith is Verify with the given schemas and credential definitions.
func (o *Oracle) VerifyWith(presentation, request json.RawMessage, schemas, credDefs map[string]json.RawMessage) (bool, error) {
	var r struct{ Valid bool }
	err := o.call("verify", map[string]any{"presentation": presentation, "request": request, "schemas": schemas, "credDefs": credDefs}, &r)
	return r.Valid, err
}
