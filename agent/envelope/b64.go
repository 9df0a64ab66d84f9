package envelope

import "encoding/binary"

// A faster decoder for the strict unpadded base64url of JOSE (b64). The
// ciphertext of every JWE is decoded with it; encoding/base64 checks each
// character as it goes and took a quarter of Unpack's time outside the key
// agreement. b64Decode gives exactly what b64.Decode gives: the fast loop
// only takes input made of the 64 characters of the alphabet, of a length
// that is not 1 mod 4, whose last character has no stray bits (the Strict
// rule); anything else (padding, the CR and LF encoding/base64 skips, an
// invalid character) goes to b64.Decode, which decodes or reports it as
// before. TestB64Decode and FuzzB64Decode compare the two.

// b64Tab[k][c] is the six bits of character c shifted into place k of a
// group of four (18, 12, 6, 0), or b64Bad for a character outside the
// alphabet. The bits of one group ORed give its three bytes; b64Bad lies
// above them, so one OR over all groups tells whether any was invalid.
var b64Tab = func() (t [4][256]uint32) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for k := range t {
		for c := range t[k] {
			t[k][c] = b64Bad
		}
		for v, c := range []byte(alphabet) {
			t[k][c] = uint32(v) << (18 - 6*k)
		}
	}
	return t
}()

const b64Bad = 0xff000000

// b64Decode decodes src into dst (len(dst) >= b64.DecodedLen(len(src))) as
// b64.Decode does.
func b64Decode(dst, src []byte) (int, error) {
	if n, ok := b64DecodeFast(dst, src); ok {
		return n, nil
	}
	return b64.Decode(dst, src)
}

// b64DecodeFast decodes src when it is plain strict base64url (see above);
// ok is false otherwise, and dst may then have been written.
func b64DecodeFast(dst, src []byte) (n int, ok bool) {
	if len(src)%4 == 1 || len(dst) < len(src)/4*3+(len(src)%4*3)/4 {
		return 0, false
	}
	t0, t1, t2, t3 := &b64Tab[0], &b64Tab[1], &b64Tab[2], &b64Tab[3]
	var bad uint32
	di := 0
	// Eight characters a step, their six bytes written as one word (the
	// two bytes after them are written over by the next step or the tail).
	for len(src) >= 8 && len(dst)-di >= 8 {
		x := t0[src[0]] | t1[src[1]] | t2[src[2]] | t3[src[3]]
		y := t0[src[4]] | t1[src[5]] | t2[src[6]] | t3[src[7]]
		bad |= x | y
		binary.BigEndian.PutUint64(dst[di:], uint64(x)<<40|uint64(y)<<16)
		src = src[8:]
		di += 6
	}
	for len(src) >= 4 {
		x := t0[src[0]] | t1[src[1]] | t2[src[2]] | t3[src[3]]
		bad |= x
		d := dst[di : di+3 : di+3]
		d[0], d[1], d[2] = byte(x>>16), byte(x>>8), byte(x)
		src = src[4:]
		di += 3
	}
	switch len(src) {
	case 2:
		x := t0[src[0]] | t1[src[1]]
		bad |= x
		if x&0xffff != 0 { // stray bits (the Strict rule)
			return 0, false
		}
		dst[di] = byte(x >> 16)
		di++
	case 3:
		x := t0[src[0]] | t1[src[1]] | t2[src[2]]
		bad |= x
		if x&0xff != 0 {
			return 0, false
		}
		dst[di], dst[di+1] = byte(x>>16), byte(x>>8)
		di += 2
	}
	if bad&b64Bad != 0 {
		return 0, false
	}
	return di, true
}
