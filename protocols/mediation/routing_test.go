package mediation

import (
	"encoding/json"
	"reflect"
	"testing"
)

var forwardBodies = []string{
	``,
	`{}`,
	`{"next":"did:example:bob"}`,
	` { "next" : "did:example:bob" , "other": [1, {"next": "x"}] } `,
	`{"next":"did:example:b\u00f6b"}`,
	`{"next":"did:example:bo\"b"}`,
	`{"next":"a","next":"b"}`,
	`{"Next":"did:example:bob"}`,
	`{"NEXT":"a","next":"b"}`,
	`{"next":null}`,
	`{"next":1}`,
	`{"next":["a"]}`,
	`{"next":"` + "\xff" + `"}`,
	`{"next":"a"`,
	`{"next":"a"} x`,
	`null`,
	`[]`,
	`"next"`,
	`{"nexT":"a"}`,
	`{"ne\u0078t":"a"}`,
}

// checkForwardBody holds decodeForwardBody to agent.Message.DecodeBody:
// the same body and the same error text.
func checkForwardBody(t *testing.T, raw []byte) {
	t.Helper()
	got, gotErr := decodeForwardBody(raw)
	var want ForwardBody
	var wantErr error
	if len(raw) == 0 {
		wantErr = json.Unmarshal([]byte("{}"), &want)
	} else {
		wantErr = json.Unmarshal(raw, &want)
	}
	if !reflect.DeepEqual(got, want) || (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("decodeForwardBody(%q) = %+v, %v; encoding/json: %+v, %v", raw, got, gotErr, want, wantErr)
	}
}

func TestDecodeForwardBody(t *testing.T) {
	for _, b := range forwardBodies {
		checkForwardBody(t, []byte(b))
	}
}

func FuzzDecodeForwardBody(f *testing.F) {
	for _, b := range forwardBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkForwardBody(t, raw) })
}

func BenchmarkDecodeForwardBody(b *testing.B) {
	raw := json.RawMessage(`{"next":"did:peer:2.Ez6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc.Vz6MkqRYqQiSgvZQdnBytw86Qbs2ZWUkGv22od935YF4s8M7V"}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeForwardBody(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var body ForwardBody
			if err := json.Unmarshal(raw, &body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
