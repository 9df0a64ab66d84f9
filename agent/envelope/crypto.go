package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/agentd/agentd/agent/keys"
)

// This file holds the cryptographic building blocks of the JWE layer: key
// agreement, the Concat KDF of JWA §4.6 (with the ECDH-1PU draft-04 tag
// extension), AES key wrap (RFC 3394) and the three content encryption
// algorithms. Errors returned here never carry key material.

// errKeyAgreement is returned when ECDH fails on valid-looking input: a
// low-order X25519 point (all-zero shared secret) or a point the curve
// implementation rejects.
var errKeyAgreement = errors.New("key agreement failed")

// ecdhCurve maps the curves crypto/ecdh implements; secp256k1 is handled by
// the keys package.
func ecdhCurve(c keys.Curve) ecdh.Curve {
	switch c {
	case keys.X25519:
		return ecdh.X25519()
	case keys.P256:
		return ecdh.P256()
	case keys.P384:
		return ecdh.P384()
	case keys.P521:
		return ecdh.P521()
	}
	return nil
}

// agreeKey is a private key ready for key agreement. X25519 keys are a bare
// scalar for the ladder of x25519.go: an ephemeral one owned (and cleared by
// destroy), a static one borrowed from the agent's keys.PrivateKey. For the
// NIST curves it holds the parsed *ecdh.PrivateKey, so repeated agreements do
// not re-derive the public key; secp256k1 keys go through
// keys.PrivateKey.SharedSecret.
type agreeKey struct {
	curve keys.Curve
	ec    *ecdh.PrivateKey
	x     *[32]byte       // X25519 only
	owned bool            // x is an ephemeral scalar, cleared by destroy
	k     keys.PrivateKey // secp256k1 only
}

// destroy clears an ephemeral X25519 scalar once the key is no longer needed.
func (a agreeKey) destroy() {
	if a.owned {
		clear(a.x[:])
	}
}

// agree computes the raw shared secret Z with a peer public key, which must be
// on the same curve.
func (a agreeKey) agree(peer keys.PublicKey) ([]byte, error) {
	if peer.Curve != a.curve {
		return nil, fmt.Errorf("%w: %s key against %s key", errKeyAgreement, a.curve, peer.Curve)
	}
	if a.x != nil {
		if len(peer.Raw) != 32 {
			return nil, errKeyAgreement
		}
		z := make([]byte, 32)
		if !x25519((*[32]byte)(z), a.x, (*[32]byte)(peer.Raw)) {
			return nil, errKeyAgreement // low-order point
		}
		return z, nil
	}
	if a.ec == nil {
		z, err := a.k.SharedSecret(peer)
		if err != nil {
			return nil, errKeyAgreement
		}
		return z, nil
	}
	pub, err := a.ec.Curve().NewPublicKey(peer.Raw)
	if err != nil {
		return nil, errKeyAgreement
	}
	z, err := a.ec.ECDH(pub)
	if err != nil {
		// For X25519 the only failure is an all-zero result: a low-order point.
		return nil, errKeyAgreement
	}
	return z, nil
}

// newEphemeral creates an ephemeral key pair on the curve. d, when not nil,
// fixes the private key (tests only); otherwise it is random.
func newEphemeral(c keys.Curve, d []byte) (agreeKey, keys.PublicKey, error) {
	if c == keys.X25519 {
		// No crypto/ecdh here: it would compute the public key with the
		// ladder (see x25519.go).
		x := new([32]byte)
		if d != nil {
			if len(d) != len(x) {
				return agreeKey{}, keys.PublicKey{}, fmt.Errorf("ephemeral %s key: private key must be 32 bytes", c)
			}
			copy(x[:], d)
		} else {
			rand.Read(x[:])
		}
		pub := make([]byte, 32)
		x25519PublicKey((*[32]byte)(pub), x)
		return agreeKey{curve: c, x: x, owned: true}, keys.PublicKey{Curve: c, Raw: pub}, nil
	}
	if ec := ecdhCurve(c); ec != nil {
		var (
			priv *ecdh.PrivateKey
			err  error
		)
		if d != nil {
			priv, err = ec.NewPrivateKey(d)
		} else {
			priv, err = ec.GenerateKey(rand.Reader)
		}
		if err != nil {
			return agreeKey{}, keys.PublicKey{}, fmt.Errorf("ephemeral %s key: %w", c, err)
		}
		return agreeKey{curve: c, ec: priv}, keys.PublicKey{Curve: c, Raw: priv.PublicKey().Bytes()}, nil
	}
	if c != keys.Secp256k1 {
		return agreeKey{}, keys.PublicKey{}, fmt.Errorf("%w: curve %q for key agreement", ErrUnsupported, c)
	}
	var (
		k   keys.PrivateKey
		err error
	)
	if d != nil {
		k, err = keys.FromPrivate(c, "", d)
	} else {
		k, err = keys.Generate(c, "")
	}
	if err != nil {
		return agreeKey{}, keys.PublicKey{}, fmt.Errorf("ephemeral %s key: %w", c, err)
	}
	return agreeKey{curve: c, k: k}, k.PublicKey, nil
}

