package presentproof

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
)

func predGroup(ref, attr string, op aip.PredicateOperator, v int64) aip.AnoncredsAttributeGroup {
	return aip.AnoncredsAttributeGroup{Referent: ref, AttributeNames: []string{attr},
		Restrictions: []aip.AnoncredsRestriction{{CredDefID: vecCredDefID, Predicate: &aip.Predicate{Operator: op, Threshold: v}}}}
}

// personRequest asks for a name from the person schema, an adult's age
// (only Alex's credential) and a minor's (only Bob's).
func personRequest() aip.ProofRequest {
	return aip.ProofRequest{Comment: "who are you", Anoncreds: &aip.AnoncredsProofRequest{AttributeGroups: []aip.AnoncredsAttributeGroup{
		{Referent: "name", AttributeNames: []string{"name"}, Restrictions: []aip.AnoncredsRestriction{{SchemaID: vecSchemaID}}},
		predGroup("adult", "age", aip.GreaterThanOrEqual, 18),
		predGroup("minor", "age", aip.LessThan, 18),
	}}}
}

func personPresentation() aip.PresentationInput {
	return aip.PresentationInput{Comment: "here", Anoncreds: &aip.AnoncredsPresentationInput{CredentialsForReferents: []aip.AnoncredsCredentialForReferent{
		{Referent: "name", CredentialID: "alex", Revealed: true},
		{Referent: "adult", CredentialID: "alex"},
		{Referent: "minor", CredentialID: "bob"},
	}}}
}

// pair is a verifier and a prover holding Alex's and Bob's credentials.
func pair(t *testing.T, verifierCfg ...func(*Config)) (v, p *node, vConn, pConn string) {
	v = newNode(t, "verifier", verifierCfg...)
	p = newNode(t, "prover")
	p.creds.addAnoncreds(t, "alex", "set1-ge/credential.json")
	p.creds.addAnoncreds(t, "bob", "set2-lt-le-gt/credential.json")
	vConn, pConn = connect(v, p)
	return v, p, vConn, pConn
}

func willConfirm(c *Config) { c.WillConfirm = true }

func code(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", want)
	}
	if got := agent.ErrorCode(err); got != want {
		t.Fatalf("error %v: code %s, want %s", err, got, want)
	}
}

