package did

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

func TestServiceEndpointForms(t *testing.T) {
	cases := []struct {
		name, in string
		want     Service
		out      string // marshalled form
	}{
		{
			name: "current object form",
			in:   `{"id":"#s","type":"DIDCommMessaging","serviceEndpoint":{"uri":"https://a","accept":["didcomm/v2"],"routingKeys":["did:key:z#z"]}}`,
			want: Service{ID: "#s", Type: "DIDCommMessaging", ServiceEndpoint: ServiceEndpoint{URI: "https://a", Accept: []string{"didcomm/v2"}, RoutingKeys: []string{"did:key:z#z"}}},
			out:  `{"id":"#s","type":"DIDCommMessaging","serviceEndpoint":{"uri":"https://a","accept":["didcomm/v2"],"routingKeys":["did:key:z#z"]}}`,
		},
		{
			name: "empty lists are kept, absent ones stay absent",
			in:   `{"type":"DIDCommMessaging","serviceEndpoint":{"uri":"https://a","routingKeys":[]}}`,
			want: Service{Type: "DIDCommMessaging", ServiceEndpoint: ServiceEndpoint{URI: "https://a", RoutingKeys: []string{}}},
			out:  `{"type":"DIDCommMessaging","serviceEndpoint":{"uri":"https://a","routingKeys":[]}}`,
		},
		{
			name: "plain string endpoint",
			in:   `{"id":"#s","type":"DIDCommMessaging","serviceEndpoint":"https://a"}`,
			want: Service{ID: "#s", Type: "DIDCommMessaging", ServiceEndpoint: ServiceEndpoint{URI: "https://a"}},
			out:  `{"id":"#s","type":"DIDCommMessaging","serviceEndpoint":{"uri":"https://a"}}`,
		},
		{
			name: "legacy accept and routingKeys beside serviceEndpoint",
			in:   `{"id":"#s","type":"DIDCommMessaging","serviceEndpoint":"https://a","routingKeys":["did:key:z#z"],"accept":["didcomm/v2"]}`,
			want: Service{ID: "#s", Type: "DIDCommMessaging", ServiceEndpoint: ServiceEndpoint{URI: "https://a", Accept: []string{"didcomm/v2"}, RoutingKeys: []string{"did:key:z#z"}}},
			out:  `{"id":"#s","type":"DIDCommMessaging","serviceEndpoint":{"uri":"https://a","accept":["didcomm/v2"],"routingKeys":["did:key:z#z"]}}`,
		},
		{
			name: "array of one endpoint object",
			in:   `{"id":"#s","type":"DIDCommMessaging","serviceEndpoint":[{"uri":"https://a","accept":["didcomm/v2"]}]}`,
			want: Service{ID: "#s", Type: "DIDCommMessaging", ServiceEndpoint: ServiceEndpoint{URI: "https://a", Accept: []string{"didcomm/v2"}}},
			out:  `{"id":"#s","type":"DIDCommMessaging","serviceEndpoint":{"uri":"https://a","accept":["didcomm/v2"]}}`,
		},
		{
			name: "array of several endpoints, strings take the legacy lists",
			in:   `{"id":"#s","type":"DIDCommMessaging","serviceEndpoint":[{"uri":"https://a"},"wss://b"],"accept":["didcomm/v2"]}`,
			want: Service{ID: "#s", Type: "DIDCommMessaging", ServiceEndpoint: ServiceEndpoint{URI: "https://a"},
				OtherEndpoints: []ServiceEndpoint{{URI: "wss://b", Accept: []string{"didcomm/v2"}}}},
			out: `{"id":"#s","type":"DIDCommMessaging","serviceEndpoint":[{"uri":"https://a"},{"uri":"wss://b","accept":["didcomm/v2"]}]}`,
		},
		{
			name: "type list naming DIDCommMessaging",
			in:   `{"id":"#s","type":["Other","DIDCommMessaging"],"serviceEndpoint":{"uri":"https://a"}}`,
			want: Service{ID: "#s", Type: "DIDCommMessaging", ServiceEndpoint: ServiceEndpoint{URI: "https://a"}},
			out:  `{"id":"#s","type":"DIDCommMessaging","serviceEndpoint":{"uri":"https://a"}}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s Service
			if err := json.Unmarshal([]byte(c.in), &s); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s, c.want) {
				t.Fatalf("parsed %#v\nwant %#v", s, c.want)
			}
			out, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != c.out {
				t.Errorf("marshalled %s\nwant %s", out, c.out)
			}
			var again Service
			if err := json.Unmarshal(out, &again); err != nil || !reflect.DeepEqual(again, c.want) {
				t.Errorf("round trip: %#v %v", again, err)
			}
		})
	}
}

func TestServiceUnknownTypeKeepsJSON(t *testing.T) {
	in := `{"type":"LinkedDomains","z":1,"serviceEndpoint":{"origins":["https://a"]},"a":"<&>"}`
	var s Service
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if s.Type != "LinkedDomains" || s.Raw == nil {
		t.Fatalf("%+v", s)
	}
	s.ID = "#ld"
	out, err := marshalNoEscape(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"#ld","type":"LinkedDomains","z":1,"serviceEndpoint":{"origins":["https://a"]},"a":"<&>"}`; string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	// A type list without DIDCommMessaging is also kept as written.
	in = `{"id":"#x","type":["A","B"],"serviceEndpoint":"https://b"}`
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if s.Type != "A" || s.ServiceEndpoint.URI != "https://b" {
		t.Errorf("%+v", s)
	}
	if out, _ := json.Marshal(s); string(out) != in {
		t.Errorf("got %s", out)
	}
	// Built in code, an unknown type writes a string endpoint.
	out, _ = json.Marshal(Service{ID: "#w", Type: "LinkedDomains", ServiceEndpoint: ServiceEndpoint{URI: "https://c"}})
	if string(out) != `{"id":"#w","type":"LinkedDomains","serviceEndpoint":"https://c"}` {
		t.Errorf("got %s", out)
	}
}

func TestServiceInvalid(t *testing.T) {
	for _, in := range []string{
		`[]`,
		`{"type":"DIDCommMessaging"}`,
		`{"type":"DIDCommMessaging","serviceEndpoint":{"accept":["didcomm/v2"]}}`,
		`{"type":"DIDCommMessaging","serviceEndpoint":[]}`,
		`{"type":"DIDCommMessaging","serviceEndpoint":42}`,
		`{"type":"DIDCommMessaging","serviceEndpoint":"https://a","accept":"didcomm/v2"}`,
		`{"type":[],"serviceEndpoint":"https://a"}`,
		`{"id":7,"type":"DIDCommMessaging","serviceEndpoint":"https://a"}`,
	} {
		var s Service
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("%s: parsed as %+v", in, s)
		}
	}
}

const testDocJSON = `{
  "@context": "https://www.w3.org/ns/did/v1",
  "id": "did:example:alice",
  "controller": "did:example:bob",
  "verificationMethod": [
    {"id": "#x1", "type": "X25519KeyAgreementKey2020", "controller": "did:example:alice",
     "publicKeyMultibase": "z6LSg8zQom395jKLrGiBNruB9MM6V8PWuf2FpEy4uRFiqQBR"},
    {"id": "did:example:alice#ed1", "type": "Ed25519VerificationKey2020", "controller": "did:example:alice",
     "publicKeyMultibase": "z6Mkj3PUd1WjvaDhNZhhhXQdz5UnZXmS7ehtx8bsPpD47kKc"},
    {"id": "#bls", "type": "Bls12381G2Key2020", "controller": "did:example:alice",
     "publicKeyBase58": "25EEkQtcLKsEzQ6JTo9cg4W7NHpaurn4Wg6LaNPFq6JQXnrP91SDviUz7KrJVMJd76CtAZFsRLYzvgX263rKxg6Hu"}
  ],
  "authentication": ["did:example:alice#ed1",
    {"id": "#ed2", "type": "JsonWebKey2020", "controller": "did:example:alice",
     "publicKeyJwk": {"kty": "OKP", "crv": "Ed25519", "x": "_eT7oDCtAC98L31MMx9J0T-w7HR-zuvsY08f9MvKne8", "d": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAU"}}],
  "keyAgreement": ["#x1", "#bls"],
  "assertionMethod": ["#ed1"],
  "service": [{"id": "#dc", "type": "DIDCommMessaging", "serviceEndpoint": {"uri": "https://alice.example/didcomm", "accept": ["didcomm/v2"]}},
              {"id": "#v1", "type": "DIDCommMessaging", "serviceEndpoint": {"uri": "https://alice.example/v1", "accept": ["didcomm/aip2;env=rfc19"]}},
              {"id": "#old", "type": "did-communication", "serviceEndpoint": "https://alice.example/old"}],
  "proof": {"type": "x", "z": [1, 2]},
  "created": "2024-01-01T00:00:00Z"
}`

func parseTestDoc(t *testing.T) *Doc {
	t.Helper()
	var d Doc
	if err := json.Unmarshal([]byte(testDocJSON), &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func TestDocJSONRoundTrip(t *testing.T) {
	d := parseTestDoc(t)
	if len(d.Context) != 1 || d.Context[0] != ContextDIDv1 || len(d.Controller) != 1 || d.Controller[0] != "did:example:bob" {
		t.Errorf("context/controller: %v %v", d.Context, d.Controller)
	}
	if len(d.Extra) != 2 || string(d.Extra["created"]) != `"2024-01-01T00:00:00Z"` {
		t.Errorf("extra: %v", d.Extra)
	}
	if d.AuthenticationRefs[1].Method == nil || d.AuthenticationRefs[1].Method.PublicKeyJwk.D != "" {
		t.Fatal("embedded method not parsed, or its private key kept")
	}
	out := mustJSON(t, d)
	if strings.Contains(string(out), `"d"`) {
		t.Errorf("private key written: %s", out)
	}
	var want map[string]any
	_ = json.Unmarshal([]byte(testDocJSON), &want)
	want["@context"] = []any{ContextDIDv1}
	delete(want["authentication"].([]any)[1].(map[string]any)["publicKeyJwk"].(map[string]any), "d")
	want["service"].([]any)[2] = map[string]any{"id": "#old", "type": "did-communication", "serviceEndpoint": "https://alice.example/old"}
	assertJSONEqual(t, d, mustJSON(t, want))

	// Several controllers and embedded @context objects survive too.
	in := `{"@context":["https://www.w3.org/ns/did/v1",{"@base":"did:example:1"}],"id":"did:example:1","controller":["did:example:a","did:example:b"]}`
	var d2 Doc
	if err := json.Unmarshal([]byte(in), &d2); err != nil {
		t.Fatal(err)
	}
	if got := string(mustJSON(t, d2)); got != in {
		t.Errorf("got  %s\nwant %s", got, in)
	}
	// A private key set in code is not written either.
	vm := VerificationMethod{ID: "#k", Type: TypeJSONWebKey2020, PublicKeyJwk: &keys.JWK{Kty: "OKP", Crv: "X25519", X: "x", D: "secret"}}
	if strings.Contains(string(mustJSON(t, vm)), "secret") || vm.PublicKeyJwk.D != "secret" {
		t.Error("MarshalJSON leaked d or modified the method")
	}
	// Clone is deep.
	c := d.Clone()
	c.VerificationMethod[0].ID = "#changed"
	c.AuthenticationRefs[1].Method.ID = "#changed"
	c.Service[0].ServiceEndpoint.Accept[0] = "changed"
	c.Extra["created"][1] = 'X'
	if d.VerificationMethod[0].ID != "#x1" || d.AuthenticationRefs[1].Method.ID != "#ed2" ||
		d.Service[0].ServiceEndpoint.Accept[0] != "didcomm/v2" || string(d.Extra["created"]) != `"2024-01-01T00:00:00Z"` {
		t.Error("Clone shares memory with the original")
	}
}

func TestDocKeyLookups(t *testing.T) {
	d := parseTestDoc(t)
	for _, kid := range []string{"#x1", "did:example:alice#x1"} {
		k, err := d.Key(kid)
		if err != nil || k.ID != "did:example:alice#x1" || k.Curve != keys.X25519 {
			t.Errorf("Key(%s) = %+v, %v", kid, k, err)
		}
	}
	for _, kid := range []string{"#ed1", "did:example:alice#ed1", "#ed2", "did:example:alice#ed2"} {
		k, err := d.Key(kid)
		if err != nil || k.ID != d.AbsoluteURL(kid) || k.Curve != keys.Ed25519 {
			t.Errorf("Key(%s) = %+v, %v", kid, k, err)
		}
	}
	for _, kid := range []string{"#nope", "did:example:bob#x1", "x1"} {
		if _, err := d.Key(kid); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("Key(%s): err = %v, want keys.ErrNotFound", kid, err)
		}
	}
	if _, err := d.Key("#bls"); !errors.Is(err, ErrUnsupportedKeyType) {
		t.Errorf("Key(#bls): %v", err)
	}
	// The unsupported BLS key is skipped; the relative and absolute
	// references and the embedded method all resolve.
	ka, err := d.KeyAgreement()
	if err != nil || len(ka) != 1 || ka[0].ID != "did:example:alice#x1" {
		t.Errorf("KeyAgreement = %v, %v", ka, err)
	}
	au, err := d.Authentication()
	if err != nil || len(au) != 2 || au[0].ID != "did:example:alice#ed1" || au[1].ID != "did:example:alice#ed2" {
		t.Errorf("Authentication = %v, %v", au, err)
	}
	if am, err := d.AssertionMethod(); err != nil || len(am) != 1 {
		t.Errorf("AssertionMethod = %v, %v", am, err)
	}
	// A dangling reference is an error.
	d.KeyAgreementRefs = append(d.KeyAgreementRefs, VerificationRef{Ref: "#gone"})
	if _, err := d.KeyAgreement(); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("dangling reference: %v", err)
	}
	// VerificationMethod.PublicKey makes a relative id absolute with the controller.
	k, err := d.VerificationMethod[0].PublicKey()
	if err != nil || k.ID != "did:example:alice#x1" {
		t.Errorf("PublicKey = %+v %v", k, err)
	}

	svcs := d.DIDCommServices()
	if len(svcs) != 1 || svcs[0].ID != "did:example:alice#dc" || svcs[0].ServiceEndpoint.URI != "https://alice.example/didcomm" {
		t.Errorf("DIDCommServices = %+v", svcs)
	}
	svcs[0].ServiceEndpoint.Accept[0] = "changed"
	if d.Service[0].ServiceEndpoint.Accept[0] != "didcomm/v2" {
		t.Error("DIDCommServices shares memory with the document")
	}

	abs := d.Absolute()
	if abs.VerificationMethod[0].ID != "did:example:alice#x1" || abs.KeyAgreementRefs[0].Ref != "did:example:alice#x1" ||
		abs.AuthenticationRefs[1].Method.ID != "did:example:alice#ed2" || abs.Service[0].ID != "did:example:alice#dc" {
		t.Errorf("Absolute: %s", mustJSON(t, abs))
	}
	if d.VerificationMethod[0].ID != "#x1" {
		t.Error("Absolute modified the original")
	}
}

func TestVerificationMethodTypes(t *testing.T) {
	ed, _ := keys.Generate(keys.Ed25519, "")
	x, _ := keys.Generate(keys.X25519, "")
	p, _ := keys.Generate(keys.P384, "")
	pj := p.PublicKey.JWK()
	good := []struct {
		vm   VerificationMethod
		want keys.PublicKey
	}{
		{VerificationMethod{Type: TypeMultikey, PublicKeyMultibase: p.PublicKey.Multikey()}, p.PublicKey},
		{VerificationMethod{Type: TypeJSONWebKey2020, PublicKeyJwk: &pj}, p.PublicKey},
		{VerificationMethod{Type: TypeEd25519VerificationKey2020, PublicKeyMultibase: ed.PublicKey.Multikey()}, ed.PublicKey},
		{VerificationMethod{Type: TypeX25519KeyAgreementKey2020, PublicKeyMultibase: x.PublicKey.Multikey()}, x.PublicKey},
		{VerificationMethod{Type: TypeEd25519VerificationKey2018, PublicKeyBase58: keys.Base58Encode(ed.Raw)}, ed.PublicKey},
		{VerificationMethod{Type: TypeX25519KeyAgreementKey2019, PublicKeyBase58: keys.Base58Encode(x.Raw)}, x.PublicKey},
		{VerificationMethod{Type: "EcdsaSecp384r1VerificationKey2019", PublicKeyJwk: &pj}, p.PublicKey},
	}
	for _, g := range good {
		g.vm.ID = "did:example:1#k"
		k, err := g.vm.PublicKey()
		if err != nil || !k.Equal(g.want) || k.ID != "did:example:1#k" {
			t.Errorf("%s: %+v %v", g.vm.Type, k, err)
		}
	}
	bad := []VerificationMethod{
		{Type: TypeEd25519VerificationKey2020, PublicKeyMultibase: x.PublicKey.Multikey()},
		{Type: TypeX25519KeyAgreementKey2020, PublicKeyMultibase: ed.PublicKey.Multikey()},
		{Type: TypeJSONWebKey2020},
		{Type: TypeMultikey},
		{Type: TypeEd25519VerificationKey2018, PublicKeyBase58: "0OIl"},
		{Type: TypeX25519KeyAgreementKey2019, PublicKeyBase58: keys.Base58Encode([]byte{1, 2})},
		{Type: "SomethingElse", PublicKeyBase58: keys.Base58Encode(ed.Raw)},
	}
	for _, b := range bad {
		if k, err := b.PublicKey(); err == nil {
			t.Errorf("%+v parsed as %+v", b, k)
		}
	}
}

func TestWithVerificationMethodType(t *testing.T) {
	var v peer2Vectors
	readVector(t, "peer2.json", &v)
	doc, err := ResolvePeer2(v.Examples[0].DID)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := keys.Generate(keys.P256, "")
	doc.VerificationMethod = append(doc.VerificationMethod, VerificationMethod{ID: "#p", Type: TypeMultikey, Controller: doc.ID, PublicKeyMultibase: p.PublicKey.Multikey()})
	doc.KeyAgreementRefs = append(doc.KeyAgreementRefs, VerificationRef{Ref: "#p"})
	doc.Context = append(doc.Context, "https://example.com/custom/v1")

	cases := []struct {
		style   KeyStyle
		types   []string
		context []any
	}{
		{StyleJSONWebKey2020, []string{TypeJSONWebKey2020, TypeJSONWebKey2020, TypeJSONWebKey2020},
			[]any{ContextDIDv1, ContextJWS2020, "https://example.com/custom/v1"}},
		{Style2020, []string{TypeEd25519VerificationKey2020, TypeX25519KeyAgreementKey2020, TypeJSONWebKey2020},
			[]any{ContextDIDv1, ContextEd25519Suite2020, ContextX25519Suite2020, ContextJWS2020, "https://example.com/custom/v1"}},
		{Style2018, []string{TypeEd25519VerificationKey2018, TypeX25519KeyAgreementKey2019, TypeJSONWebKey2020},
			[]any{ContextDIDv1, ContextEd25519Suite2018, ContextX25519Suite2019, ContextJWS2020, "https://example.com/custom/v1"}},
		{StyleMultikey, []string{TypeMultikey, TypeMultikey, TypeMultikey},
			[]any{ContextDIDv1, ContextMultikey, "https://example.com/custom/v1"}},
	}
	wantKA, _ := doc.KeyAgreement()
	for _, c := range cases {
		r, err := doc.WithVerificationMethodType(c.style)
		if err != nil {
			t.Fatal(err)
		}
		for i, vm := range r.VerificationMethod {
			if vm.Type != c.types[i] || vm.ID != doc.VerificationMethod[i].ID || vm.Controller != doc.ID {
				t.Errorf("style %d method %d: %+v", c.style, i, vm)
			}
		}
		if !reflect.DeepEqual(r.Context, c.context) {
			t.Errorf("style %d context %v", c.style, r.Context)
		}
		ka, err := r.KeyAgreement()
		if err != nil || len(ka) != len(wantKA) {
			t.Fatalf("style %d: %v %v", c.style, ka, err)
		}
		for i := range ka {
			if !ka[i].Equal(wantKA[i]) || ka[i].ID != wantKA[i].ID {
				t.Errorf("style %d key %d differs", c.style, i)
			}
		}
	}
	// Back to Multikey gives the original methods.
	j, _ := doc.WithVerificationMethodType(StyleJSONWebKey2020)
	m, _ := j.WithVerificationMethodType(StyleMultikey)
	if !reflect.DeepEqual(m.VerificationMethod, doc.VerificationMethod) {
		t.Errorf("JWK -> Multikey changed the methods")
	}
	if doc.VerificationMethod[0].Type != TypeMultikey {
		t.Error("the original was modified")
	}
	// Unparseable key material is an error.
	doc.VerificationMethod[0].PublicKeyMultibase = "z1"
	if _, err := doc.WithVerificationMethodType(StyleJSONWebKey2020); err == nil {
		t.Error("bad key rendered")
	}
}
