package did

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/agentd/agentd/agent/keys"
)

// Purpose is a did:peer:2 purpose code: the verification relationship a key
// element of the DID goes to.
type Purpose byte

// The did:peer:2 key purpose codes. 'S' (service) is not a key purpose.
const (
	PurposeAssertion            Purpose = 'A'
	PurposeKeyAgreement         Purpose = 'E'
	PurposeAuthentication       Purpose = 'V'
	PurposeCapabilityInvocation Purpose = 'I'
	PurposeCapabilityDelegation Purpose = 'D'
)

// PeerKey is one key of a did:peer:2 with the relationship it serves.
type PeerKey struct {
	Purpose Purpose
	Key     keys.PublicKey
}

// did:peer:2 service abbreviations (peer DID method specification, "Common
// String Abbreviations").
var (
	peer2Abbrev     = map[string]string{"type": "t", "serviceEndpoint": "s", "routingKeys": "r", "accept": "a"}
	peer2AbbrevType = map[string]string{ServiceTypeDIDCommMessaging: "dm"}
	peer2Expand     = invert(peer2Abbrev)
	peer2ExpandType = invert(peer2AbbrevType)
)

func invert(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

// NewPeer2 returns the did:peer:2 with the key agreement keys (purpose E)
// first, then the authentication keys (V), then the services (S), in the
// given order, so the resolved document has #key-1... in that order. Use
// NewPeer2Keys to choose the order or other purposes.
func NewPeer2(agreement, authentication []keys.PublicKey, services []Service) (string, error) {
	ks := make([]PeerKey, 0, len(agreement)+len(authentication))
	for _, k := range agreement {
		ks = append(ks, PeerKey{PurposeKeyAgreement, k})
	}
	for _, k := range authentication {
		ks = append(ks, PeerKey{PurposeAuthentication, k})
	}
	return NewPeer2Keys(ks, services)
}

// NewPeer2Keys encodes a did:peer:2 (current "clarified" encoding): one
// ".<purpose><multikey>" element per key in order, then one ".S<base64url>"
// element per service: the service JSON in the current object form with
// type, serviceEndpoint, routingKeys, accept and DIDCommMessaging
// abbreviated to t, s, r, a and dm, base64url without padding. Service ids
// are optional and must be relative ("#...").
func NewPeer2Keys(ks []PeerKey, services []Service) (string, error) {
	if len(ks) == 0 && len(services) == 0 {
		return "", errors.New("did:peer:2 needs at least one key or service")
	}
	var b strings.Builder
	b.WriteString("did:peer:2")
	for i, k := range ks {
		if err := checkPurpose(k.Purpose, k.Key.Curve); err != nil {
			return "", fmt.Errorf("did:peer:2 key %d: %w", i, err)
		}
		if _, err := keys.NewPublic(k.Key.Curve, "", k.Key.Raw); err != nil {
			return "", fmt.Errorf("did:peer:2 key %d: %w", i, err)
		}
		b.WriteByte('.')
		b.WriteByte(byte(k.Purpose))
		b.WriteString(k.Key.Multikey())
	}
	for i, s := range services {
		if s.ID != "" && !strings.HasPrefix(s.ID, "#") {
			return "", fmt.Errorf("did:peer:2 service %d: id %q must be relative (#...)", i, s.ID)
		}
		enc, err := encodePeer2Service(s)
		if err != nil {
			return "", fmt.Errorf("did:peer:2 service %d: %w", i, err)
		}
		b.WriteString(".S")
		b.WriteString(enc)
	}
	return b.String(), nil
}

// checkPurpose rejects keys that cannot serve their purpose: E needs a key
// agreement curve, the others a signing curve.
func checkPurpose(p Purpose, c keys.Curve) error {
	switch p {
	case PurposeKeyAgreement:
		if !c.IsKeyAgreement() {
			return fmt.Errorf("%w: a %s key cannot be a key agreement key", keys.ErrUnsupportedCurve, c)
		}
	case PurposeAssertion, PurposeAuthentication, PurposeCapabilityInvocation, PurposeCapabilityDelegation:
		if !c.IsSigning() {
			return fmt.Errorf("%w: a %s key cannot be a verification key (purpose %c)", keys.ErrUnsupportedCurve, c, p)
		}
	default:
		return fmt.Errorf("unknown purpose code %q", rune(p))
	}
	return nil
}

func encodePeer2Service(s Service) (string, error) {
	raw, err := s.MarshalJSON()
	if err != nil {
		return "", err
	}
	tree, err := decodeOrdered(raw)
	if err != nil {
		return "", err
	}
	abbr, err := encodeOrderedBytes(renameKeys(tree, peer2Abbrev, peer2AbbrevType, "t"))
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(abbr), nil
}

// ResolvePeer2 builds the document of a did:peer:2 as the peer DID method
// specification renders it: contexts DID v1 and Multikey; alsoKnownAs the
// did:peer:3 form; one Multikey verification method per key element with id
// "#key-N" (N from 1, in DID order over key elements only) and controller
// the DID, referenced as "#key-N" from the relationship of its purpose code
// (A, E, V, I, D); and one service per S element, abbreviations expanded.
// A service without a relative id gets "#service", then "#service-1",
// "#service-2"... counting only such services. The legacy service encodings
// are read too: serviceEndpoint as a string with routingKeys and accept
// beside it, and several services as one JSON list. Errors wrap
// ErrInvalidDID.
func ResolvePeer2(did string) (*Doc, error) {
	if _, _, err := ParseDID(did); err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(did, "did:peer:2")
	if !ok {
		return nil, fmt.Errorf("%w: %.80q is not a did:peer:2", ErrInvalidDID, did)
	}
	if !strings.HasPrefix(rest, ".") {
		return nil, fmt.Errorf("%w: did:peer:2 must continue with \".\"", ErrInvalidDID)
	}
	p3, err := Peer3(did)
	if err != nil {
		return nil, err
	}
	doc := &Doc{Context: []any{ContextDIDv1, ContextMultikey}, ID: did, AlsoKnownAs: []string{p3}}
	nkey, nsvc := 0, 0
	for i, el := range strings.Split(rest[1:], ".") {
		if el == "" {
			return nil, fmt.Errorf("%w: did:peer:2 element %d is empty", ErrInvalidDID, i)
		}
		code, val := Purpose(el[0]), el[1:]
		if code == 'S' {
			svcs, err := decodePeer2Service(val)
			if err != nil {
				return nil, fmt.Errorf("%w: did:peer:2 element %d: %w", ErrInvalidDID, i, err)
			}
			for _, s := range svcs {
				if !strings.HasPrefix(s.ID, "#") {
					s.ID = "#service"
					if nsvc > 0 {
						s.ID += "-" + strconv.Itoa(nsvc)
					}
					nsvc++
				}
				doc.Service = append(doc.Service, s)
			}
			continue
		}
		var rel *[]VerificationRef
		switch code {
		case PurposeAssertion:
			rel = &doc.AssertionMethodRefs
		case PurposeKeyAgreement:
			rel = &doc.KeyAgreementRefs
		case PurposeAuthentication:
			rel = &doc.AuthenticationRefs
		case PurposeCapabilityInvocation:
			rel = &doc.CapabilityInvocationRefs
		case PurposeCapabilityDelegation:
			rel = &doc.CapabilityDelegationRefs
		default:
			return nil, fmt.Errorf("%w: did:peer:2 element %d has unknown purpose code %q", ErrInvalidDID, i, rune(code))
		}
		nkey++
		id := "#key-" + strconv.Itoa(nkey)
		k, err := keys.ParseMultikey(val, did+id)
		if err != nil {
			return nil, fmt.Errorf("%w: did:peer:2 element %d: %w", ErrInvalidDID, i, err)
		}
		if err := checkPurpose(code, k.Curve); err != nil {
			return nil, fmt.Errorf("%w: did:peer:2 element %d: %w", ErrInvalidDID, i, err)
		}
		doc.VerificationMethod = append(doc.VerificationMethod,
			VerificationMethod{ID: id, Type: TypeMultikey, Controller: did, PublicKeyMultibase: val})
		*rel = append(*rel, VerificationRef{Ref: id})
	}
	return doc, nil
}

// decodePeer2Service decodes the value of an S element: base64url JSON of an
// abbreviated service, or (legacy) of a list of them.
func decodePeer2Service(val string) ([]Service, error) {
	raw, err := base64.RawURLEncoding.DecodeString(val)
	if err != nil {
		return nil, fmt.Errorf("service is not base64url: %w", err)
	}
	tree, err := decodeOrdered(raw)
	if err != nil {
		return nil, fmt.Errorf("service is not JSON: %w", err)
	}
	items, ok := tree.([]any)
	if !ok {
		items = []any{tree}
	}
	var out []Service
	for _, it := range items {
		if _, ok := it.(object); !ok {
			return nil, errors.New("service is not a JSON object")
		}
		full, err := encodeOrderedBytes(renameKeys(it, peer2Expand, peer2ExpandType, "type"))
		if err != nil {
			return nil, err
		}
		var s Service
		if err := s.UnmarshalJSON(full); err != nil {
			return nil, err
		}
		if s.Type == "" {
			return nil, errors.New("service has no type")
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("empty service list")
	}
	return out, nil
}

// Peer3 returns the did:peer:3 short form of a did:peer:2: "did:peer:3z" and
// the base58btc multihash (sha2-256) of the DID without its "did:peer:2"
// prefix.
func Peer3(peer2 string) (string, error) {
	rest, ok := strings.CutPrefix(peer2, "did:peer:2")
	if !ok || rest == "" {
		return "", fmt.Errorf("%w: %.80q is not a did:peer:2", ErrInvalidDID, peer2)
	}
	return "did:peer:3" + multihashSHA256(rest), nil
}

// multihashSHA256 returns "z" + base58btc(0x12 0x20 || SHA-256(s)).
func multihashSHA256(s string) string {
	h := sha256.Sum256([]byte(s))
	return "z" + keys.Base58Encode(append([]byte{0x12, 0x20}, h[:]...))
}

// checkMultihash checks that s is "z" + base58btc of a sha2-256 multihash.
func checkMultihash(s string) error {
	if !strings.HasPrefix(s, "z") {
		return errors.New("hash must be base58btc multibase (z...)")
	}
	if len(s) > 60 {
		return errors.New("hash is too long for a sha2-256 multihash")
	}
	b, err := keys.Base58Decode(s[1:])
	if err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	if len(b) != 34 || b[0] != 0x12 || b[1] != 0x20 {
		return errors.New("hash is not a sha2-256 multihash")
	}
	return nil
}

// ShortFormStore remembers the long DIDs behind did:peer short forms: the
// did:peer:2 of a did:peer:3, the long form of a did:peer:4 short form. A
// short form alone does not say what its document is; it can be resolved
// only after its long form has been seen. Implementations are safe for
// concurrent use.
type ShortFormStore interface {
	// LongForm returns the long DID for short, and whether it is known.
	LongForm(ctx context.Context, short string) (long string, ok bool, err error)
	// PutLongForm records that short abbreviates long.
	PutLongForm(ctx context.Context, short, long string) error
}

// MemoryShortFormStore is an in-memory ShortFormStore holding at most Max
// entries; the oldest entry is dropped first. Use NewMemoryShortFormStore.
type MemoryShortFormStore struct {
	mu    sync.Mutex
	max   int
	m     map[string]string
	order []string
}

// NewMemoryShortFormStore returns an empty store of at most max entries
// (max <= 0 means 10000).
func NewMemoryShortFormStore(max int) *MemoryShortFormStore {
	if max <= 0 {
		max = 10000
	}
	return &MemoryShortFormStore{max: max, m: map[string]string{}}
}

// LongForm implements ShortFormStore.
func (s *MemoryShortFormStore) LongForm(_ context.Context, short string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.m[short]
	return l, ok, nil
}

// PutLongForm implements ShortFormStore.
func (s *MemoryShortFormStore) PutLongForm(_ context.Context, short, long string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[short]; ok {
		s.m[short] = long
		return nil
	}
	for len(s.order) >= s.max {
		delete(s.m, s.order[0])
		s.order = s.order[1:]
	}
	s.m[short] = long
	s.order = append(s.order, short)
	return nil
}

// PeerResolver resolves did:peer DIDs: numalgo 0 (as did:key), 2, 3 and 4.
// did:peer:3 and did:peer:4 short forms are looked up in Store; every
// did:peer:2 and did:peer:4 long form the resolver resolves or is told about
// with Remember is recorded there. With a nil Store short forms give
// ErrNotFound. Numalgo 1 is not supported (ErrUnsupportedMethod).
type PeerResolver struct {
	Store ShortFormStore
}

// NewPeerResolver returns a PeerResolver with an in-memory store of 10000
// short forms.
func NewPeerResolver() *PeerResolver {
	return &PeerResolver{Store: NewMemoryShortFormStore(0)}
}

// Remember validates a did:peer:2 or did:peer:4 long form and records its
// short form, so that the short form can be resolved later.
func (r *PeerResolver) Remember(ctx context.Context, long string) error {
	var short string
	var err error
	switch {
	case strings.HasPrefix(long, "did:peer:2"):
		if _, err = ResolvePeer2(long); err == nil {
			short, err = Peer3(long)
		}
	case strings.HasPrefix(long, "did:peer:4"):
		if _, err = ResolvePeer4(long); err == nil {
			short, err = Peer4ShortForm(long)
		}
	default:
		err = fmt.Errorf("%w: only did:peer:2 and did:peer:4 long forms have short forms, got %.80q", ErrInvalidDID, long)
	}
	if err != nil {
		return err
	}
	return r.remember(ctx, short, long)
}

func (r *PeerResolver) remember(ctx context.Context, short, long string) error {
	if r.Store == nil {
		return nil
	}
	return r.Store.PutLongForm(ctx, short, long)
}

// Resolve resolves a did:peer.
func (r *PeerResolver) Resolve(ctx context.Context, did string) (*Doc, error) {
	method, id, err := ParseDID(did)
	if err != nil {
		return nil, err
	}
	if method != "peer" || id == "" {
		return nil, fmt.Errorf("%w: %.80q is not a did:peer", ErrInvalidDID, did)
	}
	switch id[0] {
	case '0':
		return keyDoc("did:peer:0", did, id[1:])
	case '2':
		doc, err := ResolvePeer2(did)
		if err != nil {
			return nil, err
		}
		if err := r.remember(ctx, doc.AlsoKnownAs[0], did); err != nil {
			return nil, err
		}
		return doc, nil
	case '3':
		return r.resolvePeer3(ctx, did)
	case '4':
		if strings.Contains(id, ":") {
			doc, err := ResolvePeer4(did)
			if err != nil {
				return nil, err
			}
			hash, _, _ := strings.Cut(id[1:], ":")
			if err := r.remember(ctx, "did:peer:4"+hash, did); err != nil {
				return nil, err
			}
			return doc, nil
		}
		return r.resolvePeer4Short(ctx, did)
	case '1':
		return nil, fmt.Errorf("%w: did:peer numalgo 1 (this agent resolves did:peer:0, 2, 3 and 4)", ErrUnsupportedMethod)
	}
	return nil, fmt.Errorf("%w: unknown did:peer numalgo %q", ErrInvalidDID, id[0])
}

func (r *PeerResolver) lookup(ctx context.Context, short string) (string, error) {
	if r.Store != nil {
		long, ok, err := r.Store.LongForm(ctx, short)
		if err != nil {
			return "", fmt.Errorf("did:peer short form store: %w", err)
		}
		if ok {
			return long, nil
		}
	}
	return "", fmt.Errorf("%w: %s is a short form; it can be resolved only after its long form has been seen (PeerResolver.Remember)", ErrNotFound, short)
}

func (r *PeerResolver) resolvePeer3(ctx context.Context, did string) (*Doc, error) {
	if err := checkMultihash(strings.TrimPrefix(did, "did:peer:3")); err != nil {
		return nil, fmt.Errorf("%w: did:peer:3: %w", ErrInvalidDID, err)
	}
	long, err := r.lookup(ctx, did)
	if err != nil {
		return nil, err
	}
	if p3, err := Peer3(long); err != nil || p3 != did {
		return nil, fmt.Errorf("did:peer:3 store returned %.80q, which does not hash to %s", long, did)
	}
	doc, err := ResolvePeer2(long)
	if err != nil {
		return nil, err
	}
	// Rebase on the short form: ids stay relative, so only the document id,
	// controllers and alsoKnownAs change.
	doc.ID = did
	doc.AlsoKnownAs = []string{long}
	for _, m := range doc.methods() {
		if m.Controller == long {
			m.Controller = did
		}
	}
	return doc, nil
}
