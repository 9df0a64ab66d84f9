package w3cvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Negotiation is the GraphQL API's W3CProofNegotiation (Sudo Platform cloud
// agent): a flattened presentation definition.
type Negotiation struct {
	AttributeGroups            []AttributeGroup
	SubmissionRequirementJSONs []string
	Challenge, Domain          string
}

// AttributeGroup is one input descriptor: Referent is its id and group.
type AttributeGroup struct {
	Referent   string
	Attributes []Attribute
}

// Attribute is one constraints field.
type Attribute struct {
	AttributePaths    []string
	ValueRestrictions *ValueRestrictions
	IsHolderSubject   bool
	// PresentationType is "VALUE" (or empty) or "PREDICATE".
	PresentationType string
}

// ValueRestrictions is a field filter. DataFormat is STRING, NUMBER,
// INTEGER, BOOLEAN, DATE or DATE_TIME; set values, equal, notEqual and the
// bounds are written as strings and typed by DataFormat.
type ValueRestrictions struct {
	DataFormat                                                 *string
	Pattern                                                    *string
	InSet, NotInSet                                            []string
	Equal, NotEqual                                            *string
	MinLength, MaxLength                                       *int
	LessThan, LessThanOrEqual, GreaterThan, GreaterThanOrEqual *string
}

// Data formats of ValueRestrictions.
const (
	DataFormatString   = "STRING"
	DataFormatNumber   = "NUMBER"
	DataFormatInteger  = "INTEGER"
	DataFormatBoolean  = "BOOLEAN"
	DataFormatDate     = "DATE"
	DataFormatDateTime = "DATE_TIME"
)

// Presentation types of Attribute.
const (
	PresentationTypeValue     = "VALUE"
	PresentationTypePredicate = "PREDICATE"
)