// staticKeys caches parsed key-agreement private keys of the agent's own
// static NIST-curve keys (the sender key of authcrypt, the recipient keys of
// Unpack). Without it every agreement with such a key pays for a public-key
// derivation in crypto/ecdh, which doubles its cost. Entries are keyed by a
// SHA-256 fingerprint of curve and secret, never by kid, so a rotated key
// cannot be served stale. The cache is bounded; ephemeral and peer keys are
// never cached.
var staticKeys = struct {
	sync.Mutex
	m map[[sha256.Size]byte]*ecdh.PrivateKey
}{m: make(map[[sha256.Size]byte]*ecdh.PrivateKey)}

const staticKeysMax = 256

// staticAgreeKey returns the agent's own private key prepared for key agreement.
func staticAgreeKey(k keys.PrivateKey) (agreeKey, error) {
	if k.Curve == keys.X25519 {
		if len(k.D) != 32 {
			return agreeKey{}, fmt.Errorf("%s private key %q is invalid", k.Curve, k.ID)
		}
		return agreeKey{curve: k.Curve, x: (*[32]byte)(k.D)}, nil
	}
	ec := ecdhCurve(k.Curve)
	if ec == nil {
		if k.Curve == keys.Secp256k1 {
			return agreeKey{curve: k.Curve, k: k}, nil
		}
		return agreeKey{}, fmt.Errorf("%w: curve %q for key agreement", ErrUnsupported, k.Curve)
	}
	var fp [sha256.Size]byte
	if n := len(k.Curve) + 1 + len(k.D); n <= 128 {
		// On the stack: SHA-256(curve || 0 || D), cleared after.
		var buf [128]byte
		copy(buf[:], k.Curve)
		copy(buf[len(k.Curve)+1:], k.D)
		fp = sha256.Sum256(buf[:n])
		clear(buf[:])
	} else {
		h := sha256.New()
		h.Write([]byte(k.Curve))
		h.Write([]byte{0})
		h.Write(k.D)
		h.Sum(fp[:0])
	}

	staticKeys.Lock()
	priv := staticKeys.m[fp]
	staticKeys.Unlock()
	if priv != nil {
		return agreeKey{curve: k.Curve, ec: priv}, nil
	}
	priv, err := ec.NewPrivateKey(k.D)
	if err != nil {
		return agreeKey{}, fmt.Errorf("%s private key %q is invalid", k.Curve, k.ID)
	}
	staticKeys.Lock()
	if len(staticKeys.m) >= staticKeysMax {
		for old := range staticKeys.m { // evict an arbitrary entry
			delete(staticKeys.m, old)
			break
		}
	}
	staticKeys.m[fp] = priv
	staticKeys.Unlock()
	return agreeKey{curve: k.Curve, ec: priv}, nil
}

// concatKDF is the single-step KDF of NIST SP 800-56A as profiled by JWA §4.6
// and ECDH-1PU draft-04 §2.3: it derives keyLen bytes from the shared secret z
// with
//
//	OtherInfo = len(alg)||alg || len(apu)||apu || len(apv)||apv || keydatalen [|| len(tag)||tag]
//
// where every len is a 32-bit big-endian byte count and keydatalen the output
// size in bits. withTag adds the cctag of ECDH-1PU key-wrapping mode (the
// JWE authentication tag) to SuppPubInfo.
func concatKDF(z []byte, alg string, apu, apv []byte, withTag bool, tag []byte, keyLen int) []byte {
	return concatKDFTo(make([]byte, 0, (keyLen+sha256.Size-1)/sha256.Size*sha256.Size), z, alg, apu, apv, withTag, tag, keyLen)
}

// concatKDFMaxStack is the largest input of one KDF round concatKDFTo
// hashes from a buffer on the stack.
const concatKDFMaxStack = 512

