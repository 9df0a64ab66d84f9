// Package schemas is the JSON-LD document loader of the iden3 verifier:
// documents (credential schemas, contexts) come from an on-disk cache, and
// are fetched over HTTP only when their URL starts with a prefix the
// operator allowed; anything else is an error naming the URL. Operators of
// air-gapped verifiers preload documents into the cache (Store; agentctl
// iden3 schema load).
package schemas

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/piprate/json-gold/ld"
)

// MaxDocumentBytes bounds a document, fetched or stored.
const MaxDocumentBytes = 4 << 20

// ErrNotAllowed is wrapped by the error for a document that is neither
// cached nor allowed to be fetched.
var ErrNotAllowed = errors.New("schema not cached and not allowed")

// Loader is an ld.DocumentLoader over a directory cache and an allow-list.
// Parsed documents are kept in memory once loaded. It is safe for
// concurrent use.
type Loader struct {
	dir    string
	allow  []string
	client *http.Client

	mu  sync.RWMutex
	mem map[string]*ld.RemoteDocument
}

// New returns a loader caching in dir (created when missing) that fetches
// the URLs starting with one of allow, with timeout per fetch. A nil
// client uses a plain one.
func New(dir string, allow []string, timeout time.Duration, client *http.Client) (*Loader, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("iden3 schema cache: %w", err)
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	for _, p := range allow {
		if !strings.HasPrefix(p, "https://") && !strings.HasPrefix(p, "http://") {
			return nil, fmt.Errorf("iden3.schemas.allow: %q is not an http(s) URL prefix", p)
		}
	}
	return &Loader{dir: dir, allow: allow, client: client, mem: map[string]*ld.RemoteDocument{}}, nil
}

// Dir is the cache directory.
func (l *Loader) Dir() string { return l.dir }

// file is the cache file of url: the hex SHA-256 of the URL.
func (l *Loader) file(url string) string {
	h := sha256.Sum256([]byte(url))
	return filepath.Join(l.dir, hex.EncodeToString(h[:])+".json")
}

// LoadDocument implements ld.DocumentLoader.
func (l *Loader) LoadDocument(url string) (*ld.RemoteDocument, error) {
	l.mu.RLock()
	d, ok := l.mem[url]
	l.mu.RUnlock()
	if ok {
		return d, nil
	}
	b, err := os.ReadFile(l.file(url))
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist):
		if !l.allowed(url) {
			return nil, ld.NewJsonLdError(ld.LoadingDocumentFailed,
				fmt.Errorf("%w: %s (preload it with agentctl iden3 schema load, or allow its prefix in iden3.schemas.allow)", ErrNotAllowed, url))
		}
		if b, err = l.fetch(url); err != nil {
			return nil, ld.NewJsonLdError(ld.LoadingDocumentFailed, fmt.Errorf("fetching schema %s: %w", url, err))
		}
		if err := l.write(url, b); err != nil {
			return nil, ld.NewJsonLdError(ld.LoadingDocumentFailed, err)
		}
	default:
		return nil, ld.NewJsonLdError(ld.LoadingDocumentFailed, fmt.Errorf("reading the cached schema %s: %w", url, err))
	}
	doc, err := ld.DocumentFromReader(bytes.NewReader(b))
	if err != nil {
		return nil, ld.NewJsonLdError(ld.LoadingDocumentFailed, fmt.Errorf("schema %s is not JSON: %w", url, err))
	}
	d = &ld.RemoteDocument{DocumentURL: url, Document: doc}
	l.mu.Lock()
	l.mem[url] = d
	l.mu.Unlock()
	return d, nil
}

func (l *Loader) allowed(url string) bool {
	for _, p := range l.allow {
		if strings.HasPrefix(url, p) {
			return true
		}
	}
	return false
}

func (l *Loader) fetch(url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.client.Timeout+time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/ld+json, application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxDocumentBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxDocumentBytes)
	}
	return b, nil
}

// Store puts the document of url into the cache (replacing the cached
// one): it must be a JSON document of at most MaxDocumentBytes.
func (l *Loader) Store(url string, doc []byte) error {
	if url == "" {
		return errors.New("the schema URL is required")
	}
	if len(doc) > MaxDocumentBytes {
		return fmt.Errorf("schema %s is larger than %d bytes", url, MaxDocumentBytes)
	}
	if !json.Valid(doc) {
		return fmt.Errorf("schema %s is not JSON", url)
	}
	if err := l.write(url, doc); err != nil {
		return err
	}
	l.mu.Lock()
	delete(l.mem, url)
	l.mu.Unlock()
	return nil
}

// write stores b atomically as the cache file of url, with the URL beside
// it (<hash>.url) for operators listing the cache.
func (l *Loader) write(url string, b []byte) error {
	path := l.file(url)
	if err := writeAtomic(path, b); err != nil {
		return fmt.Errorf("caching schema %s: %w", url, err)
	}
	if err := writeAtomic(strings.TrimSuffix(path, ".json")+".url", []byte(url+"\n")); err != nil {
		return fmt.Errorf("caching schema %s: %w", url, err)
	}
	return nil
}

func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
