package credstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
	"github.com/agentd/agentd/protocols/internal/fakes"
	"github.com/agentd/agentd/store/seal"
)

var ctx = context.Background()

const issuerDID = "did:example:issuer"

func newStore(t *testing.T, mod func(*Config)) (*Service, *fakes.Store) {
	t.Helper()
	raw := make([]byte, 32)
	rand.Read(raw)
	key, err := seal.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../anoncreds/testdata/issuer/test_key_cred_def_private.json")
	if err != nil {
		t.Fatal(err)
	}
	primes, err := anoncreds.ParseCredentialDefinitionPrivate(b)
	if err != nil {
		t.Fatal(err)
	}
	st := &fakes.Store{}
	cfg := Config{Store: st.Agent(), Sealer: key, IssuerDID: func() string { return issuerDID },
		CredDefOptions: anoncreds.CredentialDefinitionConfig{Primes: primes}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

// anoncredsCred is a minimal well-formed AnonCreds credential JSON.
func anoncredsCred(credDef string) []byte {
	return []byte(`{"schema_id":"s:1","cred_def_id":"` + credDef + `","values":{"name":{"raw":"Alex","encoded":"123"}},
	  "signature":{"p_credential":{"m_2":"1","a":"2","e":"3","v":"4"}},"signature_correctness_proof":{"se":"1","c":"2"}}`)
}

const jwtVC = `eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJkaWQ6ZXhhbXBsZTppc3N1ZXIiLCJ2YyI6eyJAY29udGV4dCI6WyJodHRwczovL3d3dy53My5vcmcvMjAxOC9jcmVkZW50aWFscy92MSJdLCJ0eXBlIjpbIlZlcmlmaWFibGVDcmVkZW50aWFsIl0sImNyZWRlbnRpYWxTdWJqZWN0Ijp7ImlkIjoiZGlkOmV4YW1wbGU6aG9sZGVyIn19fQ.c2ln`

func put(t *testing.T, s *Service, c *aip.Credential, raw []byte) *aip.Credential {
	t.Helper()
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error { return s.Put(w, c, raw) })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHeldListing: newest first, filters by format and credential
// definition through their indexes, pages whose token survives inserts,
// Each by format, delete.
func TestHeldListing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	s, st := newStore(t, func(c *Config) {
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Second); return now }
	})
	var all []string
	for i := 0; i < 6; i++ {
		var c *aip.Credential
		switch i % 3 {
		case 0:
			c = put(t, s, &aip.Credential{Format: aip.FormatW3C, CredentialJSON: jwtVC}, nil)
			if c.W3CFormat != "jwt_vc_json" {
				t.Fatalf("w3c format %q", c.W3CFormat)
			}
		case 1:
			c = put(t, s, &aip.Credential{Format: aip.FormatAnoncreds}, anoncredsCred("cd:A"))
		case 2:
			c = put(t, s, &aip.Credential{Format: aip.FormatAnoncreds}, anoncredsCred("cd:B"))
		}
		all = append(all, c.ID)
	}
	slices.Reverse(all)
	ids := func(items []*aip.Credential) []string {
		var out []string
		for _, c := range items {
			out = append(out, c.ID)
		}
		return out
	}
	items, _, err := s.Credentials(ctx, aip.Page{}, aip.CredentialFilter{})
	if err != nil || !slices.Equal(ids(items), all) {
		t.Fatalf("all: %v %v", ids(items), err)
	}
	a, _, _ := s.Credentials(ctx, aip.Page{}, aip.CredentialFilter{CredDefIDs: []string{"cd:A"}})
	if len(a) != 2 || a[0].CredDefID != "cd:A" || a[0].Attributes[0] != (aip.Attribute{Name: "name", Value: "Alex"}) {
		t.Fatalf("cd:A: %+v", a)
	}
	ab, _, _ := s.Credentials(ctx, aip.Page{}, aip.CredentialFilter{CredDefIDs: []string{"cd:A", "cd:B"}, Formats: []aip.CredentialFormat{aip.FormatAnoncreds}})
	if len(ab) != 4 || !slices.IsSortedFunc(ab, func(x, y *aip.Credential) int { return y.Created.Compare(x.Created) }) {
		t.Fatalf("cd:A|B: %d", len(ab))
	}
	if none, _, _ := s.Credentials(ctx, aip.Page{}, aip.CredentialFilter{CredDefIDs: []string{"cd:A"}, Formats: []aip.CredentialFormat{aip.FormatW3C}}); len(none) != 0 {
		t.Fatal("W3C with a cred def filter")
	}
	w3c, _, _ := s.Credentials(ctx, aip.Page{}, aip.CredentialFilter{Formats: []aip.CredentialFormat{aip.FormatW3C}})
	if len(w3c) != 2 {
		t.Fatalf("w3c: %d", len(w3c))
	}
	// Pages of 4 with a token; an insert between pages changes nothing after it.
	p1, tok, _ := s.Credentials(ctx, aip.Page{Limit: 4}, aip.CredentialFilter{})
	put(t, s, &aip.Credential{Format: aip.FormatW3C, CredentialJSON: jwtVC}, nil)
	p2, tok2, err := s.Credentials(ctx, aip.Page{Limit: 4, NextToken: tok}, aip.CredentialFilter{})
	if err != nil || tok == "" || tok2 != "" || !slices.Equal(append(ids(p1), ids(p2)...), all) {
		t.Fatalf("pages %v + %v (%v)", ids(p1), ids(p2), err)
	}
	if _, _, err := s.Credentials(ctx, aip.Page{NextToken: "garbage!"}, aip.CredentialFilter{}); !agent.HasCode(err, agent.CodeMsg) {
		t.Fatalf("bad token: %v", err)
	}
	n := 0
	if err := s.Each(ctx, aip.FormatAnoncreds, func(c *aip.Credential) bool { n++; return c.Format == aip.FormatAnoncreds }); err != nil || n != 4 {
		t.Fatalf("each: %d %v", n, err)
	}
	raw, err := s.Raw(ctx, a[0].ID)
	if err != nil || !bytes.Contains(raw, []byte("cd:A")) {
		t.Fatalf("raw: %v", err)
	}
	// Delete removes the record and every index entry.
	before := st.Records.Len(KindCredByDef)
	if err := s.DeleteCredential(ctx, a[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Credential(ctx, a[0].ID); !agent.HasCode(err, agent.CodeNotFound) {
		t.Fatalf("deleted: %v", err)
	}
	if st.Records.Len(KindCredByDef) != before-1 {
		t.Fatal("index entry left behind")
	}
	if err := s.DeleteCredential(ctx, a[0].ID); !agent.HasCode(err, agent.CodeNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	// Bad input changes nothing.
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		return s.Put(w, &aip.Credential{Format: aip.FormatW3C, CredentialJSON: "not a credential"}, nil)
	})
	if !agent.HasCode(err, agent.CodeMsg) {
		t.Fatalf("bad credential: %v", err)
	}
}

