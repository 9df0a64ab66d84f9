package seal

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func fixedKey(t *testing.T, b byte) Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{b}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := fixedKey(t, 1)
	pt := []byte("the private scalar")
	aad := []byte("kid-1")
	a, err := k.Seal(pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.Seal(pt, aad)
	if bytes.Equal(a, b) {
		t.Fatal("sealing twice gave the same ciphertext: nonce reuse")
	}
	if len(a) != len(pt)+Overhead {
		t.Fatalf("sealed length %d, want %d", len(a), len(pt)+Overhead)
	}
	if bytes.Contains(a, pt) {
		t.Fatal("plaintext visible in sealed value")
	}
	got, err := k.Open(a, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}

	if _, err := k.Open(a, []byte("kid-2")); !errors.Is(err, ErrOpen) {
		t.Errorf("Open with other aad: %v, want ErrOpen", err)
	}
	if _, err := fixedKey(t, 2).Open(a, aad); !errors.Is(err, ErrOpen) {
		t.Errorf("Open with other key: %v, want ErrOpen", err)
	}
	for i := 1; i < len(a); i++ {
		c := bytes.Clone(a)
		c[i] ^= 0x01
		if _, err := k.Open(c, aad); !errors.Is(err, ErrOpen) {
			t.Fatalf("Open with byte %d flipped: %v, want ErrOpen", i, err)
		}
	}
	if _, err := k.Open(a[:Overhead-1], aad); !errors.Is(err, ErrOpen) {
		t.Errorf("Open of a short value: %v", err)
	}
	c := bytes.Clone(a)
	c[0] = 9
	if _, err := k.Open(c, aad); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("Open of an unknown version: %v", err)
	}
	var zero Key
	if _, err := zero.Seal(pt, aad); err == nil {
		t.Error("zero Key sealed")
	}
	if _, err := NewKey(make([]byte, 16)); err == nil {
		t.Error("NewKey accepted 16 bytes")
	}
}

func TestKeyNotFormatted(t *testing.T) {
	k := fixedKey(t, 0xab)
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		for _, v := range []any{k, &k, struct{ K Key }{k}, []Key{k}} {
			s := fmt.Sprintf(f, v)
			if !strings.Contains(s, "redacted") || strings.Contains(strings.ToLower(s), "abab") || strings.Contains(s, "171") {
				t.Errorf("Sprintf(%q, %T) = %s", f, v, s)
			}
		}
	}
}

func TestKDF(t *testing.T) {
	salt := bytes.Repeat([]byte{3}, SaltSize)
	k1, err := KeyFromPassphrase("pass phrase", salt)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := k1.Seal([]byte("x"), nil)
	k2, _ := KeyFromPassphrase("pass phrase", salt)
	if _, err := k2.Open(sealed, nil); err != nil {
		t.Fatal("same passphrase and salt gave another key")
	}
	k3, _ := KeyFromPassphrase("pass phrase", bytes.Repeat([]byte{4}, SaltSize))
	if _, err := k3.Open(sealed, nil); err == nil {
		t.Fatal("another salt gave the same key")
	}
	k4, _ := KeyFromPassphrase("pass phrasE", salt)
	if _, err := k4.Open(sealed, nil); err == nil {
		t.Fatal("another passphrase gave the same key")
	}
	// The stored parameters matter: fewer lanes is another key.
	k5, err := DeriveKey("pass phrase", KDFParams{Time: DefaultTime, MemoryKiB: DefaultMemoryKiB, Threads: 1, Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k5.Open(sealed, nil); err == nil {
		t.Fatal("other argon2 parameters gave the same key")
	}

	if _, err := KeyFromPassphrase("", salt); err == nil {
		t.Error("empty passphrase accepted")
	}
	p, err := NewKDFParams()
	if err != nil || len(p.Salt) != SaltSize || p.Validate() != nil {
		t.Fatalf("NewKDFParams = %+v, %v", p, err)
	}
	q, _ := NewKDFParams()
	if bytes.Equal(p.Salt, q.Salt) {
		t.Fatal("NewKDFParams reused a salt")
	}
	for _, bad := range []KDFParams{
		{Time: 0, MemoryKiB: 65536, Threads: 4, Salt: salt},
		{Time: 1000, MemoryKiB: 65536, Threads: 4, Salt: salt},
		{Time: 3, MemoryKiB: 1 << 30, Threads: 4, Salt: salt},
		{Time: 3, MemoryKiB: 16, Threads: 4, Salt: salt},
		{Time: 3, MemoryKiB: 65536, Threads: 0, Salt: salt},
		{Time: 3, MemoryKiB: 65536, Threads: 4, Salt: salt[:8]},
	} {
		if _, err := DeriveKey("x", bad); err == nil {
			t.Errorf("DeriveKey accepted %+v", bad)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	created, err := GenerateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("GenerateKeyFile = %v, %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %o, want 600", fi.Mode().Perm())
	}
	content, _ := os.ReadFile(path)
	if len(content) != 65 || content[64] != '\n' {
		t.Fatalf("key file is %d bytes: want 64 hex digits and a newline", len(content))
	}
	k1, err := KeyFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := k1.Seal([]byte("x"), nil)

	// A second call leaves the file alone.
	created, err = GenerateKeyFile(path)
	if err != nil || created {
		t.Fatalf("second GenerateKeyFile = %v, %v; want false, nil", created, err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, content) {
		t.Fatal("second GenerateKeyFile changed the file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}

	// The same key as 32 raw bytes, and as hex with surrounding space.
	raw, _ := hex.DecodeString(strings.TrimSpace(string(content)))
	for name, data := range map[string][]byte{
		"raw":    raw,
		"spaced": []byte("  \n" + strings.ToUpper(strings.TrimSpace(string(content))) + "\r\n\n"),
	} {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := KeyFromFile(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := k.Open(sealed, nil); err != nil {
			t.Fatalf("%s: a different key", name)
		}
	}

	// Bad files fail without quoting their contents.
	secret := strings.TrimSpace(string(content))
	for name, data := range map[string]string{
		"short":    secret[:62],
		"long":     secret + "00",
		"not hex":  "zz" + secret[2:],
		"31 bytes": string(raw[:31]),
		"empty":    "",
		"huge":     strings.Repeat(secret, 100),
	} {
		p := filepath.Join(t.TempDir(), "bad")
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := KeyFromFile(p)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), secret[2:10]) || strings.Contains(err.Error(), "zz") || strings.Contains(err.Error(), "U+") {
			t.Errorf("%s: error quotes the file: %v", name, err)
		}
	}
	if _, err := KeyFromFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestGenerateKeyFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := GenerateKeyFile(path)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if c {
				created++
			}
		}()
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d concurrent GenerateKeyFile calls created the file, want 1", created)
	}
	if _, err := KeyFromFile(path); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkDeriveKey(b *testing.B) {
	p, _ := NewKDFParams()
	for b.Loop() {
		if _, err := DeriveKey("passphrase", p); err != nil {
			b.Fatal(err)
		}
	}
}
