package did

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

// W3C did:key test vectors: whole documents in the 2018/2019 suites or
// JsonWebKey2020, which the Multikey resolution must reproduce after
// WithVerificationMethodType.
func TestKeyDIDW3CVectors(t *testing.T) {
	var edVectors map[string]struct {
		Seed    string `json:"seed"`
		KeyPair struct {
			PrivateKeyBase58 string    `json:"privateKeyBase58"`
			PrivateKeyJwk    *keys.JWK `json:"privateKeyJwk"`
		} `json:"keyAgreementKeyPair"`
		DIDDocument json.RawMessage `json:"didDocument"`
	}
	readVector(t, "did-key-ed25519-x25519.json", &edVectors)
	var xVectors struct {
		DIDDocument map[string]json.RawMessage `json:"didDocument"`
	}
	readVector(t, "did-key-x25519.json", &xVectors)
	docs := map[string]json.RawMessage{}
	for did, v := range edVectors {
		docs[did] = v.DIDDocument
	}
	for did, d := range xVectors.DIDDocument {
		docs[did] = d
	}
	if len(docs) != 9 {
		t.Fatalf("%d vectors", len(docs))
	}
	for did, want := range docs {
		t.Run(did, func(t *testing.T) {
			doc, err := ResolveKey(did)
			if err != nil {
				t.Fatal(err)
			}
			style := Style2018
			if strings.Contains(string(want), TypeJSONWebKey2020) {
				style = StyleJSONWebKey2020
			}
			rendered, err := doc.WithVerificationMethodType(style)
			if err != nil {
				t.Fatal(err)
			}
			assertJSONEqual(t, rendered, want)

			// The vector documents parse, and give the same keys.
			var wd Doc
			if err := json.Unmarshal(want, &wd); err != nil {
				t.Fatal(err)
			}
			for _, pair := range [][2]func() ([]keys.PublicKey, error){
				{doc.KeyAgreement, wd.KeyAgreement}, {doc.Authentication, wd.Authentication},
				{doc.AssertionMethod, wd.AssertionMethod},
			} {
				g, err1 := pair[0]()
				w, err2 := pair[1]()
				if err1 != nil || err2 != nil || len(g) != len(w) {
					t.Fatalf("keys %v %v / %v %v", g, err1, w, err2)
				}
				for i := range g {
					if g[i].ID != w[i].ID || !g[i].Equal(w[i]) {
						t.Errorf("key %s != %s", g[i].ID, w[i].ID)
					}
				}
			}
			if KeyDID(mustKey(t, doc, doc.VerificationMethod[0].ID)) != did {
				t.Error("KeyDID does not give the DID back")
			}
		})
	}
	// The key agreement secrets in the vectors match the X25519 keys of the
	// resolved documents (keys.PrivateKey.ToX25519 of the Ed25519 seed).
	for did, v := range edVectors {
		seed, _ := hex.DecodeString(v.Seed)
		ed, err := keys.FromPrivate(keys.Ed25519, "", seed)
		if err != nil {
			t.Fatal(err)
		}
		if KeyDID(ed.PublicKey) != did {
			t.Errorf("seed %s gives %s, want %s", v.Seed, KeyDID(ed.PublicKey), did)
		}
		x, err := ed.ToX25519()
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		if v.KeyPair.PrivateKeyJwk != nil {
			p, err := v.KeyPair.PrivateKeyJwk.PrivateKey("")
			if err != nil {
				t.Fatal(err)
			}
			want = p.D
		} else {
			want, _ = keys.Base58Decode(v.KeyPair.PrivateKeyBase58)
		}
		if hex.EncodeToString(x.D) != hex.EncodeToString(want) {
			t.Errorf("%s: X25519 secret differs", did)
		}
		doc, _ := ResolveKey(did)
		ka, _ := doc.KeyAgreement()
		if len(ka) != 1 || !ka[0].Equal(x.PublicKey) {
			t.Errorf("%s: key agreement key is not the converted key", did)
		}
	}
}

