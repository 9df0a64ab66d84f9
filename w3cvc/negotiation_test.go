package w3cvc

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func sp(s string) *string { return &s }
func ip(i int) *int       { return &i }

func TestDefinitionFromNegotiationMapping(t *testing.T) {
	n := Negotiation{
		AttributeGroups: []AttributeGroup{{
			Referent: "identity",
			Attributes: []Attribute{
				{AttributePaths: []string{"$.credentialSubject.name"}, IsHolderSubject: true,
					ValueRestrictions: &ValueRestrictions{DataFormat: sp("STRING"), Pattern: sp("^A"), MinLength: ip(2), MaxLength: ip(20),
						NotInSet: []string{"Ann"}, NotEqual: sp("Al")}},
				{AttributePaths: []string{"$.credentialSubject.age"},
					ValueRestrictions: &ValueRestrictions{DataFormat: sp("INTEGER"), GreaterThanOrEqual: sp("18"), LessThan: sp("65")}},
				{AttributePaths: []string{"$.credentialSubject.birthDate"}, PresentationType: "PREDICATE",
					ValueRestrictions: &ValueRestrictions{DataFormat: sp("DATE"), LessThanOrEqual: sp("2006-01-01"), GreaterThan: sp("1900-01-01")}},
				{AttributePaths: []string{"$.credentialSubject.score"},
					ValueRestrictions: &ValueRestrictions{DataFormat: sp("NUMBER"), InSet: []string{"1.5", "2"}, LessThanOrEqual: sp("9.5"), GreaterThan: sp("0")}},
				{AttributePaths: []string{"$.credentialSubject.member"},
					ValueRestrictions: &ValueRestrictions{DataFormat: sp("BOOLEAN"), Equal: sp("true")}},
				{AttributePaths: []string{"$.validFrom", "$.issuanceDate"},
					ValueRestrictions: &ValueRestrictions{DataFormat: sp("DATE_TIME"), GreaterThanOrEqual: sp("2020-01-01T00:00:00Z")}},
			},
		}, {
			Referent:   "licence",
			Attributes: []Attribute{{AttributePaths: []string{"$.credentialSubject.licence"}}},
		}},
		SubmissionRequirementJSONs: []string{`{"name":"both","rule":"all","from":"identity"}`, `{"rule":"pick","count":1,"from":"licence"}`},
	}
	d, err := DefinitionFromNegotiation(n)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	if err := json.Unmarshal(mustJSON(t, d), &got); err != nil {
		t.Fatal(err)
	}
	delete(got, "id")
	want := map[string]any{}
	if err := json.Unmarshal([]byte(`{
	  "input_descriptors": [
	    {"id": "identity", "group": ["identity"], "constraints": {
	      "limit_disclosure": "required",
	      "is_holder": [{"field_id": ["identity.0"], "directive": "required"}],
	      "fields": [
	        {"id": "identity.0", "path": ["$.credentialSubject.name"], "filter": {"type": "string", "pattern": "^A", "minLength": 2, "maxLength": 20, "not": {"enum": ["Ann"], "const": "Al"}}},
	        {"id": "identity.1", "path": ["$.credentialSubject.age"], "filter": {"type": "integer", "minimum": 18, "exclusiveMaximum": 65}},
	        {"id": "identity.2", "path": ["$.credentialSubject.birthDate"], "predicate": "required", "filter": {"type": "string", "format": "date", "formatMaximum": "2006-01-01", "formatExclusiveMinimum": "1900-01-01"}},
	        {"id": "identity.3", "path": ["$.credentialSubject.score"], "filter": {"type": "number", "enum": [1.5, 2], "maximum": 9.5, "exclusiveMinimum": 0}},
	        {"id": "identity.4", "path": ["$.credentialSubject.member"], "filter": {"type": "boolean", "const": true}},
	        {"id": "identity.5", "path": ["$.validFrom", "$.issuanceDate"], "filter": {"type": "string", "format": "date-time", "formatMinimum": "2020-01-01T00:00:00Z"}}
	      ]}},
	    {"id": "licence", "group": ["licence"], "constraints": {"fields": [{"id": "licence.0", "path": ["$.credentialSubject.licence"]}]}}
	  ],
	  "submission_requirements": [{"name": "both", "rule": "all", "from": "identity"}, {"rule": "pick", "count": 1, "from": "licence"}]
	}`), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("definition:\n%s\nwant:\n%s", mustJSON(t, got), mustJSON(t, want))
	}
	if _, err := ParseDefinition(mustJSON(t, d)); err != nil {
		t.Fatalf("the mapped definition does not parse: %v", err)
	}

	// And back: every restriction the table maps is recovered.
	back := NegotiationFromDefinition(d)
	if len(back.AttributeGroups) != 2 || back.AttributeGroups[0].Referent != "identity" {
		t.Fatalf("groups %+v", back.AttributeGroups)
	}
	for i, a := range back.AttributeGroups[0].Attributes {
		orig := n.AttributeGroups[0].Attributes[i]
		if orig.PresentationType == "" {
			orig.PresentationType = PresentationTypeValue
		}
		if !reflect.DeepEqual(a, orig) {
			t.Errorf("attribute %d back: %s, want %s", i, mustJSON(t, a), mustJSON(t, orig))
		}
	}
	if !reflect.DeepEqual(normaliseJSONs(t, back.SubmissionRequirementJSONs), normaliseJSONs(t, n.SubmissionRequirementJSONs)) {
		t.Errorf("requirements back %v", back.SubmissionRequirementJSONs)
	}
}