// concatKDFTo is concatKDF appending to dst (whose capacity should hold keyLen
// rounded up to whole SHA-256 blocks). When a round's input fits
// concatKDFMaxStack bytes it is assembled on the stack, hashed with
// sha256.Sum256 and cleared (it holds z), so nothing is allocated.
func concatKDFTo(dst, z []byte, alg string, apu, apv []byte, withTag bool, tag []byte, keyLen int) []byte {
	n := 4 + len(z) + 4 + len(alg) + 4 + len(apu) + 4 + len(apv) + 4
	if withTag {
		n += 4 + len(tag)
	}
	if n > concatKDFMaxStack {
		return concatKDFStream(dst, z, alg, apu, apv, withTag, tag, keyLen)
	}
	var buf [concatKDFMaxStack]byte
	b := buf[:4]
	b = append(b, z...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(alg)))
	b = append(b, alg...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(apu)))
	b = append(b, apu...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(apv)))
	b = append(b, apv...)
	b = binary.BigEndian.AppendUint32(b, uint32(keyLen*8))
	if withTag {
		b = binary.BigEndian.AppendUint32(b, uint32(len(tag)))
		b = append(b, tag...)
	}
	out := dst[:0]
	for counter := uint32(1); len(out) < keyLen; counter++ {
		binary.BigEndian.PutUint32(b[:4], counter)
		sum := sha256.Sum256(b)
		out = append(out, sum[:]...)
		clear(sum[:])
	}
	clear(buf[:])
	return out[:keyLen]
}

// concatKDFStream is concatKDFTo for inputs too large for the stack.
func concatKDFStream(dst, z []byte, alg string, apu, apv []byte, withTag bool, tag []byte, keyLen int) []byte {
	var u32 [4]byte
	put := func(h interface{ Write([]byte) (int, error) }, b []byte) {
		binary.BigEndian.PutUint32(u32[:], uint32(len(b)))
		h.Write(u32[:])
		h.Write(b)
	}
	out := dst[:0]
	h := sha256.New()
	for counter := uint32(1); len(out) < keyLen; counter++ {
		h.Reset()
		binary.BigEndian.PutUint32(u32[:], counter)
		h.Write(u32[:])
		h.Write(z)
		put(h, []byte(alg))
		put(h, apu)
		put(h, apv)
		binary.BigEndian.PutUint32(u32[:], uint32(keyLen*8))
		h.Write(u32[:])
		if withTag {
			put(h, tag)
		}
		out = h.Sum(out)
	}
	return out[:keyLen]
}

// kwIV is the default initial value of RFC 3394 §2.2.3.1.
var kwIV = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

// errKeyWrap is returned when AES key unwrapping fails its integrity check.
var errKeyWrap = errors.New("key unwrap failed")

// aesKeyWrap wraps key (a multiple of 8 bytes, at least 16) with kek per RFC 3394.
func aesKeyWrap(kek, key []byte) ([]byte, error) {
	if len(key)%8 != 0 || len(key) < 16 {
		return nil, errors.New("key wrap: key must be a multiple of 8 bytes, at least 16")
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(key) / 8
	out := make([]byte, 8+len(key))
	copy(out[8:], key)
	var b [16]byte
	copy(b[:8], kwIV[:])
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(b[8:], out[8*i:8*i+8])
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(out[8*i:8*i+8], b[8:])
		}
	}
	copy(out[:8], b[:8])
	return out, nil
}

// aesKeyUnwrap reverses aesKeyWrap. The integrity check is constant-time.
func aesKeyUnwrap(kek, wrapped []byte) ([]byte, error) {
	if len(wrapped)%8 != 0 || len(wrapped) < 24 {
		return nil, errKeyWrap
	}
	return aesKeyUnwrapTo(make([]byte, len(wrapped)-8), kek, wrapped)
}

