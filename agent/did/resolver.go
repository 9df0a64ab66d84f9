package did

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/agentd/agentd/agent/keys"
)

// Errors returned (wrapped, with detail) by resolvers.
var (
	// ErrInvalidDID means the string is not a well-formed DID of its method:
	// bad syntax, bad encoding, unknown multicodec, wrong hash...
	ErrInvalidDID = errors.New("invalid DID")
	// ErrUnsupportedMethod means no resolver is configured for the DID's
	// method; the message names the method.
	ErrUnsupportedMethod = errors.New("unsupported DID method")
	// ErrNotFound means the DID is well formed but its document cannot be
	// found (an unknown did:peer short form, a did:web document that does
	// not exist).
	ErrNotFound = errors.New("DID not found")
	// ErrInvalidDocument means a document was found but is unusable: not
	// JSON, too large, or with another id than the DID resolved.
	ErrInvalidDocument = errors.New("invalid DID document")
)

// Resolver resolves a DID (not a DID URL) to its document. Implementations
// are safe for concurrent use. Callers must not modify the returned document
// unless the implementation says they own it.
type Resolver interface {
	Resolve(ctx context.Context, did string) (*Doc, error)
}

// ResolverFunc adapts a function to the Resolver interface.
type ResolverFunc func(ctx context.Context, did string) (*Doc, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ctx context.Context, did string) (*Doc, error) { return f(ctx, did) }

// ParseDID checks the DID syntax of DID Core (did:<method>:<method-specific
// id>, the method in lowercase letters and digits, the id of ALPHA / DIGIT /
// "." / "-" / "_" / ":" / pct-encoded, not ending in ":") and returns the
// method and method-specific id. A DID URL (with a path, query or fragment)
// is not a DID. Errors wrap ErrInvalidDID.
func ParseDID(did string) (method, id string, err error) {
	rest, ok := strings.CutPrefix(did, "did:")
	if !ok {
		return "", "", fmt.Errorf("%w: %.80q does not start with \"did:\"", ErrInvalidDID, did)
	}
	method, id, ok = strings.Cut(rest, ":")
	if !ok || method == "" {
		return "", "", fmt.Errorf("%w: %.80q has no method", ErrInvalidDID, did)
	}
	for i := 0; i < len(method); i++ {
		if c := method[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return "", "", fmt.Errorf("%w: method %.40q must be lowercase letters and digits", ErrInvalidDID, method)
		}
	}
	if id == "" || strings.HasSuffix(id, ":") {
		return "", "", fmt.Errorf("%w: %.80q has an empty method-specific id", ErrInvalidDID, did)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_', c == ':':
		case c == '%':
			if i+2 >= len(id) || !isHex(id[i+1]) || !isHex(id[i+2]) {
				return "", "", fmt.Errorf("%w: bad percent-encoding in %.80q", ErrInvalidDID, did)
			}
			i += 2
		case c == '/' || c == '?' || c == '#':
			return "", "", fmt.Errorf("%w: %.80q is a DID URL, not a DID", ErrInvalidDID, did)
		default:
			return "", "", fmt.Errorf("%w: character %q not allowed in %.80q", ErrInvalidDID, c, did)
		}
	}
	return method, id, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// SplitDIDURL splits a DID URL into its DID and the rest (path, query and
// fragment, from the first "/", "?" or "#"). It does not validate the DID.
func SplitDIDURL(url string) (did, rest string) {
	if i := strings.IndexAny(url, "/?#"); i >= 0 {
		return url[:i], url[i:]
	}
	return url, ""
}

// Registry resolves DIDs by dispatching on their method to the resolver
// registered for it. It is safe for concurrent use, including Register.
type Registry struct {
	mu      sync.RWMutex
	methods map[string]Resolver
}

// NewRegistry returns a registry with no methods; add them with Register.
func NewRegistry() *Registry {
	return &Registry{methods: map[string]Resolver{}}
}

// NewDefaultRegistry returns a registry for did:key, did:peer and did:web.
// A nil peer or web gets a default one (NewPeerResolver, a zero WebResolver:
// public addresses only, a timeout and a size limit).
func NewDefaultRegistry(peer *PeerResolver, web *WebResolver) *Registry {
	if peer == nil {
		peer = NewPeerResolver()
	}
	if web == nil {
		web = &WebResolver{}
	}
	r := NewRegistry()
	r.Register("key", KeyMethodResolver{})
	r.Register("peer", peer)
	r.Register("web", web)
	return r
}

// Register makes r the resolver for method (e.g. "peer"); a nil r removes
// the method.
func (reg *Registry) Register(method string, r Resolver) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if r == nil {
		delete(reg.methods, method)
		return
	}
	reg.methods[method] = r
}

// Methods lists the registered methods, sorted.
func (reg *Registry) Methods() []string {
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	out := make([]string, 0, len(reg.methods))
	for m := range reg.methods {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// Resolve checks the DID syntax and resolves it with its method's resolver.
// An unregistered method gives an error wrapping ErrUnsupportedMethod.
func (reg *Registry) Resolve(ctx context.Context, did string) (*Doc, error) {
	method, _, err := ParseDID(did)
	if err != nil {
		return nil, err
	}
	reg.mu.RLock()
	r, ok := reg.methods[method]
	reg.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: did:%s (this agent resolves %s)", ErrUnsupportedMethod, method, methodList(reg.Methods()))
	}
	return r.Resolve(ctx, did)
}

func methodList(ms []string) string {
	if len(ms) == 0 {
		return "no methods"
	}
	return "did:" + strings.Join(ms, ", did:")
}

// KeyResolver finds public keys by DID URL: it resolves the DID part with
// Resolver and looks the key up in the document. It satisfies
// envelope.KeyResolver.
type KeyResolver struct {
	Resolver Resolver
}

// NewKeyResolver returns a KeyResolver over r (typically a Cache).
func NewKeyResolver(r Resolver) *KeyResolver { return &KeyResolver{Resolver: r} }

// PublicKey returns the key kid names (an absolute DID URL with a fragment),
// with kid as its ID. The error wraps keys.ErrNotFound when the document has
// no such key and also when the DID itself is not found (then it wraps
// ErrNotFound too); other resolution errors are returned wrapped as they are.
func (kr *KeyResolver) PublicKey(ctx context.Context, kid string) (keys.PublicKey, error) {
	did, rest := SplitDIDURL(kid)
	if !strings.HasPrefix(rest, "#") || len(rest) < 2 {
		return keys.PublicKey{}, fmt.Errorf("%w: key id %.120q is not a DID URL with a fragment", ErrInvalidDID, kid)
	}
	doc, err := kr.Resolver.Resolve(ctx, did)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return keys.PublicKey{}, fmt.Errorf("%w: key %s: %w", keys.ErrNotFound, kid, err)
		}
		return keys.PublicKey{}, fmt.Errorf("key %s: %w", kid, err)
	}
	return doc.Key(kid)
}
