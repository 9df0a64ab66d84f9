package provecontrol

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// The proof vector of scala-did (testdata/proof.json).
func TestProofVector(t *testing.T) {
	var f struct {
		Vectors []struct {
			Verifier, User, Subject, Secret, Preimage string
			Type                                      VerificationType `json:"verification_type"`
			Proof                                     string           `json:"proof_sha256_hex"`
		} `json:"vectors"`
		Enum []string `json:"verification_type_enum"`
	}
	b, err := os.ReadFile("testdata/proof.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range f.Vectors {
		if got := CalculateProof(v.Verifier, v.User, v.Type, v.Subject, v.Secret); got != v.Proof {
			t.Errorf("proof %s, want %s", got, v.Proof)
		}
		c := VerificationChallenge{From: v.Verifier, To: v.User, VerificationType: v.Type, Subject: v.Subject, Secret: v.Secret}
		if c.Proof() != v.Proof {
			t.Errorf("challenge proof %s", c.Proof())
		}
		p := c.Prove()
		if p.To != v.Verifier || p.From != v.User || p.Proof != v.Proof {
			t.Errorf("prove %+v", p)
		}
	}
	// The enum, in scala-did's order and spelling.
	var names []string
	for _, vt := range VerificationTypes {
		names = append(names, string(vt))
	}
	if !reflect.DeepEqual(names, f.Enum) {
		t.Errorf("verification types %v, want %v", names, f.Enum)
	}
	for _, bad := range []string{"email", "EMAIL", "Phone", "", "Dns"} {
		if _, err := ParseVerificationType(bad); agent.ErrorCode(err) != CodeVerificationType {
			t.Errorf("ParseVerificationType(%q) = %v", bad, err)
		}
	}
}

type example struct {
	Name    string          `json:"name"`
	Type    string          `json:"type"`
	Example json.RawMessage `json:"example"`
}

func loadExamples(t *testing.T) (map[string]agent.Message, map[string]map[string]any, []string) {
	t.Helper()
	var f struct {
		PIURIs   []string  `json:"piuris"`
		Messages []example `json:"messages"`
	}
	b, err := os.ReadFile("testdata/messages.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	msgs := map[string]agent.Message{}
	raw := map[string]map[string]any{}
	for _, e := range f.Messages {
		var m agent.Message
		if err := json.Unmarshal(e.Example, &m); err != nil {
			t.Fatal(err)
		}
		var r map[string]any
		json.Unmarshal(e.Example, &r)
		msgs[e.Name], raw[e.Name] = m, r
	}
	return msgs, raw, f.PIURIs
}

// Every message type marshals exactly as scala-did's examples: type, to,
// from, thid and the snake_case body.
func TestMessagesMarshalLikeScalaDID(t *testing.T) {
	ex, raw, piuris := loadExamples(t)
	if want := []string{RequestVerificationType, VerificationChallengeType, ProveType, ConfirmVerificationType}; !reflect.DeepEqual(piuris, want) {
		t.Fatalf("PIURIs %v, want %v", piuris, want)
	}
	ours := map[string]func(m agent.Message) (agent.Message, error){
		"requestverification": func(m agent.Message) (agent.Message, error) {
			r, err := ParseRequestVerification(m)
			if err != nil {
				return agent.Message{}, err
			}
			return r.Message()
		},
		"verificationchallenge": func(m agent.Message) (agent.Message, error) {
			c, err := ParseVerificationChallenge(m)
			if err != nil {
				return agent.Message{}, err
			}
			return c.Message()
		},
		"prove": func(m agent.Message) (agent.Message, error) {
			p, err := ParseProve(m)
			if err != nil {
				return agent.Message{}, err
			}
			return p.Message()
		},
		"confirmverification": func(m agent.Message) (agent.Message, error) {
			c, err := ParseConfirmVerification(m)
			if err != nil {
				return agent.Message{}, err
			}
			return c.Message()
		},
	}
	for name, rebuild := range ours {
		m, ok := ex[name]
		if !ok {
			t.Fatalf("no example %s", name)
		}
		got, err := rebuild(m)
		if err != nil {
			t.Fatalf("%s: parsing the example: %v", name, err)
		}
		b, _ := json.Marshal(got)
		var g map[string]any
		json.Unmarshal(b, &g)
		want := raw[name]
		for _, k := range []string{"id", "type", "to", "from", "thid"} {
			if !reflect.DeepEqual(g[k], want[k]) {
				t.Errorf("%s: %s = %v, want %v", name, k, g[k], want[k])
			}
		}
		wantBody := want["body"].(map[string]any)
		if name == "confirmverification" {
			delete(wantBody, "challenge") // an extra member scala-did's model ignores
		}
		if !reflect.DeepEqual(g["body"], wantBody) {
			t.Errorf("%s: body %v, want %v", name, g["body"], wantBody)
		}
	}
	// Our bodies have exactly the spec's snake_case members.
	for _, tc := range []struct {
		body any
		want string
	}{
		{RequestVerificationBody{Email, "a@b.example"}, `{"verification_type":"Email","subject":"a@b.example"}`},
		{VerificationChallengeBody{Domain, "b.example", "s"}, `{"verification_type":"Domain","subject":"b.example","secret":"s"}`},
		{ProveBody{Tel, "+15550100", "p"}, `{"verification_type":"Tel","subject":"+15550100","proof":"p"}`},
		{ConfirmVerificationBody{IP, "192.0.2.1"}, `{"verification_type":"IP","subject":"192.0.2.1"}`},
	} {
		b, _ := json.Marshal(tc.body)
		if string(b) != tc.want {
			t.Errorf("body %s, want %s", b, tc.want)
		}
	}
	// The challenge carries the request's id as thid; prove and confirm the challenge's.
	c := VerificationChallenge{ID: "ch-1", To: "did:example:bob", From: "did:example:alice", ThID: "req-1", VerificationType: Email, Subject: "a@b.example", Secret: "x"}
	cm, _ := c.Message()
	if cm.ThID != "req-1" || cm.Type != VerificationChallengeType {
		t.Errorf("challenge %+v", cm)
	}
	pm, _ := c.Prove().Message()
	if pm.ThID != "ch-1" || pm.To[0] != "did:example:alice" || pm.From != "did:example:bob" {
		t.Errorf("prove %+v", pm)
	}
}

// The parsers enforce what scala-did's fromPlaintextMessage does, with the
// problem code of each failure.
func TestParseRefusesMalformedMessages(t *testing.T) {
	ex, _, _ := loadExamples(t)
	edit := func(name string, f func(m *agent.Message)) agent.Message {
		m := ex[name]
		m.To = append([]string(nil), m.To...)
		f(&m)
		return m
	}
	for _, tc := range []struct {
		name  string
		msg   agent.Message
		parse func(agent.Message) error
		code  string
	}{
		{"request to two DIDs", edit("requestverification", func(m *agent.Message) { m.To = []string{"did:example:a", "did:example:b"} }), parseReq, CodeTo},
		{"request to nobody", edit("requestverification", func(m *agent.Message) { m.To = nil }), parseReq, CodeTo},
		{"request without from", edit("requestverification", func(m *agent.Message) { m.From = "" }), parseReq, CodeFrom},
		{"request without body", edit("requestverification", func(m *agent.Message) { m.Body = nil }), parseReq, CodeBody},
		{"request without subject", edit("requestverification", func(m *agent.Message) { m.Body = json.RawMessage(`{"verification_type":"Email"}`) }), parseReq, CodeBody},
		{"request with a number", edit("requestverification", func(m *agent.Message) { m.Body = json.RawMessage(`{"verification_type":"Email","subject":5}`) }), parseReq, CodeBody},
		{"request of an unknown type", edit("requestverification", func(m *agent.Message) {
			m.Body = json.RawMessage(`{"verification_type":"Fax","subject":"x"}`)
		}), parseReq, CodeVerificationType},
		{"challenge without secret", edit("verificationchallenge", func(m *agent.Message) {
			m.Body = json.RawMessage(`{"verification_type":"Email","subject":"a@b.example"}`)
		}), parseChallenge, CodeBody},
		{"prove without thid", edit("prove", func(m *agent.Message) { m.ThID = "" }), parseProve, CodeThread},
		{"prove to two DIDs", edit("prove", func(m *agent.Message) { m.To = []string{"did:example:a", "did:example:b"} }), parseProve, CodeTo},
		{"prove without proof", edit("prove", func(m *agent.Message) {
			m.Body = json.RawMessage(`{"verification_type":"Email","subject":"a@b.example"}`)
		}), parseProve, CodeBody},
		{"confirm without thid", edit("confirmverification", func(m *agent.Message) { m.ThID = "" }), parseConfirm, CodeThread},
		{"prove parsed as a request", ex["prove"], parseReq, agent.CodeMsg},
	} {
		if err := tc.parse(tc.msg); agent.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want code %s", tc.name, err, tc.code)
		}
	}
}

