package envelope

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

// checkFastJSON decodes b with each fast decoder and with json.Unmarshal and
// fails when a fast decoder claims success with a different result. It
// returns which fast decoders took b.
func checkFastJSON(t *testing.T, b []byte) (plain, hdr, rcpt bool) {
	t.Helper()
	same := func(name string, fast func() bool, got, want any) bool {
		t.Helper()
		ok := fast()
		if !ok {
			return false
		}
		if err := json.Unmarshal(b, want); err != nil {
			t.Fatalf("%s: fast path accepted %q, json.Unmarshal: %v", name, b, err)
		}
		if !reflect.DeepEqual(compared(got), compared(want)) {
			t.Fatalf("%s: %q:\nfast         %s\njson.Unmarshal %s", name, b, dump(got), dump(want))
		}
		return true
	}
	var p, p2 plainJSON
	plain = same("plaintext", func() bool { return fastPlain(b, &p) }, &p, &p2)
	var h, h2 jweHeader
	hdr = same("header", func() bool { return fastJWEHeader(b, &h) }, &h, &h2)
	var r, r2 []jweRecipient
	rcpt = same("recipients", func() bool { return fastRecipients(b, &r) }, &r, &r2)

	// The decode functions, fast or not, are json.Unmarshal.
	for _, c := range []struct {
		name      string
		dec       func() error
		got, want any
	}{
		{"decodePlain", func() error { p = plainJSON{}; return decodePlain(b, &p) }, &p, &plainJSON{}},
		{"decodeJWEHeader", func() error { h = jweHeader{}; return decodeJWEHeader(b, &h) }, &h, &jweHeader{}},
		{"decodeJWEHeaderIn", func() error {
			h = jweHeader{}
			var st jweHeaderStore
			return decodeJWEHeaderIn(b, string(b), &h, &st)
		}, &h, &jweHeader{}},
		{"decodeRecipients", func() error { r = nil; return decodeRecipients(b, &r) }, &r, new([]jweRecipient)},
	} {
		err, werr := c.dec(), json.Unmarshal(b, c.want)
		if fmt.Sprint(err) != fmt.Sprint(werr) {
			t.Fatalf("%s(%q): error %v, json.Unmarshal %v", c.name, b, err, werr)
		}
		if err == nil && !reflect.DeepEqual(compared(c.got), compared(c.want)) {
			t.Fatalf("%s(%q):\n%s\njson.Unmarshal %s", c.name, b, dump(c.got), dump(c.want))
		}
	}
	// The recipients' kids and encrypted keys, read without decoding, are
	// those of the decoded recipients, errors included.
	if kids, eks, err, ok := fastRecipientKids(b); ok {
		wkids, weks, werr := recipientKidsSlow(b)
		if fmt.Sprint(err) != fmt.Sprint(werr) || !reflect.DeepEqual(kids, wkids) || !reflect.DeepEqual(eks, weks) {
			t.Fatalf("fastRecipientKids(%q) = %q, %q, %v; recipientKidsSlow %q, %q, %v", b, kids, eks, err, wkids, weks, werr)
		}
	}
	return plain, hdr, rcpt
}

// plainCompared is a plainJSON as the plaintext check reads it: the fast
// decoder checks the attachments instead of decoding them, so they are
// compared by the outcome of that check.
type plainCompared struct {
	plainJSON
	Attachments string
}

// compared returns v, or for a *plainJSON its plainCompared.
func compared(v any) any {
	p, ok := v.(*plainJSON)
	if !ok {
		return v
	}
	c := plainCompared{plainJSON: *p, Attachments: fmt.Sprint(p.checkAttachments())}
	c.plainJSON.Attachments, c.attScanned, c.attErr = nil, false, nil
	return c
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return fmt.Sprintf("%s %#v", b, v)
}

