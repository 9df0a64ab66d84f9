package anoncreds

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Query is a restriction of a requested attribute or predicate: the subset
// of WQL that AnonCreds uses. In JSON, an array is the disjunction of its
// elements ($or) and an empty array means no restriction; an object is the
// conjunction ($and) of its members, each either an operator
// ({"$and": [...]}, {"$or": [...]}, {"$not": {...}}) or a tag with a string
// value (equality) or with {"$neq": "v"} or {"$in": ["v", ...]}. An empty
// array, object, $and or $or at the top restricts nothing.
//
// Tags: schema_id, schema_issuer_did, schema_issuer_id, schema_name,
// schema_version, issuer_did, issuer_id, cred_def_id, rev_reg_id,
// attr::NAME::value (equal to the value the same credential reveals for
// NAME) and attr::NAME::marker with value "1" (NAME is an attribute of the
// credential's schema). An unknown tag or operator is a parse error.
type Query struct {
	op     string // "and", "or", "not", "eq", "neq", "in"
	tag    string
	values []string
	subs   []*Query
	empty  bool // an empty array: no restriction
}

// Limits on restriction queries.
const (
	maxQueryDepth = 16
	maxQueryNodes = 1024
)

var errQuery = errors.New("restriction")

// UnmarshalJSON parses a WQL restriction.
func (q *Query) UnmarshalJSON(data []byte) error {
	nodes := 0
	parsed, err := parseQuery(data, 0, &nodes)
	if err != nil {
		return fmt.Errorf("%w: %v", errQuery, err)
	}
	*q = *parsed
	return nil
}

// MarshalJSON writes the query back as WQL.
func (q *Query) MarshalJSON() ([]byte, error) {
	return json.Marshal(q.toJSON())
}

func (q *Query) toJSON() any {
	switch q.op {
	case "or":
		if q.empty {
			return []any{}
		}
		out := make([]any, len(q.subs))
		for i, s := range q.subs {
			out[i] = s.toJSON()
		}
		return map[string]any{"$or": out}
	case "and":
		out := make([]any, len(q.subs))
		for i, s := range q.subs {
			out[i] = s.toJSON()
		}
		return map[string]any{"$and": out}
	case "not":
		return map[string]any{"$not": q.subs[0].toJSON()}
	case "eq":
		return map[string]any{q.tag: q.values[0]}
	case "neq":
		return map[string]any{q.tag: map[string]any{"$neq": q.values[0]}}
	case "in":
		return map[string]any{q.tag: map[string]any{"$in": q.values}}
	}
	return nil
}

func parseQuery(data []byte, depth int, nodes *int) (*Query, error) {
	*nodes++
	if depth > maxQueryDepth || *nodes > maxQueryNodes {
		return nil, errors.New("query too deep or too large")
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, errors.New("empty query")
	}
	switch data[0] {
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(data, &elems); err != nil {
			return nil, errors.New("malformed query array")
		}
		q := &Query{op: "or", empty: len(elems) == 0}
		for _, e := range elems {
			s, err := parseQuery(e, depth+1, nodes)
			if err != nil {
				return nil, err
			}
			q.subs = append(q.subs, s)
		}
		return q, nil
	case '{':
		var members map[string]json.RawMessage
		if err := json.Unmarshal(data, &members); err != nil {
			return nil, errors.New("malformed query object")
		}
		keys := make([]string, 0, len(members))
		for k := range members {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		q := &Query{op: "and"}
		for _, k := range keys {
			s, err := parseMember(k, members[k], depth+1, nodes)
			if err != nil {
				return nil, err
			}
			q.subs = append(q.subs, s)
		}
		if len(q.subs) == 1 {
			return q.subs[0], nil
		}
		return q, nil
	}
	return nil, errors.New("query must be an object or an array")
}

func parseMember(key string, val json.RawMessage, depth int, nodes *int) (*Query, error) {
	switch key {
	case "$and", "$or":
		var elems []json.RawMessage
		if err := json.Unmarshal(val, &elems); err != nil {
			return nil, fmt.Errorf("%s needs an array", key)
		}
		q := &Query{op: key[1:]}
		for _, e := range elems {
			s, err := parseQuery(e, depth+1, nodes)
			if err != nil {
				return nil, err
			}
			q.subs = append(q.subs, s)
		}
		return q, nil
	case "$not":
		s, err := parseQuery(val, depth+1, nodes)
		if err != nil {
			return nil, err
		}
		return &Query{op: "not", subs: []*Query{s}}, nil
	}
	if strings.HasPrefix(key, "$") {
		return nil, fmt.Errorf("unsupported operator %q", shortName(key))
	}
	if !knownTag(key) {
		return nil, fmt.Errorf("unknown tag %q", shortName(key))
	}
	*nodes++
	val = bytes.TrimSpace(val)
	if len(val) > 0 && val[0] == '"' {
		var s string
		if err := json.Unmarshal(val, &s); err != nil {
			return nil, errors.New("malformed tag value")
		}
		return &Query{op: "eq", tag: key, values: []string{s}}, nil
	}
	var ops map[string]json.RawMessage
	if err := json.Unmarshal(val, &ops); err != nil || len(ops) != 1 {
		return nil, fmt.Errorf("tag %q needs a string or one of $neq, $in", shortName(key))
	}
	for op, v := range ops {
		switch op {
		case "$neq", "$eq":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("%s needs a string", op)
			}
			return &Query{op: op[1:], tag: key, values: []string{s}}, nil
		case "$in":
			var ss []string
			if err := json.Unmarshal(v, &ss); err != nil || len(ss) > maxQueryNodes {
				return nil, errors.New("$in needs an array of strings")
			}
			return &Query{op: "in", tag: key, values: ss}, nil
		default:
			return nil, fmt.Errorf("unsupported operator %q", shortName(op))
		}
	}
	return nil, errors.New("unreachable")
}

