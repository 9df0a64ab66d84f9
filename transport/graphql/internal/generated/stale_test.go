package generated

import (
	"os"
	"testing"
)

// TestGeneratedFromCurrentSchema fails when schema.graphqls changed after
// the last `make generate`: the executable schema embeds the source it was
// generated from.
func TestGeneratedFromCurrentSchema(t *testing.T) {
	want, err := os.ReadFile("../../schema.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) != 1 || sources[0].Input != string(want) {
		t.Fatal("internal/generated is stale: run `make generate` (go generate ./transport/graphql/)")
	}
}