func mustKey(t *testing.T, doc *Doc, kid string) keys.PublicKey {
	t.Helper()
	k, err := doc.Key(kid)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyDIDRoundTrip(t *testing.T) {
	for _, c := range []keys.Curve{keys.Ed25519, keys.X25519, keys.P256, keys.P384, keys.P521, keys.Secp256k1} {
		t.Run(string(c), func(t *testing.T) {
			k, err := keys.Generate(c, "")
			if err != nil {
				t.Fatal(err)
			}
			did := KeyDID(k.PublicKey)
			doc, err := KeyMethodResolver{}.Resolve(context.Background(), did)
			if err != nil {
				t.Fatal(err)
			}
			kid := did + "#" + strings.TrimPrefix(did, "did:key:")
			if doc.ID != did || doc.VerificationMethod[0].ID != kid || doc.VerificationMethod[0].Type != TypeMultikey {
				t.Fatalf("doc %+v", doc)
			}
			got := mustKey(t, doc, kid)
			if !got.Equal(k.PublicKey) || got.ID != kid {
				t.Errorf("key %+v", got)
			}
			ka, err := doc.KeyAgreement()
			if err != nil || len(ka) != 1 {
				t.Fatalf("KeyAgreement %v %v", ka, err)
			}
			au, err := doc.Authentication()
			if err != nil {
				t.Fatal(err)
			}
			switch c {
			case keys.Ed25519:
				x, _ := k.PublicKey.ToX25519()
				if !ka[0].Equal(x) || ka[0].ID != did+"#"+x.Multikey() || len(au) != 1 || !au[0].Equal(k.PublicKey) {
					t.Errorf("Ed25519 doc: ka %v au %v", ka, au)
				}
			case keys.X25519:
				if !ka[0].Equal(k.PublicKey) || len(au) != 0 {
					t.Errorf("X25519 doc: ka %v au %v", ka, au)
				}
			default:
				if !ka[0].Equal(k.PublicKey) || len(au) != 1 || !au[0].Equal(k.PublicKey) {
					t.Errorf("%s doc: ka %v au %v", c, ka, au)
				}
			}
			// Every rendering keeps the keys.
			for _, style := range []KeyStyle{StyleMultikey, StyleJSONWebKey2020, Style2020, Style2018} {
				r, err := doc.WithVerificationMethodType(style)
				if err != nil {
					t.Fatal(err)
				}
				var back Doc
				if err := json.Unmarshal(mustJSON(t, r), &back); err != nil {
					t.Fatal(err)
				}
				if k2 := mustKey(t, &back, kid); !k2.Equal(k.PublicKey) {
					t.Errorf("style %d changed the key", style)
				}
			}
		})
	}
}

func TestResolveKeyInvalid(t *testing.T) {
	p, _ := keys.Generate(keys.P256, "")
	uncompressed := "z" + keys.Base58Encode(append(binary.AppendUvarint(nil, 0x1200), p.Raw...))
	cases := map[string]string{
		"not did":            "key:z6Mk",
		"not multibase z":    "did:key:m6Mk",
		"bad base58":         "did:key:z0OIl",
		"unknown multicodec": "did:key:z" + keys.Base58Encode(append(binary.AppendUvarint(nil, 0x1234), make([]byte, 32)...)),
		"short key":          "did:key:z6Mk",
		"uncompressed P-256": "did:key:" + uncompressed,
		"two parts":          "did:key:z6Mk:z6Mk",
		"other method":       "did:peer:0z6Mk",
		"url":                "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
		"bad point":          "did:key:z" + keys.Base58Encode(append(binary.AppendUvarint(nil, 0xed), append([]byte{2}, make([]byte, 31)...)...)),
	}
	for name, did := range cases {
		if _, err := ResolveKey(did); !errors.Is(err, ErrInvalidDID) {
			t.Errorf("%s: err = %v, want ErrInvalidDID", name, err)
		}
	}
}