// TestAnoncredsRequestFirst: the verifier requests three referents, each
// answered by its own credential; the prover lists candidates, presents,
// the verifier verifies and acks (will_confirm), the prover is done.
// Wrong role and state are refused and change nothing; every state
// change is forward.
func TestAnoncredsRequestFirst(t *testing.T) {
	ctx := context.Background()
	v, p, vConn, _ := pair(t, willConfirm)
	vx, err := v.svc.SendRequest(ctx, vConn, personRequest())
	if err != nil {
		t.Fatal(err)
	}
	if vx.MyRole != aip.ProofExVerifier || vx.State != aip.ProofExRequest || vx.Messages.Request.Anoncreds.Nonce == "" {
		t.Fatalf("verifier exchange %+v", vx)
	}
	sent := deliver(t, v, p)
	if len(sent) != 1 || sent[0].Type != TypeRequest || sent[0].Attachments[0].Format != FormatAnoncredsRequest {
		t.Fatalf("sent %+v", sent)
	}
	px := only(t, p, aip.ProofExProver)
	if px.State != aip.ProofExRequest || px.ThreadID != vx.ThreadID || len(px.Messages.Request.Anoncreds.AttributeGroups) != 3 {
		t.Fatalf("prover exchange %+v", px)
	}
	// The received request reads back as what was asked.
	if g := px.Messages.Request.Anoncreds.AttributeGroups[1]; g.Referent != "adult" || g.Restrictions[0].Predicate.Threshold != 18 || g.Restrictions[0].CredDefID != vecCredDefID {
		t.Fatalf("received group %+v", g)
	}

	cands, err := p.svc.CredentialsFor(ctx, px.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"adult": {"alex"}, "minor": {"bob"}, "name": {"alex", "bob"}}
	if len(cands) != 3 {
		t.Fatalf("candidates %+v", cands)
	}
	for _, c := range cands {
		if !slices.Equal(c.CredentialIDs, want[c.Referent]) {
			t.Errorf("referent %s: %v, want %v", c.Referent, c.CredentialIDs, want[c.Referent])
		}
	}

	// Wrong role: the verifier cannot accept; nothing changes.
	before := v.stored(t, vx.ID)
	_, err = v.svc.AcceptRequest(ctx, vx.ID, personPresentation())
	code(t, err, agent.CodeConflict)
	if v.stored(t, vx.ID) != before || outboxLen(t, v) != 0 {
		t.Fatal("a refused accept changed the exchange or sent something")
	}
	// Bad input: a referent left unanswered is refused; nothing changes.
	beforeP := p.stored(t, px.ID)
	bad := personPresentation()
	bad.Anoncreds.CredentialsForReferents = bad.Anoncreds.CredentialsForReferents[:2]
	_, err = p.svc.AcceptRequest(ctx, px.ID, bad)
	code(t, err, agent.CodeMsg)
	if p.stored(t, px.ID) != beforeP || outboxLen(t, p) != 0 {
		t.Fatal("a refused accept changed the exchange or sent something")
	}

	px, err = p.svc.AcceptRequest(ctx, px.ID, personPresentation())
	if err != nil {
		t.Fatal(err)
	}
	if px.State != aip.ProofExPresented {
		t.Fatalf("prover state %s, want PRESENTED (the request asked to confirm)", px.State)
	}
	deliver(t, p, v)
	vx = waitState(t, v, vx.ID, aip.ProofExDone)
	pres := vx.Messages.Presentation
	if pres.VerificationResult != aip.Verified || len(pres.VerificationErrors) != 0 {
		t.Fatalf("verification %s %v", pres.VerificationResult, pres.VerificationErrors)
	}
	kinds := map[string]aip.PresentedGroupKind{}
	for _, g := range pres.Anoncreds.Groups {
		kinds[g.Referent] = g.Kind
		if g.Referent == "name" && (g.Attributes[0].Name != "name" || g.Attributes[0].Value != "Alex") {
			t.Errorf("revealed name %+v", g.Attributes)
		}
	}
	if kinds["name"] != aip.GroupRevealed || kinds["adult"] != aip.GroupPredicate || kinds["minor"] != aip.GroupPredicate {
		t.Errorf("groups %+v", kinds)
	}
	acks := deliver(t, v, p)
	if len(acks) != 1 || acks[0].Type != TypeAck || acks[0].ThID != vx.ThreadID {
		t.Fatalf("verifier sent %+v, want one ack on the thread", acks)
	}
	px = waitState(t, p, px.ID, aip.ProofExDone)

	// Terminal: accepting again is refused, and a problem report now
	// changes nothing.
	_, err = p.svc.AcceptRequest(ctx, px.ID, personPresentation())
	code(t, err, agent.CodeConflict)
	done := p.stored(t, px.ID)
	pr, _ := agent.NewMessage(agent.ProblemReportType, agent.ProblemReportBody{Code: "e.p.late"})
	pr.PThID, pr.From, pr.To = vx.ThreadID, v.did, []string{p.did}
	outs, _ := memMessenger{}.Outbound(ctx, pr)
	if err := v.store.Update(ctx, func(w *agent.Work) error { w.Enqueue(outs...); return nil }); err != nil {
		t.Fatal(err)
	}
	deliver(t, v, p)
	if p.stored(t, px.ID) != done {
		t.Fatal("a problem report moved a DONE exchange")
	}

	for _, n := range []*node{v, p} {
		x := only(t, n, map[*node]aip.ProofExRole{v: aip.ProofExVerifier, p: aip.ProofExProver}[n])
		assertForward(t, n.events.of(x.ID, 3), aip.ProofExRequest, aip.ProofExPresented, aip.ProofExDone)
	}
}

func assertForward(t *testing.T, got []aip.ProofExState, want ...aip.ProofExState) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}
	for i := 1; i < len(got); i++ {
		if !aip.CanMove(got[i-1], got[i]) {
			t.Fatalf("went %s -> %s", got[i-1], got[i])
		}
	}
}