var fastJSONCases = []string{
	// Plaintext messages.
	`{"id":"1","type":"t","from":"did:example:alice","to":["did:example:bob"],"created_time":1700000000,"body":{"a":[1,2,{"b":null}]}}`,
	` { "id" : 5 , "type" : null , "body" : "x" , "typ" : "application/didcomm-plain+json" } `,
	`{"id":"1","type":"t","body":{},"from":"a","from":"b","from":null}`,
	`{"id":"1","type":"t","body":{},"from":null,"from":"b"}`,
	`{"id":"1","type":"t","body":{},"From":"upper"}`,
	`{"id":"1","type":"t","body":{},"from":"a","FROM":"b"}`,
	`{"id":"1","type":"t","body":{},"fr\u006fm":"escaped name"}`,
	`{"id":"1","type":"t","body":{},"from":"esc\u0061ped \"value\" \/"}`,
	"{\"id\":\"1\",\"type\":\"t\",\"body\":{},\"from\":\"invalid utf-8 \xff\xfe\"}",
	"{\"id\":\"1\",\"type\":\"t\",\"body\":{},\"fr\xffom\":\"invalid name\"}",
	"[{\"header\":{\"kid\":\"\xc3\"}}]",
	`{"id":"1","type":"t","body":{},"from":"valid ü \u2028"}`,
	`{"id":"1","type":"t","body":{},"from":5}`,
	`{"id":"1","type":"t","body":{},"to":"not an array"}`,
	`{"id":"1","type":"t","body":{},"to":["a",null,"b"],"to":["c"]}`,
	`{"id":"1","type":"t","body":{},"to":[]}`,
	`{"id":"1","type":"t","body":{},"to":null}`,
	`{"id":"1","type":"t","body":{},"created_time":-1}`,
	`{"id":"1","type":"t","body":{},"created_time":1.5}`,
	`{"id":"1","type":"t","body":{},"expires_time":18446744073709551616}`,
	`{"id":"1","type":"t","body":{},"created_time":null,"expires_time":"1"}`,
	`{"id":"1","type":"t","body":{},"attachments":[{"id":"a","data":{"base64":"AA"}},{"data":{"links":["x"],"hash":"h"}}]}`,
	`{"id":"1","type":"t","body":{},"attachments":[{"data":{"json":{"x":1}},"byte_count":"7"}]}`,
	`{"id":"1","type":"t","body":{},"attachments":{}}`,
	`{"id":"1","type":"t","body":{},"from_prior":"a.b.c","thid":"x","pthid":null}`,
	`{"id":"1","type":"t","body":{},"\u212Aty":"kelvin","ſkid":"long s","unknown":[[[]]]}`,
	`{"id":"1","type":"t","body":{},"x":{"from":"nested"}}`,
	`{}`, `[]`, `null`, `"s"`, `{"id":1,}`, `{"id":"1"} x`, `{"id":"1"`, ``, `{"a\u0000":1}`,
	// Protected headers.
	`{"typ":"application/didcomm-encrypted+json","alg":"ECDH-1PU+A256KW","enc":"A256CBC-HS512","skid":"did:example:alice#key-x25519-1","apu":"ZGlk","apv":"abc","epk":{"kty":"OKP","crv":"X25519","x":"AAAA"}}`,
	`{"alg":"ECDH-ES+A256KW","enc":"XC20P","apv":"abc","epk":{"kty":"EC","crv":"P-256","x":"AA","y":"BB","kid":"k","d":"secret"}}`,
	`{"alg":"a","alg":null,"enc":"e","enc":"f"}`,
	`{"alg":5}`, `{"enc":["x"]}`, `{"Alg":"upper"}`, `{"alg":"x","ALG":"y"}`,
	`{"epk":{"kty":"OKP"},"epk":{"crv":"X25519"}}`,
	`{"epk":{"kty":"OKP"},"epk":null,"epk":{"x":"A"}}`,
	`{"epk":"string"}`, `{"epk":[]}`, `{"epk":{"kty":1}}`, `{"epk":{"KTY":"OKP"}}`, `{"epk":{"kty":"OKP","x":"a\/b"}}`,
	`{"crit":["x"],"zip":"DEF"}`, `{"crit":null,"zip":null}`, `{"crit":[],"crit":{"a":1}}`,
	`{"skid":null,"apu":"a","apu":"\u0061","apv":null}`,
	// Recipients.
	`[{"header":{"kid":"did:example:bob#key-1"},"encrypted_key":"AAAA"}]`,
	` [ {"header":{"kid":"a"},"encrypted_key":"b"} , {"header":{"kid":"c","x":1},"encrypted_key":"d","other":{}} ] `,
	`[null,{"header":null},{"header":{"kid":null}},{"encrypted_key":null}]`,
	`[{"header":{"kid":"a"},"header":{"other":1}}]`,
	`[{"header":{"kid":"a"},"header":null,"header":{"other":1}}]`,
	`[{"header":"x"}]`, `[{"header":{"kid":5}}]`, `[{"Header":{"kid":"a"}}]`, `[{"header":{"KID":"a"}}]`,
	`null`, ` null `, `n`, `nul`, `[1]`, `["x"]`, `[[]]`, `[{}]`, `[{"encrypted_key":"a\u0062"}]`, `{"header":{}}`, `[`, `[1,]`, `[] []`,
}