func parseReq(m agent.Message) error       { _, err := ParseRequestVerification(m); return err }
func parseChallenge(m agent.Message) error { _, err := ParseVerificationChallenge(m); return err }
func parseProve(m agent.Message) error     { _, err := ParseProve(m); return err }
func parseConfirm(m agent.Message) error   { _, err := ParseConfirmVerification(m); return err }

func TestStateMachines(t *testing.T) {
	all := []ChallengeState{StatePending, StateConfirmed, StateExpired, StateFailed, StateUndelivered}
	for _, from := range all {
		for _, to := range all {
			want := from == StatePending && to != StatePending
			if got := from.CanMoveTo(to); got != want {
				t.Errorf("%s -> %s allowed = %v, want %v", from, to, got, want)
			}
		}
		if from.Final() != (from != StatePending) {
			t.Errorf("%s final = %v", from, from.Final())
		}
	}
	c := &Challenge{State: StatePending}
	if err := c.moveTo(StateConfirmed, time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	for _, back := range all {
		if err := c.moveTo(back, time.Time{}, ""); !isTransition(err) {
			t.Errorf("confirmed -> %s: %v", back, err)
		}
	}
	held := []HeldState{HeldReceived, HeldProved, HeldConfirmed, HeldRejected}
	allowed := map[[2]HeldState]bool{
		{HeldReceived, HeldProved}: true, {HeldProved, HeldProved}: true,
		{HeldProved, HeldConfirmed}: true, {HeldProved, HeldRejected}: true,
	}
	for _, from := range held {
		for _, to := range held {
			if got := from.CanMoveTo(to); got != allowed[[2]HeldState{from, to}] {
				t.Errorf("%s -> %s allowed = %v", from, to, got)
			}
		}
	}
	r := &Received{State: HeldConfirmed}
	if err := r.moveTo(HeldProved, time.Time{}); !isTransition(err) {
		t.Errorf("confirmed -> proved: %v", err)
	}
}

func isTransition(err error) bool { return errors.Is(err, ErrTransition) }