// TestAnoncredsProposalFirst: the prover proposes, the verifier answers
// with the proposal as a request (fresh nonce), the prover presents
// without being asked to confirm and is done at once; no ack is sent.
func TestAnoncredsProposalFirst(t *testing.T) {
	ctx := context.Background()
	v, p, _, pConn := pair(t)
	proposal := personRequest()
	proposal.Anoncreds.Nonce = "12345"
	px, err := p.svc.SendProposal(ctx, pConn, proposal)
	if err != nil {
		t.Fatal(err)
	}
	if px.MyRole != aip.ProofExProver || px.State != aip.ProofExProposal {
		t.Fatalf("prover %+v", px)
	}
	deliver(t, p, v)
	vx := only(t, v, aip.ProofExVerifier)
	if vx.State != aip.ProofExProposal || vx.Messages.Proposal == nil || vx.ThreadID != px.ThreadID {
		t.Fatalf("verifier %+v", vx)
	}
	// The prover cannot accept its own proposal.
	_, err = p.svc.AcceptRequest(ctx, px.ID, personPresentation())
	code(t, err, agent.CodeConflict)

	vx, err = v.svc.RequestFromProposal(ctx, vx.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if vx.State != aip.ProofExRequest || vx.Messages.Request.Anoncreds.Nonce == "12345" || vx.Messages.Request.Anoncreds.Nonce == "" {
		t.Fatalf("request from proposal %+v", vx.Messages.Request.Anoncreds)
	}
	// Not twice.
	_, err = v.svc.RequestFromProposal(ctx, vx.ID, nil)
	code(t, err, agent.CodeConflict)
	deliver(t, v, p)
	px = waitState(t, p, px.ID, aip.ProofExRequest)
	px, err = p.svc.AcceptRequest(ctx, px.ID, personPresentation())
	if err != nil {
		t.Fatal(err)
	}
	if px.State != aip.ProofExDone {
		t.Fatalf("prover state %s, want DONE (no confirmation asked)", px.State)
	}
	deliver(t, p, v)
	vx = waitState(t, v, vx.ID, aip.ProofExDone)
	if vx.Messages.Presentation.VerificationResult != aip.Verified {
		t.Fatalf("verification %+v", vx.Messages.Presentation)
	}
	if n := outboxLen(t, v); n != 0 {
		t.Fatalf("verifier queued %d messages; no ack was asked for", n)
	}
	assertForward(t, v.events.of(vx.ID, 4), aip.ProofExProposal, aip.ProofExRequest, aip.ProofExPresented, aip.ProofExDone)
	assertForward(t, p.events.of(px.ID, 4), aip.ProofExProposal, aip.ProofExRequest, aip.ProofExPresented, aip.ProofExDone)
}

// TestAnoncredsNothingFits: candidates are empty lists, not missing.
func TestAnoncredsNothingFits(t *testing.T) {
	ctx := context.Background()
	v, p, vConn, _ := pair(t)
	req := aip.ProofRequest{Anoncreds: &aip.AnoncredsProofRequest{AttributeGroups: []aip.AnoncredsAttributeGroup{
		{Referent: "other", AttributeNames: []string{"name"}, Restrictions: []aip.AnoncredsRestriction{{CredDefID: "did:web:other.example/creddef"}}},
		predGroup("old", "age", aip.GreaterThan, 120),
		{Referent: "nick", AttributeNames: []string{"nickname"}},
	}}}
	if _, err := v.svc.SendRequest(ctx, vConn, req); err != nil {
		t.Fatal(err)
	}
	deliver(t, v, p)
	cands, err := p.svc.CredentialsFor(ctx, only(t, p, aip.ProofExProver).ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(cands) != 3 {
		t.Fatalf("candidates %+v", cands)
	}
	for _, c := range cands {
		if c.CredentialIDs == nil || len(c.CredentialIDs) != 0 {
			t.Errorf("referent %s: %#v, want an empty list", c.Referent, c.CredentialIDs)
		}
	}
	b, _ := json.Marshal(cands)
	if !strings.Contains(string(b), `"CredentialIDs":[]`) {
		t.Errorf("empty lists must marshal as []: %s", b)
	}
}

// TestAnoncredsTampered: a revealed value changed on the way is
// NOT_VERIFIED with a reason (not ABANDONED); with will_confirm the
// prover hears of it by a problem report.
func TestAnoncredsTampered(t *testing.T) {
	ctx := context.Background()
	v, p, vConn, _ := pair(t, willConfirm)
	vx, err := v.svc.SendRequest(ctx, vConn, personRequest())
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, v, p)
	px, err := p.svc.AcceptRequest(ctx, only(t, p, aip.ProofExProver).ID, personPresentation())
	if err != nil {
		t.Fatal(err)
	}
	deliverWith(t, p, func(m *agent.Message) {
		var doc map[string]any
		if err := json.Unmarshal(m.Attachments[0].Data.JSON, &doc); err != nil {
			t.Fatal(err)
		}
		doc["requested_proof"].(map[string]any)["revealed_attrs"].(map[string]any)["name"].(map[string]any)["raw"] = "Eve"
		m.Attachments[0].Data.JSON, _ = json.Marshal(doc)
	}, v)
	vx = waitState(t, v, vx.ID, aip.ProofExDone)
	pres := vx.Messages.Presentation
	if pres.VerificationResult != aip.NotVerified || len(pres.VerificationErrors) == 0 || !strings.Contains(pres.VerificationErrors[0], "encod") {
		t.Fatalf("verification %s %v", pres.VerificationResult, pres.VerificationErrors)
	}
	reply := deliver(t, v, p)
	if len(reply) != 1 || reply[0].Type != agent.ProblemReportType || reply[0].PThID != vx.ThreadID {
		t.Fatalf("verifier sent %+v, want a problem report on the thread", reply)
	}
	px = waitState(t, p, px.ID, aip.ProofExAbandoned)
	if !strings.Contains(px.ErrorMessage, ProblemCodeNotVerified) {
		t.Fatalf("prover error message %q", px.ErrorMessage)
	}
}

// TestDeleteAbandonsPeer: deleting a live exchange sends a problem
// report that abandons the peer's; deleting a terminal one sends nothing.
func TestDeleteAbandonsPeer(t *testing.T) {
	ctx := context.Background()
	v, p, vConn, _ := pair(t)
	vx, err := v.svc.SendRequest(ctx, vConn, personRequest())
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, v, p)
	px := only(t, p, aip.ProofExProver)
	if err := p.svc.Delete(ctx, px.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.svc.ProofExchange(ctx, px.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("deleted exchange still there: %v", err)
	}
	if items, _, _ := p.svc.ProofExchanges(ctx, aip.Page{}, aip.ProofExchangeFilter{}); len(items) != 0 {
		t.Fatalf("deleted exchange still listed: %+v", items)
	}
	msgs := deliver(t, p, v)
	if len(msgs) != 1 || msgs[0].Type != agent.ProblemReportType || msgs[0].PThID != vx.ThreadID {
		t.Fatalf("sent %+v", msgs)
	}
	vx = waitState(t, v, vx.ID, aip.ProofExAbandoned)
	if !strings.Contains(vx.ErrorMessage, ProblemCodeAbandoned) {
		t.Fatalf("error message %q", vx.ErrorMessage)
	}
	// Deleting a terminal exchange sends nothing.
	if err := v.svc.Delete(ctx, vx.ID); err != nil {
		t.Fatal(err)
	}
	if n := outboxLen(t, v); n != 0 {
		t.Fatalf("deleting a terminal exchange sent %d messages", n)
	}
	assertForward(t, v.events.of(vx.ID, 2), aip.ProofExRequest, aip.ProofExAbandoned)
}

// TestOtherConnectionIgnored: a presentation on an exchange's thread from
// another connection does not touch it.
func TestOtherConnectionIgnored(t *testing.T) {
	ctx := context.Background()
	v, p, vConn, _ := pair(t)
	mallory := newNode(t, "mallory")
	mallory.creds = p.creds
	connect(v, mallory)
	vx, err := v.svc.SendRequest(ctx, vConn, personRequest())
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, v, p)
	if _, err := p.svc.AcceptRequest(ctx, only(t, p, aip.ProofExProver).ID, personPresentation()); err != nil {
		t.Fatal(err)
	}
	// Mallory replays the prover's presentation as her own.
	due, _ := p.db.Outbox().Due(ctx, vx.Created.AddDate(1, 0, 0), 10)
	msg, _ := agent.ParseMessage(due[0].Payload)
	msg.From = mallory.did
	outs, _ := memMessenger{}.Outbound(ctx, msg)
	if err := mallory.store.Update(ctx, func(w *agent.Work) error { w.Enqueue(outs...); return nil }); err != nil {
		t.Fatal(err)
	}
	before := v.stored(t, vx.ID)
	deliver(t, mallory, v)
	if v.stored(t, vx.ID) != before {
		t.Fatal("a message from another connection changed the exchange")
	}
	back := deliver(t, v, mallory)
	if len(back) != 1 || back[0].Type != agent.ProblemReportType || !strings.Contains(string(back[0].Body), agent.CodeNotFound) {
		t.Fatalf("mallory got %+v", back)
	}
}

