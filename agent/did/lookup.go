package did

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agentd/agentd/agent/keys"
)

// AbsoluteURL resolves a reference found in the document against its id:
// "#key-1" becomes "<doc id>#key-1"; absolute DID URLs are returned as they
// are.
func (d *Doc) AbsoluteURL(ref string) string {
	return absolute(d.ID, ref)
}

func absolute(base, ref string) string {
	if strings.HasPrefix(ref, "#") && base != "" {
		return base + ref
	}
	return ref
}

// PublicKey parses the method's key material. Its kid is the method's id,
// made absolute against Controller when the id is relative (use Doc.Key or
// Doc.Method to resolve against the document id instead).
//
// Types: Multikey and the 2020 suites read publicKeyMultibase,
// JsonWebKey2020 reads publicKeyJwk, Ed25519VerificationKey2018 and
// X25519KeyAgreementKey2019 read publicKeyBase58. A method of another type is
// read from publicKeyJwk or publicKeyMultibase if it has one; otherwise the
// error wraps ErrUnsupportedKeyType.
func (vm VerificationMethod) PublicKey() (keys.PublicKey, error) {
	return vm.publicKey(absolute(vm.Controller, vm.ID))
}

func (vm VerificationMethod) publicKey(kid string) (keys.PublicKey, error) {
	k, err := vm.parse(kid)
	if err != nil {
		return keys.PublicKey{}, fmt.Errorf("verification method %s (%s): %w", kid, vm.Type, err)
	}
	return k, nil
}

func (vm VerificationMethod) parse(kid string) (keys.PublicKey, error) {
	fromJWK := func() (keys.PublicKey, error) {
		if vm.PublicKeyJwk == nil {
			return keys.PublicKey{}, errors.New("no publicKeyJwk")
		}
		return vm.PublicKeyJwk.PublicKey(kid)
	}
	fromMultibase := func(want keys.Curve) (keys.PublicKey, error) {
		if vm.PublicKeyMultibase == "" {
			return keys.PublicKey{}, errors.New("no publicKeyMultibase")
		}
		if want == "" {
			return keys.ParseMultikey(vm.PublicKeyMultibase, kid)
		}
		return keys.ParseRawKey(want, vm.PublicKeyMultibase, kid)
	}
	fromBase58 := func(c keys.Curve) (keys.PublicKey, error) {
		if vm.PublicKeyBase58 == "" {
			return keys.PublicKey{}, errors.New("no publicKeyBase58")
		}
		raw, err := keys.Base58Decode(vm.PublicKeyBase58)
		if err != nil {
			return keys.PublicKey{}, fmt.Errorf("publicKeyBase58: %w", err)
		}
		return keys.NewPublic(c, kid, raw)
	}
	switch vm.Type {
	case TypeMultikey:
		return fromMultibase("")
	case TypeJSONWebKey2020, "JsonWebKey":
		return fromJWK()
	case TypeX25519KeyAgreementKey2020:
		return fromMultibase(keys.X25519)
	case TypeEd25519VerificationKey2020:
		return fromMultibase(keys.Ed25519)
	case TypeX25519KeyAgreementKey2019:
		if vm.PublicKeyBase58 == "" && vm.PublicKeyMultibase != "" {
			return fromMultibase(keys.X25519)
		}
		return fromBase58(keys.X25519)
	case TypeEd25519VerificationKey2018:
		if vm.PublicKeyBase58 == "" && vm.PublicKeyMultibase != "" {
			return fromMultibase(keys.Ed25519)
		}
		return fromBase58(keys.Ed25519)
	}
	switch {
	case vm.PublicKeyJwk != nil:
		return fromJWK()
	case vm.PublicKeyMultibase != "":
		return fromMultibase("")
	}
	return keys.PublicKey{}, ErrUnsupportedKeyType
}

// methods returns pointers to every verification method of the document:
// those in verificationMethod, then those embedded in relationships.
func (d *Doc) methods() []*VerificationMethod {
	var out []*VerificationMethod
	for i := range d.VerificationMethod {
		out = append(out, &d.VerificationMethod[i])
	}
	for _, r := range d.relationships() {
		for i := range *r.refs {
			if m := (*r.refs)[i].Method; m != nil {
				out = append(out, m)
			}
		}
	}
	return out
}

