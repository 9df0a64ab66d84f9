package anoncreds

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type vectorCase struct {
	Name         string `json:"name"`
	Dir          string `json:"dir"`
	Schema       string `json:"schema"`
	CredDef      string `json:"cred_def"`
	PresRequest  string `json:"pres_request"`
	Presentation string `json:"presentation"`
	Expect       string `json:"expect"`
	Reason       string `json:"reason"`
	Oracle       bool   `json:"oracle_anoncreds_wasm"`
}

// loadedCase is a case with its objects parsed.
type loadedCase struct {
	vectorCase
	schemas  map[string]*Schema
	credDefs map[string]*CredentialDefinition
	req      *PresentationRequest
	pres     *Presentation
	presJSON []byte
	reqJSON  []byte
}

func readFile(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadCases(t testing.TB) []loadedCase {
	t.Helper()
	var cs struct {
		Cases []vectorCase `json:"cases"`
	}
	if err := json.Unmarshal(readFile(t, "testdata", "cases.json"), &cs); err != nil {
		t.Fatal(err)
	}
	if len(cs.Cases) == 0 {
		t.Fatal("no cases")
	}
	var out []loadedCase
	for _, c := range cs.Cases {
		lc := loadedCase{vectorCase: c}
		dir := filepath.Join("testdata", c.Dir)
		schema, err := ParseSchema(readFile(t, dir, c.Schema))
		if err != nil {
			t.Fatalf("%s: schema: %v", c.Name, err)
		}
		cd, err := ParseCredentialDefinition(readFile(t, dir, c.CredDef))
		if err != nil {
			t.Fatalf("%s: cred def: %v", c.Name, err)
		}
		lc.reqJSON = readFile(t, dir, c.PresRequest)
		if lc.req, err = ParsePresentationRequest(lc.reqJSON); err != nil {
			t.Fatalf("%s: request: %v", c.Name, err)
		}
		lc.presJSON = readFile(t, dir, c.Presentation)
		if lc.pres, err = ParsePresentation(lc.presJSON); err != nil {
			t.Fatalf("%s: presentation: %v", c.Name, err)
		}
		lc.schemas = map[string]*Schema{}
		lc.credDefs = map[string]*CredentialDefinition{}
		for _, id := range lc.pres.Identifiers {
			lc.schemas[id.SchemaID] = schema
			lc.credDefs[id.CredDefID] = cd
		}
		out = append(out, lc)
	}
	return out
}

// TestVectors: every case of cases.json gives its expected verdict.
func TestVectors(t *testing.T) {
	for _, c := range loadCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			err := VerifyPresentation(c.pres, c.req, c.schemas, c.credDefs)
			switch c.Expect {
			case "valid":
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
			case "invalid":
				if err == nil {
					t.Fatalf("want invalid (%s), got valid", c.Reason)
				}
				t.Logf("refused: %v", err)
			default:
				t.Fatalf("unknown expectation %q", c.Expect)
			}
		})
	}
}
