package presentproof

import (
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
)

func i64(v int64) *int64 { return &v }

// TestToAnoncredsRequest: the section 6 mapping, exactly.
func TestToAnoncredsRequest(t *testing.T) {
	in := &aip.AnoncredsProofRequest{AttributeGroups: []aip.AnoncredsAttributeGroup{
		{Referent: "one", AttributeNames: []string{"name"}, Restrictions: []aip.AnoncredsRestriction{
			{SchemaID: "s1", SchemaIssuerID: "did:web:i", SchemaName: "person", SchemaVersion: "1.0", CredDefID: "cd", IssuerID: "did:web:i",
				AttributeNames: []string{"age"}, AttributeValues: []aip.Attribute{{Name: "name", Value: "Alex"}},
				NonRevoked: &aip.NonRevokedInterval{From: i64(1), To: i64(2)}},
			{IssuerID: "Th7MpTaRZVRYnPiabds81Y", SchemaIssuerID: "Th7MpTaRZVRYnPiabds81Y", NonRevoked: &aip.NonRevokedInterval{From: i64(1), To: i64(2)}},
		}},
		{Referent: "two", AttributeNames: []string{"sex", "height"}},
		{Referent: "three", AttributeNames: []string{"age"}, Restrictions: []aip.AnoncredsRestriction{
			{CredDefID: "cd", Predicate: &aip.Predicate{Operator: aip.LessThanOrEqual, Threshold: 65}},
		}},
	}}
	r, err := ToAnoncredsRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := new(big.Int).SetString(r.Nonce, 10)
	if !ok || n.BitLen() > 80 || r.Name != "Proof request" || r.Version != "1.0" {
		t.Fatalf("nonce %q name %q version %q", r.Nonce, r.Name, r.Version)
	}
	b, err := AnoncredsRequestJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anoncreds.ParsePresentationRequest(b); err != nil {
		t.Fatalf("wire form does not parse back: %v", err)
	}
	var got map[string]any
	json.Unmarshal(b, &got)
	want := map[string]any{
		"one": map[string]any{"name": "name", "non_revoked": map[string]any{"from": 1.0, "to": 2.0}, "restrictions": []any{
			map[string]any{"schema_id": "s1", "schema_issuer_id": "did:web:i", "schema_name": "person", "schema_version": "1.0",
				"cred_def_id": "cd", "issuer_id": "did:web:i", "attr::age::marker": "1", "attr::name::value": "Alex"},
			map[string]any{"issuer_did": "Th7MpTaRZVRYnPiabds81Y", "schema_issuer_did": "Th7MpTaRZVRYnPiabds81Y"},
		}},
		"two": map[string]any{"names": []any{"sex", "height"}},
	}
	if !reflect.DeepEqual(got["requested_attributes"], want) {
		t.Fatalf("requested_attributes\n got %v\nwant %v", got["requested_attributes"], want)
	}
	wantPred := map[string]any{"three": map[string]any{"name": "age", "p_type": "<=", "p_value": 65.0,
		"restrictions": []any{map[string]any{"cred_def_id": "cd"}}}}
	if !reflect.DeepEqual(got["requested_predicates"], wantPred) {
		t.Fatalf("requested_predicates\n got %v\nwant %v", got["requested_predicates"], wantPred)
	}
	// And back: the groups read as they were asked (the restriction
	// shapes the API can express).
	back := FromAnoncredsRequest(r)
	if len(back.AttributeGroups) != 3 || back.AttributeGroups[0].Referent != "one" || back.AttributeGroups[2].Referent != "three" ||
		back.AttributeGroups[2].Restrictions[0].Predicate.Operator != aip.LessThanOrEqual ||
		!reflect.DeepEqual(back.AttributeGroups[0].Restrictions[0].AttributeValues, []aip.Attribute{{Name: "name", Value: "Alex"}}) ||
		*back.AttributeGroups[0].Restrictions[1].NonRevoked.To != 2 {
		t.Fatalf("back %+v", back)
	}
}

