package w3cvc

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// filterFunc tests one value against a compiled filter.
type filterFunc func(v any) bool

// CompileFilter checks that filter uses only the supported JSON Schema
// subset and returns a test for values. Supported keywords: type (string,
// number, integer, boolean, array, object, null, and RFC 0510's date and
// date-time), format (date and date-time are checked, others ignored),
// pattern (Go RE2 syntax), enum, const, not, allOf, anyOf, oneOf,
// minLength, maxLength, minimum, maximum, exclusiveMinimum,
// exclusiveMaximum (numbers, or dates when the type or format is a date),
// formatMinimum, formatMaximum, formatExclusiveMinimum,
// formatExclusiveMaximum (dates and date-times), contains, items,
// minItems, maxItems; and the annotations $schema, title, description.
func CompileFilter(filter map[string]any) (func(v any) bool, error) {
	f, err := compileFilterJSON(filter)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// compileFilterJSON compiles filter after a JSON round trip, so that Go
// values (int, []string...) read as JSON values do.
func compileFilterJSON(filter map[string]any) (filterFunc, error) {
	b, err := json.Marshal(filter)
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	return compileFilter(m, 0)
}

func compileFilter(s map[string]any, depth int) (filterFunc, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("filter nested deeper than %d", maxNesting)
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	typ, _ := s["type"].(string)
	format, _ := s["format"].(string)
	dateKind := ""
	switch {
	case typ == "date" || format == "date":
		dateKind = "date"
	case typ == "date-time" || format == "date-time":
		dateKind = "date-time"
	}
	var tests []filterFunc
	for _, k := range keys {
		v := s[k]
		var t filterFunc
		var err error
		switch k {
		case "$schema", "title", "description", "$comment":
			continue
		case "type":
			t, err = typeTest(v)
		case "format":
			t, err = formatTest(v)
		case "pattern":
			p, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("pattern is not a string")
			}
			re, rerr := regexp.Compile(p)
			if rerr != nil {
				return nil, fmt.Errorf("pattern %.80q: %w", p, rerr)
			}
			t = func(x any) bool { str, ok := x.(string); return !ok || re.MatchString(str) }
		case "enum":
			l, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("enum is not an array")
			}
			t = func(x any) bool {
				for _, e := range l {
					if jsonEqual(e, x) {
						return true
					}
				}
				return false
			}
		case "const":
			t = func(x any) bool { return jsonEqual(v, x) }
		case "not":
			sub, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("not is not a schema object")
			}
			f, ferr := compileFilter(sub, depth+1)
			if ferr != nil {
				return nil, ferr
			}
			t = func(x any) bool { return !f(x) }
		case "allOf", "anyOf", "oneOf":
			t, err = combinatorTest(k, v, depth)
		case "minLength", "maxLength":
			n, ok := nonNegInt(v)
			if !ok {
				return nil, fmt.Errorf("%s is not a non-negative integer", k)
			}
			min := k == "minLength"
			t = func(x any) bool {
				str, ok := x.(string)
				if !ok {
					return true
				}
				l := utf8.RuneCountInString(str)
				return (min && l >= n) || (!min && l <= n)
			}
		case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
			if dateKind != "" {
				t, err = dateBound(k, v, dateKind)
			} else {
				t, err = numberBound(k, v)
			}
		case "formatMinimum", "formatMaximum", "formatExclusiveMinimum", "formatExclusiveMaximum":
			if dateKind == "" {
				return nil, fmt.Errorf("%s needs format date or date-time", k)
			}
			t, err = dateBound(k, v, dateKind)
		case "contains", "items":
			sub, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s is not a schema object", k)
			}
			f, ferr := compileFilter(sub, depth+1)
			if ferr != nil {
				return nil, ferr
			}
			all := k == "items"
			t = func(x any) bool {
				l, ok := x.([]any)
				if !ok {
					return true
				}
				for _, e := range l {
					if f(e) != all {
						return !all
					}
				}
				return all
			}
		case "minItems", "maxItems":
			n, ok := nonNegInt(v)
			if !ok {
				return nil, fmt.Errorf("%s is not a non-negative integer", k)
			}
			min := k == "minItems"
			t = func(x any) bool {
				l, ok := x.([]any)
				if !ok {
					return true
				}
				return (min && len(l) >= n) || (!min && len(l) <= n)
			}
		default:
			return nil, fmt.Errorf("filter keyword %.40q is not supported", k)
		}
		if err != nil {
			return nil, err
		}
		tests = append(tests, t)
	}
	return func(x any) bool {
		for _, t := range tests {
			if !t(x) {
				return false
			}
		}
		return true
	}, nil
}

