package keys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// Vectors from w3c-ccg/did-method-key test-vectors/ed25519-x25519.json (see
// agent/did/testdata/README.md): Ed25519 seed -> derived X25519 key pair.
var x25519Vectors = []struct {
	seed, edPub, xPub, xPriv string
}{
	{"0000000000000000000000000000000000000000000000000000000000000000",
		"4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
		"7By6kV2t2d188odEM4ExAve1UithKT6dLva4dwsDT3ak",
		"6QN8DfuN9hjgHgPvLXqgzqYE3jRRGRrmJQZkd5tL8paR"},
	{"0000000000000000000000000000000000000000000000000000000000000001",
		"6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
		"FcoNC5NqP9CePWbhfz95iHaEsCjGkZUioK9Ck7Qiw286",
		"HBTcN2MrXNRj9xF9oi8QqYyuEPv3JLLjQKuEgW9oxVKP"},
	{"0000000000000000000000000000000000000000000000000000000000000003",
		"HPYVwAQmskwT1qEEeRzhoomyfyupJGASQQtCXSNG8XS2",
		"7ocvdvQinfqtyQ3Dh9aA7ggoVCQkmfaoueZazHETDv3B",
		"FZrzd1osCnbK6y6MJzMBW1RcVfL524sNKhSbqRwMuwHT"},
}

func mustB58(t *testing.T, s string) []byte {
	t.Helper()
	b, err := Base58Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestToX25519Vectors(t *testing.T) {
	for _, v := range x25519Vectors {
		seed, _ := hex.DecodeString(v.seed)
		priv, err := FromPrivate(Ed25519, "k", seed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(priv.Raw, mustB58(t, v.edPub)) {
			t.Fatalf("seed %s: wrong ed25519 public key", v.seed)
		}
		xpub, err := priv.PublicKey.ToX25519()
		if err != nil {
			t.Fatal(err)
		}
		if xpub.Curve != X25519 || !bytes.Equal(xpub.Raw, mustB58(t, v.xPub)) {
			t.Errorf("seed %s: public X25519 = %s, want %s", v.seed, Base58Encode(xpub.Raw), v.xPub)
		}
		xpriv, err := priv.ToX25519()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(xpriv.D, mustB58(t, v.xPriv)) {
			t.Errorf("seed %s: private X25519 = %s, want %s", v.seed, Base58Encode(xpriv.D), v.xPriv)
		}
		if !xpriv.PublicKey.Equal(xpub) {
			t.Errorf("seed %s: converted private key does not match converted public key", v.seed)
		}
	}
}

func TestToX25519AgreesWithECDH(t *testing.T) {
	a, _ := Generate(Ed25519, "a")
	b, _ := Generate(X25519, "b")
	ax, err := a.ToX25519()
	if err != nil {
		t.Fatal(err)
	}
	axPub, err := a.PublicKey.ToX25519()
	if err != nil {
		t.Fatal(err)
	}
	z1, err := ax.SharedSecret(b.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	z2, err := b.SharedSecret(axPub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(z1, z2) {
		t.Fatal("ECDH with converted keys disagrees")
	}
}

func TestToX25519Errors(t *testing.T) {
	p, _ := Generate(P256, "p")
	if _, err := p.PublicKey.ToX25519(); !errors.Is(err, ErrUnsupportedCurve) {
		t.Errorf("P-256 public: err = %v", err)
	}
	if _, err := p.ToX25519(); !errors.Is(err, ErrUnsupportedCurve) {
		t.Errorf("P-256 private: err = %v", err)
	}
	// y = 2 is not the y coordinate of a point on edwards25519.
	bad := PublicKey{Curve: Ed25519, Raw: append([]byte{2}, make([]byte, 31)...)}
	if _, err := bad.ToX25519(); err == nil {
		t.Error("invalid Edwards point converted")
	}
}
