package presentproof

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/w3cvc"
)

// issuer is a did:key issuer with a StatusList2021 list served over
// httptest, index revokedIndex revoked.
type issuer struct {
	signer w3cvc.Signer
	list   string
}

const revokedIndex = 5

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	k, err := keys.Generate(keys.Ed25519, "")
	if err != nil {
		t.Fatal(err)
	}
	d := did.KeyDID(k.PublicKey)
	k.ID = d + "#" + k.PublicKey.Multikey()
	iss := &issuer{signer: w3cvc.KeySigner(d, k)}
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	t.Cleanup(srv.Close)
	iss.list = srv.URL + "/list/1"
	bits := make([]byte, 16<<10)
	bits[revokedIndex/8] |= 0x80 >> (revokedIndex % 8)
	enc, err := w3cvc.EncodeStatusList(bits)
	if err != nil {
		t.Fatal(err)
	}
	body, err = w3cvc.IssueLDP(map[string]any{
		"@context": []any{w3cvc.ContextV1, w3cvc.ContextStatusList2021},
		"id":       iss.list, "type": []any{"VerifiableCredential", "StatusList2021Credential"},
		"issuanceDate":      "2024-01-01T00:00:00Z",
		"credentialSubject": map[string]any{"id": iss.list + "#list", "type": "StatusList2021", "statusPurpose": "revocation", "encodedList": enc},
	}, iss.signer)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// issue makes a JWT VC about subject with claims, on status index idx.
func (iss *issuer) issue(t *testing.T, typ, subject string, idx int, claims map[string]any) []byte {
	t.Helper()
	cs := map[string]any{"id": subject}
	for k, v := range claims {
		cs[k] = v
	}
	raw, err := w3cvc.IssueJWT(map[string]any{
		"@context":          []any{w3cvc.ContextV1, w3cvc.ContextStatusList2021},
		"id":                "urn:uuid:" + agent.NewID(),
		"type":              []any{"VerifiableCredential", typ},
		"issuanceDate":      "2024-01-01T00:00:00Z",
		"credentialSubject": cs,
		"credentialStatus": map[string]any{"id": iss.list + "#" + strconv.Itoa(idx), "type": w3cvc.StatusTypeList2021,
			"statusPurpose": "revocation", "statusListIndex": strconv.Itoa(idx), "statusListCredential": iss.list},
	}, iss.signer)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func str(s string) *string { return &s }

func field(path, equal string) aip.W3CAttribute {
	return aip.W3CAttribute{AttributePaths: []string{path}, PresentationType: aip.PresentValue,
		ValueRestrictions: &aip.W3CValueRestrictions{DataFormat: str("STRING"), Equal: str(equal)}}
}

// w3cPair: the prover holds a degree, a licence and a revoked degree.
func w3cPair(t *testing.T, verifierCfg ...func(*Config)) (v, p *node, vConn string) {
	v = newNode(t, "verifier", verifierCfg...)
	p = newNode(t, "prover")
	iss := newIssuer(t)
	p.creds.addW3C("degree", iss.issue(t, "UniversityDegreeCredential", p.did, 1, map[string]any{"degree": "BachelorDegree", "name": "Alice"}))
	p.creds.addW3C("licence", iss.issue(t, "DrivingLicence", p.did, 2, map[string]any{"licenceClass": "B"}))
	p.creds.addW3C("revoked", iss.issue(t, "UniversityDegreeCredential", p.did, revokedIndex, map[string]any{"degree": "BachelorDegree", "name": "Alice"}))
	vConn, _ = connect(v, p)
	return v, p, vConn
}

func w3cRequest() aip.ProofRequest {
	return aip.ProofRequest{Comment: "degree and licence", W3C: &aip.W3CProofNegotiation{Domain: "verifier.example", AttributeGroups: []aip.W3CAttributeGroup{
		{Referent: "degree", Attributes: []aip.W3CAttribute{field("$.credentialSubject.degree", "BachelorDegree")}},
		{Referent: "licence", Attributes: []aip.W3CAttribute{field("$.credentialSubject.licenceClass", "B")}},
	}}}
}

func w3cPresentation(degree string) aip.PresentationInput {
	return aip.PresentationInput{W3C: &aip.W3CPresentationInput{CredentialsForReferents: []aip.W3CCredentialForReferent{
		{Referent: "degree", CredentialID: degree}, {Referent: "licence", CredentialID: "licence"}}}}
}

// w3cPresent runs request → accept → deliver and returns the verifier's
// finished exchange.
func w3cPresent(t *testing.T, v, p *node, vConn, degree string, change func(*agent.Message)) *aip.ProofExchange {
	t.Helper()
	ctx := context.Background()
	vx, err := v.svc.SendRequest(ctx, vConn, w3cRequest())
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, v, p)
	items, _, err := p.svc.ProofExchanges(ctx, aip.Page{}, aip.ProofExchangeFilter{Role: aip.ProofExProver, States: []aip.ProofExState{aip.ProofExRequest}})
	if err != nil || len(items) != 1 {
		t.Fatalf("prover requests %v %v", items, err)
	}
	if _, err := p.svc.AcceptRequest(ctx, items[0].ID, w3cPresentation(degree)); err != nil {
		t.Fatal(err)
	}
	deliverWith(t, p, change, v)
	return waitState(t, v, vx.ID, aip.ProofExDone)
}