// Method returns the verification method with the given id, absolute or
// relative to the document, declared in verificationMethod or embedded in a
// verification relationship.
func (d *Doc) Method(id string) (VerificationMethod, bool) {
	want := d.AbsoluteURL(id)
	for _, m := range d.methods() {
		if d.AbsoluteURL(m.ID) == want {
			return *m, true
		}
	}
	return VerificationMethod{}, false
}

// Key returns the public key of the verification method kid (an absolute DID
// URL or a reference relative to the document), with the absolute DID URL as
// its ID. The error wraps keys.ErrNotFound when the document has no such
// method.
func (d *Doc) Key(kid string) (keys.PublicKey, error) {
	vm, ok := d.Method(kid)
	if !ok {
		return keys.PublicKey{}, fmt.Errorf("%w: %s is not in the DID document of %s", keys.ErrNotFound, kid, d.ID)
	}
	return vm.publicKey(d.AbsoluteURL(kid))
}

// KeyAgreement returns the keys of the keyAgreement relationship, in order,
// with absolute ids. Methods whose key type or curve is not supported are
// skipped; a reference to a method the document lacks, or malformed key
// material, is an error (wrapping keys.ErrNotFound for the former).
func (d *Doc) KeyAgreement() ([]keys.PublicKey, error) {
	return d.relationshipKeys("keyAgreement", d.KeyAgreementRefs)
}

// Authentication returns the keys of the authentication relationship, like
// KeyAgreement.
func (d *Doc) Authentication() ([]keys.PublicKey, error) {
	return d.relationshipKeys("authentication", d.AuthenticationRefs)
}

// AssertionMethod returns the keys of the assertionMethod relationship, like
// KeyAgreement.
func (d *Doc) AssertionMethod() ([]keys.PublicKey, error) {
	return d.relationshipKeys("assertionMethod", d.AssertionMethodRefs)
}

