package issuecredential

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
)

var ctx = context.Background()

// anoncredsSetup: the issuer's schema and credential definition, imported
// by the holder; the pair connected.
func anoncredsSetup(t *testing.T) (iss, hol *side, n *net, connID, credDefID string) {
	iss, hol = newSide(t), newSide(t)
	connID, _ = connect(iss, hol)
	sc, err := iss.cs.CreateAnoncredsSchema(ctx, "person", "1.0", []string{"name", "age"})
	if err != nil {
		t.Fatal(err)
	}
	cd, err := iss.cs.CreateAnoncredsCredDef(ctx, sc.ID, "go", false)
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, iss, hol, sc.ID, cd.ID)
	return iss, hol, newNet(iss, hol), connID, cd.ID
}

func personOffer(credDefID string, auto bool) aip.CredentialOfferInput {
	return aip.CredentialOfferInput{Comment: "hello", AutoAcceptRequest: auto, Anoncreds: &aip.AnoncredsCredentialPreview{
		CredDefID: credDefID, Attributes: []aip.Attribute{{Name: "name", Value: "Alex"}, {Name: "age", Value: "28"}}}}
}

// forwardOnly checks that a side's events never move a state backwards.
func forwardOnly(t *testing.T, s *side) {
	t.Helper()
	last := map[string]aip.CredExState{}
	for _, e := range s.events.events {
		if prev, ok := last[e.ID]; ok && prev != e.State && !aip.CanMove(prev, e.State) {
			t.Errorf("exchange %s went %s -> %s", e.ID, prev, e.State)
		}
		last[e.ID] = e.State
	}
}