// failingSchemas makes schema resolution fail as a source that is down.
type failingSchemas struct{ Credentials }

func (failingSchemas) ResolveSchema(context.Context, string) (*anoncreds.Schema, error) {
	return nil, errors.New("schema source unreachable")
}

// TestRestartMidExchange: both agents restart (new services over the
// same stores) in the middle of an exchange, and a verification that
// could not run before the restart runs at Resume.
func TestRestartMidExchange(t *testing.T) {
	ctx := context.Background()
	v, p, vConn, _ := pair(t, willConfirm, func(c *Config) { c.Credentials = failingSchemas{c.Credentials} })
	vx, err := v.svc.SendRequest(ctx, vConn, personRequest())
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, v, p)
	p.close()
	p.open(t)
	px, err := p.svc.AcceptRequest(ctx, only(t, p, aip.ProofExProver).ID, personPresentation())
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, p, v)
	v.svc.Close() // waits for the verification, which cannot resolve the schema
	if x, _ := v.svc.ProofExchange(ctx, vx.ID); x.State != aip.ProofExPresented {
		t.Fatalf("state %s, want PRESENTED until verification can run", x.State)
	}
	v.close()
	v.open(t, willConfirm)
	if err := v.svc.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	vx = waitState(t, v, vx.ID, aip.ProofExDone)
	if vx.Messages.Presentation.VerificationResult != aip.Verified {
		t.Fatalf("after restart: %+v", vx.Messages.Presentation)
	}
	deliver(t, v, p)
	waitState(t, p, px.ID, aip.ProofExDone)
}

