// Package did holds DID documents, the DID methods the agent speaks (did:peer
// numalgo 0, 2, 3 and 4, did:key and did:web) and the resolvers that turn a DID
// into its document: a Registry dispatching by method, a Cache in front of
// it, and a KeyResolver that finds the public key a DID URL names.
//
// Documents keep references as written: a resolved did:peer:2 document says
// "#key-1", as the method specification renders it. Every lookup (Doc.Key,
// Doc.KeyAgreement, Doc.Method...) resolves relative references against the
// document id, so absolute DID URLs find relative entries and the returned
// keys carry absolute ids. Doc.Absolute renders a copy with absolute ids for
// consumers that compare ids as strings.
package did

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/agentd/agentd/agent/keys"
)

// JSON-LD contexts used in the documents this package renders.
const (
	ContextDIDv1            = "https://www.w3.org/ns/did/v1"
	ContextMultikey         = "https://w3id.org/security/multikey/v1"
	ContextJWS2020          = "https://w3id.org/security/suites/jws-2020/v1"
	ContextEd25519Suite2020 = "https://w3id.org/security/suites/ed25519-2020/v1"
	ContextX25519Suite2020  = "https://w3id.org/security/suites/x25519-2020/v1"
	ContextEd25519Suite2018 = "https://w3id.org/security/suites/ed25519-2018/v1"
	ContextX25519Suite2019  = "https://w3id.org/security/suites/x25519-2019/v1"
)

// ServiceTypeDIDCommMessaging is the service type of DIDComm v2 endpoints.
const ServiceTypeDIDCommMessaging = "DIDCommMessaging"

// Verification method types understood by VerificationMethod.PublicKey.
const (
	TypeMultikey                   = "Multikey"
	TypeJSONWebKey2020             = "JsonWebKey2020"
	TypeX25519KeyAgreementKey2020  = "X25519KeyAgreementKey2020"
	TypeEd25519VerificationKey2020 = "Ed25519VerificationKey2020"
	TypeX25519KeyAgreementKey2019  = "X25519KeyAgreementKey2019"
	TypeEd25519VerificationKey2018 = "Ed25519VerificationKey2018"
)

// ErrUnsupportedKeyType is returned for a verification method whose type or
// key material this package cannot turn into a keys.PublicKey.
var ErrUnsupportedKeyType = errors.New("unsupported verification method type")

// Doc is a DID document (W3C DID Core, JSON representation).
//
// The verification relationship fields carry a Refs suffix so that the
// methods KeyAgreement, Authentication and AssertionMethod can return the
// parsed keys. Members the model does not know are kept in Extra and written
// back after the known ones.
type Doc struct {
	// Context is the JSON-LD @context: strings, or json.RawMessage for
	// embedded context objects. A single string is read as a one-element list.
	Context                  []any
	ID                       string
	AlsoKnownAs              []string
	Controller               []string
	VerificationMethod       []VerificationMethod
	AuthenticationRefs       []VerificationRef
	AssertionMethodRefs      []VerificationRef
	KeyAgreementRefs         []VerificationRef
	CapabilityInvocationRefs []VerificationRef
	CapabilityDelegationRefs []VerificationRef
	Service                  []Service
	// Extra holds the members not listed above, by name.
	Extra map[string]json.RawMessage
}

// VerificationMethod is a public key entry of a DID document. Exactly one of
// the key material fields is normally set: PublicKeyJwk (JsonWebKey2020),
// PublicKeyMultibase (Multikey and the 2020 suites) or PublicKeyBase58 (the
// 2018/2019 suites).
type VerificationMethod struct {
	ID                 string    `json:"id"`
	Type               string    `json:"type"`
	Controller         string    `json:"controller,omitempty"`
	PublicKeyJwk       *keys.JWK `json:"publicKeyJwk,omitempty"`
	PublicKeyMultibase string    `json:"publicKeyMultibase,omitempty"`
	PublicKeyBase58    string    `json:"publicKeyBase58,omitempty"`
}

// VerificationRef is one entry of a verification relationship
// (authentication, keyAgreement...): either a reference (a DID URL, possibly
// relative such as "#key-1") to a verification method, or an embedded
// verification method. Method is set for the embedded form.
type VerificationRef struct {
	Ref    string
	Method *VerificationMethod
}