// aesKeyUnwrapTo is aesKeyUnwrap into out, of len(wrapped)-8 bytes. out is
// cleared when the check fails.
func aesKeyUnwrapTo(out, kek, wrapped []byte) ([]byte, error) {
	if len(wrapped)%8 != 0 || len(wrapped) < 24 || len(out) != len(wrapped)-8 {
		return nil, errKeyWrap
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(wrapped)/8 - 1
	copy(out, wrapped[8:])
	var b [16]byte
	copy(b[:8], wrapped[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(b[8:], out[8*(i-1):8*i])
			block.Decrypt(b[:], b[:])
			copy(out[8*(i-1):8*i], b[8:])
		}
	}
	if subtle.ConstantTimeCompare(b[:8], kwIV[:]) != 1 {
		clear(out)
		return nil, errKeyWrap
	}
	return out, nil
}

// encParams gives the CEK, IV and tag sizes of a content encryption algorithm.
func encParams(enc Enc) (keyLen, ivLen, tagLen int, ok bool) {
	switch enc {
	case A256CBCHS512:
		return 64, 16, 32, true
	case A256GCM:
		return 32, 12, 16, true
	case XC20P:
		return chacha20poly1305.KeySize, chacha20poly1305.NonceSizeX, chacha20poly1305.Overhead, true
	}
	return 0, 0, 0, false
}

// maxTagLen is the largest tag size encParams gives.
const maxTagLen = 32

// errContent is returned when content decryption fails authentication.
var errContent = errors.New("content decryption failed")

// sealContent encrypts plaintext with the CEK and IV, authenticating aad, and
// returns ciphertext and tag.
func sealContent(enc Enc, cek, iv, plaintext, aad []byte) (ct, tag []byte, err error) {
	switch enc {
	case A256CBCHS512:
		return cbcHMACSeal(cek, iv, plaintext, aad)
	case A256GCM, XC20P:
		aead, err := newAEAD(enc, cek)
		if err != nil {
			return nil, nil, err
		}
		out := aead.Seal(make([]byte, 0, len(plaintext)+aead.Overhead()), iv, plaintext, aad)
		n := len(out) - aead.Overhead()
		return out[:n:n], out[n:], nil
	}
	return nil, nil, fmt.Errorf("%w: enc %q", ErrUnsupported, enc)
}

// openContent decrypts and authenticates. Sizes of cek, iv and tag must have
// been checked against encParams by the caller. The plaintext is written over
// ct, which the caller must not use afterwards; when ct has room for the tag
// after it (cap(ct) >= len(ct)+len(tag)), the AEADs need no copy.
func openContent(enc Enc, cek, iv, ct, tag, aad []byte) ([]byte, error) {
	switch enc {
	case A256CBCHS512:
		return cbcHMACOpen(cek, iv, ct, tag, aad)
	case A256GCM, XC20P:
		aead, err := newAEAD(enc, cek)
		if err != nil {
			return nil, err
		}
		buf := append(ct, tag...)
		pt, err := aead.Open(buf[:0], iv, buf, aad)
		if err != nil {
			return nil, errContent
		}
		return pt, nil
	}
	return nil, fmt.Errorf("%w: enc %q", ErrUnsupported, enc)
}

func newAEAD(enc Enc, cek []byte) (cipher.AEAD, error) {
	if enc == XC20P {
		return chacha20poly1305.NewX(cek)
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// cbcHMACTagLen is the tag size of A256CBC-HS512: HMAC-SHA-512 truncated to
// half.
const cbcHMACTagLen = 32

// cbcHMACSeal is AES_256_CBC_HMAC_SHA_512 of RFC 7518 §5.2.5: the first half
// of the 64-byte key is the MAC key, the second the AES key; PKCS#7 padding;
// the tag is the first 32 bytes of HMAC-SHA-512(AAD || IV || C || AL).
func cbcHMACSeal(key, iv, plaintext, aad []byte) (ct, tag []byte, err error) {
	block, err := aes.NewCipher(key[32:])
	if err != nil {
		return nil, nil, err
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	n := len(plaintext) + pad
	buf := make([]byte, n+cbcHMACTagLen) // ciphertext and tag in one allocation
	ct, tag = buf[:n:n], buf[n:]
	copy(ct, plaintext)
	for i := len(plaintext); i < n; i++ {
		ct[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	var sum [sha512.Size]byte
	cbcHMACSum(&sum, key[:32], iv, ct, aad)
	copy(tag, sum[:cbcHMACTagLen])
	return ct, tag, nil
}

// cbcHMACSum sets sum to HMAC-SHA-512(macKey, AAD || IV || C || AL), AL being
// the bit length of AAD as a 64-bit big-endian integer. It is RFC 2104 HMAC
// written out, so that one SHA-512 state serves the inner and the outer hash
// and nothing is allocated; macKey (32 bytes) is shorter than the block, so
// it is used as is.
func cbcHMACSum(sum *[sha512.Size]byte, macKey, iv, ct, aad []byte) {
	var pad [sha512.BlockSize]byte
	copy(pad[:], macKey)
	for i := range pad {
		pad[i] ^= 0x36
	}
	h := sha512.New()
	h.Write(pad[:])
	h.Write(aad)
	h.Write(iv)
	h.Write(ct)
	var al [8]byte
	binary.BigEndian.PutUint64(al[:], uint64(len(aad))*8)
	h.Write(al[:])
	h.Sum(sum[:0])
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	h.Reset()
	h.Write(pad[:])
	h.Write(sum[:])
	h.Sum(sum[:0])
	clear(pad[:])
}

// cbcHMACOpen checks the tag in constant time before decrypting, then removes
// the padding. It decrypts in place: the plaintext overwrites ct.
func cbcHMACOpen(key, iv, ct, tag, aad []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 || len(tag) != cbcHMACTagLen {
		return nil, errContent
	}
	var sum [sha512.Size]byte
	cbcHMACSum(&sum, key[:32], iv, ct, aad)
	if subtle.ConstantTimeCompare(sum[:cbcHMACTagLen], tag) != 1 {
		return nil, errContent
	}
	block, err := aes.NewCipher(key[32:])
	if err != nil {
		return nil, err
	}
	pt := ct
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	// The MAC already authenticated the ciphertext, so a padding check cannot
	// be turned into an oracle; it only guards against a buggy sender.
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, errContent
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, errContent
		}
	}
	return pt[:len(pt)-pad], nil
}