// TestIndyFormatNames: a request under the hlindy name (as ACA-Py sends
// it) is answered under the hlindy name, and verifies.
func TestIndyFormatNames(t *testing.T) {
	ctx := context.Background()
	v, p, vConn, _ := pair(t)
	vx, err := v.svc.SendRequest(ctx, vConn, personRequest())
	if err != nil {
		t.Fatal(err)
	}
	deliverWith(t, v, func(m *agent.Message) { m.Attachments[0].Format = FormatIndyRequest }, p)
	if _, err := p.svc.AcceptRequest(ctx, only(t, p, aip.ProofExProver).ID, personPresentation()); err != nil {
		t.Fatal(err)
	}
	sent := deliver(t, p, v)
	if sent[0].Attachments[0].Format != FormatIndyProof {
		t.Fatalf("answered in %s", sent[0].Attachments[0].Format)
	}
	if r := waitState(t, v, vx.ID, aip.ProofExDone).Messages.Presentation; r.VerificationResult != aip.Verified {
		t.Fatalf("verification %+v", r)
	}
}

// TestNonRevocationRefused: a referent that needs a non-revocation proof
// of a revocable credential has no candidate, and presenting it is refused
// as unsupported, changing nothing.
func TestNonRevocationRefused(t *testing.T) {
	ctx := context.Background()
	v, p, vConn, _ := pair(t)
	revocable := *p.creds.credDefs[vecCredDefID]
	revocable.Value.Revocation = json.RawMessage(`{"g":"1 0 0"}`)
	p.creds.credDefs = map[string]*anoncreds.CredentialDefinition{vecCredDefID: &revocable}
	req := personRequest()
	for i := range req.Anoncreds.AttributeGroups {
		for j := range req.Anoncreds.AttributeGroups[i].Restrictions {
			req.Anoncreds.AttributeGroups[i].Restrictions[j].NonRevoked = &aip.NonRevokedInterval{To: i64(2000000000)}
		}
	}
	if _, err := v.svc.SendRequest(ctx, vConn, req); err != nil {
		t.Fatal(err)
	}
	deliver(t, v, p)
	px := only(t, p, aip.ProofExProver)
	cands, err := p.svc.CredentialsFor(ctx, px.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cands {
		if len(c.CredentialIDs) != 0 {
			t.Fatalf("referent %s offers %v, which would need a non-revocation proof", c.Referent, c.CredentialIDs)
		}
	}
	before := p.stored(t, px.ID)
	_, err = p.svc.AcceptRequest(ctx, px.ID, personPresentation())
	code(t, err, agent.CodeMsgUnsupported)
	if p.stored(t, px.ID) != before || outboxLen(t, p) != 0 {
		t.Fatal("a refused accept changed something")
	}
}
