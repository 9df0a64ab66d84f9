package w3cvc

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

// held makes credentials with the given subject claims, issued by iss to
// holder, alternately as JWT and LDP.
func held(t *testing.T, iss, holder *party, subjects ...map[string]any) []*Credential {
	t.Helper()
	var out []*Credential
	for i, s := range subjects {
		vc := sampleVC(holder.DID)
		vc["@context"] = []any{ContextV1, map[string]any{"@vocab": "https://example.org/vocab#"}}
		vc["id"] = "urn:cred:" + itoa(i)
		subj := map[string]any{"id": holder.DID}
		for k, v := range s {
			subj[k] = v
		}
		vc["credentialSubject"] = subj
		issue := IssueJWT
		if i%2 == 1 {
			issue = IssueLDP
		}
		raw, err := issue(vc, iss.Signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseCredential(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

const defAgeAndName = `{
  "id": "def-1",
  "input_descriptors": [
    {"id": "adult", "group": ["A"], "constraints": {"fields": [
      {"path": ["$.credentialSubject.age", "$.vc.credentialSubject.age"], "filter": {"type": "number", "minimum": 18}}
    ]}},
    {"id": "named", "group": ["A"], "constraints": {"fields": [
      {"path": ["$.credentialSubject.name"], "filter": {"type": "string", "pattern": "^A"}}
    ]}},
    {"id": "licence", "group": ["B"], "constraints": {"fields": [
      {"path": ["$.credentialSubject.licence"], "filter": {"enum": ["B", "C"]}}
    ]}}
  ]
}`

func TestMatch(t *testing.T) {
	iss, holder := newKeyParty(t, keys.Ed25519), newKeyParty(t, keys.Ed25519)
	creds := held(t, iss, holder,
		map[string]any{"age": 17, "name": "Alice"},
		map[string]any{"age": 30, "name": "Bob"},
		map[string]any{"age": 40, "name": "Ann", "licence": "A"},
	)
	def, err := ParseDefinition([]byte(defAgeAndName))
	if err != nil {
		t.Fatal(err)
	}
	got := Match(def, creds)
	want := map[string][]int{"adult": {1, 2}, "named": {0, 2}, "licence": {}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Match = %v, want %v", got, want)
	}
	if got["licence"] == nil {
		t.Fatal("empty match is nil")
	}
	// Format restriction.
	def.InputDescriptors[0].Format = map[string]any{FormatLDPVC: map[string]any{"proof_type": []any{"Ed25519Signature2020"}}}
	if got := Match(def, creds)["adult"]; !reflect.DeepEqual(got, []int{1}) {
		t.Fatalf("ldp_vc only: %v", got)
	}
}

func TestBuildAndEvaluateSubmission(t *testing.T) {
	iss, holder := newKeyParty(t, keys.Ed25519), newKeyParty(t, keys.Ed25519)
	creds := held(t, iss, holder,
		map[string]any{"age": 30, "name": "Bob"},
		map[string]any{"age": 40, "name": "Ann", "licence": "B"},
	)
	def, err := ParseDefinition([]byte(defAgeAndName))
	if err != nil {
		t.Fatal(err)
	}
	v := newTestVerifier(t, VerifierConfig{})
	// Without submission requirements every descriptor is needed.
	if _, _, err := BuildSubmission(def, map[string]*Credential{"adult": creds[0], "named": creds[1]}); err == nil || !strings.Contains(err.Error(), "licence") {
		t.Fatalf("missing descriptor: %v", err)
	}
	// A credential that does not satisfy its descriptor.
	if _, _, err := BuildSubmission(def, map[string]*Credential{"adult": creds[0], "named": creds[0], "licence": creds[1]}); err == nil {
		t.Fatal("Bob's credential answered named (^A)")
	}
	chosen := map[string]*Credential{"adult": creds[1], "named": creds[1], "licence": creds[1]}
	list, sub, err := BuildSubmission(def, chosen)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || len(sub.DescriptorMap) != 3 || sub.DefinitionID != "def-1" {
		t.Fatalf("deduplicated list %d, submission %+v", len(list), sub)
	}
	for _, d := range sub.DescriptorMap {
		if d.Path != "$.verifiableCredential[0]" || d.Format != FormatLDPVC {
			t.Fatalf("descriptor %+v", d)
		}
	}
	for _, format := range []string{FormatJWTVP, FormatLDPVP} {
		raw, err := Present(list, holder.Auth, format, "c", "", sub)
		if err != nil {
			t.Fatal(err)
		}
		p, err := v.VerifyPresentation(ctx(), raw, PresentationCheck{Challenge: "c", Definition: def})
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if p.Submission == nil || p.Submission.ID != sub.ID {
			t.Fatalf("submission %+v", p.Submission)
		}
	}

	// A submission pointing a descriptor at a credential that fails it.
	bad := *sub
	list2 := []*Credential{creds[1], creds[0]}
	bad.DescriptorMap = append([]Descriptor(nil), sub.DescriptorMap...)
	bad.DescriptorMap[1].Path = "$.verifiableCredential[1]"
	raw, err := Present(list2, holder.Auth, FormatJWTVP, "c", "", &bad)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyPresentation(ctx(), raw, PresentationCheck{Challenge: "c", Definition: def})
	mustReason(t, err, ReasonSubmission)
	// Out of range, wrong format, unknown descriptor, wrong definition.
	for name, mutate := range map[string]func(s *Submission){
		"range":      func(s *Submission) { s.DescriptorMap[0].Path = "$.verifiableCredential[5]" },
		"format":     func(s *Submission) { s.DescriptorMap[0].Format = FormatJWTVC },
		"unknown":    func(s *Submission) { s.DescriptorMap[0].ID = "nope" },
		"definition": func(s *Submission) { s.DefinitionID = "other" },
		"missing":    func(s *Submission) { s.DescriptorMap = s.DescriptorMap[:2] },
	} {
		s := *sub
		s.DescriptorMap = append([]Descriptor(nil), sub.DescriptorMap...)
		mutate(&s)
		err := EvaluateSubmission(def, &Presentation{Holder: holder.DID, Credentials: list, Submission: &s})
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		mustReason(t, err, ReasonSubmission)
	}
	// path_nested from "$" (the jwt_vp form) is followed.
	s := *sub
	s.DescriptorMap = []Descriptor{}
	for _, d := range sub.DescriptorMap {
		n := d
		s.DescriptorMap = append(s.DescriptorMap, Descriptor{ID: d.ID, Format: FormatJWTVP, Path: "$", PathNested: &n})
	}
	if err := EvaluateSubmission(def, &Presentation{Holder: holder.DID, Credentials: list, Submission: &s}); err != nil {
		t.Fatalf("path_nested: %v", err)
	}
	// No submission at all.
	mustReason(t, EvaluateSubmission(def, &Presentation{Credentials: list}), ReasonSubmission)
}

func TestSubmissionRequirements(t *testing.T) {
	iss, holder := newKeyParty(t, keys.Ed25519), newKeyParty(t, keys.Ed25519)
	c := held(t, iss, holder, map[string]any{"age": 40, "name": "Ann", "licence": "B"})[0]
	base, err := ParseDefinition([]byte(defAgeAndName))
	if err != nil {
		t.Fatal(err)
	}
	one, two := 1, 2
	cases := []struct {
		name    string
		reqs    []SubmissionRequirement
		answer  []string
		wantErr bool
	}{
		{"all A answered", []SubmissionRequirement{{Rule: "all", From: "A"}}, []string{"adult", "named"}, false},
		{"all A, one missing", []SubmissionRequirement{{Rule: "all", From: "A"}}, []string{"adult"}, true},
		{"pick 1 of A", []SubmissionRequirement{{Rule: "pick", Count: &one, From: "A"}}, []string{"named"}, false},
		{"pick 1 of A, two given", []SubmissionRequirement{{Rule: "pick", Count: &one, From: "A"}}, []string{"named", "adult"}, true},
		{"pick min 2 of A", []SubmissionRequirement{{Rule: "pick", Min: &two, From: "A"}}, []string{"named"}, true},
		{"pick max 1 of A", []SubmissionRequirement{{Rule: "pick", Max: &one, From: "A"}}, []string{"named", "adult"}, true},
		{"nested: A all or B", []SubmissionRequirement{{Rule: "pick", Count: &one, FromNested: []SubmissionRequirement{
			{Rule: "all", From: "A"}, {Rule: "all", From: "B"}}}}, []string{"licence"}, false},
		{"nested: neither", []SubmissionRequirement{{Rule: "pick", Min: &one, FromNested: []SubmissionRequirement{
			{Rule: "all", From: "A"}, {Rule: "all", From: "B"}}}}, []string{"adult"}, true},
		{"nested all", []SubmissionRequirement{{Rule: "all", FromNested: []SubmissionRequirement{
			{Rule: "pick", Count: &one, From: "A"}, {Rule: "all", From: "B"}}}}, []string{"adult", "licence"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			def := *base
			def.SubmissionRequirements = tc.reqs
			if err := def.Validate(); err != nil {
				t.Fatal(err)
			}
			chosen := map[string]*Credential{}
			for _, id := range tc.answer {
				chosen[id] = c
			}
			list, sub, err := BuildSubmission(&def, chosen)
			if (err != nil) != tc.wantErr {
				t.Fatalf("BuildSubmission err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				// The verifier reaches the same verdict on a forced submission.
				sub = &Submission{ID: "s", DefinitionID: def.ID}
				for _, id := range tc.answer {
					sub.DescriptorMap = append(sub.DescriptorMap, Descriptor{ID: id, Format: c.Format, Path: "$.verifiableCredential[0]"})
				}
				list = []*Credential{c}
			}
			err = EvaluateSubmission(&def, &Presentation{Holder: holder.DID, Credentials: list, Submission: sub})
			if (err != nil) != tc.wantErr {
				t.Fatalf("EvaluateSubmission err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestIsHolderAndLimitDisclosure(t *testing.T) {
	iss, holder := newKeyParty(t, keys.Ed25519), newKeyParty(t, keys.Ed25519)
	c := held(t, iss, holder, map[string]any{"age": 40})[0]
	def, err := ParseDefinition([]byte(`{"id":"d","input_descriptors":[{"id":"x","constraints":{
		"is_holder":[{"field_id":["f"],"directive":"required"}],
		"fields":[{"id":"f","path":["$.credentialSubject.age"]}]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	list, sub, err := BuildSubmission(def, map[string]*Credential{"x": c})
	if err != nil {
		t.Fatal(err)
	}
	if err := EvaluateSubmission(def, &Presentation{Holder: holder.DID, Credentials: list, Submission: sub}); err != nil {
		t.Fatal(err)
	}
	err = EvaluateSubmission(def, &Presentation{Holder: "did:example:other", Credentials: list, Submission: sub})
	mustReason(t, err, ReasonSubmission)

	def.InputDescriptors[0].Constraints.LimitDisclosure = "required"
	if _, _, err := BuildSubmission(def, map[string]*Credential{"x": c}); !errors.Is(err, ErrSelectiveDisclosureUnsupported) {
		t.Fatalf("prover with limit_disclosure required: %v", err)
	}
	err = EvaluateSubmission(def, &Presentation{Holder: holder.DID, Credentials: list, Submission: sub})
	if !errors.Is(err, ErrSelectiveDisclosureUnsupported) || ReasonOf(err) != ReasonSubmission {
		t.Fatalf("verifier with limit_disclosure required: %v", err)
	}
}

func TestParseDefinitionRefuses(t *testing.T) {
	for name, js := range map[string]string{
		"no id":           `{"input_descriptors":[{"id":"a"}]}`,
		"no descriptors":  `{"id":"d","input_descriptors":[]}`,
		"duplicate ids":   `{"id":"d","input_descriptors":[{"id":"a"},{"id":"a"}]}`,
		"bad path":        `{"id":"d","input_descriptors":[{"id":"a","constraints":{"fields":[{"path":["$.a["]}]}}]}`,
		"no path":         `{"id":"d","input_descriptors":[{"id":"a","constraints":{"fields":[{"path":[]}]}}]}`,
		"bad filter":      `{"id":"d","input_descriptors":[{"id":"a","constraints":{"fields":[{"path":["$.a"],"filter":{"if":{}}}]}}]}`,
		"bad type":        `{"id":"d","input_descriptors":[{"id":"a","constraints":{"fields":[{"path":["$.a"],"filter":{"type":"text"}}]}}]}`,
		"bad pattern":     `{"id":"d","input_descriptors":[{"id":"a","constraints":{"fields":[{"path":["$.a"],"filter":{"pattern":"("}}]}}]}`,
		"dup field id":    `{"id":"d","input_descriptors":[{"id":"a","constraints":{"fields":[{"id":"f","path":["$.a"]},{"id":"f","path":["$.b"]}]}}]}`,
		"is_holder field": `{"id":"d","input_descriptors":[{"id":"a","constraints":{"is_holder":[{"field_id":["g"],"directive":"required"}],"fields":[{"id":"f","path":["$.a"]}]}}]}`,
		"bad directive":   `{"id":"d","input_descriptors":[{"id":"a","constraints":{"is_holder":[{"field_id":["f"],"directive":"must"}],"fields":[{"id":"f","path":["$.a"]}]}}]}`,
		"bad rule":        `{"id":"d","input_descriptors":[{"id":"a","group":["G"]}],"submission_requirements":[{"rule":"any","from":"G"}]}`,
		"unknown group":   `{"id":"d","input_descriptors":[{"id":"a","group":["G"]}],"submission_requirements":[{"rule":"all","from":"H"}]}`,
		"from and nested": `{"id":"d","input_descriptors":[{"id":"a","group":["G"]}],"submission_requirements":[{"rule":"all","from":"G","from_nested":[{"rule":"all","from":"G"}]}]}`,
		"pick no count":   `{"id":"d","input_descriptors":[{"id":"a","group":["G"]}],"submission_requirements":[{"rule":"pick","from":"G"}]}`,
		"min > max":       `{"id":"d","input_descriptors":[{"id":"a","group":["G"]}],"submission_requirements":[{"rule":"pick","min":2,"max":1,"from":"G"}]}`,
		"predicate":       `{"id":"d","input_descriptors":[{"id":"a","constraints":{"fields":[{"path":["$.a"],"predicate":"required"}]}}]}`,
		"not json":        `{"id":`,
	} {
		if _, err := ParseDefinition([]byte(js)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFilters(t *testing.T) {
	for _, tc := range []struct {
		filter string
		value  any
		want   bool
	}{
		{`{"type":"string","format":"date","formatMinimum":"2000-01-01"}`, "2001-05-05", true},
		{`{"type":"string","format":"date","formatMinimum":"2000-01-01"}`, "1999-05-05", false},
		{`{"type":"string","format":"date","formatExclusiveMaximum":"2000-01-01"}`, "2000-01-01", false},
		{`{"type":"string","format":"date-time","formatMaximum":"2000-01-01T00:00:00Z"}`, "1999-12-31T23:00:00Z", true},
		{`{"type":"date","minimum":"2000-01-01"}`, "1999-01-01", false},
		{`{"type":"date","minimum":"2000-01-01"}`, "2000-01-01", true},
		{`{"type":"integer","exclusiveMinimum":3}`, float64(3), false},
		{`{"type":"integer","exclusiveMinimum":3}`, float64(4), true},
		{`{"type":"integer"}`, 4.5, false},
		{`{"not":{"enum":["a","b"]}}`, "a", false},
		{`{"not":{"const":"a"}}`, "c", true},
		{`{"minLength":2,"maxLength":3}`, "abcd", false},
		{`{"type":"array","contains":{"const":"X"}}`, []any{"Y", "X"}, true},
		{`{"type":"array","contains":{"const":"X"}}`, []any{"Y"}, false},
		{`{"anyOf":[{"type":"number"},{"type":"boolean"}]}`, true, true},
		{`{"type":"string","format":"date"}`, "2001-13-01", false},
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(tc.filter), &m); err != nil {
			t.Fatal(err)
		}
		f, err := CompileFilter(m)
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		if got := f(tc.value); got != tc.want {
			t.Errorf("%s on %v = %v, want %v", tc.filter, tc.value, got, tc.want)
		}
	}
}

// TestWACIVectors parses the presentation definitions and submissions of
// the Present Proof 3.0 WACI vectors and checks that they survive a
// round trip through the model.
func TestWACIVectors(t *testing.T) {
	files, err := filepath.Glob("/work/shared/vectors/presentproof/*.json")
	if err != nil || len(files) < 4 {
		t.Fatalf("vectors: %v %v", files, err)
	}
	defs, subs := 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var msg struct {
			Attachments []struct {
				Data struct {
					JSON map[string]json.RawMessage `json:"json"`
				} `json:"data"`
				JSON map[string]json.RawMessage `json:"json"`
			} `json:"attachments"`
		}
		if err := json.Unmarshal(b, &msg); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, a := range msg.Attachments {
			body := a.Data.JSON
			if body == nil {
				body = a.JSON
			}
			if raw, ok := body["presentation_definition"]; ok {
				d, err := ParseDefinition(raw)
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				sameJSON(t, f, raw, mustJSON(t, d))
				defs++
			}
			if raw, ok := body["presentation_submission"]; ok {
				var s Submission
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				if len(s.DescriptorMap) == 0 || s.DefinitionID == "" {
					t.Fatalf("%s: submission %+v", f, s)
				}
				sameJSON(t, f, raw, mustJSON(t, s))
				subs++
			}
		}
	}
	if defs != 2 || subs != 2 {
		t.Fatalf("%d definitions, %d submissions in the vectors, want 2 and 2", defs, subs)
	}
}

func sameJSON(t *testing.T, what string, a, b []byte) {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x, y) {
		t.Fatalf("%s: round trip changed the JSON:\n%s\n%s", what, a, b)
	}
}