func normaliseJSONs(t *testing.T, l []string) []any {
	var out []any
	for _, s := range l {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestDefinitionFromNegotiationErrors(t *testing.T) {
	attr := func(vr *ValueRestrictions) Negotiation {
		return Negotiation{AttributeGroups: []AttributeGroup{{Referent: "g", Attributes: []Attribute{{AttributePaths: []string{"$.a"}, ValueRestrictions: vr}}}}}
	}
	for name, tc := range map[string]struct {
		n    Negotiation
		want string
	}{
		"no groups":         {Negotiation{}, "no attribute groups"},
		"no referent":       {Negotiation{AttributeGroups: []AttributeGroup{{Attributes: []Attribute{{AttributePaths: []string{"$.a"}}}}}}, "no referent"},
		"duplicate group":   {Negotiation{AttributeGroups: []AttributeGroup{{Referent: "g", Attributes: []Attribute{{AttributePaths: []string{"$.a"}}}}, {Referent: "g", Attributes: []Attribute{{AttributePaths: []string{"$.a"}}}}}}, "not unique"},
		"no paths":          {Negotiation{AttributeGroups: []AttributeGroup{{Referent: "g", Attributes: []Attribute{{}}}}}, "no attributePaths"},
		"bad path":          {Negotiation{AttributeGroups: []AttributeGroup{{Referent: "g", Attributes: []Attribute{{AttributePaths: []string{"credentialSubject.a"}}}}}}, "path"},
		"bad format":        {attr(&ValueRestrictions{DataFormat: sp("TEXT")}), "dataFormat"},
		"bad number":        {attr(&ValueRestrictions{DataFormat: sp("NUMBER"), InSet: []string{"x"}}), "not a number"},
		"bad integer":       {attr(&ValueRestrictions{DataFormat: sp("INTEGER"), Equal: sp("1.5")}), "not an integer"},
		"bad date":          {attr(&ValueRestrictions{DataFormat: sp("DATE"), LessThan: sp("01/02/2003")}), "not a date"},
		"bound on string":   {attr(&ValueRestrictions{DataFormat: sp("STRING"), LessThan: sp("b")}), "needs dataFormat"},
		"bad pattern":       {attr(&ValueRestrictions{Pattern: sp("(")}), "pattern"},
		"predicate no vr":   {Negotiation{AttributeGroups: []AttributeGroup{{Referent: "g", Attributes: []Attribute{{AttributePaths: []string{"$.a"}, PresentationType: "PREDICATE"}}}}}, "PREDICATE needs"},
		"bad type":          {Negotiation{AttributeGroups: []AttributeGroup{{Referent: "g", Attributes: []Attribute{{AttributePaths: []string{"$.a"}, PresentationType: "HIDDEN"}}}}}, "presentationType"},
		"requirement json":  {Negotiation{AttributeGroups: attr(nil).AttributeGroups, SubmissionRequirementJSONs: []string{`{"rule":`}}, "submissionRequirementJsons[0]"},
		"requirement field": {Negotiation{AttributeGroups: attr(nil).AttributeGroups, SubmissionRequirementJSONs: []string{`{"rule":"all","from":"g","colour":1}`}}, "submissionRequirementJsons[0]"},
		"requirement rule":  {Negotiation{AttributeGroups: attr(nil).AttributeGroups, SubmissionRequirementJSONs: []string{`{"rule":"some","from":"g"}`}}, "neither all nor pick"},
		"requirement group": {Negotiation{AttributeGroups: attr(nil).AttributeGroups, SubmissionRequirementJSONs: []string{`{"rule":"all","from":"h"}`}}, "no input descriptor is in"},
	} {
		_, err := DefinitionFromNegotiation(tc.n)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}
