package envelope

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

type expectedMetadata struct {
	Encrypted       bool            `json:"encrypted"`
	Authenticated   bool            `json:"authenticated"`
	NonRepudiation  bool            `json:"non_repudiation"`
	AnonymousSender bool            `json:"anonymous_sender"`
	EncryptedFrom   string          `json:"encrypted_from"`
	EncryptedTo     []string        `json:"encrypted_to"`
	EncAlgAuth      string          `json:"enc_alg_auth"`
	EncAlgAnon      string          `json:"enc_alg_anon"`
	SignFrom        string          `json:"sign_from"`
	SignAlg         string          `json:"sign_alg"`
	SignedMessage   json.RawMessage `json:"signed_message"`
}

func checkMetadata(t *testing.T, got Metadata, want expectedMetadata) {
	t.Helper()
	g := expectedMetadata{
		Encrypted: got.Encrypted, Authenticated: got.Authenticated,
		NonRepudiation: got.NonRepudiation, AnonymousSender: got.AnonymousSender,
		EncryptedFrom: got.EncryptedFrom, EncryptedTo: got.EncryptedTo,
		EncAlgAuth: got.EncAlgAuth, EncAlgAnon: got.EncAlgAnon,
		SignFrom: got.SignFrom, SignAlg: got.SignAlg,
	}
	w := want
	w.SignedMessage = nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("metadata\n got %+v\nwant %+v", g, w)
	}
	switch {
	case want.SignedMessage == nil && got.SignedMessage != nil:
		t.Errorf("SignedMessage = %s, want none", got.SignedMessage)
	case want.SignedMessage != nil && !jsonEqual(t, got.SignedMessage, want.SignedMessage):
		t.Errorf("SignedMessage = %s\nwant %s", got.SignedMessage, want.SignedMessage)
	}
	if got.ReWrappedInForward || got.FromPrior != nil || got.FromPriorIssuerKid != "" {
		t.Errorf("unexpected forward/from_prior metadata: %+v", got)
	}
}

// TestEncryptedVectors unpacks every JWE of the spec and the reference
// libraries once per listed recipient, holding only that recipient's secret,
// and once with all secrets; both resolver flavours are used.
func TestEncryptedVectors(t *testing.T) {
	w := vectorWorld(t)
	var f struct {
		Vectors []struct {
			ID       string          `json:"id"`
			JWE      json.RawMessage `json:"jwe"`
			Expected struct {
				RecipientKids []string         `json:"recipient_kids"`
				Message       json.RawMessage  `json:"message"`
				Metadata      expectedMetadata `json:"metadata"`
			} `json:"expected"`
		} `json:"vectors"`
	}
	readVectors(t, "didcomm/encrypted.json", &f)
	if len(f.Vectors) != 9 {
		t.Fatalf("%d encrypted vectors, want 9", len(f.Vectors))
	}
	for _, v := range f.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			if len(v.Expected.RecipientKids) == 0 {
				t.Fatal("vector lists no recipients")
			}
			run := func(name string, opts UnpackOptions) {
				t.Helper()
				pt, md, err := Unpack(context.Background(), v.JWE, opts)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !jsonEqual(t, pt, v.Expected.Message) {
					t.Errorf("%s: plaintext %s\nwant %s", name, pt, v.Expected.Message)
				}
				checkMetadata(t, md, v.Expected.Metadata)
			}
			for _, kid := range v.Expected.RecipientKids {
				run(kid, UnpackOptions{Keys: w.resolver, Secrets: w.secrets.only(kid)})
			}
			run("all secrets, plain KeyResolver", UnpackOptions{Keys: plainResolver{w.resolver}, Secrets: w.secrets})
		})
	}
}

