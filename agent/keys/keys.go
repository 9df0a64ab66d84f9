// Package keys holds the agent's key material: the key types every other package
// speaks (public and private keys on the curves DIDComm v2 uses), their JWK and
// multikey encodings, signing and verification, and the Store interface behind
// which private keys are kept.
//
// A PrivateKey never formats its secret: its String and GoString methods and its
// JSON encoding leave D out, so logging a key by accident cannot leak it.
package keys

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Curve names a key type by its JOSE curve name.
type Curve string

// The curves the agent can hold keys on.
const (
	Ed25519   Curve = "Ed25519"
	X25519    Curve = "X25519"
	P256      Curve = "P-256"
	P384      Curve = "P-384"
	P521      Curve = "P-521"
	Secp256k1 Curve = "secp256k1"
)

// ErrNotFound is returned by a Store for a key id it does not hold.
var ErrNotFound = errors.New("key not found")

// ErrUnsupportedCurve is returned for a curve or key type the agent does not handle.
var ErrUnsupportedCurve = errors.New("unsupported curve")

// PublicKey is a public key together with the identifier (kid) it is known by,
// usually a DID URL such as did:peer:2...#key-1.
//
// Raw is the key's canonical byte form: 32 bytes for Ed25519 and X25519, the
// uncompressed SEC1 point (0x04||X||Y) for the Weierstrass curves.
type PublicKey struct {
	ID    string
	Curve Curve
	Raw   []byte
}

// PrivateKey is a key pair. D is the secret: the 32-byte seed for Ed25519, the
// 32-byte scalar for X25519, the big-endian scalar padded to the curve size for
// the Weierstrass curves.
type PrivateKey struct {
	PublicKey
	D []byte
}

// String describes the key without its secret.
func (k PrivateKey) String() string {
	return fmt.Sprintf("PrivateKey{%s %s}", k.Curve, k.ID)
}

// GoString describes the key without its secret, for %#v.
func (k PrivateKey) GoString() string { return k.String() }

// Public returns the public half of the key pair.
func (k PrivateKey) Public() PublicKey { return k.PublicKey }

// IsKeyAgreement reports whether keys on this curve can be used for ECDH.
func (c Curve) IsKeyAgreement() bool {
	switch c {
	case X25519, P256, P384, P521, Secp256k1:
		return true
	}
	return false
}

// IsSigning reports whether keys on this curve can sign.
func (c Curve) IsSigning() bool {
	switch c {
	case Ed25519, P256, P384, P521, Secp256k1:
		return true
	}
	return false
}

// byteSize is the size of one coordinate or scalar on the curve.
func (c Curve) byteSize() int {
	switch c {
	case Ed25519, X25519, P256, Secp256k1:
		return 32
	case P384:
		return 48
	case P521:
		return 66
	}
	return 0
}

func (c Curve) elliptic() elliptic.Curve {
	switch c {
	case P256:
		return elliptic.P256()
	case P384:
		return elliptic.P384()
	case P521:
		return elliptic.P521()
	}
	return nil
}

func (c Curve) ecdh() ecdh.Curve {
	switch c {
	case X25519:
		return ecdh.X25519()
	case P256:
		return ecdh.P256()
	case P384:
		return ecdh.P384()
	case P521:
		return ecdh.P521()
	}
	return nil
}

// Generate creates a new random key pair on the curve, with the given kid.
func Generate(c Curve, kid string) (PrivateKey, error) {
	switch c {
	case Ed25519:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return PrivateKey{}, err
		}
		return PrivateKey{PublicKey{kid, c, []byte(pub)}, priv.Seed()}, nil
	case X25519, P256, P384, P521:
		priv, err := c.ecdh().GenerateKey(rand.Reader)
		if err != nil {
			return PrivateKey{}, err
		}
		return PrivateKey{PublicKey{kid, c, priv.PublicKey().Bytes()}, priv.Bytes()}, nil
	case Secp256k1:
		priv, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			return PrivateKey{}, err
		}
		d := priv.Key.Bytes()
		return PrivateKey{PublicKey{kid, c, priv.PubKey().SerializeUncompressed()}, d[:]}, nil
	}
	return PrivateKey{}, fmt.Errorf("%w: %q", ErrUnsupportedCurve, c)
}

// FromPrivate rebuilds a key pair from its curve and secret, computing the public key.
func FromPrivate(c Curve, kid string, d []byte) (PrivateKey, error) {
	switch c {
	case Ed25519:
		if len(d) != ed25519.SeedSize {
			return PrivateKey{}, errors.New("ed25519 private key must be 32 bytes")
		}
		pub := ed25519.NewKeyFromSeed(d).Public().(ed25519.PublicKey)
		return PrivateKey{PublicKey{kid, c, []byte(pub)}, append([]byte(nil), d...)}, nil
	case X25519, P256, P384, P521:
		priv, err := c.ecdh().NewPrivateKey(d)
		if err != nil {
			return PrivateKey{}, fmt.Errorf("%s private key: %w", c, err)
		}
		return PrivateKey{PublicKey{kid, c, priv.PublicKey().Bytes()}, priv.Bytes()}, nil
	case Secp256k1:
		var scalar secp256k1.ModNScalar
		if len(d) != 32 || scalar.SetByteSlice(d) || scalar.IsZero() {
			return PrivateKey{}, errors.New("secp256k1 private key must be a 32-byte scalar in [1, n-1]")
		}
		priv := secp256k1.PrivKeyFromBytes(d)
		return PrivateKey{PublicKey{kid, c, priv.PubKey().SerializeUncompressed()}, append([]byte(nil), d...)}, nil
	}
	return PrivateKey{}, fmt.Errorf("%w: %q", ErrUnsupportedCurve, c)
}

