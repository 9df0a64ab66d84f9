package envelope

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

// FuzzUnpack feeds arbitrary bytes to Unpack with the vector keys. Unpack must
// not panic, every error must wrap exactly one sentinel (the test resolvers
// only fail with keys.ErrNotFound), and a success must return metadata
// consistent with itself.
func FuzzUnpack(f *testing.F) {
	w := vectorWorld(f)
	var enc struct {
		Vectors []struct {
			JWE json.RawMessage `json:"jwe"`
		} `json:"vectors"`
	}
	readVectors(f, "didcomm/encrypted.json", &enc)
	for _, v := range enc.Vectors {
		f.Add([]byte(v.JWE))
	}
	var sig struct {
		Vectors []struct {
			JWS json.RawMessage `json:"jws"`
		} `json:"vectors"`
	}
	readVectors(f, "didcomm/signed.json", &sig)
	for _, v := range sig.Vectors {
		f.Add([]byte(v.JWS))
	}
	var pt struct {
		Messages []struct {
			Message json.RawMessage `json:"message"`
		} `json:"messages"`
	}
	readVectors(f, "didcomm/plaintext.json", &pt)
	for _, v := range pt.Messages {
		f.Add([]byte(v.Message))
	}
	var neg struct {
		Vectors []struct {
			Message    json.RawMessage `json:"message"`
			MessageRaw *string         `json:"message_raw"`
		} `json:"vectors"`
	}
	readVectors(f, "didcomm/negative.json", &neg)
	for _, v := range neg.Vectors {
		if v.MessageRaw != nil {
			f.Add([]byte(*v.MessageRaw))
		} else {
			f.Add([]byte(v.Message))
		}
	}
	// Fresh envelopes from the vector keys, compact (as Pack writes them).
	alice := w.secrets["did:example:alice#key-x25519-1"]
	bob := w.secrets["did:example:bob#key-x25519-1"].PublicKey
	msg := []byte(`{"id":"1","type":"t","from":"did:example:alice","body":{}}`)
	if jwe, err := PackAuthcrypt(msg, alice, []keys.PublicKey{bob}); err == nil {
		f.Add(jwe)
	}
	if jwe, err := Pack(msg, PackOptions{Sender: &alice, SignBy: ptr(w.secrets["did:example:alice#key-1"]), Recipients: []keys.PublicKey{bob}, ProtectSender: true}); err == nil {
		f.Add(jwe)
	}

	// The forms other stacks (Veramo) send: flattened JWS, alone and
	// nested, anoncrypt without apv, times as RFC 3339 strings.
	signer := w.secrets["did:example:alice#key-1"]
	if jws, err := Sign(msg, signer); err == nil {
		flat := flatten(f, jws, false, signer)
		f.Add(flat)
		f.Add(flatten(f, jws, true, signer))
		f.Add(packAnonNoAPV(f, flat, []keys.PublicKey{bob}, A256GCM))
	}
	f.Add(packAnonNoAPV(f, []byte(`{"id":"1","type":"t","from":"did:example:alice","created_time":"2026-12-06T09:55:05.123Z","body":{}}`), []keys.PublicKey{bob}, A256CBCHS512))

	opts := UnpackOptions{Keys: w.resolver, Secrets: w.secrets}
	f.Fuzz(func(t *testing.T, raw []byte) {
		plain, md, err := Unpack(context.Background(), raw, opts)
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %q wraps %d sentinels", err, n)
			}
			return
		}
		if !json.Valid(plain) {
			t.Fatalf("plaintext is not JSON: %q", plain)
		}
		if md.NonRepudiation != (md.SignFrom != "") || md.Authenticated != (md.SignFrom != "" || md.EncryptedFrom != "") ||
			md.Encrypted != (len(md.EncryptedTo) > 0) || md.AnonymousSender != (md.EncAlgAnon != "") {
			t.Fatalf("inconsistent metadata %+v", md)
		}
	})
}

// FuzzScanTopObject compares the envelope scanner with encoding/json: it must
// accept exactly the JSON objects json.Valid accepts and report the same
// members (last duplicate winning) with the same raw values.
func FuzzScanTopObject(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"a":1} `, `{"a":"\u00e9\n","b":[1,2.5e-3,{"c":null}],"a":true}`, `{"protected":"x","ciphertext":"y"}`,
		`{"a":-0.0E+1}`, `{"a":01}`, `{"a":"\x01"}`, `[1]`, `{"a":1,}`, `{"a" 1}`, `{"\u0070rotected":"x"}`, `{"a":"\ud800"}`,
		`{"abcdefgh":"0123456789abcdef\"0123456789\u00e9xyz\x1f"}`, `{"a":"0123456789abcdefghijklmn\x00pqrstu"}`, `{"a":"0123456\x80\xff\x7f\x20\x21\x23\x5b\x5dabcdefgh"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := map[string]json.RawMessage{}
		err := scanTopObject(data, func(name []byte, _ bool, value []byte) {
			var n string
			if e := json.Unmarshal(name, &n); e != nil {
				t.Fatalf("scanner passed an invalid name %q", name)
			}
			got[n] = value
		})
		var want map[string]json.RawMessage
		werr := json.Unmarshal(data, &want)
		isObject := werr == nil && want != nil
		if (err == nil) != isObject {
			t.Fatalf("scanner err %v, encoding/json err %v (object %v) for %q", err, werr, isObject, data)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("members %v, want %v", got, want)
		}
		for k, v := range want {
			if string(got[k]) != string(v) {
				t.Fatalf("member %q = %s, want %s", k, got[k], v)
			}
		}
	})
}