// DefinitionFromNegotiation maps n to a presentation definition (design
// note sudo-graphql.md section 5): one input descriptor per group (id and
// group = referent), one field per attribute (id "<referent>.<index>",
// path = attributePaths, filter from valueRestrictions), is_holder for
// isHolderSubject, predicate and limit_disclosure "required" for PREDICATE
// (which this package's prover then refuses: no selective disclosure), and
// submission_requirements from the JSON strings. The definition id is
// random; Challenge and Domain are not part of a definition.
func DefinitionFromNegotiation(n Negotiation) (*Definition, error) {
	if len(n.AttributeGroups) == 0 {
		return nil, fmt.Errorf("negotiation has no attribute groups")
	}
	d := &Definition{ID: strings.TrimPrefix(newURN(), "urn:uuid:")}
	for gi, g := range n.AttributeGroups {
		if g.Referent == "" {
			return nil, fmt.Errorf("attributeGroups[%d] has no referent", gi)
		}
		if len(g.Attributes) == 0 {
			return nil, fmt.Errorf("attribute group %.80q has no attributes", g.Referent)
		}
		desc := InputDescriptor{ID: g.Referent, Group: []string{g.Referent}, Constraints: &Constraints{}}
		for ai, a := range g.Attributes {
			where := fmt.Sprintf("attribute group %.80q attribute %d", g.Referent, ai)
			if len(a.AttributePaths) == 0 {
				return nil, fmt.Errorf("%s has no attributePaths", where)
			}
			f := Field{ID: g.Referent + "." + strconv.Itoa(ai), Path: append([]string(nil), a.AttributePaths...)}
			if a.ValueRestrictions != nil {
				flt, err := filterFromRestrictions(a.ValueRestrictions)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", where, err)
				}
				f.Filter = flt
			}
			switch a.PresentationType {
			case "", PresentationTypeValue:
			case PresentationTypePredicate:
				if f.Filter == nil {
					return nil, fmt.Errorf("%s: PREDICATE needs valueRestrictions", where)
				}
				f.Predicate = "required"
				desc.Constraints.LimitDisclosure = "required"
			default:
				return nil, fmt.Errorf("%s: presentationType %.40q is neither VALUE nor PREDICATE", where, a.PresentationType)
			}
			if a.IsHolderSubject {
				desc.Constraints.IsHolder = append(desc.Constraints.IsHolder, HolderSubject{FieldID: []string{f.ID}, Directive: "required"})
			}
			desc.Constraints.Fields = append(desc.Constraints.Fields, f)
		}
		d.InputDescriptors = append(d.InputDescriptors, desc)
	}
	for i, s := range n.SubmissionRequirementJSONs {
		var r SubmissionRequirement
		dec := json.NewDecoder(strings.NewReader(s))
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("submissionRequirementJsons[%d] is not a submission requirement object: %w", i, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("submissionRequirementJsons[%d] has data after the object", i)
		}
		if k := extraMember(r); k != "" {
			return nil, fmt.Errorf("submissionRequirementJsons[%d] has member %.40q; a submission requirement has name, purpose, rule, count, min, max, from and from_nested", i, k)
		}
		d.SubmissionRequirements = append(d.SubmissionRequirements, r)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// extraMember returns a member of r or its nested requirements that the
// model does not know, or "".
func extraMember(r SubmissionRequirement) string {
	for k := range r.Extra {
		return k
	}
	for _, n := range r.FromNested {
		if k := extraMember(n); k != "" {
			return k
		}
	}
	return ""
}

// filterFromRestrictions maps value restrictions to a JSON Schema filter.
func filterFromRestrictions(r *ValueRestrictions) (map[string]any, error) {
	f := map[string]any{}
	format := ""
	if r.DataFormat != nil {
		format = *r.DataFormat
		switch format {
		case DataFormatString:
			f["type"] = "string"
		case DataFormatNumber:
			f["type"] = "number"
		case DataFormatInteger:
			f["type"] = "integer"
		case DataFormatBoolean:
			f["type"] = "boolean"
		case DataFormatDate:
			f["type"], f["format"] = "string", "date"
		case DataFormatDateTime:
			f["type"], f["format"] = "string", "date-time"
		default:
			return nil, fmt.Errorf("dataFormat %.40q is not one of STRING NUMBER INTEGER BOOLEAN DATE DATE_TIME", format)
		}
	}
	typed := func(what, s string) (any, error) {
		v, err := typedValue(format, s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return v, nil
	}
	if r.Pattern != nil {
		f["pattern"] = *r.Pattern
	}
	for _, set := range []struct {
		name   string
		values []string
		not    bool
	}{{"inSet", r.InSet, false}, {"notInSet", r.NotInSet, true}} {
		if set.values == nil {
			continue
		}
		enum := make([]any, len(set.values))
		for i, s := range set.values {
			v, err := typed(set.name, s)
			if err != nil {
				return nil, err
			}
			enum[i] = v
		}
		if set.not {
			addNot(f, "enum", enum)
		} else {
			f["enum"] = enum
		}
	}
	if r.Equal != nil {
		v, err := typed("equal", *r.Equal)
		if err != nil {
			return nil, err
		}
		f["const"] = v
	}
	if r.NotEqual != nil {
		v, err := typed("notEqual", *r.NotEqual)
		if err != nil {
			return nil, err
		}
		addNot(f, "const", v)
	}
	if r.MinLength != nil {
		f["minLength"] = *r.MinLength
	}
	if r.MaxLength != nil {
		f["maxLength"] = *r.MaxLength
	}
	for _, b := range []struct {
		name, number, date string
		v                  *string
	}{
		{"lessThan", "exclusiveMaximum", "formatExclusiveMaximum", r.LessThan},
		{"lessThanOrEqual", "maximum", "formatMaximum", r.LessThanOrEqual},
		{"greaterThan", "exclusiveMinimum", "formatExclusiveMinimum", r.GreaterThan},
		{"greaterThanOrEqual", "minimum", "formatMinimum", r.GreaterThanOrEqual},
	} {
		if b.v == nil {
			continue
		}
		switch format {
		case DataFormatNumber, DataFormatInteger:
			v, err := typed(b.name, *b.v)
			if err != nil {
				return nil, err
			}
			f[b.number] = v
		case DataFormatDate, DataFormatDateTime:
			if _, err := typed(b.name, *b.v); err != nil {
				return nil, err
			}
			f[b.date] = *b.v
		default:
			return nil, fmt.Errorf("%s needs dataFormat NUMBER, INTEGER, DATE or DATE_TIME", b.name)
		}
	}
	if _, err := compileFilterJSON(f); err != nil {
		return nil, err
	}
	return f, nil
}

// addNot adds keyword to the filter's not schema.
func addNot(f map[string]any, keyword string, v any) {
	n, _ := f["not"].(map[string]any)
	if n == nil {
		n = map[string]any{}
		f["not"] = n
	}
	n[keyword] = v
}

// typedValue reads s as a value of the data format.
func typedValue(format, s string) (any, error) {
	switch format {
	case DataFormatNumber:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%.40q is not a number", s)
		}
		return v, nil
	case DataFormatInteger:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%.40q is not an integer", s)
		}
		return v, nil
	case DataFormatBoolean:
		v, err := strconv.ParseBool(s)
		if err != nil || (s != "true" && s != "false") {
			return nil, fmt.Errorf("%.40q is not true or false", s)
		}
		return v, nil
	case DataFormatDate:
		if _, err := parseDate(s, "date"); err != nil {
			return nil, fmt.Errorf("%.40q is not a date (YYYY-MM-DD)", s)
		}
	case DataFormatDateTime:
		if _, err := parseDate(s, "date-time"); err != nil {
			return nil, fmt.Errorf("%.40q is not an RFC 3339 date-time", s)
		}
	}
	return s, nil
}

