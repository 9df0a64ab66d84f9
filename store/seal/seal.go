// Package seal encrypts small secrets, such as the agent's private keys, under
// a 32-byte master key, and obtains that master key from a passphrase or a key
// file.
//
// Sealing is AES-256-GCM with a fresh random 96-bit nonce for every call, so the
// same plaintext sealed twice gives different ciphertexts. Every sealed value is
// bound to caller-chosen additional authenticated data (for example the id of
// the key it protects): a ciphertext moved to another record, or altered in any
// way, fails to open rather than yielding wrong plaintext. With random nonces a
// single master key must not seal more than about 2^32 values; the agent seals
// one value per private key stored, far below that.
//
// A master key comes from one of:
//
//   - a passphrase, stretched with argon2id ([DeriveKey], [KeyFromPassphrase]).
//     The salt and cost parameters are not secret and must be stored next to the
//     data they protect; store/bolt keeps them in its meta bucket;
//   - a key file of 32 random bytes, raw or hex-encoded ([KeyFromFile]), created
//     with [GenerateKeyFile];
//   - 32 bytes from elsewhere, such as a secret manager ([NewKey]).
//
// Nothing in this package puts a secret into an error message, and a [Key]
// cannot be printed: every fmt verb formats it as "seal.Key{redacted}".
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unicode"

	"golang.org/x/crypto/argon2"
)

// KeySize is the size of a master key in bytes.
const KeySize = 32

// version is the first byte of every sealed value, so the format can change.
const version = 1

const nonceSize = 12

// Overhead is how many bytes Seal adds to a plaintext: a version byte, the
// nonce and the GCM tag.
const Overhead = 1 + nonceSize + 16

// ErrOpen is returned by [Key.Open] when a sealed value does not authenticate:
// it was sealed under another key or with other additional data, or it was
// altered.
var ErrOpen = errors.New("seal: message authentication failed")

// Key is a master key. It seals and opens values with AES-256-GCM. The zero
// Key is not usable; get one from [NewKey], [DeriveKey], [KeyFromPassphrase] or
// [KeyFromFile].
//
// A Key is safe for concurrent use. It never formats its secret: fmt prints it
// as "seal.Key{redacted}" whatever the verb, and it has no exported fields for
// encoding/json or encoding/gob to reach.
type Key struct {
	aead cipher.AEAD
}

// NewKey returns the master key whose bytes are b, which must be KeySize
// random bytes. NewKey does not keep b; the caller may wipe it afterwards.
func NewKey(b []byte) (Key, error) {
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("seal: master key must be %d bytes, got %d", KeySize, len(b))
	}
	block, err := aes.NewCipher(b)
	if err != nil {
		return Key{}, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, fmt.Errorf("seal: %w", err)
	}
	return Key{aead: aead}, nil
}

// IsZero reports whether k is the zero Key, which cannot seal or open anything.
func (k Key) IsZero() bool { return k.aead == nil }

// Format prints the key as "seal.Key{redacted}" for every verb, so that a key
// logged or formatted by mistake does not leak.
func (k Key) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, "seal.Key{redacted}") }

// Seal encrypts plaintext and binds it to aad, which is authenticated but not
// encrypted and must be given again to Open. It returns a new slice:
// version || nonce || ciphertext || tag, len(plaintext)+Overhead bytes long.
func (k Key) Seal(plaintext, aad []byte) ([]byte, error) {
	if k.aead == nil {
		return nil, errors.New("seal: zero Key")
	}
	out := make([]byte, 1+nonceSize, Overhead+len(plaintext))
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return k.aead.Seal(out, out[1:], plaintext, aad), nil
}

// Open authenticates and decrypts a value made by Seal with the same key and
// aad. It returns ErrOpen if the value does not authenticate.
func (k Key) Open(sealed, aad []byte) ([]byte, error) {
	if k.aead == nil {
		return nil, errors.New("seal: zero Key")
	}
	if len(sealed) < Overhead {
		return nil, ErrOpen
	}
	if sealed[0] != version {
		return nil, fmt.Errorf("seal: unknown sealed-value version %d", sealed[0])
	}
	pt, err := k.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// KDFParams are the argon2id parameters that turn a passphrase into a master
// key. They are not secret, but the same parameters and salt are needed every
// time the key is derived, so they must be stored with the data.
type KDFParams struct {
	// Time is the number of passes over memory.
	Time uint32 `json:"t"`
	// MemoryKiB is the memory cost in KiB.
	MemoryKiB uint32 `json:"m"`
	// Threads is the degree of parallelism (argon2 lanes). It changes the key,
	// not only the speed.
	Threads uint8 `json:"p"`
	// Salt is random, at least 16 bytes, and unique per database.
	Salt []byte `json:"salt"`
}

// The default argon2id cost: RFC 9106's second recommended option (t=3,
// m=64 MiB, p=4). Deriving a key takes 64 MiB of memory and about 0.1 s on a
// two-core server (86 ms measured on an AMD EPYC VM), once, when the database
// is opened.
const (
	DefaultTime      = 3
	DefaultMemoryKiB = 64 * 1024
	DefaultThreads   = 4
	// SaltSize is the size of the salts NewKDFParams generates.
	SaltSize = 16
)

// Limits on stored parameters, so a corrupted or hostile parameter record
// cannot make DeriveKey run for hours or allocate the machine's memory.
const (
	maxTime      = 64
	maxMemoryKiB = 4 * 1024 * 1024 // 4 GiB
)

// NewKDFParams returns the default parameters with a fresh random salt.
func NewKDFParams() (KDFParams, error) {
	salt := make([]byte, SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return KDFParams{}, fmt.Errorf("seal: salt: %w", err)
	}
	return KDFParams{Time: DefaultTime, MemoryKiB: DefaultMemoryKiB, Threads: DefaultThreads, Salt: salt}, nil
}

// Validate reports whether the parameters are within sane bounds.
func (p KDFParams) Validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("seal: argon2id time %d out of range [1, %d]", p.Time, maxTime)
	case p.Threads < 1:
		return errors.New("seal: argon2id needs at least one thread")
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("seal: argon2id memory %d KiB out of range [%d, %d]", p.MemoryKiB, 8*uint32(p.Threads), maxMemoryKiB)
	case len(p.Salt) < 16:
		return fmt.Errorf("seal: argon2id salt must be at least 16 bytes, got %d", len(p.Salt))
	}
	return nil
}

