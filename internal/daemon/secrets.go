package daemon

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/store/bolt"
	"github.com/agentd/agentd/store/seal"
)

// The secrets of the configuration: the master key of the key store, the
// admin token, and passwords and tokens given inline or in files.

// masterKey chooses the source of the key that encrypts private keys at rest.
func masterKey(cfg config.Config) (bolt.MasterKey, error) {
	switch {
	case cfg.Keys.Passphrase != "":
		return bolt.Passphrase(cfg.Keys.Passphrase), nil
	case cfg.Keys.PassphraseFile != "":
		b, err := os.ReadFile(cfg.Keys.PassphraseFile)
		if err != nil {
			return bolt.MasterKey{}, fmt.Errorf("keys.passphrase_file: %w", err)
		}
		p := strings.TrimRight(string(b), "\r\n")
		if p == "" {
			return bolt.MasterKey{}, errors.New("keys.passphrase_file: the file is empty")
		}
		return bolt.Passphrase(p), nil
	case cfg.Keys.KeyFile != "":
		return bolt.KeyFile(cfg.Keys.KeyFile), nil
	}
	path := filepath.Join(cfg.DataDir, "master.key")
	if _, err := seal.GenerateKeyFile(path); err != nil {
		return bolt.MasterKey{}, fmt.Errorf("creating the master key file: %w", err)
	}
	return bolt.KeyFile(path), nil
}

// adminToken returns the configured admin token, or the one in the data
// directory, generating it (mode 0600) on first start.
func adminToken(cfg config.Config) (string, error) {
	if cfg.Admin.Token != "" {
		return cfg.Admin.Token, nil
	}
	path := cfg.Admin.TokenFile
	generate := false
	if path == "" {
		path = filepath.Join(cfg.DataDir, "admin.token")
		generate = true
	}
	b, err := os.ReadFile(path)
	if err == nil {
		t := strings.TrimSpace(string(b))
		if len(t) < 16 {
			return "", fmt.Errorf("admin token file %s: token must be at least 16 characters", path)
		}
		return t, nil
	}
	if !errors.Is(err, os.ErrNotExist) || !generate {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	t := hex.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("creating admin token file: %w", err)
	}
	if _, err := f.WriteString(t + "\n"); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	return t, f.Close()
}

// secret returns a password given inline or in a file (first line).
func secret(inline, file, key string) (string, error) {
	if inline != "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", fmt.Errorf("%s: the file is empty", key)
	}
	return p, nil
}

// readSecret returns a secret given inline (from the environment) or in a
// file (its first line).
func readSecret(inline, file, key string) (string, error) {
	if inline != "" || file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	s := string(bytes.TrimSpace(bytes.SplitN(b, []byte("\n"), 2)[0]))
	if s == "" {
		return "", fmt.Errorf("%s: the file is empty", key)
	}
	return s, nil
}
