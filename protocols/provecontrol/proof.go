package provecontrol

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
)

// CalculateProof returns the proof of control of a challenge: the lowercase
// hex SHA-256 of the UTF-8 string "verifier|user|verification_type|subject|secret",
// where verifier is the challenge's from (the prove's to) and user the
// challenge's to (the prove's from). It is scala-did's Prove.calculateProof.
func CalculateProof(verifier, user string, t VerificationType, subject, secret string) string {
	sum := sha256.Sum256([]byte(verifier + "|" + user + "|" + string(t) + "|" + subject + "|" + secret))
	return hex.EncodeToString(sum[:])
}

// SecretBytes is the size of a challenge secret: 256 random bits.
const SecretBytes = 32

// NewSecret returns a fresh random challenge secret (SecretBytes bytes,
// base64url without padding).
func NewSecret() string {
	return randomString(SecretBytes)
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// digest is the SHA-256 of s; the verifier stores the digest of the
// expected proof, never the secret or the proof.
func digest(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// proofMatches compares a proof with the stored digest in constant time.
func proofMatches(proof string, want []byte) bool {
	return len(want) == sha256.Size && subtle.ConstantTimeCompare(digest(proof), want) == 1
}