// TestLinkSecret: created once, the same afterwards and across a restart,
// sealed at rest.
func TestLinkSecret(t *testing.T) {
	s, st := newStore(t, nil)
	var wg sync.WaitGroup
	got := make([]string, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls, err := s.LinkSecret(ctx)
			if err != nil {
				t.Error(err)
			}
			got[i] = ls.Decimal()
		}()
	}
	wg.Wait()
	for _, g := range got {
		if g == "" || g != got[0] {
			t.Fatalf("link secrets differ: %v", got)
		}
	}
	raw, _ := st.Records.Get(ctx, KindLinkSecret, linkSecretID)
	if bytes.Contains(raw, []byte(got[0])) {
		t.Fatal("the link secret is stored in the clear")
	}
	s2, err := New(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ls, _ := s2.LinkSecret(ctx); ls.Decimal() != got[0] {
		t.Fatal("another link secret after a restart")
	}
}

// TestIssuerObjects: schema and credential definition creation, ids,
// conflicts, the private key sealed, revocation refused, lists.
func TestIssuerObjects(t *testing.T) {
	s, st := newStore(t, nil)
	sc, err := s.CreateAnoncredsSchema(ctx, "person", "1.0", []string{"name", "age"})
	if err != nil {
		t.Fatal(err)
	}
	if sc.ID != issuerDID+"/anoncreds/v0/SCHEMA/person/1.0" || sc.IssuerID != issuerDID {
		t.Fatalf("schema %+v", sc)
	}
	if _, err := s.CreateAnoncredsSchema(ctx, "person", "1.0", []string{"x"}); !agent.HasCode(err, agent.CodeConflict) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.CreateAnoncredsSchema(ctx, "bad", "1.0", nil); !agent.HasCode(err, agent.CodeMsg) {
		t.Fatalf("no attributes: %v", err)
	}
	s.CreateAnoncredsSchema(ctx, "person", "2.0", []string{"name"})
	s.CreateAnoncredsSchema(ctx, "pet", "1.0", []string{"name"})
	for _, c := range []struct {
		name, version string
		n             int
	}{{"", "", 3}, {"person", "", 2}, {"person", "2.0", 1}, {"", "1.0", 2}, {"nobody", "", 0}} {
		items, _, err := s.AnoncredsSchemas(ctx, aip.Page{}, c.name, c.version)
		if err != nil || len(items) != c.n {
			t.Errorf("schemas %q %q: %d %v", c.name, c.version, len(items), err)
		}
	}
	if _, err := s.CreateAnoncredsCredDef(ctx, sc.ID, "t", true); err != ErrRevocationUnsupported {
		t.Fatalf("revocable: %v", err)
	}
	if st.Records.Len(KindCredDef) != 0 {
		t.Fatal("a refused definition was stored")
	}
	cd, err := s.CreateAnoncredsCredDef(ctx, sc.ID, "t", false)
	if err != nil {
		t.Fatal(err)
	}
	if cd.SchemaID != sc.ID || cd.Tag != "t" || !strings.HasPrefix(cd.ID, issuerDID+"/anoncreds/v0/CLAIM_DEF/") {
		t.Fatalf("cred def %+v", cd)
	}
	if _, err := s.CreateAnoncredsCredDef(ctx, sc.ID, "t", false); !agent.HasCode(err, agent.CodeConflict) {
		t.Fatalf("duplicate cred def: %v", err)
	}
	raw, _ := st.Records.Get(ctx, KindCredDef, cd.ID)
	keys, err := s.IssuerKeys(ctx, cd.ID)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := json.Marshal(keys.Private)
	var priv map[string]any
	json.Unmarshal(pb, &priv)
	for _, v := range priv {
		if str, ok := v.(string); ok && len(str) > 20 && bytes.Contains(raw, []byte(str)) {
			t.Fatal("the private key is stored in the clear")
		}
	}
	if len(priv) == 0 {
		t.Fatal("no private key")
	}
	if err := keys.KeyCorrectnessProof.Verify(keys.CredDef); err != nil {
		t.Fatalf("stored key correctness proof: %v", err)
	}
	list, _, _ := s.AnoncredsCredDefs(ctx, aip.Page{}, sc.ID)
	if len(list) != 1 || list[0].ID != cd.ID {
		t.Fatalf("cred defs of schema: %v", list)
	}
	if other, _, _ := s.AnoncredsCredDefs(ctx, aip.Page{}, "other"); len(other) != 0 {
		t.Fatal("cred defs of another schema")
	}
	if _, err := s.CreateAnoncredsCredDef(ctx, "did:example:nowhere/schema", "t", false); !agent.HasCode(err, agent.CodeNotFound) {
		t.Fatalf("unknown schema: %v", err)
	}
}