func TestFastJSONCases(t *testing.T) {
	for _, c := range fastJSONCases {
		checkFastJSON(t, []byte(c))
	}
	// Recipient lists for fastRecipientKids: every error and the merging
	// of repeated members.
	for _, c := range []string{
		`[]`, `null`, `[null]`, `[{}]`, `[{"header":null,"encrypted_key":"AA"}]`,
		`[{"header":{},"encrypted_key":"AA"}]`, `[{"header":{"kid":""},"encrypted_key":"AA"}]`,
		`[{"header":{"kid":"a"}}]`, `[{"header":{"kid":"a"},"encrypted_key":null}]`,
		`[{"header":{"kid":"a"},"encrypted_key":"AA"}]`,
		`[{"header":{"kid":"a"},"encrypted_key":"AA"},{"header":{"kid":"b"},"encrypted_key":"BB"},{"header":{"kid":"c"},"encrypted_key":""}]`,
		`[{"header":{"kid":"a"},"header":{"x":1},"encrypted_key":"AA"}]`,
		`[{"header":{"kid":"a"},"header":null,"encrypted_key":"AA"}]`,
		`[{"header":{"kid":"a"},"header":{"kid":null},"encrypted_key":"AA"}]`,
		`[{"encrypted_key":"AA","header":null,"header":{"kid":"a"}}]`,
		`[{"header":{"kid":"a\u0062"},"encrypted_key":"AA"}]`, `[{"header":{"kid":1},"encrypted_key":"AA"}]`,
		`[{"header":{"Kid":"a"},"encrypted_key":"AA"}]`, `[{"header":[],"encrypted_key":"AA"}]`, `[1]`, `{}`,
		`[{"header":{"kid":"a"},"encrypted_key":"AA"}` + strings.Repeat(`,{"header":{"kid":"a"},"encrypted_key":"AA"}`, MaxRecipients) + `]`,
	} {
		checkFastJSON(t, []byte(c))
	}
	// Depth limits agree with encoding/json.
	for _, d := range []int{9998, 9999, 10000, 10001} {
		v := strings.Repeat("[", d) + strings.Repeat("]", d)
		checkFastJSON(t, []byte(`{"x":`+v+`}`))
		checkFastJSON(t, []byte(`[`+v+`]`))
	}
}

// TestFastJSONTaken checks that the fast paths are taken for what Pack
// writes, where they matter.
func TestFastJSONTaken(t *testing.T) {
	alice, err := keys.Generate(keys.X25519, "did:example:alice#key-x25519-1")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := keys.Generate(keys.X25519, "did:example:bob#key-x25519-1")
	if err != nil {
		t.Fatal(err)
	}
	plain := message("did:example:alice", `{"content":"hello"}`)
	if p, _, _ := checkFastJSON(t, plain); !p {
		t.Error("fast path not taken for a plaintext message")
	}
	for _, enc := range []Enc{A256CBCHS512, XC20P} {
		var jwe []byte
		var err error
		if enc == A256CBCHS512 {
			jwe, err = PackAuthcrypt(plain, alice, []keys.PublicKey{bob.PublicKey})
		} else {
			jwe, err = PackAnoncrypt(plain, []keys.PublicKey{bob.PublicKey}, enc)
		}
		if err != nil {
			t.Fatal(err)
		}
		env, err := scanEnvelope(jwe)
		if err != nil {
			t.Fatal(err)
		}
		var prot string
		if err := json.Unmarshal(env.Protected, &prot); err != nil {
			t.Fatal(err)
		}
		hdr, err := decodeB64String(prot, "protected")
		if err != nil {
			t.Fatal(err)
		}
		if _, h, _ := checkFastJSON(t, hdr); !h {
			t.Errorf("%s: fast path not taken for the protected header %s", enc, hdr)
		}
		if _, _, r := checkFastJSON(t, env.Recipients); !r {
			t.Errorf("%s: fast path not taken for the recipients %s", enc, env.Recipients)
		}
	}
}

func FuzzFastJSON(f *testing.F) {
	for _, c := range fastJSONCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFastJSON(t, b)
	})
}