// Service is a service entry of a DID document.
//
// For DIDComm v2 services (Type "DIDCommMessaging") ServiceEndpoint holds the
// endpoint, read from any of the forms in use: the current object
// {"uri","accept","routingKeys"}, a plain URI string, an array of either, and
// the legacy form with accept and routingKeys beside serviceEndpoint. Extra
// entries of an endpoint array are in OtherEndpoints. Such services are
// written in the current object form (an array only if OtherEndpoints is
// not empty).
//
// For any other type, Raw keeps the service's JSON as read and is what gets
// written back (with ID applied); ServiceEndpoint is then a best-effort
// reading of a URI endpoint, for information only.
type Service struct {
	ID              string
	Type            string
	ServiceEndpoint ServiceEndpoint
	OtherEndpoints  []ServiceEndpoint
	Raw             json.RawMessage
}

// ServiceEndpoint is a DIDComm v2 service endpoint: where to send messages
// (URI, which may also be a mediator's DID), the media types and profiles
// accepted, and the routing keys (DID URLs of mediators' keys) to wrap
// messages for. Nil and empty slices are kept apart: a nil Accept or
// RoutingKeys is left out of the JSON, an empty one is written as [].
type ServiceEndpoint struct {
	URI         string
	Accept      []string
	RoutingKeys []string
}

// --- JSON: VerificationMethod -------------------------------------------------

type vmJSON VerificationMethod

// MarshalJSON writes the verification method. A private "d" member of a JWK
// is never written.
func (vm VerificationMethod) MarshalJSON() ([]byte, error) {
	c := vmJSON(vm)
	if c.PublicKeyJwk != nil && c.PublicKeyJwk.D != "" {
		j := *c.PublicKeyJwk
		j.D = ""
		c.PublicKeyJwk = &j
	}
	return marshalNoEscape(c)
}

// UnmarshalJSON reads a verification method, dropping any private "d" member
// of its JWK: a DID document must not carry secrets.
func (vm *VerificationMethod) UnmarshalJSON(data []byte) error {
	var c vmJSON
	if err := json.Unmarshal(data, &c); err != nil {
		return err
	}
	if c.PublicKeyJwk != nil {
		c.PublicKeyJwk.D = ""
	}
	*vm = VerificationMethod(c)
	return nil
}

// --- JSON: VerificationRef ----------------------------------------------------

// MarshalJSON writes the embedded method, or the reference string.
func (r VerificationRef) MarshalJSON() ([]byte, error) {
	if r.Method != nil {
		return r.Method.MarshalJSON()
	}
	return marshalNoEscape(r.Ref)
}

// UnmarshalJSON reads a reference string or an embedded verification method.
func (r *VerificationRef) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*r = VerificationRef{Ref: s}
		return nil
	}
	var vm VerificationMethod
	if err := json.Unmarshal(data, &vm); err != nil {
		return fmt.Errorf("verification relationship entry is neither a reference nor a verification method: %w", err)
	}
	*r = VerificationRef{Method: &vm}
	return nil
}

// --- JSON: ServiceEndpoint ----------------------------------------------------

// MarshalJSON writes the endpoint in the current DIDComm v2 object form.
func (e ServiceEndpoint) MarshalJSON() ([]byte, error) {
	var w objectWriter
	w.add("uri", e.URI)
	if e.Accept != nil {
		w.add("accept", e.Accept)
	}
	if e.RoutingKeys != nil {
		w.add("routingKeys", e.RoutingKeys)
	}
	return w.bytes()
}

// UnmarshalJSON reads an endpoint object or a plain URI string.
func (e *ServiceEndpoint) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*e = ServiceEndpoint{URI: s}
		return nil
	}
	var o struct {
		URI         *string  `json:"uri"`
		Accept      []string `json:"accept"`
		RoutingKeys []string `json:"routingKeys"`
	}
	if err := json.Unmarshal(data, &o); err != nil {
		return fmt.Errorf("service endpoint: %w", err)
	}
	if o.URI == nil {
		return errors.New("service endpoint object has no uri")
	}
	*e = ServiceEndpoint{URI: *o.URI, Accept: o.Accept, RoutingKeys: o.RoutingKeys}
	return nil
}

// --- JSON: Service ------------------------------------------------------------

// MarshalJSON writes the service: DIDCommMessaging services in the current
// object form, other services as their Raw JSON with ID applied.
func (s Service) MarshalJSON() ([]byte, error) {
	if s.Raw != nil && s.Type != ServiceTypeDIDCommMessaging {
		tree, err := decodeOrdered(s.Raw)
		if err == nil {
			if obj, ok := tree.(object); ok {
				if s.ID != "" {
					obj = obj.set("id", s.ID)
				}
				return encodeOrderedBytes(obj)
			}
		}
	}
	var w objectWriter
	if s.ID != "" {
		w.add("id", s.ID)
	}
	w.add("type", s.Type)
	switch {
	case len(s.OtherEndpoints) > 0:
		w.add("serviceEndpoint", append([]ServiceEndpoint{s.ServiceEndpoint}, s.OtherEndpoints...))
	case s.Type != ServiceTypeDIDCommMessaging && s.ServiceEndpoint.Accept == nil && s.ServiceEndpoint.RoutingKeys == nil:
		w.add("serviceEndpoint", s.ServiceEndpoint.URI)
	default:
		w.add("serviceEndpoint", s.ServiceEndpoint)
	}
	return w.bytes()
}

