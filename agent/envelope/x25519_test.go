package envelope

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"testing"
)

func hex32(t testing.TB, s string) *[32]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad hex %q", s)
	}
	return (*[32]byte)(b)
}

// RFC 7748 §6.1.
const (
	rfc7748AlicePriv = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	rfc7748AlicePub  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
	rfc7748BobPriv   = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
	rfc7748BobPub    = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
	rfc7748Shared    = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
)

func TestX25519PublicKeyRFC7748(t *testing.T) {
	for _, v := range []struct{ priv, pub string }{
		{rfc7748AlicePriv, rfc7748AlicePub},
		{rfc7748BobPriv, rfc7748BobPub},
	} {
		var pub [32]byte
		x25519PublicKey(&pub, hex32(t, v.priv))
		if got := hex.EncodeToString(pub[:]); got != v.pub {
			t.Errorf("public key of %s = %s, want %s", v.priv, got, v.pub)
		}
	}
}

func TestX25519RFC7748(t *testing.T) {
	// §5.2 test vectors.
	for _, v := range []struct{ k, u, want string }{
		{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
		// u has its high bit set, which must be ignored.
		{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
		// §6.1 both ways.
		{rfc7748AlicePriv, rfc7748BobPub, rfc7748Shared},
		{rfc7748BobPriv, rfc7748AlicePub, rfc7748Shared},
		// §6.1 public keys through the ladder with u = 9.
		{rfc7748AlicePriv, "0900000000000000000000000000000000000000000000000000000000000000", rfc7748AlicePub},
	} {
		var out [32]byte
		if !x25519(&out, hex32(t, v.k), hex32(t, v.u)) {
			t.Errorf("X25519(%s, %s) reported a zero result", v.k, v.u)
		}
		if got := hex.EncodeToString(out[:]); got != v.want {
			t.Errorf("X25519(%s, %s) = %s, want %s", v.k, v.u, got, v.want)
		}
	}
}

// TestX25519Iterated is the iterated test of RFC 7748 §5.2 (1 and 1,000
// iterations; the 1,000,000 one takes too long).
func TestX25519Iterated(t *testing.T) {
	var k, u [32]byte
	k[0], u[0] = 9, 9
	for i := 1; i <= 1000; i++ {
		var r [32]byte
		x25519(&r, &k, &u)
		u, k = k, r
		switch i {
		case 1:
			if got, want := hex.EncodeToString(k[:]), "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"; got != want {
				t.Fatalf("after 1 iteration: %s, want %s", got, want)
			}
		case 1000:
			if got, want := hex.EncodeToString(k[:]), "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"; got != want {
				t.Fatalf("after 1000 iterations: %s, want %s", got, want)
			}
		}
	}
}

// TestX25519AgainstECDH compares both functions with crypto/ecdh on random
// scalars and random u-coordinates (high bit and non-canonical values
// included).
func TestX25519AgainstECDH(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	curve := ecdh.X25519()
	var d, u [32]byte
	for i := 0; i < n; i++ {
		rand.Read(d[:])
		rand.Read(u[:])
		switch i % 8 {
		case 1: // non-canonical: 2^255-19 + small, high bit clear or set
			copy(u[:], bytes.Repeat([]byte{0xff}, 32))
			u[0] = 0xed + byte(i%19)
			u[31] = 0x7f | byte(i%2)<<7
		case 2:
			u[31] |= 0x80
		case 3: // scalar with extreme bits, to exercise clamping
			for j := range d {
				d[j] = 0xff
			}
		case 4:
			clear(d[:])
		}
		priv, err := curve.NewPrivateKey(d[:])
		if err != nil {
			t.Fatal(err)
		}
		var pub [32]byte
		x25519PublicKey(&pub, &d)
		if !bytes.Equal(pub[:], priv.PublicKey().Bytes()) {
			t.Fatalf("public key of %x: %x, crypto/ecdh %x", d, pub, priv.PublicKey().Bytes())
		}
		peer, err := curve.NewPublicKey(u[:])
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := priv.ECDH(peer)
		var got [32]byte
		ok := x25519(&got, &d, &u)
		if ok != (wantErr == nil) {
			t.Fatalf("X25519(%x, %x): ok = %v, crypto/ecdh error %v", d, u, ok, wantErr)
		}
		if ok && !bytes.Equal(got[:], want) {
			t.Fatalf("X25519(%x, %x) = %x, crypto/ecdh %x", d, u, got, want)
		}
	}
}

// TestX25519LowOrder checks that every low-order point (and its non-canonical
// encodings), which crypto/ecdh refuses, gives an all-zero result reported as
// such.
func TestX25519LowOrder(t *testing.T) {
	lowOrder := []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	}
	var d [32]byte
	for _, h := range lowOrder {
		for _, high := range []byte{0, 0x80} { // the high bit is ignored
			p := *hex32(t, h)
			p[31] |= high
			rand.Read(d[:])
			var out [32]byte
			if x25519(&out, &d, &p) {
				t.Errorf("X25519(_, %x) = %x, not reported as zero", p, out)
			}
			if out != [32]byte{} {
				t.Errorf("X25519(_, %x) = %x, want all zeros", p, out)
			}
			priv, _ := ecdh.X25519().NewPrivateKey(d[:])
			peer, _ := ecdh.X25519().NewPublicKey(p[:])
			if _, err := priv.ECDH(peer); err == nil {
				t.Errorf("crypto/ecdh accepts %x, the test list is wrong", p)
			}
		}
	}
}

func TestX25519Ephemeral(t *testing.T) {
	// newEphemeral with a fixed key gives the crypto/ecdh public key, and its
	// agreement matches crypto/ecdh.
	ak, pub, err := newEphemeral("X25519", hex32(t, rfc7748AlicePriv)[:])
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(pub.Raw); got != rfc7748AlicePub {
		t.Fatalf("ephemeral public key %s, want %s", got, rfc7748AlicePub)
	}
	bob, _ := hex.DecodeString(rfc7748BobPub)
	pub.Raw = bob
	z, err := ak.agree(pub)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(z); got != rfc7748Shared {
		t.Fatalf("ephemeral agreement %s, want %s", got, rfc7748Shared)
	}
	pub.Raw = make([]byte, 32)
	if _, err := ak.agree(pub); err == nil {
		t.Fatal("agreement with the zero point succeeded")
	}
	pub.Raw = make([]byte, 31)
	if _, err := ak.agree(pub); err == nil {
		t.Fatal("agreement with a 31-byte point succeeded")
	}
}

func BenchmarkX25519Ladder(b *testing.B) {
	var d, u, out [32]byte
	rand.Read(d[:])
	rand.Read(u[:])
	for b.Loop() {
		x25519(&out, &d, &u)
	}
}

func BenchmarkX25519PublicKey(b *testing.B) {
	var d, pub [32]byte
	rand.Read(d[:])
	for b.Loop() {
		x25519PublicKey(&pub, &d)
	}
}
