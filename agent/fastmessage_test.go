package agent

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// forwardPlaintext returns a Routing 2.0 forward whose attachment carries a
// stand-in encrypted message of size bytes (a JWE object in data.json), as
// agent/envelope's benchmarks build it.
func forwardPlaintext(size int) []byte {
	next := "did:peer:2.Ez6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc.Vz6MkqRYqQiSgvZQdnBytw86Qbs2ZWUkGv22od935YF4s8M7V"
	inner := `{"protected":"eyJ0eXAiOiJhcHBsaWNhdGlvbi9kaWRjb21tLWVuY3J5cHRlZCtqc29uIiwiYWxnIjoiRUNESC0xUFUrQTI1NktXIn0","recipients":[{"header":{"kid":"` +
		next + `#key-1"},"encrypted_key":"AAAA"}],"iv":"f1","ciphertext":"` + strings.Repeat("A", max(size-260, 0)) + `","tag":"AAAA"}`
	return []byte(`{"id":"6a8f7bd1-7b1c-4a1e-9f4e-2f1d5c8e9a01","type":"https://didcomm.org/routing/2.0/forward","body":{"next":"` + next +
		`"},"attachments":[{"id":"0b6f3e2a-8c4d-4f5e-a1b2-c3d4e5f6a7b8","media_type":"application/didcomm-encrypted+json","data":{"json":` + inner + `}}]}`)
}

const pingPlaintext = `{"id":"1f6f2c1e-6a4e-4c1b-9f7e-0a5c2b9d8e11","typ":"application/didcomm-plain+json","type":"https://didcomm.org/trust-ping/2.0/ping","from":"did:peer:2.Ez6LSabc","to":["did:peer:2.Ez6LSdef"],"created_time":1796550905,"expires_time":1796554505,"return_route":"all","body":{"response_requested":true}}`

// messageSeeds are plaintexts that take the fast path, and some that do not.
func messageSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{
		forwardPlaintext(2048),
		forwardPlaintext(0),
		[]byte(pingPlaintext),
		[]byte(`{"id":"1","type":"t","body":{},"created_time":"2026-12-06T09:55:05.123Z","expires_time":"2026-12-06T10:55:05+01:00"}`),
		[]byte(`{"id":"1","type":"t","created_time":"yesterday"}`),
		[]byte(`{"id":"1","type":"t","created_time":"1969-12-31T23:59:59Z"}`),
		[]byte(`{"id":"1","type":"t","created_time":"2026-12-06T09:55:05Z","expires_time":1.5}`),
		[]byte(`{"id":"1","type":"t","created_time":null,"expires_time":"x"}`),
		[]byte(`{"id":"1","type":"t","body":null,"to":[],"ack":null,"please_ack":[null,"a"],"accept-lang":["en"],"lang":"en","from_prior":"eyJ","pthid":"p","thid":"t"}`),
		[]byte(`{"id":"a\u00e9\"b","type":"t\xff","ID":"x","id2":1,"body":[1, 2 ,3 ]}`),
		[]byte(`{"id":"1","id":"2"}`),
		[]byte(`{"to":["a"],"to":[null]}`),
		[]byte(`{"attachments":[null,{},{"data":null},{"data":{"jws":null,"hash":"h","links":["l",null],"base64":"QQ","json":{"a" : 1}},"lastmod_time":5,"byte_count":-1,"description":"d","filename":"f","format":"x"}]}`),
		[]byte(`{"attachments":[{"data":{"json":1},"data":{"base64":"QQ"}}]}`),
		[]byte(`{"attachments":[{"byte_count":1e3}]}`),
		[]byte(`{"created_time":9223372036854775808}`),
		[]byte(`null`),
		[]byte(` {"id":"1"} `),
		[]byte(`{"id":1}`),
	}
	raw, err := os.ReadFile("envelope/testdata/didcomm/plaintext.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["type"]; ok {
				if _, ok := v["id"]; ok {
					b, err := json.Marshal(v)
					if err != nil {
						t.Fatal(err)
					}
					seeds = append(seeds, b)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	return seeds
}

// checkParseMessage requires ParseMessage to give what the encoding/json
// path gives: the same message and the same error, and a message that does
// not share memory with its input.
func checkParseMessage(t *testing.T, data []byte) {
	want, wantErr := parseMessageJSON(data)
	in := bytes.Clone(data)
	got, gotErr := ParseMessage(in)
	for i := range in {
		in[i] = 0
	}
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%q: error %v, with encoding/json %v", data, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\nfast %#v\njson %#v", data, got, want)
	}
}

func TestParseMessageFastPath(t *testing.T) {
	for _, s := range messageSeeds(t) {
		checkParseMessage(t, s)
	}
	// The usual messages are decoded by the fast path.
	for _, s := range [][]byte{forwardPlaintext(2048), []byte(pingPlaintext)} {
		var m Message
		if ok, err := fastParseMessage(s, &m); !ok || err != nil {
			t.Fatalf("fast path refused %s: %v", s, err)
		}
		if len(m.Attachments) > 0 && len(m.Attachments[0].Data.JSON) < 2048 {
			t.Fatalf("attachment lost: %+v", m.Attachments)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range messageSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(checkParseMessage)
}

// BenchmarkParseMessageForward: ParseMessage of a forward whose attachment is
// a 2 KiB encrypted message, as the router does for every forward.
func BenchmarkParseMessageForward(b *testing.B) {
	plain := forwardPlaintext(2048)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMessage(plain); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseMessageForwardJSON: the same with encoding/json alone, what
// ParseMessage did before its fast path.
func BenchmarkParseMessageForwardJSON(b *testing.B) {
	plain := forwardPlaintext(2048)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseMessageJSON(plain); err != nil {
			b.Fatal(err)
		}
	}
}