// TestToAnoncredsRequestRefusals: bad groups are refused with CodeMsg and
// a reason naming the group.
func TestToAnoncredsRequestRefusals(t *testing.T) {
	pred := &aip.Predicate{Operator: aip.GreaterThan, Threshold: 1}
	for name, tc := range map[string]struct {
		g    []aip.AnoncredsAttributeGroup
		want string
	}{
		"no groups":          {nil, "at least one"},
		"no referent":        {[]aip.AnoncredsAttributeGroup{{AttributeNames: []string{"a"}}}, "no referent"},
		"duplicate referent": {[]aip.AnoncredsAttributeGroup{{Referent: "r", AttributeNames: []string{"a"}}, {Referent: "r", AttributeNames: []string{"b"}}}, "two attribute groups"},
		"no names":           {[]aip.AnoncredsAttributeGroup{{Referent: "r"}}, "no attribute names"},
		"predicate two names": {[]aip.AnoncredsAttributeGroup{{Referent: "r", AttributeNames: []string{"a", "b"},
			Restrictions: []aip.AnoncredsRestriction{{Predicate: pred}}}}, "exactly one attribute name"},
		"predicates disagree": {[]aip.AnoncredsAttributeGroup{{Referent: "r", AttributeNames: []string{"a"},
			Restrictions: []aip.AnoncredsRestriction{{CredDefID: "x", Predicate: pred}, {CredDefID: "y"}}}}, "same predicate"},
		"intervals disagree": {[]aip.AnoncredsAttributeGroup{{Referent: "r", AttributeNames: []string{"a"},
			Restrictions: []aip.AnoncredsRestriction{{CredDefID: "x", NonRevoked: &aip.NonRevokedInterval{To: i64(5)}}, {CredDefID: "y"}}}}, "same nonRevoked"},
		"unknown operator": {[]aip.AnoncredsAttributeGroup{{Referent: "r", AttributeNames: []string{"a"},
			Restrictions: []aip.AnoncredsRestriction{{Predicate: &aip.Predicate{Operator: "ABOUT", Threshold: 1}}}}}, "unknown predicate operator"},
		"threshold too big": {[]aip.AnoncredsAttributeGroup{{Referent: "r", AttributeNames: []string{"a"},
			Restrictions: []aip.AnoncredsRestriction{{Predicate: &aip.Predicate{Operator: aip.GreaterThan, Threshold: 1 << 40}}}}}, "32 bits"},
		"negative time": {[]aip.AnoncredsAttributeGroup{{Referent: "r", AttributeNames: []string{"a"},
			Restrictions: []aip.AnoncredsRestriction{{NonRevoked: &aip.NonRevokedInterval{From: i64(-1)}}}}}, "not negative"},
		"interval backwards": {[]aip.AnoncredsAttributeGroup{{Referent: "r", AttributeNames: []string{"a"},
			Restrictions: []aip.AnoncredsRestriction{{NonRevoked: &aip.NonRevokedInterval{From: i64(9), To: i64(1)}}}}}, "from > to"},
	} {
		_, err := ToAnoncredsRequest(&aip.AnoncredsProofRequest{AttributeGroups: tc.g, Nonce: "1"})
		if err == nil || agent.ErrorCode(err) != agent.CodeMsg || !strings.Contains(agent.ErrorComment(err), tc.want) {
			t.Errorf("%s: %v, want CodeMsg mentioning %q", name, err, tc.want)
		}
	}
	_, err := ToAnoncredsRequest(&aip.AnoncredsProofRequest{Nonce: "12a", AttributeGroups: []aip.AnoncredsAttributeGroup{{Referent: "r", AttributeNames: []string{"a"}}}})
	if agent.ErrorCode(err) != agent.CodeMsg {
		t.Errorf("non-decimal nonce: %v", err)
	}
}