// NegotiationFromDefinition maps a definition back to a Negotiation, best
// effort, for incoming requests: filter keywords the ValueRestrictions
// cannot express are dropped (keep the definition itself for those).
func NegotiationFromDefinition(d *Definition) Negotiation {
	var n Negotiation
	if d == nil {
		return n
	}
	for _, desc := range d.InputDescriptors {
		g := AttributeGroup{Referent: desc.ID}
		if desc.Constraints != nil {
			holder := map[string]bool{}
			for _, h := range desc.Constraints.IsHolder {
				if h.Directive == "required" {
					for _, id := range h.FieldID {
						holder[id] = true
					}
				}
			}
			for _, f := range desc.Constraints.Fields {
				a := Attribute{
					AttributePaths:    append([]string(nil), f.Path...),
					IsHolderSubject:   f.ID != "" && holder[f.ID],
					PresentationType:  PresentationTypeValue,
					ValueRestrictions: restrictionsFromFilter(f.Filter),
				}
				if f.Predicate == "required" {
					a.PresentationType = PresentationTypePredicate
				}
				g.Attributes = append(g.Attributes, a)
			}
		}
		n.AttributeGroups = append(n.AttributeGroups, g)
	}
	for _, r := range d.SubmissionRequirements {
		b, err := json.Marshal(r)
		if err == nil {
			n.SubmissionRequirementJSONs = append(n.SubmissionRequirementJSONs, string(b))
		}
	}
	return n
}

func restrictionsFromFilter(f map[string]any) *ValueRestrictions {
	if len(f) == 0 {
		return nil
	}
	r := &ValueRestrictions{}
	set := false
	str := func(v any) (string, bool) {
		switch t := v.(type) {
		case string:
			return t, true
		case float64:
			return strconv.FormatFloat(t, 'f', -1, 64), true
		case int:
			return strconv.Itoa(t), true
		case int64:
			return strconv.FormatInt(t, 10), true
		case bool:
			return strconv.FormatBool(t), true
		}
		b, err := json.Marshal(v)
		if err != nil {
			return "", false
		}
		return string(bytes.TrimSpace(b)), true
	}
	ptr := func(v any) *string {
		if s, ok := str(v); ok {
			set = true
			return &s
		}
		return nil
	}
	list := func(v any) []string {
		l, ok := v.([]any)
		if !ok {
			return nil
		}
		out := make([]string, 0, len(l))
		for _, e := range l {
			if s, ok := str(e); ok {
				out = append(out, s)
			}
		}
		set = true
		return out
	}
	intp := func(v any) *int {
		switch t := v.(type) {
		case float64:
			i := int(t)
			set = true
			return &i
		case int:
			set = true
			return &t
		}
		return nil
	}
	typ, _ := f["type"].(string)
	format, _ := f["format"].(string)
	df := ""
	switch {
	case typ == "date" || (typ == "string" && format == "date"):
		df = DataFormatDate
	case typ == "date-time" || (typ == "string" && format == "date-time"):
		df = DataFormatDateTime
	case typ == "string":
		df = DataFormatString
	case typ == "number":
		df = DataFormatNumber
	case typ == "integer":
		df = DataFormatInteger
	case typ == "boolean":
		df = DataFormatBoolean
	}
	if df != "" {
		r.DataFormat, set = &df, true
	}
	if p, ok := f["pattern"].(string); ok {
		r.Pattern, set = &p, true
	}
	if v, ok := f["enum"]; ok {
		r.InSet = list(v)
	}
	if v, ok := f["const"]; ok {
		r.Equal = ptr(v)
	}
	if not, ok := f["not"].(map[string]any); ok {
		if v, ok := not["enum"]; ok {
			r.NotInSet = list(v)
		}
		if v, ok := not["const"]; ok {
			r.NotEqual = ptr(v)
		}
	}
	if v, ok := f["minLength"]; ok {
		r.MinLength = intp(v)
	}
	if v, ok := f["maxLength"]; ok {
		r.MaxLength = intp(v)
	}
	bounds := []struct {
		keys []string
		dst  **string
	}{
		{[]string{"exclusiveMaximum", "formatExclusiveMaximum"}, &r.LessThan},
		{[]string{"maximum", "formatMaximum"}, &r.LessThanOrEqual},
		{[]string{"exclusiveMinimum", "formatExclusiveMinimum"}, &r.GreaterThan},
		{[]string{"minimum", "formatMinimum"}, &r.GreaterThanOrEqual},
	}
	for _, b := range bounds {
		for _, k := range b.keys {
			if v, ok := f[k]; ok {
				*b.dst = ptr(v)
			}
		}
	}
	if !set {
		return nil
	}
	return r
}
