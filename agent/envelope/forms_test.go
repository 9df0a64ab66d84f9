package envelope

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

// Tests for the forms other DIDComm v2 stacks (Veramo) send: the Flattened
// JSON serialization of a JWS, anoncrypt without apv, and created_time and
// expires_time as RFC 3339 strings.

// flatten turns a General JSON JWS (as Sign writes it) into the Flattened JSON
// serialization. With withHeader false the unprotected header is dropped and
// the kid moved into the protected header (re-signing with signer), which is
// what Veramo writes: {"protected","payload","signature"}.
func flatten(t testing.TB, jws []byte, withHeader bool, signer keys.PrivateKey) []byte {
	t.Helper()
	var g struct {
		Payload    string `json:"payload"`
		Signatures []struct {
			Protected string          `json:"protected"`
			Signature string          `json:"signature"`
			Header    json.RawMessage `json:"header"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(jws, &g); err != nil || len(g.Signatures) != 1 {
		t.Fatalf("not a one-signature general JWS: %v", err)
	}
	s := g.Signatures[0]
	out := map[string]any{"payload": g.Payload, "protected": s.Protected, "signature": s.Signature}
	if withHeader {
		out["header"] = s.Header
	} else {
		var h map[string]any
		json.Unmarshal(mustB64(t, s.Protected), &h)
		h["kid"] = signer.ID
		hb, _ := json.Marshal(h)
		prot := base64.RawURLEncoding.EncodeToString(hb)
		sig, err := signer.Sign([]byte(prot + "." + g.Payload))
		if err != nil {
			t.Fatal(err)
		}
		out["protected"], out["signature"] = prot, base64.RawURLEncoding.EncodeToString(sig)
	}
	b, _ := json.Marshal(out)
	return b
}

func TestFlattenedJWS(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	msg := message(f.alice.did, `{"content":"flat"}`)
	for _, c := range signCurves {
		signer := f.alice.sign[c]
		general, err := Sign(msg, signer)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			jws  []byte
		}{
			{"kid in header", flatten(t, general, true, signer)},
			{"kid in protected", flatten(t, general, false, signer)},
		} {
			t.Run(string(c)+"/"+tc.name, func(t *testing.T) {
				if strings.Contains(string(tc.jws), "signatures") {
					t.Fatalf("not flattened: %s", tc.jws)
				}
				pt, md, err := Unpack(ctx, tc.jws, f.bobOpts())
				if err != nil {
					t.Fatal(err)
				}
				if string(pt) != string(msg) || md.SignFrom != signer.ID || md.SignAlg != c.JWSAlg() || !md.NonRepudiation || string(md.SignedMessage) != string(tc.jws) {
					t.Fatalf("plaintext %s metadata %+v", pt, md)
				}
				// Nested: anoncrypt(flattened) and authcrypt(flattened).
				bob := f.bob.kaKeys(keys.X25519)[:1]
				anon, err := PackAnoncrypt(tc.jws, bob, A256CBCHS512)
				if err != nil {
					t.Fatal(err)
				}
				auth, err := PackAuthcrypt(tc.jws, f.alice.ka[keys.X25519], bob)
				if err != nil {
					t.Fatal(err)
				}
				for _, jwe := range [][]byte{anon, auth} {
					pt, md, err := Unpack(ctx, jwe, f.bobOpts())
					if err != nil {
						t.Fatal(err)
					}
					if string(pt) != string(msg) || md.SignFrom != signer.ID || !md.Encrypted {
						t.Fatalf("nested: plaintext %s metadata %+v", pt, md)
					}
				}
				// A flipped signature bit is still caught.
				bad := mutateJSON(t, tc.jws, func(m map[string]any) { m["signature"] = flipB64(t, m["signature"].(string), 0) })
				_, _, err = Unpack(ctx, bad, f.bobOpts())
				expectErr(t, err, ErrBadSignature)
			})
		}
	}
}

func TestFlattenedJWSRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	signer := f.alice.sign[keys.Ed25519]
	general, _ := Sign(message(f.alice.did, `{}`), signer)
	flat := flatten(t, general, true, signer)
	otherSigner := f.mallory.sign[keys.Ed25519]
	for _, tc := range []struct {
		what string
		msg  []byte
		want error
	}{
		{"general with a top-level signature", mutateJSON(t, general, func(m map[string]any) { m["signature"] = "AAAA" }), ErrMalformed},
		{"general with a top-level protected", mutateJSON(t, general, func(m map[string]any) { m["protected"] = "e30" }), ErrMalformed},
		{"general with a top-level header", mutateJSON(t, general, func(m map[string]any) { m["header"] = map[string]any{} }), ErrMalformed},
		{"flattened with signatures", mutateJSON(t, flat, func(m map[string]any) { m["signatures"] = []any{} }), ErrMalformed},
		{"flattened without protected", mutateJSON(t, flat, func(m map[string]any) { delete(m, "protected") }), ErrMalformed},
		{"flattened protected not a string", mutateJSON(t, flat, func(m map[string]any) { m["protected"] = 1 }), ErrMalformed},
		{"flattened signature not a string", mutateJSON(t, flat, func(m map[string]any) { m["signature"] = []any{} }), ErrMalformed},
		{"flattened header not an object", mutateJSON(t, flat, func(m map[string]any) { m["header"] = "x" }), ErrMalformed},
		{"flattened without kid", mutateJSON(t, flat, func(m map[string]any) { delete(m, "header") }), ErrMalformed},
		{"flattened header kid differs from protected", mutateJSON(t, flatten(t, general, false, signer), func(m map[string]any) {
			m["header"] = map[string]any{"kid": otherSigner.ID}
		}), ErrMalformed},
		{"flattened signed by another key", flatten(t, general, false, otherSigner), ErrSenderMismatch},
		{"flattened with a payload that is not the signed one", mutateJSON(t, flat, func(m map[string]any) {
			m["payload"] = base64.RawURLEncoding.EncodeToString(message(f.alice.did, `{"x":1}`))
		}), ErrBadSignature},
		{"flattened two times nested", mustPack(t, flat, signer), ErrMalformed},
	} {
		t.Run(tc.what, func(t *testing.T) {
			_, _, err := Unpack(ctx, tc.msg, f.bobOpts())
			expectErr(t, err, tc.want)
		})
	}
}

// mustPack signs a JWS again (a JWS inside a JWS, which DIDComm forbids).
func mustPack(t testing.TB, jws []byte, signer keys.PrivateKey) []byte {
	t.Helper()
	out, err := Sign(jws, signer)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// packAnonNoAPV writes an anoncrypt JWE as Veramo does: no apv in the
// protected header and an empty PartyVInfo in the KDF.
func packAnonNoAPV(t testing.TB, plaintext []byte, recipients []keys.PublicKey, enc Enc) []byte {
	t.Helper()
	eph, epk, err := newEphemeral(recipients[0].Curve, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer eph.destroy()
	h := []byte(`{"typ":"` + TypEncrypted + `","alg":"` + AlgAnoncrypt + `","enc":"` + string(enc) + `","epk":`)
	if h, err = appendEPK(h, epk); err != nil {
		t.Fatal(err)
	}
	h = append(h, '}')
	out, err := seal(&sealParams{
		alg: AlgAnoncrypt, kekLen: 32, enc: enc,
		protected: appendB64(nil, h), eph: eph, recipients: recipients,
	}, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAnoncryptWithoutAPV(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	msg := message(f.alice.did, `{"content":"no apv"}`)
	for _, c := range kaCurves {
		for _, enc := range []Enc{A256CBCHS512, A256GCM, XC20P} {
			t.Run(string(c)+"/"+string(enc), func(t *testing.T) {
				rcpts := f.bob.kaKeys(c)
				jwe := packAnonNoAPV(t, msg, rcpts, enc)
				if strings.Contains(string(mustB64(t, protectedOf(t, jwe))), "apv") {
					t.Fatal("the test JWE has an apv")
				}
				pt, md, err := Unpack(ctx, jwe, f.bobOpts())
				if err != nil {
					t.Fatal(err)
				}
				if string(pt) != string(msg) || !md.AnonymousSender || md.EncAlgAnon != string(enc)+"+"+AlgAnoncrypt || len(md.EncryptedTo) != len(rcpts) {
					t.Fatalf("plaintext %s metadata %+v", pt, md)
				}
				// Only the last recipient's key held: found and unwrapped.
				last := rcpts[len(rcpts)-1].ID
				if _, _, err := Unpack(ctx, jwe, UnpackOptions{Keys: f.r, Secrets: f.bob.secrets.only(last)}); err != nil {
					t.Fatalf("with only %s: %v", last, err)
				}
				// A wrong apv that is present is refused, as is a right one
				// added afterwards (the sender's KDF had none).
				wrong := mutateProtected(t, jwe, func(h map[string]any) { h["apv"] = base64.RawURLEncoding.EncodeToString([]byte("not the kids")) })
				_, _, err = Unpack(ctx, wrong, f.bobOpts())
				expectErr(t, err, ErrMalformed)
				kids := make([]string, len(rcpts))
				for i, r := range rcpts {
					kids[i] = r.ID
				}
				apv, _ := apvOf(kids)
				added := mutateProtected(t, jwe, func(h map[string]any) { h["apv"] = base64.RawURLEncoding.EncodeToString(apv) })
				_, _, err = Unpack(ctx, added, f.bobOpts())
				expectErr(t, err, ErrDecrypt)
			})
		}
	}
}

func TestAPVStillRequired(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	msg := message(f.alice.did, `{}`)
	bob := f.bob.kaKeys(keys.X25519)
	auth, _ := PackAuthcrypt(msg, f.alice.ka[keys.X25519], bob)
	anon, _ := PackAnoncrypt(msg, bob, A256GCM)
	noAPV := func(jwe []byte) []byte {
		return mutateProtected(t, jwe, func(h map[string]any) { delete(h, "apv") })
	}
	wrongAPV := func(jwe []byte) []byte {
		return mutateProtected(t, jwe, func(h map[string]any) { h["apv"] = base64.RawURLEncoding.EncodeToString(make([]byte, 32)) })
	}
	for _, tc := range []struct {
		what string
		msg  []byte
		want error
		text string
	}{
		{"authcrypt without apv", noAPV(auth), ErrMalformed, "lacks apv"},
		{"authcrypt with a wrong apv", wrongAPV(auth), ErrMalformed, "apv does not match"},
		{"anoncrypt with a wrong apv", wrongAPV(anon), ErrMalformed, "apv does not match"},
		{"anoncrypt whose apv was removed", noAPV(anon), ErrMalformed, "apv was removed"},
		{"anoncrypt apv not base64url", mutateProtected(t, anon, func(h map[string]any) { h["apv"] = "!!" }), ErrMalformed, "apv"},
		{"authcrypt A256GCM (Veramo) without apv", noAPV(mutateProtected(t, auth, func(h map[string]any) { h["enc"] = "A256GCM" })), ErrUnsupported, "A256GCM"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			_, _, err := Unpack(ctx, tc.msg, f.bobOpts())
			expectErr(t, err, tc.want)
			if !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error %q does not say %q", err, tc.text)
			}
		})
	}
}

func protectedOf(t testing.TB, jwe []byte) string {
	t.Helper()
	var m struct{ Protected string }
	if err := json.Unmarshal(jwe, &m); err != nil {
		t.Fatal(err)
	}
	return m.Protected
}

func TestPlaintextTimeStrings(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		times string
		want  string // "" accepted, else in the error
	}{
		{`"created_time":"2026-12-06T09:55:05.123Z","expires_time":"2026-12-06T10:55:05+01:00"`, ""},
		{`"created_time":1700000000,"expires_time":"2026-12-06T10:55:05Z"`, ""},
		{`"created_time":null`, ""},
		{`"created_time":"yesterday"`, "created_time is a string but not an RFC 3339 date-time"},
		{`"expires_time":"2026-12-06"`, "expires_time is a string but not an RFC 3339"},
		{`"created_time":"1969-12-31T23:59:59Z"`, "created_time is a string but not an RFC 3339 date-time after 1970"},
		{`"created_time":-1`, "created_time is neither a non-negative integer"},
		{`"expires_time":1.5`, "expires_time is neither"},
		{`"created_time":{}`, "created_time is neither"},
	} {
		msg := []byte(`{"id":"1","type":"t","body":{},` + tc.times + `}`)
		pt, _, err := Unpack(ctx, msg, UnpackOptions{})
		switch {
		case tc.want == "" && (err != nil || string(pt) != string(msg)):
			t.Errorf("%s: %v", tc.times, err)
		case tc.want != "":
			expectErr(t, err, ErrMalformed)
			if err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: error %q does not say %q", tc.times, err, tc.want)
			}
		}
	}
}