func knownTag(tag string) bool {
	switch tag {
	case "schema_id", "schema_issuer_did", "schema_issuer_id", "schema_name", "schema_version",
		"issuer_did", "issuer_id", "cred_def_id", "rev_reg_id":
		return true
	}
	_, _, ok := attrTag(tag)
	return ok
}

// attrTag splits attr::NAME::value and attr::NAME::marker.
func attrTag(tag string) (name, kind string, ok bool) {
	rest, found := strings.CutPrefix(tag, "attr::")
	if !found {
		return "", "", false
	}
	i := strings.LastIndex(rest, "::")
	if i <= 0 {
		return "", "", false
	}
	name, kind = rest[:i], rest[i+2:]
	if kind != "value" && kind != "marker" {
		return "", "", false
	}
	return name, kind, true
}

// IsEmpty tells whether the query restricts nothing: absent, an empty array
// or object, or an empty $and or $or (as anoncreds-rs decides whether a
// referent may be self-attested).
func (q *Query) IsEmpty() bool {
	return q == nil || ((q.op == "or" || q.op == "and") && len(q.subs) == 0)
}

// credentialFacts is what a restriction is evaluated against: one sub-proof's
// credential.
type credentialFacts struct {
	schemaID, schemaIssuerID, schemaName, schemaVersion string
	issuerID, credDefID, revRegID                       string
	attrs                                               map[string]bool   // canonical schema attribute names
	revealed                                            map[string]string // canonical name -> raw value revealed by this credential
	unknown                                             bool              // an attr::NAME::value tag named an unrevealed attribute
}

// satisfiedBy evaluates the query; a query that needs the value of an
// attribute the credential does not reveal is not satisfied, whatever its
// operators (so $not and $neq cannot be met by hiding the value).
func (q *Query) satisfiedBy(f *credentialFacts) bool {
	if q.IsEmpty() {
		return true
	}
	f.unknown = false
	ok := q.matches(f)
	return ok && !f.unknown
}

// matches evaluates the query.
func (q *Query) matches(f *credentialFacts) bool {
	switch q.op {
	case "and":
		for _, s := range q.subs {
			if !s.matches(f) {
				return false
			}
		}
		return true
	case "or":
		for _, s := range q.subs {
			if s.matches(f) {
				return true
			}
		}
		return false
	case "not":
		return !q.subs[0].matches(f)
	case "eq":
		return f.tagEquals(q.tag, q.values[0])
	case "neq":
		return !f.tagEquals(q.tag, q.values[0])
	case "in":
		for _, v := range q.values {
			if f.tagEquals(q.tag, v) {
				return true
			}
		}
		return false
	}
	return false
}

func (f *credentialFacts) tagEquals(tag, value string) bool {
	switch tag {
	case "schema_id":
		return f.schemaID == value
	case "schema_issuer_did", "schema_issuer_id":
		return sameIssuer(f.schemaIssuerID, value)
	case "schema_name":
		return f.schemaName == value
	case "schema_version":
		return f.schemaVersion == value
	case "issuer_did", "issuer_id":
		return sameIssuer(f.issuerID, value)
	case "cred_def_id":
		return f.credDefID == value
	case "rev_reg_id":
		return f.revRegID != "" && f.revRegID == value
	}
	name, kind, ok := attrTag(tag)
	if !ok {
		return false
	}
	name = CanonicalAttrName(name)
	if kind == "marker" {
		return value == "1" && f.attrs[name]
	}
	raw, revealed := f.revealed[name]
	if !revealed {
		f.unknown = true
		return false
	}
	return raw == value
}