// TestW3CExchange: two referents answered by two credentials; candidates
// per descriptor; the VP (JWT, challenge and domain of the request, holder
// = the prover's DID) verifies.
func TestW3CExchange(t *testing.T) {
	ctx := context.Background()
	v, p, vConn := w3cPair(t)
	vx, err := v.svc.SendRequest(ctx, vConn, w3cRequest())
	if err != nil {
		t.Fatal(err)
	}
	n := vx.Messages.Request.W3C
	if n.Challenge == "" || n.Domain != "verifier.example" || !strings.Contains(n.PresentationDefinitionJSON, `"input_descriptors"`) {
		t.Fatalf("request as shown %+v", n)
	}
	sent := deliver(t, v, p)
	if sent[0].Attachments[0].Format != FormatDIFDefinition {
		t.Fatalf("format %s", sent[0].Attachments[0].Format)
	}
	px := only(t, p, aip.ProofExProver)
	got := px.Messages.Request.W3C
	if got.Challenge != n.Challenge || len(got.AttributeGroups) != 2 || got.AttributeGroups[1].Referent != "licence" ||
		*got.AttributeGroups[1].Attributes[0].ValueRestrictions.Equal != "B" {
		t.Fatalf("received %+v", got)
	}
	cands, err := p.svc.CredentialsFor(ctx, px.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"degree": {"degree", "revoked"}, "licence": {"licence"}}
	for _, c := range cands {
		if !slices.Equal(c.CredentialIDs, want[c.Referent]) {
			t.Errorf("referent %s: %v, want %v", c.Referent, c.CredentialIDs, want[c.Referent])
		}
	}
	// An AnonCreds answer to a W3C request is refused, nothing changes.
	before := p.stored(t, px.ID)
	_, err = p.svc.AcceptRequest(ctx, px.ID, personPresentation())
	code(t, err, agent.CodeMsg)
	if p.stored(t, px.ID) != before {
		t.Fatal("refused accept changed the exchange")
	}
	px, err = p.svc.AcceptRequest(ctx, px.ID, w3cPresentation("degree"))
	if err != nil {
		t.Fatal(err)
	}
	if px.State != aip.ProofExDone || !strings.HasPrefix(px.Messages.Presentation.W3C.PresentationJSON, "ey") {
		t.Fatalf("prover %s %+v", px.State, px.Messages.Presentation.W3C)
	}
	deliver(t, p, v)
	vx = waitState(t, v, vx.ID, aip.ProofExDone)
	pres := vx.Messages.Presentation
	if pres.VerificationResult != aip.Verified {
		t.Fatalf("verification %s %v", pres.VerificationResult, pres.VerificationErrors)
	}
	refs := pres.W3C.CredentialsForReferents
	if len(refs) != 2 || refs[0].Referent != "degree" || refs[1].Path != "$.verifiableCredential[1]" {
		t.Fatalf("referents %+v", refs)
	}
}

