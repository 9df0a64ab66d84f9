package keys

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

var allCurves = []Curve{Ed25519, X25519, P256, P384, P521, Secp256k1}

func TestGenerateAndRebuild(t *testing.T) {
	for _, c := range allCurves {
		t.Run(string(c), func(t *testing.T) {
			k, err := Generate(c, "did:example:a#k1")
			if err != nil {
				t.Fatal(err)
			}
			again, err := FromPrivate(c, k.ID, k.D)
			if err != nil {
				t.Fatal(err)
			}
			if !again.PublicKey.Equal(k.PublicKey) {
				t.Fatal("public key differs after rebuilding from the private key")
			}
			if _, err := NewPublic(c, k.ID, k.Raw); err != nil {
				t.Fatalf("own public key rejected: %v", err)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	msg := []byte("the message")
	for _, c := range allCurves {
		if !c.IsSigning() {
			continue
		}
		t.Run(string(c), func(t *testing.T) {
			k, err := Generate(c, "kid")
			if err != nil {
				t.Fatal(err)
			}
			sig, err := k.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Public().Verify(msg, sig); err != nil {
				t.Fatalf("valid signature rejected: %v", err)
			}
			if err := k.Public().Verify([]byte("other message"), sig); err == nil {
				t.Fatal("signature over another message accepted")
			}
			bad := append([]byte(nil), sig...)
			bad[len(bad)/2] ^= 1
			if err := k.Public().Verify(msg, bad); err == nil {
				t.Fatal("tampered signature accepted")
			}
			other, _ := Generate(c, "kid2")
			if err := other.Public().Verify(msg, sig); err == nil {
				t.Fatal("signature accepted under another key")
			}
		})
	}
	x, _ := Generate(X25519, "x")
	if _, err := x.Sign(msg); err == nil {
		t.Fatal("X25519 key signed")
	}
}

func TestSharedSecretAgrees(t *testing.T) {
	for _, c := range allCurves {
		if !c.IsKeyAgreement() {
			continue
		}
		t.Run(string(c), func(t *testing.T) {
			a, _ := Generate(c, "a")
			b, _ := Generate(c, "b")
			z1, err := a.SharedSecret(b.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			z2, err := b.SharedSecret(a.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(z1, z2) || len(z1) != c.byteSize() {
				t.Fatalf("shared secrets differ or have the wrong size (%d)", len(z1))
			}
		})
	}
	a, _ := Generate(X25519, "a")
	p, _ := Generate(P256, "p")
	if _, err := a.SharedSecret(p.PublicKey); err == nil {
		t.Fatal("key agreement across curves accepted")
	}
	// A low-order X25519 point yields an all-zero secret, which must be refused.
	if _, err := a.SharedSecret(PublicKey{Curve: X25519, Raw: make([]byte, 32)}); err == nil {
		t.Fatal("low-order X25519 point accepted")
	}
}

func TestJWKRoundTrip(t *testing.T) {
	for _, c := range allCurves {
		t.Run(string(c), func(t *testing.T) {
			k, _ := Generate(c, "kid")
			pub, err := k.PublicKey.JWK().PublicKey("kid")
			if err != nil {
				t.Fatal(err)
			}
			if !pub.Equal(k.PublicKey) {
				t.Fatal("public JWK round trip changed the key")
			}
			priv, err := k.PrivateJWK().PrivateKey("kid")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(priv.D, k.D) {
				t.Fatal("private JWK round trip changed the secret")
			}
			// d that does not belong to x/y is refused.
			other, _ := Generate(c, "other")
			j := k.PublicKey.JWK()
			j.D = other.PrivateJWK().D
			if _, err := j.PrivateKey("kid"); err == nil {
				t.Fatal("mismatched private JWK accepted")
			}
		})
	}
}

func TestMultikeyVectors(t *testing.T) {
	// did:key identifiers from the W3C CCG did:key test vectors and spec.
	for _, v := range []struct {
		mk    string
		curve Curve
	}{
		{"z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", Ed25519},
		{"z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F", X25519},
		{"zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169", P256},
		{"z82Lm1MpAkeJcix9K8TMiLd5NMAhnwkjjCBeWHXyu3U4oT2MVJJKXkcVBgjGhnLBn2Kaau9", P384},
		{"zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme", Secp256k1},
	} {
		k, err := ParseMultikey(v.mk, "kid")
		if err != nil {
			t.Fatalf("%s: %v", v.mk, err)
		}
		if k.Curve != v.curve {
			t.Fatalf("%s: curve %s, want %s", v.mk, k.Curve, v.curve)
		}
		if got := k.Multikey(); got != v.mk {
			t.Fatalf("re-encoding %s gave %s", v.mk, got)
		}
	}
	for _, bad := range []string{"", "z", "m6Mk", "z0OIl", "z6Mk"} {
		if _, err := ParseMultikey(bad, ""); err == nil {
			t.Fatalf("malformed multikey %q accepted", bad)
		}
	}
}

func TestSecretsDoNotLeak(t *testing.T) {
	k, _ := Generate(Ed25519, "did:example:a#k1")
	d := k.PrivateJWK().D
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(s, d) || strings.Contains(s, fmt.Sprint(k.D)) {
			t.Fatalf("formatted key shows its secret: %s", s)
		}
	}
	b, _ := json.Marshal(k)
	if strings.Contains(string(b), d) || strings.Contains(string(b), `"d"`) {
		t.Fatalf("JSON of a private key holds the secret: %s", b)
	}
}

func TestBase58(t *testing.T) {
	for _, b := range [][]byte{{}, {0}, {0, 0, 1}, []byte("hello world"), bytes.Repeat([]byte{0xff}, 40)} {
		got, err := Base58Decode(Base58Encode(b))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("base58 round trip of %x gave %x, %v", b, got, err)
		}
	}
	if Base58Encode([]byte("hello world")) != "StV1DL6CwTryKyV" {
		t.Fatal("base58 encoding differs from the Bitcoin alphabet reference")
	}
}

func TestSecp256k1RejectsOutOfRangeSecrets(t *testing.T) {
	zero := make([]byte, 32)
	if _, err := FromPrivate(Secp256k1, "k", zero); err == nil {
		t.Fatal("zero secp256k1 secret accepted")
	}
	n := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
		0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41}
	if _, err := FromPrivate(Secp256k1, "k", n); err == nil {
		t.Fatal("secp256k1 secret equal to the group order accepted")
	}
}
