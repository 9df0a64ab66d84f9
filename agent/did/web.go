package did

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/netguard"
)

// Defaults of WebResolver.
const (
	DefaultWebTimeout  = 5 * time.Second
	DefaultWebMaxBytes = 1 << 20
)

// WebResolver resolves did:web DIDs over HTTPS. The zero value works and is
// safe to point at a host a stranger chose: it connects directly (no
// HTTP(S)_PROXY) and only to public addresses, checked when each connection
// is made (netguard), redirects included. Set AllowPrivate for did:web hosts
// on loopback or private networks, or Client to inject a transport (tests
// use httptest.NewTLSServer's client); an injected client is used as it is,
// without the address rule. A WebResolver must not be copied after first use.
type WebResolver struct {
	// Client makes the requests; nil means a client with the address rule.
	// Redirects are followed only to https URLs, at most 5, unless the client
	// has its own CheckRedirect.
	Client *http.Client
	// AllowPrivate lets the default client connect to loopback, private,
	// link-local and other non-public addresses (config did.web_allow_private).
	AllowPrivate bool
	// Timeout bounds one resolution (DefaultWebTimeout if zero).
	Timeout time.Duration
	// MaxBytes bounds the document size (DefaultWebMaxBytes if zero).
	MaxBytes int64

	// tlsConfig, when set, is the default client's TLS configuration
	// (tests trust their server's certificate with it).
	tlsConfig *tls.Config

	once      sync.Once
	transport *http.Transport
}

// WebURL returns the HTTPS URL of a did:web document:
// did:web:example.com → https://example.com/.well-known/did.json,
// did:web:example.com:user:alice → https://example.com/user/alice/did.json,
// did:web:localhost%3A8443 → https://localhost:8443/.well-known/did.json.
// Errors wrap ErrInvalidDID.
func WebURL(did string) (string, error) {
	method, id, err := ParseDID(did)
	if err != nil {
		return "", err
	}
	if method != "web" {
		return "", fmt.Errorf("%w: %.80q is not a did:web", ErrInvalidDID, did)
	}
	parts := strings.Split(id, ":")
	host, err := url.PathUnescape(parts[0])
	if err != nil {
		return "", fmt.Errorf("%w: did:web host: %w", ErrInvalidDID, err)
	}
	if err := checkWebHost(host); err != nil {
		return "", fmt.Errorf("%w: did:web: %w", ErrInvalidDID, err)
	}
	if len(parts) == 1 {
		return "https://" + host + "/.well-known/did.json", nil
	}
	var path strings.Builder
	for _, p := range parts[1:] {
		seg, err := url.PathUnescape(p)
		if err != nil {
			return "", fmt.Errorf("%w: did:web path: %w", ErrInvalidDID, err)
		}
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "/\\") {
			return "", fmt.Errorf("%w: did:web path segment %q", ErrInvalidDID, seg)
		}
		path.WriteString("/")
		path.WriteString(url.PathEscape(seg))
	}
	return "https://" + host + path.String() + "/did.json", nil
}

// checkWebHost accepts a DNS name or IPv4 address with an optional port.
func checkWebHost(host string) error {
	name, port, hasPort := strings.Cut(host, ":")
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 || strings.HasPrefix(port, "+") {
			return fmt.Errorf("bad port %q", port)
		}
	}
	if name == "" || len(name) > 253 {
		return fmt.Errorf("bad host %q", host)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("bad host %q", host)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("bad host %q", host)
			}
		}
	}
	return nil
}

// Resolve fetches the did:web document over HTTPS and checks that its id is
// the DID. A 404 or 410 response gives ErrNotFound; a document that is not
// JSON, larger than MaxBytes or has another id gives ErrInvalidDocument.
func (w *WebResolver) Resolve(ctx context.Context, did string) (*Doc, error) {
	u, err := WebURL(did)
	if err != nil {
		return nil, err
	}
	timeout, max := w.Timeout, w.MaxBytes
	if timeout <= 0 {
		timeout = DefaultWebTimeout
	}
	if max <= 0 {
		max = DefaultWebMaxBytes
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("did:web %s: %w", did, err)
	}
	req.Header.Set("Accept", "application/did+json, application/did+ld+json, application/json")
	resp, err := w.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("did:web %s: %w", did, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, fmt.Errorf("%w: did:web %s: GET %s: %s", ErrNotFound, did, u, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("did:web %s: GET %s: %s", did, u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("did:web %s: reading %s: %w", did, u, err)
	}
	if err := ctx.Err(); err != nil {
		// net/http may hand back a response that raced the cancellation (the
		// server answering the TLS close_notify): the deadline still wins.
		return nil, fmt.Errorf("did:web %s: %w", did, err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("%w: did:web %s: document larger than %d bytes", ErrInvalidDocument, did, max)
	}
	var doc Doc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: did:web %s: %w", ErrInvalidDocument, did, err)
	}
	if doc.ID != did {
		return nil, fmt.Errorf("%w: did:web %s: document id is %.120q", ErrInvalidDocument, did, doc.ID)
	}
	return &doc, nil
}

func (w *WebResolver) client() *http.Client {
	var c *http.Client
	if w.Client != nil {
		cc := *w.Client
		c = &cc
	} else {
		c = &http.Client{Transport: w.guardedTransport()}
	}
	if c.CheckRedirect == nil {
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to non-https URL %s", req.URL.Redacted())
			}
			return nil
		}
	}
	return c
}

// guardedTransport is the default client's transport, made once: direct
// connections through a netguard dialer, bounded set-up times and headers.
func (w *WebResolver) guardedTransport() *http.Transport {
	w.once.Do(func() {
		timeout := w.Timeout
		if timeout <= 0 {
			timeout = DefaultWebTimeout
		}
		w.transport = &http.Transport{
			// No proxy: a proxy would make the connection for us, out of
			// reach of the address rule.
			Proxy:                  nil,
			DialContext:            netguard.Policy{AllowPrivate: w.AllowPrivate}.DialContext(timeout),
			TLSClientConfig:        w.tlsConfig,
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
			MaxIdleConns:           64,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        30 * time.Second,
			ForceAttemptHTTP2:      true,
		}
	})
	return w.transport
}
