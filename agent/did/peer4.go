package did

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/agentd/agentd/agent/keys"
)

// maxPeer4Len bounds the encoded document of a did:peer:4 long form (base58
// decoding is quadratic in its length).
const maxPeer4Len = 64 << 10

// jsonMulticodec is the varint of multicodec 0x0200 (json).
var jsonMulticodec = []byte{0x80, 0x04}

// NewPeer4 encodes an input document as a did:peer:4 and returns its long
// form ("did:peer:4<hash>:<encoded document>") and short form
// ("did:peer:4<hash>"). The input document must have no id, and the ids of
// its verification methods and services must be relative ("#..."); leave out
// the controller of methods the DID controls. The encoded document is the
// compact JSON of doc as Doc.MarshalJSON writes it (members in its fixed
// order, no HTML escaping), multicodec json, base58btc; the hash is the
// sha2-256 multihash of that string, base58btc.
func NewPeer4(doc *Doc) (long, short string, err error) {
	if doc == nil {
		return "", "", errors.New("did:peer:4: nil input document")
	}
	if doc.ID != "" {
		return "", "", errors.New("did:peer:4: the input document must not have an id")
	}
	for _, m := range doc.methods() {
		if !strings.HasPrefix(m.ID, "#") {
			return "", "", fmt.Errorf("did:peer:4: verification method id %q must be relative (#...)", m.ID)
		}
	}
	for _, s := range doc.Service {
		if s.ID != "" && !strings.HasPrefix(s.ID, "#") {
			return "", "", fmt.Errorf("did:peer:4: service id %q must be relative (#...)", s.ID)
		}
	}
	raw, err := marshalNoEscape(doc)
	if err != nil {
		return "", "", fmt.Errorf("did:peer:4: %w", err)
	}
	enc := "z" + keys.Base58Encode(append(append([]byte(nil), jsonMulticodec...), raw...))
	short = "did:peer:4" + multihashSHA256(enc)
	return short + ":" + enc, short, nil
}

// Peer4ShortForm returns the short form of a did:peer:4 long form, after
// checking its hash.
func Peer4ShortForm(long string) (string, error) {
	short, _, err := splitPeer4(long)
	return short, err
}

// splitPeer4 checks a did:peer:4 long form's hash and returns its short form
// and decoded input document.
func splitPeer4(did string) (short string, input []byte, err error) {
	rest, ok := strings.CutPrefix(did, "did:peer:4")
	if !ok {
		return "", nil, fmt.Errorf("%w: %.80q is not a did:peer:4", ErrInvalidDID, did)
	}
	hash, enc, ok := strings.Cut(rest, ":")
	if err := checkMultihash(hash); err != nil {
		return "", nil, fmt.Errorf("%w: did:peer:4: %w", ErrInvalidDID, err)
	}
	if !ok {
		return "", nil, fmt.Errorf("%w: %s is a did:peer:4 short form, not a long form", ErrInvalidDID, did)
	}
	if len(enc) > maxPeer4Len {
		return "", nil, fmt.Errorf("%w: did:peer:4 document longer than %d characters", ErrInvalidDID, maxPeer4Len)
	}
	if multihashSHA256(enc) != hash {
		return "", nil, fmt.Errorf("%w: did:peer:4 hash does not match the encoded document", ErrInvalidDID)
	}
	if !strings.HasPrefix(enc, "z") {
		return "", nil, fmt.Errorf("%w: did:peer:4 document must be base58btc multibase (z...)", ErrInvalidDID)
	}
	b, err := keys.Base58Decode(enc[1:])
	if err != nil {
		return "", nil, fmt.Errorf("%w: did:peer:4 document: %w", ErrInvalidDID, err)
	}
	body, ok := strings.CutPrefix(string(b), string(jsonMulticodec))
	if !ok {
		return "", nil, fmt.Errorf("%w: did:peer:4 document is not multicodec json (0x0200)", ErrInvalidDID)
	}
	return "did:peer:4" + hash, []byte(body), nil
}

// decodePeer4 returns the input document of a long form, and its short form.
func decodePeer4(long string) (*Doc, string, error) {
	short, body, err := splitPeer4(long)
	if err != nil {
		return nil, "", err
	}
	var in Doc
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, "", fmt.Errorf("%w: did:peer:4 document: %w", ErrInvalidDID, err)
	}
	if in.ID != "" {
		return nil, "", fmt.Errorf("%w: did:peer:4 input document has an id", ErrInvalidDID)
	}
	return &in, short, nil
}

// ResolvePeer4 resolves a did:peer:4 long form: it checks the hash, decodes
// the input document and contextualizes it: id set to the DID, the short
// form appended to alsoKnownAs, controller set to the DID on verification
// methods without one. References stay relative. A short form cannot be
// resolved from itself: that gives an error wrapping ErrNotFound (use a
// PeerResolver that has seen the long form). Other errors wrap
// ErrInvalidDID.
func ResolvePeer4(did string) (*Doc, error) {
	if _, _, err := ParseDID(did); err != nil {
		return nil, err
	}
	if rest, ok := strings.CutPrefix(did, "did:peer:4"); ok && !strings.Contains(rest, ":") {
		if err := checkMultihash(rest); err != nil {
			return nil, fmt.Errorf("%w: did:peer:4: %w", ErrInvalidDID, err)
		}
		return nil, fmt.Errorf("%w: %s is a did:peer:4 short form; it can be resolved only after its long form has been seen (PeerResolver.Remember)", ErrNotFound, did)
	}
	in, short, err := decodePeer4(did)
	if err != nil {
		return nil, err
	}
	return contextualize(in, did, short), nil
}

// contextualize turns a did:peer:4 input document into the document of did,
// also known as other.
func contextualize(in *Doc, did, other string) *Doc {
	doc := in.Clone()
	doc.ID = did
	found := false
	for _, a := range doc.AlsoKnownAs {
		found = found || a == other
	}
	if !found {
		doc.AlsoKnownAs = append(doc.AlsoKnownAs, other)
	}
	for _, m := range doc.methods() {
		if m.Controller == "" {
			m.Controller = did
		}
	}
	return doc
}

func (r *PeerResolver) resolvePeer4Short(ctx context.Context, did string) (*Doc, error) {
	if err := checkMultihash(strings.TrimPrefix(did, "did:peer:4")); err != nil {
		return nil, fmt.Errorf("%w: did:peer:4: %w", ErrInvalidDID, err)
	}
	long, err := r.lookup(ctx, did)
	if err != nil {
		return nil, err
	}
	in, short, err := decodePeer4(long)
	if err != nil {
		return nil, err
	}
	if short != did {
		return nil, fmt.Errorf("did:peer:4 store returned %.80q, which is not the long form of %s", long, did)
	}
	return contextualize(in, did, long), nil
}
