package did

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// readVector decodes testdata/name into v.
func readVector(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// assertJSONEqual checks that got marshals to JSON equal to want, ignoring
// member order and whitespace.
func assertJSONEqual(t *testing.T, got any, want []byte) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var gv, wv any
	if err := json.Unmarshal(g, &gv); err != nil {
		t.Fatalf("re-read own JSON: %v\n%s", err, g)
	}
	if err := json.Unmarshal(want, &wv); err != nil {
		t.Fatalf("want is not JSON: %v", err)
	}
	if !reflect.DeepEqual(gv, wv) {
		gi, _ := json.MarshalIndent(gv, "", "  ")
		wi, _ := json.MarshalIndent(wv, "", "  ")
		t.Fatalf("JSON differs\n got: %s\nwant: %s", gi, wi)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