// DeriveKey stretches passphrase into a master key with argon2id under p. It
// is deliberately slow and memory-hungry (see DefaultMemoryKiB). The
// passphrase is used as given: no trimming or Unicode normalisation.
func DeriveKey(passphrase string, p KDFParams) (Key, error) {
	if passphrase == "" {
		return Key{}, errors.New("seal: empty passphrase")
	}
	if err := p.Validate(); err != nil {
		return Key{}, err
	}
	b := argon2.IDKey([]byte(passphrase), p.Salt, p.Time, p.MemoryKiB, p.Threads, KeySize)
	defer clear(b)
	return NewKey(b)
}

// KeyFromPassphrase derives a master key from passphrase and salt with the
// default argon2id parameters (DefaultTime, DefaultMemoryKiB, DefaultThreads).
// The salt must be at least 16 random bytes and must be kept: the same
// passphrase with another salt gives another key. Callers that store their
// parameters should use DeriveKey with them instead, so that a later change of
// the defaults does not lock them out.
func KeyFromPassphrase(passphrase string, salt []byte) (Key, error) {
	return DeriveKey(passphrase, KDFParams{Time: DefaultTime, MemoryKiB: DefaultMemoryKiB, Threads: DefaultThreads, Salt: salt})
}

// maxKeyFileSize bounds what KeyFromFile reads: a key file is 32 or 64-odd bytes.
const maxKeyFileSize = 1024

// KeyFromFile reads a master key from the file at path. The file holds either
// exactly 32 raw bytes or 64 hexadecimal digits, optionally surrounded by
// white space (as GenerateKeyFile writes). The file should be readable only
// by the agent's user (mode 0600); KeyFromFile does not enforce this. Errors
// name the path but never quote the file's contents.
func KeyFromFile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("seal: key file: %w", err)
	}
	defer f.Close()
	buf := make([]byte, maxKeyFileSize+1)
	defer clear(buf)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return Key{}, fmt.Errorf("seal: key file: %w", err)
	}
	data := buf[:n]
	if n == KeySize {
		return NewKey(data)
	}
	trimmed := trimSpace(data)
	if len(trimmed) == 2*KeySize {
		raw := make([]byte, KeySize)
		defer clear(raw)
		// hex errors quote the offending character; do not pass them on.
		if _, err := hex.Decode(raw, trimmed); err == nil {
			return NewKey(raw)
		}
	}
	return Key{}, fmt.Errorf("seal: key file %s: want exactly %d raw bytes or %d hex digits", path, KeySize, 2*KeySize)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && unicode.IsSpace(rune(b[0])) {
		b = b[1:]
	}
	for len(b) > 0 && unicode.IsSpace(rune(b[len(b)-1])) {
		b = b[:len(b)-1]
	}
	return b
}

// GenerateKeyFile creates a key file at path holding 32 fresh random bytes as
// 64 hex digits and a newline, with mode 0600, unless a file already exists
// there, which it leaves alone. It reports whether it created the file.
//
// The file appears atomically: it is written and synced under a temporary
// name in the same directory, then hard-linked into place, so a crash never
// leaves a truncated key file and two concurrent calls cannot both create
// one. Back the file up: without it the private keys sealed under it are lost.
func GenerateKeyFile(path string) (created bool, err error) {
	if _, err := os.Lstat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("seal: key file: %w", err)
	}
	raw := make([]byte, KeySize)
	defer clear(raw)
	if _, err := rand.Read(raw); err != nil {
		return false, fmt.Errorf("seal: key file: %w", err)
	}
	text := make([]byte, 2*KeySize+1)
	defer clear(text)
	hex.Encode(text, raw)
	text[2*KeySize] = '\n'

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".keyfile-*") // CreateTemp uses mode 0600
	if err != nil {
		return false, fmt.Errorf("seal: key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, fmt.Errorf("seal: key file: %w", err)
	}
	if _, err := tmp.Write(text); err != nil {
		tmp.Close()
		return false, fmt.Errorf("seal: key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("seal: key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("seal: key file: %w", err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("seal: key file: %w", err)
	}
	syncDir(dir)
	return true, nil
}

// syncDir makes a new directory entry durable. It is best effort: some
// platforms cannot open or sync a directory.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