// TestSignedVectors verifies every JWS of the spec and the reference
// libraries, checks the payload and metadata, and that a flipped signature
// bit is caught.
func TestSignedVectors(t *testing.T) {
	w := vectorWorld(t)
	var f struct {
		Vectors []struct {
			ID       string          `json:"id"`
			JWS      json.RawMessage `json:"jws"`
			Expected struct {
				Message  json.RawMessage  `json:"message"`
				Metadata expectedMetadata `json:"metadata"`
			} `json:"expected"`
			Derived struct {
				ProtectedHeaders []json.RawMessage `json:"protected_headers"`
			} `json:"derived"`
		} `json:"vectors"`
	}
	readVectors(t, "didcomm/signed.json", &f)
	if len(f.Vectors) != 6 {
		t.Fatalf("%d signed vectors, want 6", len(f.Vectors))
	}
	for _, v := range f.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			pt, md, err := Unpack(context.Background(), v.JWS, UnpackOptions{Keys: w.resolver})
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, pt, v.Expected.Message) {
				t.Errorf("payload %s\nwant %s", pt, v.Expected.Message)
			}
			want := v.Expected.Metadata
			want.SignedMessage = v.JWS
			checkMetadata(t, md, want)
			if !bytes.Equal(md.SignedMessage, v.JWS) {
				t.Error("SignedMessage is not the input JWS")
			}

			bad := mutateJSON(t, v.JWS, func(m map[string]any) {
				s := m["signatures"].([]any)[0].(map[string]any)
				s["signature"] = flipB64(t, s["signature"].(string), 5)
			})
			_, _, err = Unpack(context.Background(), bad, UnpackOptions{Keys: w.resolver})
			expectErr(t, err, ErrBadSignature)

			// Our own Sign writes the protected header the vectors have.
			signer := w.secrets[md.SignFrom]
			ours, err := Sign(pt, signer)
			if err != nil {
				t.Fatal(err)
			}
			var o struct {
				Signatures []struct{ Protected string }
			}
			if err := json.Unmarshal(ours, &o); err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, mustB64(t, o.Signatures[0].Protected), v.Derived.ProtectedHeaders[0]) {
				t.Errorf("our protected header %s, vector has %s", mustB64(t, o.Signatures[0].Protected), v.Derived.ProtectedHeaders[0])
			}
			if signer.Curve == keys.Ed25519 && !jsonEqual(t, ours, v.JWS) {
				// EdDSA is deterministic, so signing the same payload must
				// reproduce the vector exactly.
				t.Errorf("Sign output differs from the vector:\n got %s\nwant %s", ours, v.JWS)
			}
		})
	}
}

// TestPlaintextVectors unpacks the plaintext messages (including the
// from_prior one) and checks that Unpack returns them unchanged.
func TestPlaintextVectors(t *testing.T) {
	w := vectorWorld(t)
	var f struct {
		Messages []struct {
			ID       string          `json:"id"`
			Message  json.RawMessage `json:"message"`
			Expected *struct {
				FromPriorIssuerKid string    `json:"from_prior_issuer_kid"`
				FromPrior          FromPrior `json:"from_prior"`
			} `json:"expected"`
		} `json:"messages"`
	}
	readVectors(t, "didcomm/plaintext.json", &f)
	if len(f.Messages) < 10 {
		t.Fatalf("only %d plaintext vectors", len(f.Messages))
	}
	for _, v := range f.Messages {
		t.Run(v.ID, func(t *testing.T) {
			pt, md, err := Unpack(context.Background(), v.Message, UnpackOptions{Keys: w.resolver})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pt, v.Message) {
				t.Errorf("plaintext changed: %s", pt)
			}
			want := Metadata{}
			if v.Expected != nil {
				want.FromPriorIssuerKid = v.Expected.FromPriorIssuerKid
				fp := v.Expected.FromPrior
				want.FromPrior = &fp
			}
			if !reflect.DeepEqual(md, want) {
				t.Errorf("metadata %+v, want %+v", md, want)
			}
		})
	}
}

// TestNegativeVectors checks that every negative vector is rejected with the
// sentinel error the router maps it by.
func TestNegativeVectors(t *testing.T) {
	w := vectorWorld(t)
	want := map[string]error{
		"anoncrypt-p256-epk-not-on-curve": ErrMalformed,
		"plaintext--wrong-typ":            ErrUnsupported,
	}
	var f struct {
		Vectors []struct {
			ID         string          `json:"id"`
			Message    json.RawMessage `json:"message"`
			MessageRaw *string         `json:"message_raw"`
		} `json:"vectors"`
	}
	readVectors(t, "didcomm/negative.json", &f)
	if len(f.Vectors) < 40 {
		t.Fatalf("only %d negative vectors", len(f.Vectors))
	}
	opts := UnpackOptions{Keys: w.resolver, Secrets: w.secrets}
	for _, v := range f.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			msg := []byte(v.Message)
			if v.MessageRaw != nil {
				msg = []byte(*v.MessageRaw)
			}
			if len(msg) == 0 {
				t.Fatal("vector has no message")
			}
			e, ok := want[v.ID]
			if !ok {
				e = ErrMalformed
			}
			_, _, err := Unpack(context.Background(), msg, opts)
			expectErr(t, err, e)
		})
	}
}