// UnmarshalJSON reads a service in any of the forms described on Service.
func (s *Service) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("service: %w", err)
	}
	var out Service
	if raw, ok := m["id"]; ok {
		if err := json.Unmarshal(raw, &out.ID); err != nil {
			return fmt.Errorf("service id: %w", err)
		}
	}
	typed := false
	if raw, ok := m["type"]; ok {
		if err := json.Unmarshal(raw, &out.Type); err != nil {
			var types []string
			if err := json.Unmarshal(raw, &types); err != nil || len(types) == 0 {
				return errors.New("service type must be a string or a list of strings")
			}
			out.Type = types[0]
			if slices.Contains(types, ServiceTypeDIDCommMessaging) {
				out.Type = ServiceTypeDIDCommMessaging
			} else {
				typed = true // keep the list through Raw
			}
		}
	}
	eps, err := parseEndpoints(m)
	isDIDComm := out.Type == ServiceTypeDIDCommMessaging
	if err != nil && isDIDComm {
		return fmt.Errorf("DIDCommMessaging service %q: %w", out.ID, err)
	}
	if len(eps) > 0 {
		out.ServiceEndpoint = eps[0]
		out.OtherEndpoints = eps[1:]
		if len(out.OtherEndpoints) == 0 {
			out.OtherEndpoints = nil
		}
	}
	if !isDIDComm || typed {
		out.Raw = append(json.RawMessage(nil), data...)
	}
	*s = out
	return nil
}

// parseEndpoints reads serviceEndpoint (string, object, or an array of
// either) and applies the legacy accept/routingKeys members beside it to
// endpoints given as plain strings.
func parseEndpoints(m map[string]json.RawMessage) ([]ServiceEndpoint, error) {
	raw, ok := m["serviceEndpoint"]
	if !ok {
		return nil, errors.New("no serviceEndpoint")
	}
	var items []json.RawMessage
	if t := strings.TrimSpace(string(raw)); strings.HasPrefix(t, "[") {
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("serviceEndpoint: %w", err)
		}
	} else {
		items = []json.RawMessage{raw}
	}
	var accept, routing []string
	if a, ok := m["accept"]; ok {
		if err := json.Unmarshal(a, &accept); err != nil {
			return nil, fmt.Errorf("accept: %w", err)
		}
	}
	if r, ok := m["routingKeys"]; ok {
		if err := json.Unmarshal(r, &routing); err != nil {
			return nil, fmt.Errorf("routingKeys: %w", err)
		}
	}
	out := make([]ServiceEndpoint, 0, len(items))
	for _, it := range items {
		var e ServiceEndpoint
		if err := e.UnmarshalJSON(it); err != nil {
			return nil, err
		}
		if isJSONString(it) {
			e.Accept, e.RoutingKeys = accept, routing
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, errors.New("empty serviceEndpoint list")
	}
	return out, nil
}

func isJSONString(raw json.RawMessage) bool {
	t := strings.TrimSpace(string(raw))
	return strings.HasPrefix(t, `"`)
}

// --- JSON: Doc ----------------------------------------------------------------

// MarshalJSON writes the document with its members in a fixed order
// (@context, id, alsoKnownAs, controller, verificationMethod, authentication,
// assertionMethod, keyAgreement, capabilityInvocation, capabilityDelegation,
// service), empty ones left out, then Extra by name.
func (d Doc) MarshalJSON() ([]byte, error) {
	var w objectWriter
	if len(d.Context) > 0 {
		w.add("@context", d.Context)
	}
	if d.ID != "" {
		w.add("id", d.ID)
	}
	if len(d.AlsoKnownAs) > 0 {
		w.add("alsoKnownAs", d.AlsoKnownAs)
	}
	switch len(d.Controller) {
	case 0:
	case 1:
		w.add("controller", d.Controller[0])
	default:
		w.add("controller", d.Controller)
	}
	if len(d.VerificationMethod) > 0 {
		w.add("verificationMethod", d.VerificationMethod)
	}
	for _, r := range d.relationships() {
		if len(*r.refs) > 0 {
			w.add(r.name, *r.refs)
		}
	}
	if len(d.Service) > 0 {
		w.add("service", d.Service)
	}
	for _, k := range slices.Sorted(maps.Keys(d.Extra)) {
		w.addRaw(k, d.Extra[k])
	}
	return w.bytes()
}