// TestW3CNothingFits: a descriptor nothing matches has an empty list.
func TestW3CNothingFits(t *testing.T) {
	ctx := context.Background()
	v, p, vConn := w3cPair(t)
	req := w3cRequest()
	req.W3C.AttributeGroups = append(req.W3C.AttributeGroups, aip.W3CAttributeGroup{Referent: "passport",
		Attributes: []aip.W3CAttribute{{AttributePaths: []string{"$.credentialSubject.passportNumber"}, PresentationType: aip.PresentValue}}})
	if _, err := v.svc.SendRequest(ctx, vConn, req); err != nil {
		t.Fatal(err)
	}
	deliver(t, v, p)
	cands, err := p.svc.CredentialsFor(ctx, only(t, p, aip.ProofExProver).ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(cands) != 3 || cands[2].Referent != "passport" || cands[2].CredentialIDs == nil || len(cands[2].CredentialIDs) != 0 {
		t.Fatalf("candidates %+v", cands)
	}
}

// TestW3CRevoked: a revoked credential (status list) is NOT_VERIFIED with
// the reason; with will_confirm the prover gets a problem report.
func TestW3CRevoked(t *testing.T) {
	v, p, vConn := w3cPair(t, willConfirm)
	vx := w3cPresent(t, v, p, vConn, "revoked", nil)
	pres := vx.Messages.Presentation
	if pres.VerificationResult != aip.NotVerified || len(pres.VerificationErrors) != 1 || !strings.HasPrefix(pres.VerificationErrors[0], w3cvc.ReasonRevoked) {
		t.Fatalf("verification %s %v", pres.VerificationResult, pres.VerificationErrors)
	}
	if msgs := deliver(t, v, p); len(msgs) != 1 || msgs[0].Type != agent.ProblemReportType {
		t.Fatalf("verifier sent %+v", msgs)
	}
}

// TestW3CTampered: a VP whose signature was changed on the way is
// NOT_VERIFIED.
func TestW3CTampered(t *testing.T) {
	v, p, vConn := w3cPair(t)
	vx := w3cPresent(t, v, p, vConn, "degree", func(m *agent.Message) {
		js := string(m.Attachments[0].Data.JSON)
		i := strings.LastIndex(js, ".") + 5
		c := byte('A')
		if js[i] == 'A' {
			c = 'B'
		}
		m.Attachments[0].Data.JSON = []byte(js[:i] + string(c) + js[i+1:])
	})
	pres := vx.Messages.Presentation
	if pres.VerificationResult != aip.NotVerified || !strings.HasPrefix(pres.VerificationErrors[0], w3cvc.ReasonHolder) && !strings.HasPrefix(pres.VerificationErrors[0], w3cvc.ReasonSignature) {
		t.Fatalf("verification %s %v", pres.VerificationResult, pres.VerificationErrors)
	}
}

// TestW3CWrongHolder: a VP signed by someone other than the connection's
// DID is NOT_VERIFIED, even with valid signatures throughout.
func TestW3CWrongHolder(t *testing.T) {
	v2, p2, vConn2 := w3cPair(t)
	p2.close()
	stranger := newNode(t, "stranger")
	p2.open(t, func(c *Config) {
		w, _ := NewW3C(W3CConfig{Verifier: w3cvc.NewVerifier(w3cvc.VerifierConfig{Resolver: did.NewDefaultRegistry(nil, nil)}),
			Signer: func(context.Context, string) (w3cvc.Signer, error) {
				return w3cvc.KeySigner(stranger.did, stranger.key), nil
			}})
		c.W3C = w
	})
	vx := w3cPresent(t, v2, p2, vConn2, "degree", nil)
	if r := vx.Messages.Presentation; r.VerificationResult != aip.NotVerified || !strings.HasPrefix(r.VerificationErrors[0], w3cvc.ReasonHolder) {
		t.Fatalf("verification %s %v", r.VerificationResult, r.VerificationErrors)
	}
}

// TestW3CPredicateRefused: a PREDICATE attribute needs selective
// disclosure, which is refused as unsupported before anything is stored
// or sent.
func TestW3CPredicateRefused(t *testing.T) {
	v, _, vConn := w3cPair(t)
	req := w3cRequest()
	req.W3C.AttributeGroups[0].Attributes[0].PresentationType = aip.PresentPredicate
	_, err := v.svc.SendRequest(context.Background(), vConn, req)
	code(t, err, agent.CodeMsgUnsupported)
	if items, _, _ := v.svc.ProofExchanges(context.Background(), aip.Page{}, aip.ProofExchangeFilter{}); len(items) != 0 || outboxLen(t, v) != 0 {
		t.Fatal("a refused request was stored or sent")
	}
}

// TestIdentitySigner: the signer found through the agent's key store signs
// presentations that verify with the DID as holder; a DID whose keys the
// agent does not hold has no signer.
func TestIdentitySigner(t *testing.T) {
	ctx := context.Background()
	k, err := keys.Generate(keys.Ed25519, "")
	if err != nil {
		t.Fatal(err)
	}
	d := did.KeyDID(k.PublicKey)
	k.ID = d + "#" + k.PublicKey.Multikey()
	ks := &keys.MemoryStore{}
	if err := ks.Put(ctx, k); err != nil {
		t.Fatal(err)
	}
	reg := did.NewDefaultRegistry(nil, nil)
	sign := IdentitySigner(agent.NewIdentity(ks), reg)
	s, err := sign(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	vp, err := w3cvc.Present(nil, s, w3cvc.FormatJWTVP, "c", "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := w3cvc.NewVerifier(w3cvc.VerifierConfig{Resolver: reg}).VerifyPresentation(ctx, vp, w3cvc.PresentationCheck{Challenge: "c", Domain: "d", Holders: []string{d}})
	if err != nil || p.Holder != d {
		t.Fatalf("%v %v", p, err)
	}
	other, _ := keys.Generate(keys.Ed25519, "")
	if _, err := sign(ctx, did.KeyDID(other.PublicKey)); err == nil {
		t.Fatal("a signer for a DID whose key the agent does not hold")
	}
}