// NewPublic checks raw against the curve and returns the public key. EC points may
// be given compressed or uncompressed; Raw is always stored uncompressed.
func NewPublic(c Curve, kid string, raw []byte) (PublicKey, error) {
	switch c {
	case Ed25519:
		if len(raw) != ed25519.PublicKeySize {
			return PublicKey{}, errors.New("ed25519 public key must be 32 bytes")
		}
	case X25519:
		if _, err := ecdh.X25519().NewPublicKey(raw); err != nil {
			return PublicKey{}, fmt.Errorf("x25519 public key: %w", err)
		}
	case P256, P384, P521:
		if len(raw) == 1+c.byteSize() {
			x, y := elliptic.UnmarshalCompressed(c.elliptic(), raw)
			if x == nil {
				return PublicKey{}, fmt.Errorf("%s public key: invalid compressed point", c)
			}
			raw = uncompressed(c, x, y)
		}
		if _, err := c.ecdh().NewPublicKey(raw); err != nil {
			return PublicKey{}, fmt.Errorf("%s public key: %w", c, err)
		}
	case Secp256k1:
		pk, err := secp256k1.ParsePubKey(raw)
		if err != nil {
			return PublicKey{}, fmt.Errorf("secp256k1 public key: %w", err)
		}
		raw = pk.SerializeUncompressed()
	default:
		return PublicKey{}, fmt.Errorf("%w: %q", ErrUnsupportedCurve, c)
	}
	return PublicKey{ID: kid, Curve: c, Raw: append([]byte(nil), raw...)}, nil
}

func uncompressed(c Curve, x, y *big.Int) []byte {
	n := c.byteSize()
	out := make([]byte, 1+2*n)
	out[0] = 4
	x.FillBytes(out[1 : 1+n])
	y.FillBytes(out[1+n:])
	return out
}

// XY returns the affine coordinates of a Weierstrass-curve key, each padded to the curve size.
func (k PublicKey) XY() (x, y []byte, err error) {
	n := k.Curve.byteSize()
	if k.Curve == Ed25519 || k.Curve == X25519 || n == 0 || len(k.Raw) != 1+2*n {
		return nil, nil, fmt.Errorf("%s key has no x/y coordinates", k.Curve)
	}
	return k.Raw[1 : 1+n], k.Raw[1+n:], nil
}

// Compressed returns the compressed SEC1 form of a Weierstrass-curve key, or Raw
// for the Edwards/Montgomery curves.
func (k PublicKey) Compressed() []byte {
	x, y, err := k.XY()
	if err != nil {
		return k.Raw
	}
	out := make([]byte, 1+len(x))
	out[0] = 2 + y[len(y)-1]&1
	copy(out[1:], x)
	return out
}

// Equal reports whether two public keys are the same key (ids are not compared).
func (k PublicKey) Equal(o PublicKey) bool {
	if k.Curve != o.Curve || len(k.Raw) != len(o.Raw) {
		return false
	}
	for i := range k.Raw {
		if k.Raw[i] != o.Raw[i] {
			return false
		}
	}
	return true
}

// SharedSecret computes the raw ECDH shared secret Z between the private key and
// a peer's public key on the same curve. For X25519 an all-zero result (a
// low-order peer key) is an error.
func (k PrivateKey) SharedSecret(peer PublicKey) ([]byte, error) {
	if k.Curve != peer.Curve {
		return nil, fmt.Errorf("key agreement between %s and %s keys", k.Curve, peer.Curve)
	}
	if k.Curve == Secp256k1 {
		// decred offers no constant-time variable-base multiplication; the
		// secp256k1 path is for interoperability, X25519 and the NIST curves
		// (constant time in crypto/ecdh) are the agent's defaults.
		pub, err := secp256k1.ParsePubKey(peer.Raw)
		if err != nil {
			return nil, fmt.Errorf("secp256k1 public key: %w", err)
		}
		priv := secp256k1.PrivKeyFromBytes(k.D)
		var p, r secp256k1.JacobianPoint
		pub.AsJacobian(&p)
		secp256k1.ScalarMultNonConst(&priv.Key, &p, &r)
		if (r.X.IsZero() && r.Y.IsZero()) || r.Z.IsZero() {
			return nil, errors.New("secp256k1 key agreement gave the point at infinity")
		}
		r.ToAffine()
		x := r.X.Bytes()
		return x[:], nil
	}
	c := k.Curve.ecdh()
	if c == nil {
		return nil, fmt.Errorf("%w for key agreement: %q", ErrUnsupportedCurve, k.Curve)
	}
	priv, err := c.NewPrivateKey(k.D)
	if err != nil {
		return nil, fmt.Errorf("%s private key: %w", k.Curve, err)
	}
	pub, err := c.NewPublicKey(peer.Raw)
	if err != nil {
		return nil, fmt.Errorf("%s public key: %w", k.Curve, err)
	}
	return priv.ECDH(pub)
}

// ecdsaPrivate returns the key as a crypto/ecdsa key for the NIST curves.
func (k PrivateKey) ecdsaPrivate() (*ecdsa.PrivateKey, error) {
	return ecdsa.ParseRawPrivateKey(k.Curve.elliptic(), k.D)
}

// Store keeps private keys. Implementations encrypt them at rest.
// Get returns ErrNotFound (possibly wrapped) for an unknown kid.
type Store interface {
	Put(ctx context.Context, key PrivateKey) error
	Get(ctx context.Context, kid string) (PrivateKey, error)
	List(ctx context.Context) ([]PublicKey, error)
}
