package main

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	httptransport "github.com/agentd/agentd/transport/http"
)

// TestOpenAPIAgainstDaemon reads the admin API's OpenAPI document from a
// real daemon (mediator and Prove Control on) and calls every documented
// GET route that takes no path parameter: each answers 200, with only
// documented members (the daemon's adapters cannot add undocumented ones).
func TestOpenAPIAgainstDaemon(t *testing.T) {
	d := startMediator(t)
	c := &httptransport.Client{BaseURL: "http://" + d.Addr(), Token: d.AdminToken()}
	ctx := context.Background()
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	if err := c.Do(ctx, "GET", "/admin/openapi.json", nil, &doc); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, want := range []string{"/admin/mediation/grants", "/admin/provecontrol/challenges", "/admin/deadletters", "/admin/openapi.json"} {
		if doc.Paths[want] == nil {
			t.Fatalf("the document lacks %s: %v", want, paths)
		}
	}
	called := 0
	for _, p := range paths {
		raw, ok := doc.Paths[p]["get"]
		if !ok || strings.Contains(p, "{") || p == "/admin/openapi.json" {
			continue
		}
		var op struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema schema `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatal(err)
		}
		var answer any
		if err := c.Do(ctx, "GET", p, nil, &answer); err != nil {
			t.Errorf("GET %s: %v", p, err)
			continue
		}
		called++
		s := op.Responses["200"].Content["application/json"].Schema
		for _, problem := range undocumented(s, answer, doc.Components.Schemas, "GET "+p) {
			t.Error(problem)
		}
	}
	if called < 10 {
		t.Fatalf("only %d routes called", called)
	}
}

// schema is the part of a JSON Schema the check reads.
type schema struct {
	Ref        string            `json:"$ref"`
	Type       string            `json:"type"`
	Properties map[string]schema `json:"properties"`
	Items      *schema           `json:"items"`
}

// undocumented lists the members of value its schema does not document.
func undocumented(s schema, value any, components map[string]schema, at string) []string {
	if s.Ref != "" {
		s = components[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	var out []string
	switch v := value.(type) {
	case map[string]any:
		if s.Properties == nil {
			return nil
		}
		for k, m := range v {
			p, ok := s.Properties[k]
			if !ok {
				out = append(out, at+": undocumented member "+k)
				continue
			}
			out = append(out, undocumented(p, m, components, at+"."+k)...)
		}
	case []any:
		if s.Items == nil {
			return []string{at + ": undocumented array"}
		}
		for _, e := range v {
			out = append(out, undocumented(*s.Items, e, components, at+"[]")...)
		}
	}
	return out
}