// UnmarshalJSON reads a DID document.
func (d *Doc) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	var out Doc
	rels := map[string]*[]VerificationRef{}
	for _, r := range out.relationships() {
		rels[r.name] = r.refs
	}
	for k, v := range m {
		var err error
		switch k {
		case "@context":
			out.Context, err = parseContext(v)
		case "id":
			err = json.Unmarshal(v, &out.ID)
		case "alsoKnownAs":
			err = json.Unmarshal(v, &out.AlsoKnownAs)
		case "controller":
			out.Controller, err = stringOrList(v)
		case "verificationMethod":
			err = json.Unmarshal(v, &out.VerificationMethod)
		case "service":
			err = json.Unmarshal(v, &out.Service)
		default:
			if p, ok := rels[k]; ok {
				err = json.Unmarshal(v, p)
				break
			}
			if out.Extra == nil {
				out.Extra = map[string]json.RawMessage{}
			}
			out.Extra[k] = append(json.RawMessage(nil), v...)
		}
		if err != nil {
			return fmt.Errorf("DID document %s: %w", k, err)
		}
	}
	*d = out
	return nil
}

func parseContext(raw json.RawMessage) ([]any, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []any{s}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errors.New("must be a string or a list")
	}
	out := make([]any, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it, &s); err == nil {
			out[i] = s
		} else {
			out[i] = append(json.RawMessage(nil), it...)
		}
	}
	return out, nil
}

func stringOrList(raw json.RawMessage) ([]string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []string{s}, nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, errors.New("must be a string or a list of strings")
	}
	return l, nil
}

type relationship struct {
	name string
	refs *[]VerificationRef
}

// relationships lists the verification relationships in JSON order.
func (d *Doc) relationships() []relationship {
	return []relationship{
		{"authentication", &d.AuthenticationRefs},
		{"assertionMethod", &d.AssertionMethodRefs},
		{"keyAgreement", &d.KeyAgreementRefs},
		{"capabilityInvocation", &d.CapabilityInvocationRefs},
		{"capabilityDelegation", &d.CapabilityDelegationRefs},
	}
}

// Clone returns a deep copy of the document.
func (d *Doc) Clone() *Doc {
	if d == nil {
		return nil
	}
	c := *d
	c.Context = slices.Clone(d.Context)
	for i, v := range c.Context {
		if r, ok := v.(json.RawMessage); ok {
			c.Context[i] = slices.Clone(r)
		}
	}
	c.AlsoKnownAs = slices.Clone(d.AlsoKnownAs)
	c.Controller = slices.Clone(d.Controller)
	c.VerificationMethod = make([]VerificationMethod, len(d.VerificationMethod))
	for i, vm := range d.VerificationMethod {
		c.VerificationMethod[i] = vm.clone()
	}
	if d.VerificationMethod == nil {
		c.VerificationMethod = nil
	}
	src := d.relationships()
	for i, r := range c.relationships() {
		*r.refs = cloneRefs(*src[i].refs)
	}
	if d.Service != nil {
		c.Service = make([]Service, len(d.Service))
		for i, s := range d.Service {
			c.Service[i] = s.clone()
		}
	}
	if d.Extra != nil {
		c.Extra = make(map[string]json.RawMessage, len(d.Extra))
		for k, v := range d.Extra {
			c.Extra[k] = slices.Clone(v)
		}
	}
	return &c
}

func (vm VerificationMethod) clone() VerificationMethod {
	if vm.PublicKeyJwk != nil {
		j := *vm.PublicKeyJwk
		vm.PublicKeyJwk = &j
	}
	return vm
}

func cloneRefs(refs []VerificationRef) []VerificationRef {
	if refs == nil {
		return nil
	}
	out := make([]VerificationRef, len(refs))
	for i, r := range refs {
		out[i] = r
		if r.Method != nil {
			m := r.Method.clone()
			out[i].Method = &m
		}
	}
	return out
}

func (e ServiceEndpoint) clone() ServiceEndpoint {
	e.Accept = slices.Clone(e.Accept)
	e.RoutingKeys = slices.Clone(e.RoutingKeys)
	return e
}

func (s Service) clone() Service {
	s.ServiceEndpoint = s.ServiceEndpoint.clone()
	if s.OtherEndpoints != nil {
		o := make([]ServiceEndpoint, len(s.OtherEndpoints))
		for i, e := range s.OtherEndpoints {
			o[i] = e.clone()
		}
		s.OtherEndpoints = o
	}
	s.Raw = slices.Clone(s.Raw)
	return s
}