// TestEPKNotOnCurve strips the base64 padding from the negative vector's
// protected header (which alone makes it malformed) so that the point check
// itself is exercised.
func TestEPKNotOnCurve(t *testing.T) {
	w := vectorWorld(t)
	var f struct {
		Vectors []struct {
			ID      string          `json:"id"`
			Message json.RawMessage `json:"message"`
		} `json:"vectors"`
	}
	readVectors(t, "didcomm/negative.json", &f)
	for _, v := range f.Vectors {
		if v.ID != "anoncrypt-p256-epk-not-on-curve" {
			continue
		}
		msg := mutateJSON(t, v.Message, func(m map[string]any) {
			m["protected"] = strings.TrimRight(m["protected"].(string), "=")
		})
		_, _, err := Unpack(context.Background(), msg, UnpackOptions{Keys: w.resolver, Secrets: w.secrets})
		expectErr(t, err, ErrMalformed)
		if !strings.Contains(err.Error(), "epk") {
			t.Fatalf("rejected for another reason: %v", err)
		}
		return
	}
	t.Fatal("vector not found")
}

// TestECDH1PUAppendixB recomputes draft-madden-jose-ecdh-1pu-04 Appendix B
// (two recipients, X25519, ECDH-1PU+A128KW, A256CBC-HS512, tag in the KDF)
// with the ephemeral key, CEK and IV injected, and decrypts it for both
// recipients.
func TestECDH1PUAppendixB(t *testing.T) {
	var v struct {
		Alg          string              `json:"alg"`
		Enc          Enc                 `json:"enc"`
		Keys         map[string]keys.JWK `json:"keys"`
		ProtectedB64 string              `json:"protected_b64u"`
		ApuUTF8      string              `json:"apu_utf8"`
		ApvUTF8      string              `json:"apv_utf8"`
		CEK          string              `json:"cek_hex"`
		IV           string              `json:"iv_hex"`
		Plaintext    string              `json:"plaintext_utf8"`
		Ciphertext   string              `json:"ciphertext_b64u"`
		Tag          string              `json:"tag_b64u"`
		Recipients   map[string]struct {
			Kid string `json:"kid"`
		} `json:"per_recipient_unprotected_headers"`
		KeyAgreement map[string]struct {
			Ze           string `json:"Ze_hex"`
			Zs           string `json:"Zs_hex"`
			KEK          string `json:"derived_kek_hex"`
			EncryptedKey string `json:"encrypted_key_b64u"`
		} `json:"key_agreement"`
		JWE json.RawMessage `json:"jwe_json"`
	}
	readVectors(t, "ecdh-1pu/appendix-b.json", &v)
	priv := func(name string) keys.PrivateKey {
		k, err := v.Keys[name].PrivateKey(name)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	alice, bob, charlie := priv("alice_static"), priv("bob_static"), priv("charlie_static")
	bob.ID, charlie.ID = v.Recipients["bob"].Kid, v.Recipients["charlie"].Kid
	eph, epk, err := newEphemeral(keys.X25519, mustB64(t, v.Keys["alice_ephemeral"].D))
	if err != nil {
		t.Fatal(err)
	}
	if epk.JWK().X != v.Keys["alice_ephemeral"].X {
		t.Fatal("ephemeral public key does not match")
	}
	sender, err := staticAgreeKey(alice)
	if err != nil {
		t.Fatal(err)
	}
	p := &sealParams{
		alg: v.Alg, kekLen: 16, enc: v.Enc,
		protected: []byte(v.ProtectedB64),
		apu:       []byte(v.ApuUTF8), apv: []byte(v.ApvUTF8),
		eph: eph, sender: &sender,
		recipients: []keys.PublicKey{bob.PublicKey, charlie.PublicKey},
		cek:        mustHex(t, v.CEK), iv: mustHex(t, v.IV),
	}
	out, err := seal(p, []byte(v.Plaintext))
	if err != nil {
		t.Fatal(err)
	}
	var got, want struct {
		Recipients []struct {
			Header       struct{ Kid string }
			EncryptedKey string `json:"encrypted_key"`
		}
		Protected, IV, Ciphertext, Tag string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(v.JWE, &want); err != nil {
		t.Fatal(err)
	}
	if got.Ciphertext != v.Ciphertext || got.Tag != v.Tag {
		t.Errorf("ciphertext/tag\n got %s %s\nwant %s %s", got.Ciphertext, got.Tag, v.Ciphertext, v.Tag)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JWE\n got %+v\nwant %+v", got, want)
	}
	tag := mustB64(t, v.Tag)
	for name, r := range map[string]keys.PrivateKey{"bob": bob, "charlie": charlie} {
		ka := v.KeyAgreement[name]
		ze, err := eph.agree(r.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		zs, err := sender.agree(r.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ze, mustHex(t, ka.Ze)) || !bytes.Equal(zs, mustHex(t, ka.Zs)) {
			t.Errorf("%s: Ze/Zs differ", name)
		}
		kek := concatKDF(append(ze, zs...), v.Alg, []byte(v.ApuUTF8), []byte(v.ApvUTF8), true, tag, 16)
		if !bytes.Equal(kek, mustHex(t, ka.KEK)) {
			t.Errorf("%s: KEK %x, want %s", name, kek, ka.KEK)
		}

		// The receiving side: parse the published JWE and decrypt.
		var env rawEnvelope
		if err := json.Unmarshal(v.JWE, &env); err != nil {
			t.Fatal(err)
		}
		j, err := parseJWE(&env)
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		if name == "charlie" {
			i = 1
		}
		ours, err := staticAgreeKey(r)
		if err != nil {
			t.Fatal(err)
		}
		cek, err := j.unwrapCEK(i, ours, &alice.PublicKey, 16)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pt, err := j.decrypt(cek)
		if err != nil || string(pt) != v.Plaintext {
			t.Fatalf("%s: decrypted %q, %v", name, pt, err)
		}
		// The DIDComm apv rule does not hold for this non-DIDComm example.
		expectErr(t, j.checkAPV(), ErrMalformed)
	}
}

// TestECDH1PUAppendixA recomputes the Appendix A key agreement (P-256, direct
// mode, no tag in the KDF) from both sides.
func TestECDH1PUAppendixA(t *testing.T) {
	var v struct {
		Keys    map[string]keys.JWK `json:"keys"`
		ApuUTF8 string              `json:"apu_utf8"`
		ApvUTF8 string              `json:"apv_utf8"`
		KDF     struct {
			Ze         string `json:"Ze_hex"`
			Zs         string `json:"Zs_hex"`
			DerivedKey string `json:"derived_key_hex"`
		} `json:"kdf"`
		Protected struct {
			Enc string `json:"enc"`
		} `json:"protected_header"`
	}
	readVectors(t, "ecdh-1pu/appendix-a.json", &v)
	priv := func(name string) keys.PrivateKey {
		k, err := v.Keys[name].PrivateKey(name)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	alice, bob := priv("alice_static"), priv("bob_static")
	eph, epk, err := newEphemeral(keys.P256, mustB64(t, v.Keys["alice_ephemeral"].D))
	if err != nil {
		t.Fatal(err)
	}
	as, _ := staticAgreeKey(alice)
	bs, _ := staticAgreeKey(bob)
	agree := func(a agreeKey, p keys.PublicKey) []byte {
		z, err := a.agree(p)
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	ze, zs := agree(eph, bob.PublicKey), agree(as, bob.PublicKey)
	if !bytes.Equal(ze, mustHex(t, v.KDF.Ze)) || !bytes.Equal(zs, mustHex(t, v.KDF.Zs)) {
		t.Fatal("sender side Ze/Zs differ")
	}
	if !bytes.Equal(agree(bs, epk), ze) || !bytes.Equal(agree(bs, alice.PublicKey), zs) {
		t.Fatal("recipient side Ze/Zs differ")
	}
	// Direct key agreement: AlgorithmID is the enc value.
	key := concatKDF(append(ze, zs...), v.Protected.Enc, []byte(v.ApuUTF8), []byte(v.ApvUTF8), false, nil, 32)
	if !bytes.Equal(key, mustHex(t, v.KDF.DerivedKey)) {
		t.Fatalf("derived key %x, want %s", key, v.KDF.DerivedKey)
	}
}

// TestAESKeyWrapRFC3394 checks the key wrap against RFC 3394 §4.6 (256-bit
// KEK, 256-bit key data) and that a corrupted wrap is refused.
func TestAESKeyWrapRFC3394(t *testing.T) {
	kek := mustHex(t, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
	key := mustHex(t, "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
	want := mustHex(t, "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
	got, err := aesKeyWrap(kek, key)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("wrap = %X, %v", got, err)
	}
	back, err := aesKeyUnwrap(kek, want)
	if err != nil || !bytes.Equal(back, key) {
		t.Fatalf("unwrap = %X, %v", back, err)
	}
	for i := range want {
		bad := bytes.Clone(want)
		bad[i] ^= 0x80
		if _, err := aesKeyUnwrap(kek, bad); err == nil {
			t.Fatalf("corrupted byte %d accepted", i)
		}
	}
}