func (d *Doc) relationshipKeys(name string, refs []VerificationRef) ([]keys.PublicKey, error) {
	var out []keys.PublicKey
	for _, r := range refs {
		var (
			k   keys.PublicKey
			err error
		)
		if r.Method != nil {
			k, err = r.Method.publicKey(d.AbsoluteURL(r.Method.ID))
		} else {
			k, err = d.Key(r.Ref)
		}
		if errors.Is(err, keys.ErrUnsupportedCurve) || errors.Is(err, ErrUnsupportedKeyType) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// DIDCommServices returns the document's DIDComm v2 services: type
// DIDCommMessaging, with an accept list that is empty or names
// "didcomm/v2". A service with several endpoints is returned once per
// endpoint, in order. Service ids are absolute.
func (d *Doc) DIDCommServices() []Service {
	var out []Service
	for _, s := range d.Service {
		if s.Type != ServiceTypeDIDCommMessaging {
			continue
		}
		for _, e := range append([]ServiceEndpoint{s.ServiceEndpoint}, s.OtherEndpoints...) {
			if len(e.Accept) > 0 && !slices.Contains(e.Accept, "didcomm/v2") {
				continue
			}
			out = append(out, Service{ID: d.AbsoluteURL(s.ID), Type: s.Type, ServiceEndpoint: e.clone()})
		}
	}
	return out
}

// Absolute returns a copy of the document in which the ids of verification
// methods and services and the references in verification relationships are
// absolute DID URLs. Some consumers (didcomm-node among them) match key ids
// as plain strings and need this form.
func (d *Doc) Absolute() *Doc {
	c := d.Clone()
	for _, m := range c.methods() {
		m.ID = c.AbsoluteURL(m.ID)
	}
	for _, r := range c.relationships() {
		for i := range *r.refs {
			if (*r.refs)[i].Method == nil {
				(*r.refs)[i].Ref = c.AbsoluteURL((*r.refs)[i].Ref)
			}
		}
	}
	for i := range c.Service {
		c.Service[i].ID = c.AbsoluteURL(c.Service[i].ID)
	}
	return c
}

// KeyStyle selects how WithVerificationMethodType renders verification
// methods.
type KeyStyle int

const (
	// StyleMultikey renders every key as a Multikey with publicKeyMultibase.
	StyleMultikey KeyStyle = iota
	// StyleJSONWebKey2020 renders every key as a JsonWebKey2020 with publicKeyJwk.
	StyleJSONWebKey2020
	// Style2020 renders X25519 keys as X25519KeyAgreementKey2020 and Ed25519
	// keys as Ed25519VerificationKey2020 (publicKeyMultibase); keys on other
	// curves, which these suites do not cover, as JsonWebKey2020.
	Style2020
	// Style2018 renders X25519 keys as X25519KeyAgreementKey2019 and Ed25519
	// keys as Ed25519VerificationKey2018 (publicKeyBase58); keys on other
	// curves as JsonWebKey2020.
	Style2018
)

// suiteContexts are the key-suite contexts WithVerificationMethodType
// replaces.
var suiteContexts = []string{
	ContextMultikey, ContextJWS2020, ContextEd25519Suite2020, ContextX25519Suite2020,
	ContextEd25519Suite2018, ContextX25519Suite2019,
}

// WithVerificationMethodType returns a copy of the document with every
// verification method (declared or embedded) rendered in the given style,
// and the key-suite entries of @context replaced by the ones the new types
// need, in order of first use, after the DID Core context. Ids, controllers
// and references are unchanged. The DIDComm reference implementation
// (didcomm-node / didcomm-rust) rejects Multikey: give it StyleJSONWebKey2020
// or Style2020, and usually Absolute ids.
func (d *Doc) WithVerificationMethodType(style KeyStyle) (*Doc, error) {
	c := d.Clone()
	var need []string
	for _, m := range c.methods() {
		k, err := m.publicKey(c.AbsoluteURL(m.ID))
		if err != nil {
			return nil, err
		}
		nm, ctx := renderMethod(k, style)
		nm.ID, nm.Controller = m.ID, m.Controller
		*m = nm
		if !slices.Contains(need, ctx) {
			need = append(need, ctx)
		}
	}
	ctx := []any{ContextDIDv1}
	for _, n := range need {
		ctx = append(ctx, n)
	}
	for _, v := range c.Context {
		if s, ok := v.(string); ok && (s == ContextDIDv1 || slices.Contains(suiteContexts, s)) {
			continue
		}
		ctx = append(ctx, v)
	}
	c.Context = ctx
	return c, nil
}

// renderMethod renders k as a verification method in the style, without id
// or controller, and returns the context its type needs.
func renderMethod(k keys.PublicKey, style KeyStyle) (VerificationMethod, string) {
	jwk := func() (VerificationMethod, string) {
		j := k.JWK()
		return VerificationMethod{Type: TypeJSONWebKey2020, PublicKeyJwk: &j}, ContextJWS2020
	}
	switch style {
	case StyleMultikey:
		return VerificationMethod{Type: TypeMultikey, PublicKeyMultibase: k.Multikey()}, ContextMultikey
	case Style2020:
		switch k.Curve {
		case keys.X25519:
			return VerificationMethod{Type: TypeX25519KeyAgreementKey2020, PublicKeyMultibase: k.Multikey()}, ContextX25519Suite2020
		case keys.Ed25519:
			return VerificationMethod{Type: TypeEd25519VerificationKey2020, PublicKeyMultibase: k.Multikey()}, ContextEd25519Suite2020
		}
	case Style2018:
		switch k.Curve {
		case keys.X25519:
			return VerificationMethod{Type: TypeX25519KeyAgreementKey2019, PublicKeyBase58: keys.Base58Encode(k.Raw)}, ContextX25519Suite2019
		case keys.Ed25519:
			return VerificationMethod{Type: TypeEd25519VerificationKey2018, PublicKeyBase58: keys.Base58Encode(k.Raw)}, ContextEd25519Suite2018
		}
	}
	return jwk()
}