// TestAnoncredsIssueHoldPresent: the Go issuer offers, the holder
// requests, the operator issues, the holder verifies and stores it and
// acknowledges; the stored credential then makes a presentation that
// verifies.
func TestAnoncredsIssueHoldPresent(t *testing.T) {
	iss, hol, n, connID, credDefID := anoncredsSetup(t)
	ex, err := iss.svc.SendOffer(ctx, connID, personOffer(credDefID, false))
	if err != nil {
		t.Fatal(err)
	}
	if ex.State != aip.CredExOffer || ex.MyRole != aip.CredExIssuer {
		t.Fatalf("issuer: %s %s", ex.MyRole, ex.State)
	}
	n.run(t)
	h := hol.only(t)
	if h.State != aip.CredExOffer || h.MyRole != aip.CredExHolder || h.ThreadID != ex.ThreadID ||
		h.Messages.Offer.Anoncreds.CredDefID != credDefID || len(h.Messages.Offer.Anoncreds.Attributes) != 2 {
		t.Fatalf("holder exchange: %+v", h)
	}
	if _, err := hol.svc.AcceptOffer(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	n.run(t)
	if got := iss.only(t); got.State != aip.CredExRequest {
		t.Fatalf("issuer state %s, want REQUEST (no auto-accept)", got.State)
	}
	if _, err := iss.svc.AcceptRequest(ctx, ex.ID); err != nil {
		t.Fatal(err)
	}
	n.run(t)
	if got := iss.only(t); got.State != aip.CredExDone || got.Messages.Issued == nil {
		t.Fatalf("issuer: %+v", got)
	}
	h = hol.only(t)
	if h.State != aip.CredExDone || h.Messages.Issued == nil || h.Messages.Issued.CredentialID == "" {
		t.Fatalf("holder: %+v", h)
	}
	if len(n.problems) != 0 {
		t.Fatalf("problems: %v", n.problems)
	}
	c, err := hol.cs.Credential(ctx, h.Messages.Issued.CredentialID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Format != aip.FormatAnoncreds || c.CredDefID != credDefID || c.ConnectionID != h.ConnectionID ||
		!slices.Equal(c.Attributes, []aip.Attribute{{Name: "age", Value: "28"}, {Name: "name", Value: "Alex"}}) {
		t.Fatalf("held: %+v", c)
	}
	forwardOnly(t, iss)
	forwardOnly(t, hol)

	// The held credential presents, and the presentation verifies.
	raw, err := hol.cs.Raw(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := anoncreds.ParseCredential(raw)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := hol.cs.LinkSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := hol.cs.ResolveSchema(ctx, c.SchemaID)
	cd, _ := hol.cs.ResolveCredDef(ctx, credDefID)
	req, err := anoncreds.ParsePresentationRequest([]byte(`{"nonce":"1234567890","name":"p","version":"1.0",
	  "requested_attributes":{"n":{"name":"name","restrictions":{"cred_def_id":"` + credDefID + `"}}},
	  "requested_predicates":{"a":{"name":"age","p_type":">=","p_value":18}}}`))
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*anoncreds.Schema{c.SchemaID: sc}
	cds := map[string]*anoncreds.CredentialDefinition{credDefID: cd}
	pres, err := anoncreds.CreatePresentation(req, anoncreds.PresentationInput{Credentials: []anoncreds.PresentCredential{{
		Credential: cred, Attributes: map[string]bool{"n": true}, Predicates: []string{"a"}}}}, ls, schemas, cds)
	if err != nil {
		t.Fatal(err)
	}
	if err := anoncreds.VerifyPresentation(pres, req, schemas, cds); err != nil {
		t.Fatalf("presentation of the issued credential: %v", err)
	}
	if got := pres.RequestedProof.RevealedAttrs["n"].Raw; got != "Alex" {
		t.Fatalf("revealed %q", got)
	}
}

// TestW3CIssue: a VC-JWT and a JSON-LD credential, issued at once on the
// request (autoAcceptRequest), verified and stored by the holder.
func TestW3CIssue(t *testing.T) {
	for _, mech := range []string{MechanismJWT, MechanismLDP} {
		t.Run(mech, func(t *testing.T) {
			iss, hol := newSide(t), newSide(t)
			connID, _ := connect(iss, hol)
			n := newNet(iss, hol)
			ex, err := iss.svc.SendOffer(ctx, connID, w3cOffer(mech, true))
			if err != nil {
				t.Fatal(err)
			}
			n.run(t)
			h := hol.only(t)
			if h.Messages.Offer.W3C == nil || h.Messages.Offer.W3C.SecuringMechanism != mech {
				t.Fatalf("holder offer: %+v", h.Messages.Offer)
			}
			if _, err := hol.svc.AcceptOffer(ctx, h.ID); err != nil {
				t.Fatal(err)
			}
			n.run(t)
			if got, _ := iss.svc.CredentialExchange(ctx, ex.ID); got.State != aip.CredExDone {
				t.Fatalf("issuer %s", got.State)
			}
			h = hol.only(t)
			if h.State != aip.CredExDone || len(n.problems) != 0 {
				t.Fatalf("holder %s, problems %v", h.State, n.problems)
			}
			c, err := hol.cs.Credential(ctx, h.Messages.Issued.CredentialID)
			if err != nil {
				t.Fatal(err)
			}
			want := "ldp_vc"
			if mech == MechanismJWT {
				want = "jwt_vc_json"
			}
			if c.Format != aip.FormatW3C || c.W3CFormat != want || c.CredentialJSON == "" {
				t.Fatalf("held: %+v", c)
			}
			if mech == MechanismLDP && !strings.Contains(c.CredentialJSON, hol.did) {
				t.Fatal("the subject is not the holder's DID")
			}
			forwardOnly(t, hol)
		})
	}
}

func w3cOffer(mech string, auto bool) aip.CredentialOfferInput {
	vc := `{"@context":["https://www.w3.org/2018/credentials/v1","https://www.w3.org/2018/credentials/examples/v1"],
	  "type":["VerifiableCredential","UniversityDegreeCredential"],"issuanceDate":"2024-01-01T00:00:00Z",
	  "credentialSubject":{"degree":{"type":"BachelorDegree","name":"Bachelor of Science and Arts"}}}`
	return aip.CredentialOfferInput{AutoAcceptRequest: auto, W3C: &aip.W3CCredentialPreview{CredentialJSON: vc, SecuringMechanism: mech}}
}

// TestTamperedCredentialRefused: a credential changed in transit does not
// verify: nothing is stored, the holder abandons with the reason, and its
// problem report abandons the issuer's exchange.
func TestTamperedCredentialRefused(t *testing.T) {
	cases := map[string]func(*agent.Message){
		"anoncreds value": func(m *agent.Message) {
			if m.Type == IssueType {
				m.Attachments[0].Data.JSON = json.RawMessage(strings.Replace(string(m.Attachments[0].Data.JSON), `"Alex"`, `"Alix"`, 1))
			}
		},
		"jwt signature": func(m *agent.Message) {
			if m.Type == IssueType {
				var s string
				json.Unmarshal(m.Attachments[0].Data.JSON, &s)
				b := []byte(s)
				i := len(b) - 5
				b[i] ^= 1
				m.Attachments[0].Data.JSON, _ = json.Marshal(string(b))
			}
		},
		"ldp claim": func(m *agent.Message) {
			if m.Type == IssueType {
				m.Attachments[0].Data.JSON = json.RawMessage(strings.Replace(string(m.Attachments[0].Data.JSON), "Bachelor of Science", "Doctor of Science", 1))
			}
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			var iss, hol *side
			var n *net
			var offer aip.CredentialOfferInput
			switch {
			case strings.HasPrefix(name, "anoncreds"):
				var connID, cd string
				iss, hol, n, connID, cd = anoncredsSetup(t)
				offer = personOffer(cd, true)
				if _, err := iss.svc.SendOffer(ctx, connID, offer); err != nil {
					t.Fatal(err)
				}
			default:
				iss, hol = newSide(t), newSide(t)
				connID, _ := connect(iss, hol)
				n = newNet(iss, hol)
				mech := MechanismJWT
				if strings.HasPrefix(name, "ldp") {
					mech = MechanismLDP
				}
				if _, err := iss.svc.SendOffer(ctx, connID, w3cOffer(mech, true)); err != nil {
					t.Fatal(err)
				}
			}
			n.run(t)
			n.tamper = tamper
			if _, err := hol.svc.AcceptOffer(ctx, hol.only(t).ID); err != nil {
				t.Fatal(err)
			}
			n.run(t)
			h := hol.only(t)
			if h.State != aip.CredExAbandoned || !strings.Contains(h.ErrorMessage, "does not verify") {
				t.Fatalf("holder %s %q", h.State, h.ErrorMessage)
			}
			if hol.heldCount(t) != 0 {
				t.Fatal("a tampered credential was stored")
			}
			if got := iss.only(t); got.State != aip.CredExAbandoned {
				t.Fatalf("issuer %s: the holder's problem report did not abandon it", got.State)
			}
		})
	}
}

// TestWrongConnectionRefused: a third party that knows the thread cannot
// move the holder's exchange: refused, nothing changes.
func TestWrongConnectionRefused(t *testing.T) {
	iss, hol, n, connID, cd := anoncredsSetup(t)
	mallory := newSide(t)
	connect(mallory, hol)
	n.sides[mallory.did] = mallory
	ex, err := iss.svc.SendOffer(ctx, connID, personOffer(cd, false))
	if err != nil {
		t.Fatal(err)
	}
	n.run(t)
	h := hol.only(t)
	if _, err := hol.svc.AcceptOffer(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	n.run(t)
	before := hol.only(t)
	for _, typ := range []string{IssueType, agent.ProblemReportType} {
		m, _ := agent.NewMessage(typ, map[string]string{"code": "e.p.x"})
		m.From, m.To, m.ThID, m.PThID = mallory.did, []string{hol.did}, ex.ThreadID, ex.ThreadID
		n.deliver(t, hol, m)
	}
	after := hol.only(t)
	if after.State != before.State || after.Modified != before.Modified {
		t.Fatalf("mallory moved the exchange: %s -> %s", before.State, after.State)
	}
	if len(n.problems) != 1 || !agent.HasCode(n.problems[0], agent.CodeForbidden) {
		t.Fatalf("problems: %v", n.problems)
	}
	// A sender with no connection at all is refused as well.
	stranger := newSide(t)
	m, _ := agent.NewMessage(OfferType, OfferBody{})
	m.From, m.To = stranger.did, []string{hol.did}
	n.deliver(t, hol, m)
	if len(n.problems) != 2 || !agent.HasCode(n.problems[1], agent.CodeForbidden) {
		t.Fatalf("problems: %v", n.problems)
	}
}

// TestWrongStateRefused: actions and messages out of turn are refused and
// change nothing.
func TestWrongStateRefused(t *testing.T) {
	iss, hol, n, connID, cd := anoncredsSetup(t)
	ex, err := iss.svc.SendOffer(ctx, connID, personOffer(cd, false))
	if err != nil {
		t.Fatal(err)
	}
	n.run(t)
	h := hol.only(t)
	if _, err := iss.svc.AcceptOffer(ctx, ex.ID); !agent.HasCode(err, agent.CodeConflict) {
		t.Fatalf("issuer accepting an offer: %v", err)
	}
	if _, err := iss.svc.AcceptRequest(ctx, ex.ID); !agent.HasCode(err, agent.CodeConflict) {
		t.Fatalf("issuing before the request: %v", err)
	}
	if _, err := hol.svc.AcceptRequest(ctx, h.ID); !agent.HasCode(err, agent.CodeConflict) {
		t.Fatalf("holder issuing: %v", err)
	}
	// An issue-credential before the request: refused, holder stays in OFFER.
	m, _ := agent.NewMessage(IssueType, IssueBody{})
	m.From, m.To, m.ThID = iss.did, []string{hol.did}, ex.ThreadID
	n.deliver(t, hol, m)
	if got := hol.only(t); got.State != aip.CredExOffer {
		t.Fatalf("holder %s", got.State)
	}
	// (Its problem report would abandon the issuer's exchange, as any
	// problem report on the thread does: drop it, the test goes on.)
	if outs := hol.st.Outbound(); outs[len(outs)-1].MessageType != agent.ProblemReportType {
		t.Fatal("the refusal was not answered with a problem report")
	}
	hol.sent = len(hol.st.Outbound())
	if _, err := hol.svc.AcceptOffer(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := hol.svc.AcceptOffer(ctx, h.ID); !agent.HasCode(err, agent.CodeConflict) {
		t.Fatalf("accepting twice: %v", err)
	}
	n.run(t)
	if _, err := iss.svc.AcceptRequest(ctx, ex.ID); err != nil {
		t.Fatal(err)
	}
	n.run(t)
	// A second ack after DONE: refused, still DONE.
	ack, _ := agent.NewMessage(AckType, AckBody{Status: "OK"})
	ack.From, ack.To, ack.ThID = hol.did, []string{iss.did}, ex.ThreadID
	before := len(n.problems)
	n.deliver(t, iss, ack)
	if got := iss.only(t); got.State != aip.CredExDone || len(n.problems) != before+1 {
		t.Fatalf("issuer %s after a second ack", got.State)
	}
	if hol.heldCount(t) != 1 {
		t.Fatal("one credential expected")
	}
}

// TestDeleteAbandonsPeer: deleting a live exchange sends a problem report
// that abandons the peer's; the record is gone.
func TestDeleteAbandonsPeer(t *testing.T) {
	iss, hol, n, connID, cd := anoncredsSetup(t)
	ex, err := iss.svc.SendOffer(ctx, connID, personOffer(cd, false))
	if err != nil {
		t.Fatal(err)
	}
	n.run(t)
	if err := iss.svc.DeleteCredentialExchange(ctx, ex.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := iss.svc.CredentialExchange(ctx, ex.ID); !agent.HasCode(err, agent.CodeNotFound) {
		t.Fatalf("deleted exchange: %v", err)
	}
	n.run(t)
	h := hol.only(t)
	if h.State != aip.CredExAbandoned || !strings.Contains(h.ErrorMessage, CodeAbandoned) {
		t.Fatalf("holder %s %q", h.State, h.ErrorMessage)
	}
	if _, err := hol.svc.AcceptOffer(ctx, h.ID); !agent.HasCode(err, agent.CodeConflict) {
		t.Fatalf("accepting an abandoned offer: %v", err)
	}
	// Index entries went with it: no listing shows it.
	for _, f := range []aip.CredentialExchangeFilter{{}, {Role: aip.CredExIssuer}, {States: []aip.CredExState{aip.CredExOffer}}} {
		if items, _, _ := iss.svc.CredentialExchanges(ctx, aip.Page{}, f); len(items) != 0 {
			t.Fatalf("filter %+v lists %d", f, len(items))
		}
	}
}

// TestRestartSurvives: both sides restart between every step (new
// services over the same records) and the exchange completes.
func TestRestartSurvives(t *testing.T) {
	iss, hol, n, connID, cd := anoncredsSetup(t)
	ex, err := iss.svc.SendOffer(ctx, connID, personOffer(cd, true))
	if err != nil {
		t.Fatal(err)
	}
	iss.start()
	n.run(t)
	hol.start()
	if _, err := hol.svc.AcceptOffer(ctx, hol.only(t).ID); err != nil {
		t.Fatal(err)
	}
	hol.start()
	iss.start()
	n.run(t)
	if got, _ := iss.svc.CredentialExchange(ctx, ex.ID); got.State != aip.CredExDone {
		t.Fatalf("issuer %s", got.State)
	}
	if h := hol.only(t); h.State != aip.CredExDone || hol.heldCount(t) != 1 {
		t.Fatalf("holder %s", h.State)
	}
}

// TestListingFilters: role, state and connection filters through their indexes.
func TestListingFilters(t *testing.T) {
	iss, hol, n, connID, cd := anoncredsSetup(t)
	var ids []string
	for i := 0; i < 5; i++ {
		ex, err := iss.svc.SendOffer(ctx, connID, personOffer(cd, true))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ex.ID)
	}
	n.run(t)
	hs, _, _ := hol.svc.CredentialExchanges(ctx, aip.Page{}, aip.CredentialExchangeFilter{})
	if _, err := hol.svc.AcceptOffer(ctx, hs[0].ID); err != nil {
		t.Fatal(err)
	}
	n.run(t)
	done, _, err := iss.svc.CredentialExchanges(ctx, aip.Page{}, aip.CredentialExchangeFilter{Role: aip.CredExIssuer, States: []aip.CredExState{aip.CredExDone}, ConnectionIDs: []string{connID}})
	if err != nil || len(done) != 1 {
		t.Fatalf("done: %d %v", len(done), err)
	}
	offered, _, _ := iss.svc.CredentialExchanges(ctx, aip.Page{}, aip.CredentialExchangeFilter{States: []aip.CredExState{aip.CredExOffer}})
	if len(offered) != 4 {
		t.Fatalf("offered: %d", len(offered))
	}
	var got []string
	token := ""
	for {
		items, next, err := iss.svc.CredentialExchanges(ctx, aip.Page{Limit: 2, NextToken: token}, aip.CredentialExchangeFilter{Role: aip.CredExIssuer})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range items {
			got = append(got, e.ID)
		}
		if next == "" {
			break
		}
		token = next
	}
	slices.Reverse(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("pages %v, want newest first %v", got, ids)
	}
	if items, _, _ := iss.svc.CredentialExchanges(ctx, aip.Page{}, aip.CredentialExchangeFilter{Role: aip.CredExHolder}); len(items) != 0 {
		t.Fatal("issuer lists holder exchanges")
	}
}
