package envelope

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

// readVectors decodes testdata/<name> into v.
func readVectors(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// testResolver is an in-memory DID registry for tests: kid -> public key and
// the verification relationships the key is listed under. It implements
// PurposeKeyResolver.
type testResolver struct {
	keys     map[string]keys.PublicKey
	purposes map[string]map[KeyPurpose]bool
}

func newTestResolver() *testResolver {
	return &testResolver{keys: map[string]keys.PublicKey{}, purposes: map[string]map[KeyPurpose]bool{}}
}

func (r *testResolver) add(k keys.PublicKey, ps ...KeyPurpose) {
	r.keys[k.ID] = k
	if r.purposes[k.ID] == nil {
		r.purposes[k.ID] = map[KeyPurpose]bool{}
	}
	for _, p := range ps {
		r.purposes[k.ID][p] = true
	}
}

func (r *testResolver) PublicKey(_ context.Context, kid string) (keys.PublicKey, error) {
	k, ok := r.keys[kid]
	if !ok {
		return keys.PublicKey{}, fmt.Errorf("test resolver: %s: %w", kid, keys.ErrNotFound)
	}
	return k, nil
}

func (r *testResolver) PublicKeyFor(ctx context.Context, kid string, p KeyPurpose) (keys.PublicKey, error) {
	k, err := r.PublicKey(ctx, kid)
	if err != nil {
		return k, err
	}
	if !r.purposes[kid][p] {
		return keys.PublicKey{}, fmt.Errorf("test resolver: %s is not a %s key: %w", kid, p, keys.ErrNotFound)
	}
	return k, nil
}

// plainResolver hides PublicKeyFor, to exercise the KeyResolver-only path.
type plainResolver struct{ r *testResolver }

func (p plainResolver) PublicKey(ctx context.Context, kid string) (keys.PublicKey, error) {
	return p.r.PublicKey(ctx, kid)
}

// testSecrets is an in-memory SecretResolver.
type testSecrets map[string]keys.PrivateKey

func (s testSecrets) PrivateKey(_ context.Context, kid string) (keys.PrivateKey, error) {
	k, ok := s[kid]
	if !ok {
		return keys.PrivateKey{}, fmt.Errorf("test secrets: %s: %w", kid, keys.ErrNotFound)
	}
	return k, nil
}

func (s testSecrets) only(kids ...string) testSecrets {
	out := testSecrets{}
	for _, k := range kids {
		if v, ok := s[k]; ok {
			out[k] = v
		}
	}
	return out
}

// didDocJSON is the part of a DID document the test resolver reads.
type didDocJSON struct {
	ID                 string            `json:"id"`
	VerificationMethod []json.RawMessage `json:"verificationMethod"`
	Authentication     []json.RawMessage `json:"authentication"`
	KeyAgreement       []json.RawMessage `json:"keyAgreement"`
}

type vmJSON struct {
	ID                 string    `json:"id"`
	Type               string    `json:"type"`
	PublicKeyJwk       *keys.JWK `json:"publicKeyJwk"`
	PublicKeyMultibase string    `json:"publicKeyMultibase"`
}

func (vm vmJSON) key() (keys.PublicKey, error) {
	switch vm.Type {
	case "JsonWebKey2020":
		return vm.PublicKeyJwk.PublicKey(vm.ID)
	case "X25519KeyAgreementKey2020":
		return keys.ParseRawKey(keys.X25519, vm.PublicKeyMultibase, vm.ID)
	case "Ed25519VerificationKey2020":
		return keys.ParseRawKey(keys.Ed25519, vm.PublicKeyMultibase, vm.ID)
	}
	return keys.PublicKey{}, fmt.Errorf("verification method type %q", vm.Type)
}

// addDoc registers the keys of a DID document: embedded verification
// methods in relationships, or references into verificationMethod.
func (r *testResolver) addDoc(t testing.TB, doc didDocJSON) {
	t.Helper()
	vms := map[string]vmJSON{}
	for _, raw := range doc.VerificationMethod {
		var vm vmJSON
		if err := json.Unmarshal(raw, &vm); err != nil {
			t.Fatal(err)
		}
		vms[vm.ID] = vm
	}
	for _, rel := range []struct {
		list []json.RawMessage
		p    KeyPurpose
	}{{doc.Authentication, PurposeAuthentication}, {doc.KeyAgreement, PurposeKeyAgreement}} {
		for _, raw := range rel.list {
			var vm vmJSON
			var ref string
			if json.Unmarshal(raw, &ref) == nil {
				var ok bool
				if vm, ok = vms[ref]; !ok {
					continue // didcomm-rust docs list keys "not in secrets" without a method
				}
			} else if err := json.Unmarshal(raw, &vm); err != nil {
				t.Fatal(err)
			}
			k, err := vm.key()
			if err != nil {
				t.Fatalf("%s: %v", vm.ID, err)
			}
			r.add(k, rel.p)
		}
	}
}

// world is the key material of the DIDComm vectors.
type world struct {
	resolver *testResolver
	secrets  testSecrets
}

var (
	worldOnce sync.Once
	theWorld  world
)

// vectorWorld builds resolvers from testdata/didcomm/keys.json: the DID
// documents of the spec appendix (bob's with the didcomm-python
// key-x25519-4) and all secrets.
func vectorWorld(t testing.TB) world {
	worldOnce.Do(func() {
		var kj struct {
			Secrets      map[string]json.RawMessage `json:"secrets"`
			DIDDocuments map[string]didDocJSON      `json:"did_documents"`
			Variants     map[string]struct {
				Document didDocJSON `json:"document"`
			} `json:"did_document_variants"`
		}
		readVectors(t, "didcomm/keys.json", &kj)
		w := world{resolver: newTestResolver(), secrets: testSecrets{}}
		for _, doc := range kj.DIDDocuments {
			w.resolver.addDoc(t, doc)
		}
		for name, v := range kj.Variants {
			if strings.Contains(name, "key-x25519-4") {
				w.resolver.addDoc(t, v.Document)
			}
		}
		for _, raw := range kj.Secrets {
			var list []struct {
				keys.JWK
				Derived *struct {
					JWK keys.JWK `json:"jwk"`
				} `json:"derived"`
			}
			if err := json.Unmarshal(raw, &list); err != nil {
				t.Fatal(err)
			}
			for _, s := range list {
				j := s.JWK
				if s.Derived != nil {
					j = s.Derived.JWK
				}
				k, err := j.PrivateKey(j.Kid)
				if err != nil {
					t.Fatalf("secret %s: %v", j.Kid, err)
				}
				w.secrets[j.Kid] = k
			}
		}
		theWorld = w
	})
	if theWorld.resolver == nil {
		t.Fatal("key vectors failed to load")
	}
	return theWorld
}

var sentinels = []error{ErrMalformed, ErrUnsupported, ErrNoRecipientKey, ErrDecrypt, ErrSenderKey, ErrSenderMismatch, ErrBadSignature}

// expectErr fails unless err wraps want and no other sentinel of the package,
// and checks that the message leaks no secret of the test world.
func expectErr(t testing.TB, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	var got []error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			got = append(got, s)
		}
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("error %q wraps %v, want exactly [%v]", err, got, want)
	}
	noSecretsIn(t, err.Error())
}