func typeTest(v any) (filterFunc, error) {
	var names []string
	switch t := v.(type) {
	case string:
		names = []string{t}
	case []any:
		names = stringList(t)
		if len(names) != len(t) || len(names) == 0 {
			return nil, fmt.Errorf("type is not a list of names")
		}
	default:
		return nil, fmt.Errorf("type is not a name")
	}
	for _, n := range names {
		switch n {
		case "string", "number", "integer", "boolean", "array", "object", "null", "date", "date-time":
		default:
			return nil, fmt.Errorf("type %.40q is not a JSON Schema type", n)
		}
	}
	return func(x any) bool {
		for _, n := range names {
			if isType(n, x) {
				return true
			}
		}
		return false
	}, nil
}

func isType(n string, x any) bool {
	switch n {
	case "string":
		_, ok := x.(string)
		return ok
	case "number":
		_, ok := x.(float64)
		return ok
	case "integer":
		f, ok := x.(float64)
		return ok && f == math.Trunc(f) && !math.IsInf(f, 0)
	case "boolean":
		_, ok := x.(bool)
		return ok
	case "array":
		_, ok := x.([]any)
		return ok
	case "object":
		_, ok := x.(map[string]any)
		return ok
	case "null":
		return x == nil
	case "date", "date-time":
		s, ok := x.(string)
		if !ok {
			return false
		}
		_, err := parseDate(s, n)
		return err == nil
	}
	return false
}

func formatTest(v any) (filterFunc, error) {
	f, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("format is not a string")
	}
	if f != "date" && f != "date-time" {
		return func(any) bool { return true }, nil // an annotation
	}
	return func(x any) bool {
		s, ok := x.(string)
		if !ok {
			return true
		}
		_, err := parseDate(s, f)
		return err == nil
	}, nil
}

func parseDate(s, kind string) (time.Time, error) {
	if kind == "date" {
		return time.Parse(time.DateOnly, s)
	}
	return time.Parse(time.RFC3339Nano, s)
}

func combinatorTest(k string, v any, depth int) (filterFunc, error) {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return nil, fmt.Errorf("%s is not a non-empty array", k)
	}
	fs := make([]filterFunc, len(l))
	for i, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s[%d] is not a schema object", k, i)
		}
		f, err := compileFilter(m, depth+1)
		if err != nil {
			return nil, err
		}
		fs[i] = f
	}
	return func(x any) bool {
		n := 0
		for _, f := range fs {
			if f(x) {
				n++
			}
		}
		switch k {
		case "allOf":
			return n == len(fs)
		case "anyOf":
			return n > 0
		}
		return n == 1
	}, nil
}

func numberBound(k string, v any) (filterFunc, error) {
	b, ok := v.(float64)
	if !ok {
		return nil, fmt.Errorf("%s is not a number", k)
	}
	return func(x any) bool {
		f, ok := x.(float64)
		if !ok {
			return true
		}
		return compareBound(k, f-b)
	}, nil
}

// compareBound says whether d = value - bound satisfies the keyword.
func compareBound(k string, d float64) bool {
	switch strings.TrimPrefix(k, "format") {
	case "Minimum", "minimum":
		return d >= 0
	case "Maximum", "maximum":
		return d <= 0
	case "ExclusiveMinimum", "exclusiveMinimum":
		return d > 0
	}
	return d < 0
}

func dateBound(k string, v any, kind string) (filterFunc, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("%s is not a %s string", k, kind)
	}
	b, err := parseDate(s, kind)
	if err != nil {
		return nil, fmt.Errorf("%s %.40q is not a %s", k, s, kind)
	}
	return func(x any) bool {
		str, ok := x.(string)
		if !ok {
			return true
		}
		t, err := parseDate(str, kind)
		if err != nil {
			return false
		}
		return compareBound(k, float64(t.Sub(b)))
	}, nil
}

func nonNegInt(v any) (int, bool) {
	f, ok := v.(float64)
	if !ok || f < 0 || f != math.Trunc(f) || f > 1<<31 {
		return 0, false
	}
	return int(f), true
}

// jsonEqual compares two JSON values (numbers as float64).
func jsonEqual(a, b any) bool { return reflect.DeepEqual(a, b) }