// TestResolution: imported objects (method and admin route), a directory
// of files, did:web and https URLs over TLS with a cache and a size limit.
func TestResolution(t *testing.T) {
	issuer, _ := newStore(t, nil)
	sc, _ := issuer.CreateAnoncredsSchema(ctx, "person", "1.0", []string{"name"})
	cd, _ := issuer.CreateAnoncredsCredDef(ctx, sc.ID, "t", false)
	scJSON, _ := issuer.Export(ctx, sc.ID)
	cdJSON, _ := issuer.Export(ctx, cd.ID)

	// The admin route imports.
	s, _ := newStore(t, nil)
	h := s.ImportHandler()
	for _, c := range []struct {
		body []byte
		code int
	}{{scJSON, 201}, {scJSON, 409}, {[]byte(`{"id":"x","schema":{"name":"n"}}`), 400}, {[]byte(`nope`), 400}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/admin/anoncreds/objects", bytes.NewReader(c.body)))
		if rec.Code != c.code {
			t.Errorf("import: %d, want %d: %s", rec.Code, c.code, rec.Body)
		}
	}
	if got, err := s.ResolveSchema(ctx, sc.ID); err != nil || got.Name != "person" {
		t.Fatalf("imported schema: %v", err)
	}
	if _, err := s.ResolveCredDef(ctx, cd.ID); !agent.HasCode(err, agent.CodeNotFound) {
		t.Fatalf("not imported yet: %v", err)
	}
	// A revocable definition is refused on import.
	var obj map[string]any
	json.Unmarshal(cdJSON, &obj)
	obj["credentialDefinition"].(map[string]any)["value"].(map[string]any)["revocation"] = map[string]any{"g": "1"}
	rev, _ := json.Marshal(obj)
	if _, err := s.Import(ctx, rev); err == nil || !strings.Contains(err.Error(), "revocation") {
		t.Fatalf("revocable import: %v", err)
	}

	// A directory of files.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cd.json"), cdJSON, 0o600)
	fs, _ := newStore(t, func(c *Config) { c.Dir = dir })
	if got, err := fs.ResolveCredDef(ctx, cd.ID); err != nil || got.Tag != "t" {
		t.Fatalf("file cred def: %v", err)
	}

	// did:web and https ids, fetched over TLS, cached.
	var hits int
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		switch r.URL.Path {
		case "/issuer/schema/1":
			w.Write([]byte(`{"issuerId":"did:web:x","name":"web","version":"1","attrNames":["a"]}`))
		case "/big":
			w.Write(bytes.Repeat([]byte(" "), 2<<20))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	ws, _ := newStore(t, func(c *Config) { c.Web, c.WebClient = true, srv.Client() })
	webID := "did:web:" + strings.ReplaceAll(host, ":", "%3A") + ":issuer/schema/1"
	for i := 0; i < 2; i++ {
		got, err := ws.ResolveSchema(ctx, webID)
		if err != nil || got.Name != "web" {
			t.Fatalf("did:web schema: %v", err)
		}
	}
	if got, err := ws.ResolveSchema(ctx, srv.URL+"/issuer/schema/1"); err != nil || got.Name != "web" {
		t.Fatalf("https schema: %v", err)
	}
	if hits != 2 {
		t.Fatalf("%d fetches, want 2 (cached)", hits)
	}
	if _, err := ws.ResolveSchema(ctx, srv.URL+"/big"); err == nil {
		t.Fatal("an object over the size limit")
	}
	if _, err := ws.ResolveCredDef(ctx, srv.URL+"/issuer/schema/1"); err == nil {
		t.Fatal("a schema resolved as a cred def")
	}
	// Without Web, such ids are not fetched.
	if _, err := s.ResolveSchema(ctx, webID); !agent.HasCode(err, agent.CodeNotFound) {
		t.Fatalf("web disabled: %v", err)
	}
	if u := webURL("did:web:example.com:a:b/anoncreds/x"); u != "https://example.com/a/b/anoncreds/x" {
		t.Fatalf("webURL %s", u)
	}
}