// secretStrings are encodings of every test secret that an error message
// must not contain.
var secretStrings []string

func rememberSecret(k keys.PrivateKey) {
	secretStrings = append(secretStrings,
		base64.RawURLEncoding.EncodeToString(k.D), hex.EncodeToString(k.D), fmt.Sprint(k.D))
}

func noSecretsIn(t testing.TB, s string) {
	t.Helper()
	if len(secretStrings) == 0 {
		for _, k := range vectorWorld(t).secrets {
			rememberSecret(k)
		}
	}
	for _, sec := range secretStrings {
		if strings.Contains(s, sec) {
			t.Fatalf("error text contains key material: %q", s)
		}
	}
}

// jsonEqual compares two JSON texts semantically.
func jsonEqual(t testing.TB, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %q: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want invalid JSON %q: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mutateJSON decodes a JSON object, lets f change it and encodes it again.
func mutateJSON(t testing.TB, raw []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mutateProtected rewrites the protected header of a JWE.
func mutateProtected(t testing.TB, raw []byte, f func(h map[string]any)) []byte {
	t.Helper()
	return mutateJSON(t, raw, func(m map[string]any) {
		hb := mustB64(t, m["protected"].(string))
		var h map[string]any
		if err := json.Unmarshal(hb, &h); err != nil {
			t.Fatal(err)
		}
		f(h)
		hb, _ = json.Marshal(h)
		m["protected"] = base64.RawURLEncoding.EncodeToString(hb)
	})
}

// flipB64 decodes a base64url string, flips one bit of byte i (from the end
// when negative) and encodes it again.
func flipB64(t testing.TB, s string, i int) string {
	t.Helper()
	b := mustB64(t, s)
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0x01
	return base64.RawURLEncoding.EncodeToString(b)
}
