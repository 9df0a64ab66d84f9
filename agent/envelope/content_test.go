package envelope

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCBCHMACRFC7518 checks AES_256_CBC_HMAC_SHA_512 against RFC 7518
// Appendix B.3.
func TestCBCHMACRFC7518(t *testing.T) {
	key := make([]byte, 64)
	for i := range key {
		key[i] = byte(i)
	}
	pt := []byte("A cipher system must not be required to be secret, and it must be able to fall into the hands of the enemy without inconvenience")
	iv := unhex(t, "1a f3 8c 2d c2 b9 6f fd d8 66 94 09 23 41 bc 04")
	aad := []byte("The second principle of Auguste Kerckhoffs")
	wantCT := unhex(t, `4a ff aa ad b7 8c 31 c5 da 4b 1b 59 0d 10 ff bd
		3d d8 d5 d3 02 42 35 26 91 2d a0 37 ec bc c7 bd
		82 2c 30 1d d6 7c 37 3b cc b5 84 ad 3e 92 79 c2
		e6 d1 2a 13 74 b7 7f 07 75 53 df 82 94 10 44 6b
		36 eb d9 70 66 29 6a e6 42 7e a7 5c 2e 08 46 a1
		1a 09 cc f5 37 0d c8 0b fe cb ad 28 c7 3f 09 b3
		a3 b7 5e 66 2a 25 94 41 0a e4 96 b2 e2 e6 60 9e
		31 e6 e0 2c c8 37 f0 53 d2 1f 37 ff 4f 51 95 0b
		be 26 38 d0 9d d7 a4 93 09 30 80 6d 07 03 b1 f6`)
	wantTag := unhex(t, `4d d3 b4 c0 88 a7 f4 5c 21 68 39 64 5b 20 12 bf
		2e 62 69 a8 c5 6a 81 6d bc 1b 26 77 61 95 5b c5`)

	ct, tag, err := sealContent(A256CBCHS512, key, iv, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ct, wantCT) || !bytes.Equal(tag, wantTag) {
		t.Fatalf("seal:\nct  %x\ntag %x", ct, tag)
	}
	got, err := openContent(A256CBCHS512, key, iv, bytes.Clone(wantCT), wantTag, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open: %q, %v", got, err)
	}
	for _, mod := range []func(ct, tag, aad []byte){
		func(ct, _, _ []byte) { ct[0] ^= 1 },
		func(ct, _, _ []byte) { ct[len(ct)-1] ^= 0x80 },
		func(_, tag, _ []byte) { tag[31] ^= 1 },
		func(_, _, aad []byte) { aad[0] ^= 1 },
	} {
		ct, tag, aad := bytes.Clone(wantCT), bytes.Clone(wantTag), bytes.Clone(aad)
		mod(ct, tag, aad)
		if _, err := openContent(A256CBCHS512, key, iv, ct, tag, aad); err == nil {
			t.Error("tampered input opened")
		}
	}
}

// TestCBCHMACSum compares the inlined HMAC with crypto/hmac.
func TestCBCHMACSum(t *testing.T) {
	for n := 0; n < 300; n += 7 {
		key, iv := make([]byte, 32), make([]byte, 16)
		ct, aad := make([]byte, n*3), make([]byte, n)
		for _, b := range [][]byte{key, iv, ct, aad} {
			rand.Read(b)
		}
		m := hmac.New(sha512.New, key)
		m.Write(aad)
		m.Write(iv)
		m.Write(ct)
		var al [8]byte
		binary.BigEndian.PutUint64(al[:], uint64(len(aad))*8)
		m.Write(al[:])
		var sum [64]byte
		cbcHMACSum(&sum, key, iv, ct, aad)
		if want := m.Sum(nil); !bytes.Equal(sum[:], want) {
			t.Fatalf("n=%d: %x, crypto/hmac %x", n, sum, want)
		}
	}
}

// TestContentRoundTrip seals and opens with every enc, for plaintext sizes
// around the block size, with and without room for the tag after ct.
func TestContentRoundTrip(t *testing.T) {
	for _, enc := range []Enc{A256CBCHS512, A256GCM, XC20P} {
		keyLen, ivLen, tagLen, _ := encParams(enc)
		if tagLen > maxTagLen {
			t.Fatalf("%s: tag of %d bytes, maxTagLen is %d", enc, tagLen, maxTagLen)
		}
		for n := 0; n <= 50; n++ {
			cek, iv, pt, aad := make([]byte, keyLen), make([]byte, ivLen), make([]byte, n), make([]byte, n%7)
			for _, b := range [][]byte{cek, iv, pt, aad} {
				rand.Read(b)
			}
			ct, tag, err := sealContent(enc, cek, iv, pt, aad)
			if err != nil {
				t.Fatal(err)
			}
			for _, room := range []bool{false, true} {
				c := bytes.Clone(ct)
				if room {
					c = append(make([]byte, 0, len(ct)+len(tag)), ct...)
				}
				got, err := openContent(enc, cek, iv, c, tag, aad)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("%s n=%d room=%v: %x, %v", enc, n, room, got, err)
				}
			}
			if len(ct) > 0 {
				c := bytes.Clone(ct)
				c[len(c)/2] ^= 4
				if _, err := openContent(enc, cek, iv, c, tag, aad); err == nil {
					t.Fatalf("%s n=%d: tampered ciphertext opened", enc, n)
				}
			}
		}
	}
}
