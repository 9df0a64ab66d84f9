package envelope

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

// party is a test DID with one key agreement key and one signing key per curve.
type party struct {
	did     string
	ka      map[keys.Curve]keys.PrivateKey
	sign    map[keys.Curve]keys.PrivateKey
	secrets testSecrets
}

var kaCurves = []keys.Curve{keys.X25519, keys.P256, keys.P384, keys.P521, keys.Secp256k1}
var signCurves = []keys.Curve{keys.Ed25519, keys.P256, keys.P384, keys.P521, keys.Secp256k1}

// newParty generates keys for did and registers them in r. extraKA adds more
// key agreement keys on X25519 (for multi-recipient tests).
func newParty(t testing.TB, r *testResolver, did string, extraKA int) *party {
	t.Helper()
	p := &party{did: did, ka: map[keys.Curve]keys.PrivateKey{}, sign: map[keys.Curve]keys.PrivateKey{}, secrets: testSecrets{}}
	gen := func(c keys.Curve, frag string, purpose KeyPurpose) keys.PrivateKey {
		k, err := keys.Generate(c, did+"#"+frag)
		if err != nil {
			t.Fatal(err)
		}
		rememberSecret(k)
		r.add(k.PublicKey, purpose)
		p.secrets[k.ID] = k
		return k
	}
	for _, c := range kaCurves {
		p.ka[c] = gen(c, "ka-"+string(c), PurposeKeyAgreement)
	}
	for _, c := range signCurves {
		p.sign[c] = gen(c, "sig-"+string(c), PurposeAuthentication)
	}
	for i := 0; i < extraKA; i++ {
		gen(keys.X25519, fmt.Sprintf("ka-extra-%d", i), PurposeKeyAgreement)
	}
	return p
}

// kaKeys returns the party's public key agreement keys on curve c (the main
// one first).
func (p *party) kaKeys(c keys.Curve) []keys.PublicKey {
	out := []keys.PublicKey{p.ka[c].PublicKey}
	var extra []string
	for kid, k := range p.secrets {
		if k.Curve == c && kid != p.ka[c].ID && strings.Contains(kid, "#ka-") {
			extra = append(extra, kid)
		}
	}
	slices.Sort(extra)
	for _, kid := range extra {
		out = append(out, p.secrets[kid].PublicKey)
	}
	return out
}

type fixture struct {
	r                   *testResolver
	alice, bob, mallory *party
}

func newFixture(t testing.TB) *fixture {
	r := newTestResolver()
	return &fixture{
		r:       r,
		alice:   newParty(t, r, "did:example:alice", 0),
		bob:     newParty(t, r, "did:example:bob", 2),
		mallory: newParty(t, r, "did:example:mallory", 0),
	}
}

func (f *fixture) bobOpts() UnpackOptions {
	return UnpackOptions{Keys: f.r, Secrets: f.bob.secrets}
}

func message(from string, body string) []byte {
	m := map[string]any{
		"id": "c1a2b3", "typ": TypPlain, "type": "https://didcomm.org/basicmessage/2.0/message",
		"to": []string{"did:example:bob"}, "created_time": 1700000000,
		"body": json.RawMessage(body),
	}
	if from != "" {
		m["from"] = from
	}
	b, _ := json.Marshal(m)
	return b
}

func ptr[T any](v T) *T { return &v }

// TestRoundTrips packs and unpacks every mode on every curve and checks the
// plaintext comes back unchanged with the right metadata.
func TestRoundTrips(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	plain := message("did:example:alice", `{"content":"hello ü \u2028 \"quoted\""}`)

	type tc struct {
		name string
		opts PackOptions
		want Metadata
	}
	var cases []tc
	for _, c := range kaCurves {
		rcpt := []keys.PublicKey{f.bob.ka[c].PublicKey}
		sender := f.alice.ka[c]
		cases = append(cases, tc{"authcrypt/" + string(c), PackOptions{Sender: &sender, Recipients: rcpt}, Metadata{
			Encrypted: true, Authenticated: true, EncryptedFrom: sender.ID, EncryptedTo: []string{rcpt[0].ID},
			EncAlgAuth: "A256CBC-HS512+ECDH-1PU+A256KW",
		}})
		for _, enc := range []Enc{A256CBCHS512, A256GCM, XC20P, ""} {
			want := enc
			if enc == "" {
				want = XC20P
			}
			cases = append(cases, tc{"anoncrypt/" + string(c) + "/" + string(enc), PackOptions{Recipients: rcpt, EncAnon: enc}, Metadata{
				Encrypted: true, AnonymousSender: true, EncryptedTo: []string{rcpt[0].ID},
				EncAlgAnon: string(want) + "+ECDH-ES+A256KW",
			}})
		}
		cases = append(cases, tc{"protect-sender/" + string(c), PackOptions{Sender: &sender, Recipients: rcpt, ProtectSender: true, EncAnon: A256GCM}, Metadata{
			Encrypted: true, Authenticated: true, AnonymousSender: true, EncryptedFrom: sender.ID, EncryptedTo: []string{rcpt[0].ID},
			EncAlgAuth: "A256CBC-HS512+ECDH-1PU+A256KW", EncAlgAnon: "A256GCM+ECDH-ES+A256KW",
		}})
	}
	for _, c := range signCurves {
		signer := f.alice.sign[c]
		alg := c.JWSAlg()
		cases = append(cases, tc{"signed/" + alg, PackOptions{SignBy: &signer}, Metadata{
			Authenticated: true, NonRepudiation: true, SignFrom: signer.ID, SignAlg: alg,
		}})
	}
	x := f.alice.ka[keys.X25519]
	ed := f.alice.sign[keys.Ed25519]
	k1 := f.alice.sign[keys.Secp256k1]
	bobX := f.bob.kaKeys(keys.X25519)
	bobKids := make([]string, len(bobX))
	for i, k := range bobX {
		bobKids[i] = k.ID
	}
	cases = append(cases,
		tc{"sign-then-authcrypt", PackOptions{Sender: &x, SignBy: &ed, Recipients: bobX[:1]}, Metadata{
			Encrypted: true, Authenticated: true, NonRepudiation: true, EncryptedFrom: x.ID, EncryptedTo: bobKids[:1],
			EncAlgAuth: "A256CBC-HS512+ECDH-1PU+A256KW", SignFrom: ed.ID, SignAlg: "EdDSA",
		}},
		tc{"sign-then-anoncrypt", PackOptions{SignBy: &k1, Recipients: bobX[:1]}, Metadata{
			Encrypted: true, Authenticated: true, NonRepudiation: true, AnonymousSender: true, EncryptedTo: bobKids[:1],
			EncAlgAnon: "XC20P+ECDH-ES+A256KW", SignFrom: k1.ID, SignAlg: "ES256K",
		}},
		tc{"sign-authcrypt-protect-sender", PackOptions{Sender: &x, SignBy: &ed, Recipients: bobX, ProtectSender: true}, Metadata{
			Encrypted: true, Authenticated: true, NonRepudiation: true, AnonymousSender: true, EncryptedFrom: x.ID, EncryptedTo: bobKids,
			EncAlgAuth: "A256CBC-HS512+ECDH-1PU+A256KW", EncAlgAnon: "XC20P+ECDH-ES+A256KW", SignFrom: ed.ID, SignAlg: "EdDSA",
		}},
		tc{"authcrypt-3-recipients", PackOptions{Sender: &x, Recipients: bobX}, Metadata{
			Encrypted: true, Authenticated: true, EncryptedFrom: x.ID, EncryptedTo: bobKids,
			EncAlgAuth: "A256CBC-HS512+ECDH-1PU+A256KW",
		}},
		tc{"anoncrypt-3-recipients", PackOptions{Recipients: bobX, EncAnon: A256CBCHS512}, Metadata{
			Encrypted: true, AnonymousSender: true, EncryptedTo: bobKids,
			EncAlgAnon: "A256CBC-HS512+ECDH-ES+A256KW",
		}},
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			packed, err := Pack(plain, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			// Every recipient can open it on its own, through both resolver flavours.
			holders := c.want.EncryptedTo
			if len(holders) == 0 {
				holders = []string{""}
			}
			for i, kid := range holders {
				opts := UnpackOptions{Keys: f.r, Secrets: f.bob.secrets.only(kid)}
				if i%2 == 1 {
					opts.Keys = plainResolver{f.r}
				}
				pt, md, err := Unpack(ctx, packed, opts)
				if err != nil {
					t.Fatalf("recipient %q: %v", kid, err)
				}
				if !bytes.Equal(pt, plain) {
					t.Fatalf("plaintext %s", pt)
				}
				if (md.SignedMessage != nil) != c.want.NonRepudiation {
					t.Fatalf("SignedMessage = %s", md.SignedMessage)
				}
				if md.SignedMessage != nil {
					if _, _, err := Unpack(ctx, md.SignedMessage, opts); err != nil {
						t.Fatalf("SignedMessage does not verify on its own: %v", err)
					}
				}
				md.SignedMessage = nil
				if fmt.Sprint(md) != fmt.Sprint(c.want) {
					t.Fatalf("metadata\n got %+v\nwant %+v", md, c.want)
				}
			}
		})
	}
}

// TestPackedShape checks the JSON members and the DIDComm conventions of
// what PackAuthcrypt writes: typ, alg, enc, skid, apu, apv, one shared epk of
// the right JWK shape, and per-recipient kids.
func TestPackedShape(t *testing.T) {
	f := newFixture(t)
	for _, c := range kaCurves {
		sender := f.alice.ka[c]
		second, err := keys.Generate(c, f.bob.did+"#second")
		if err != nil {
			t.Fatal(err)
		}
		rcpt := []keys.PublicKey{f.bob.ka[c].PublicKey, second.PublicKey}
		jwe, err := PackAuthcrypt(message(f.alice.did, `{}`), sender, rcpt)
		if err != nil {
			t.Fatal(err)
		}
		var j struct {
			Protected  string
			Recipients []struct {
				Header       map[string]string `json:"header"`
				EncryptedKey string            `json:"encrypted_key"`
			}
			IV, Ciphertext, Tag string
		}
		if err := json.Unmarshal(jwe, &j); err != nil {
			t.Fatal(err)
		}
		var h map[string]any
		if err := json.Unmarshal(mustB64(t, j.Protected), &h); err != nil {
			t.Fatal(err)
		}
		kids := []string{rcpt[0].ID, rcpt[1].ID}
		slices.Sort(kids)
		apv, _ := apvOf(kids)
		want := map[string]any{
			"typ": TypEncrypted, "alg": AlgAuthcrypt, "enc": "A256CBC-HS512",
			"skid": sender.ID, "apu": base64.RawURLEncoding.EncodeToString([]byte(sender.ID)),
			"apv": base64.RawURLEncoding.EncodeToString(apv),
		}
		epk := h["epk"].(map[string]any)
		delete(h, "epk")
		if fmt.Sprint(h) != fmt.Sprint(want) {
			t.Errorf("%s: header %v, want %v", c, h, want)
		}
		wantKty, members := "EC", 4
		if c == keys.X25519 {
			wantKty, members = "OKP", 3
		}
		if epk["kty"] != wantKty || epk["crv"] != string(c) || len(epk) != members {
			t.Errorf("%s: epk %v", c, epk)
		}
		if len(j.Recipients) != 2 || j.Recipients[0].Header["kid"] != rcpt[0].ID || j.Recipients[1].Header["kid"] != rcpt[1].ID {
			t.Errorf("%s: recipients %+v", c, j.Recipients)
		}
		if len(mustB64(t, j.Recipients[0].EncryptedKey)) != 72 || len(mustB64(t, j.IV)) != 16 || len(mustB64(t, j.Tag)) != 32 {
			t.Errorf("%s: sizes of encrypted_key/iv/tag", c)
		}
	}
}

// TestTampering flips bits in each part of authcrypt and anoncrypt JWEs.
func TestTampering(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	x := f.alice.ka[keys.X25519]
	plain := message(f.alice.did, `{"n":1}`)
	auth, err := PackAuthcrypt(plain, x, f.bob.kaKeys(keys.X25519)[:1])
	if err != nil {
		t.Fatal(err)
	}
	anon, err := PackAnoncrypt(plain, f.bob.kaKeys(keys.X25519)[:1], XC20P)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := PackAnoncrypt(plain, f.bob.kaKeys(keys.X25519)[:1], A256GCM)
	if err != nil {
		t.Fatal(err)
	}
	for name, jwe := range map[string][]byte{"authcrypt": auth, "anoncrypt-xc20p": anon, "anoncrypt-gcm": gcm} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Unpack(ctx, jwe, f.bobOpts()); err != nil {
				t.Fatal(err)
			}
			flip := func(member string, i int) []byte {
				return mutateJSON(t, jwe, func(m map[string]any) {
					m[member] = flipB64(t, m[member].(string), i)
				})
			}
			for _, tc := range []struct {
				what string
				msg  []byte
				want error
			}{
				{"ciphertext first byte", flip("ciphertext", 0), ErrDecrypt},
				{"ciphertext last byte", flip("ciphertext", -1), ErrDecrypt},
				{"tag", flip("tag", 3), ErrDecrypt},
				{"iv", flip("iv", 0), ErrDecrypt},
				{"encrypted_key", mutateJSON(t, jwe, func(m map[string]any) {
					r := m["recipients"].([]any)[0].(map[string]any)
					r["encrypted_key"] = flipB64(t, r["encrypted_key"].(string), 10)
				}), ErrDecrypt},
				{"protected header member added", mutateProtected(t, jwe, func(h map[string]any) { h["x"] = "y" }), ErrDecrypt},
				{"protected header apv", mutateProtected(t, jwe, func(h map[string]any) {
					h["apv"] = flipB64(t, h["apv"].(string), 0)
				}), ErrMalformed},
				{"protected header epk", mutateProtected(t, jwe, func(h map[string]any) {
					epk := h["epk"].(map[string]any)
					epk["x"] = flipB64(t, epk["x"].(string), 0)
				}), ErrDecrypt},
				{"protected base64 garbled", mutateJSON(t, jwe, func(m map[string]any) {
					p := []byte(m["protected"].(string))
					p[2] = '*'
					m["protected"] = string(p)
				}), ErrMalformed},
				{"recipient kid", mutateJSON(t, jwe, func(m map[string]any) {
					r := m["recipients"].([]any)[0].(map[string]any)
					r["header"] = map[string]any{"kid": "did:example:bob#other"}
				}), ErrMalformed},
			} {
				_, _, err := Unpack(ctx, tc.msg, f.bobOpts())
				if err == nil {
					t.Fatalf("%s: accepted", tc.what)
				}
				t.Run(tc.what, func(t *testing.T) { expectErr(t, err, tc.want) })
			}
		})
	}
}

// TestEveryBitFlipRejected flips the low bit of every byte of serialized
// envelopes: no single change may go through.
func TestEveryBitFlipRejected(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	x := f.alice.ka[keys.X25519]
	ed := f.alice.sign[keys.Ed25519]
	plain := message(f.alice.did, `{}`)
	auth, _ := PackAuthcrypt(plain, x, f.bob.kaKeys(keys.X25519)[:1])
	anon, _ := PackAnoncrypt(plain, f.bob.kaKeys(keys.X25519)[:1], A256CBCHS512)
	signed, _ := Sign(plain, ed)
	for name, msg := range map[string][]byte{"authcrypt": auth, "anoncrypt": anon, "signed": signed} {
		for i := range msg {
			m := bytes.Clone(msg)
			m[i] ^= 0x01
			if _, _, err := Unpack(ctx, m, f.bobOpts()); err == nil {
				t.Errorf("%s: flip at byte %d (%q) accepted", name, i, msg[max(0, i-10):min(len(msg), i+10)])
			}
		}
	}
}

func TestWrongRecipient(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	x := f.alice.ka[keys.X25519]
	jwe, err := PackAuthcrypt(message(f.alice.did, `{}`), x, f.bob.kaKeys(keys.X25519)[:1])
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Unpack(ctx, jwe, UnpackOptions{Keys: f.r, Secrets: f.mallory.secrets})
	expectErr(t, err, ErrNoRecipientKey)
	_, _, err = Unpack(ctx, jwe, UnpackOptions{Keys: f.r})
	expectErr(t, err, ErrNoRecipientKey)

	// Mallory holds a key under bob's kid: the content key does not unwrap.
	stolen := testSecrets{f.bob.ka[keys.X25519].ID: relabel(f.mallory.ka[keys.X25519], f.bob.ka[keys.X25519].ID)}
	_, _, err = Unpack(ctx, jwe, UnpackOptions{Keys: f.r, Secrets: stolen})
	expectErr(t, err, ErrDecrypt)

	// A held key on another curve than epk cannot be used.
	other := testSecrets{f.bob.ka[keys.X25519].ID: relabel(f.bob.ka[keys.P256], f.bob.ka[keys.X25519].ID)}
	_, _, err = Unpack(ctx, jwe, UnpackOptions{Keys: f.r, Secrets: other})
	expectErr(t, err, ErrMalformed)
}

func relabel(k keys.PrivateKey, kid string) keys.PrivateKey {
	k.ID = kid
	return k
}

// TestSecondHeldKeyIsTried: when the first recipient kid we hold does not
// unwrap (a stale secret), the next one held is tried.
func TestSecondHeldKeyIsTried(t *testing.T) {
	f := newFixture(t)
	bobX := f.bob.kaKeys(keys.X25519)
	jwe, err := PackAnoncrypt(message("", `{}`), bobX, XC20P)
	if err != nil {
		t.Fatal(err)
	}
	s := f.bob.secrets.only(bobX[0].ID, bobX[1].ID)
	s[bobX[0].ID] = relabel(f.mallory.ka[keys.X25519], bobX[0].ID)
	if _, _, err := Unpack(context.Background(), jwe, UnpackOptions{Secrets: s}); err != nil {
		t.Fatal(err)
	}
}

func TestSenderMismatch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	x := f.alice.ka[keys.X25519]
	ed := f.alice.sign[keys.Ed25519]
	bob := f.bob.kaKeys(keys.X25519)[:1]

	for _, from := range []string{"did:example:mallory", ""} {
		forged := message(from, `{}`)
		// Pack refuses what Unpack would reject.
		_, err := Pack(forged, PackOptions{Sender: &x, Recipients: bob})
		expectErr(t, err, ErrSenderMismatch)
		_, err = Pack(forged, PackOptions{SignBy: &ed})
		expectErr(t, err, ErrSenderMismatch)

		jwe, err := PackAuthcrypt(forged, x, bob)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = Unpack(ctx, jwe, f.bobOpts())
		expectErr(t, err, ErrSenderMismatch)

		jws, err := Sign(forged, ed)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = Unpack(ctx, jws, f.bobOpts())
		expectErr(t, err, ErrSenderMismatch)

		// Signed by alice, authcrypted by mallory: from can match only one.
		inner, _ := Sign(message(f.alice.did, `{}`), ed)
		mx := f.mallory.ka[keys.X25519]
		jwe, err = PackAuthcrypt(inner, mx, bob)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = Unpack(ctx, jwe, f.bobOpts())
		expectErr(t, err, ErrSenderMismatch)
	}

	// skid and apu disagree.
	jwe, _ := PackAuthcrypt(message(f.alice.did, `{}`), x, bob)
	bad := mutateProtected(t, jwe, func(h map[string]any) { h["skid"] = f.mallory.ka[keys.X25519].ID })
	_, _, err := Unpack(ctx, bad, f.bobOpts())
	expectErr(t, err, ErrSenderMismatch)

	// skid without apu.
	noApu := mutateProtected(t, jwe, func(h map[string]any) { delete(h, "apu") })
	_, _, err = Unpack(ctx, noApu, f.bobOpts())
	expectErr(t, err, ErrMalformed)
}

// TestSkidFromApu: a sender may leave skid out; the receiver reads it from apu.
func TestSkidFromApu(t *testing.T) {
	f := newFixture(t)
	x := f.alice.ka[keys.X25519]
	bob := f.bob.kaKeys(keys.X25519)[:1]
	apv, _ := apvOf([]string{bob[0].ID})
	eph, epk, err := newEphemeral(keys.X25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	epkJSON, _ := appendEPK(nil, epk)
	hdr := fmt.Sprintf(`{"alg":%q,"enc":"A256CBC-HS512","apu":%q,"apv":%q,"epk":%s}`, AlgAuthcrypt,
		base64.RawURLEncoding.EncodeToString([]byte(x.ID)), base64.RawURLEncoding.EncodeToString(apv), epkJSON)
	sender, _ := staticAgreeKey(x)
	jwe, err := seal(&sealParams{
		alg: AlgAuthcrypt, kekLen: 32, enc: A256CBCHS512,
		protected: []byte(base64.RawURLEncoding.EncodeToString([]byte(hdr))),
		apu:       []byte(x.ID), apv: apv, eph: eph, sender: &sender, recipients: bob,
	}, message(f.alice.did, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	_, md, err := Unpack(context.Background(), jwe, f.bobOpts())
	if err != nil {
		t.Fatal(err)
	}
	if md.EncryptedFrom != x.ID || !md.Authenticated {
		t.Fatalf("metadata %+v", md)
	}
}

func TestSenderKeyResolution(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	x := f.alice.ka[keys.X25519]
	ed := f.alice.sign[keys.Ed25519]
	bob := f.bob.kaKeys(keys.X25519)[:1]
	jwe, _ := PackAuthcrypt(message(f.alice.did, `{}`), x, bob)
	jws, _ := Sign(message(f.alice.did, `{}`), ed)

	empty := newTestResolver()
	for _, msg := range [][]byte{jwe, jws} {
		_, _, err := Unpack(ctx, msg, UnpackOptions{Keys: empty, Secrets: f.bob.secrets})
		expectErr(t, err, ErrSenderKey)
		if !strings.Contains(err.Error(), "not found") {
			t.Errorf("resolver error lost: %v", err)
		}
		_, _, err = Unpack(ctx, msg, UnpackOptions{Secrets: f.bob.secrets})
		expectErr(t, err, ErrSenderKey)
	}

	// A purpose-aware resolver keeps keys to their relationship.
	swapped := newTestResolver()
	swapped.add(x.PublicKey, PurposeAuthentication)
	swapped.add(ed.PublicKey, PurposeKeyAgreement)
	for _, msg := range [][]byte{jwe, jws} {
		_, _, err := Unpack(ctx, msg, UnpackOptions{Keys: swapped, Secrets: f.bob.secrets})
		expectErr(t, err, ErrSenderKey)
		if _, _, err := Unpack(ctx, msg, UnpackOptions{Keys: plainResolver{swapped}, Secrets: f.bob.secrets}); err != nil {
			t.Fatalf("plain resolver: %v", err)
		}
	}

	// skid resolving to a key on another curve than epk.
	wrongCurve := newTestResolver()
	wrongCurve.add(relabel(f.alice.ka[keys.P256], x.ID).PublicKey, PurposeKeyAgreement)
	_, _, err := Unpack(ctx, jwe, UnpackOptions{Keys: wrongCurve, Secrets: f.bob.secrets})
	expectErr(t, err, ErrMalformed)

	// skid resolving to the wrong key of the right curve: unwrap fails.
	wrongKey := newTestResolver()
	wrongKey.add(relabel(f.mallory.ka[keys.X25519], x.ID).PublicKey, PurposeKeyAgreement)
	_, _, err = Unpack(ctx, jwe, UnpackOptions{Keys: wrongKey, Secrets: f.bob.secrets})
	expectErr(t, err, ErrDecrypt)

	// Signer kid resolving to another key: bad signature; to another curve: too.
	for _, k := range []keys.PrivateKey{f.mallory.sign[keys.Ed25519], f.alice.sign[keys.P256]} {
		r := newTestResolver()
		r.add(relabel(k, ed.ID).PublicKey, PurposeAuthentication)
		_, _, err = Unpack(ctx, jws, UnpackOptions{Keys: r})
		expectErr(t, err, ErrBadSignature)
	}
}

func TestUnsupported(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	x := f.alice.ka[keys.X25519]
	bob := f.bob.kaKeys(keys.X25519)[:1]
	auth, _ := PackAuthcrypt(message(f.alice.did, `{}`), x, bob)
	anon, _ := PackAnoncrypt(message(f.alice.did, `{}`), bob, XC20P)
	jws, _ := Sign(message(f.alice.did, `{}`), f.alice.sign[keys.Ed25519])
	setHdr := func(msg []byte, k string, v any) []byte {
		return mutateProtected(t, msg, func(h map[string]any) { h[k] = v })
	}
	setJWSHdr := func(k string, v any) []byte {
		return mutateJSON(t, jws, func(m map[string]any) {
			s := m["signatures"].([]any)[0].(map[string]any)
			var h map[string]any
			json.Unmarshal(mustB64(t, s["protected"].(string)), &h)
			h[k] = v
			b, _ := json.Marshal(h)
			s["protected"] = base64.RawURLEncoding.EncodeToString(b)
		})
	}
	for _, tc := range []struct {
		what string
		msg  []byte
	}{
		{"alg ECDH-ES+A128KW", setHdr(anon, "alg", "ECDH-ES+A128KW")},
		{"alg RSA-OAEP", setHdr(anon, "alg", "RSA-OAEP")},
		{"alg ECDH-1PU+A128KW", setHdr(auth, "alg", "ECDH-1PU+A128KW")},
		{"enc A128GCM", setHdr(anon, "enc", "A128GCM")},
		{"enc XC20P with authcrypt", setHdr(auth, "enc", "XC20P")},
		{"JWE typ", setHdr(anon, "typ", "application/jose+json")},
		{"JWE crit", setHdr(anon, "crit", []string{"exp"})},
		{"JWE zip", setHdr(anon, "zip", "DEF")},
		{"epk curve", setHdr(anon, "epk", map[string]string{"kty": "OKP", "crv": "X448", "x": "AAAA"})},
		{"JWS alg HS256", setJWSHdr("alg", "HS256")},
		{"JWS alg none", setJWSHdr("alg", "none")},
		{"JWS typ", setJWSHdr("typ", "JWT")},
		{"JWS crit", setJWSHdr("crit", []string{"b64"})},
		{"JWS two signatures", mutateJSON(t, jws, func(m map[string]any) {
			s := m["signatures"].([]any)
			m["signatures"] = append(s, s[0])
		})},
	} {
		t.Run(tc.what, func(t *testing.T) {
			_, _, err := Unpack(ctx, tc.msg, f.bobOpts())
			expectErr(t, err, ErrUnsupported)
		})
	}
	// Pack side.
	_, err := PackAnoncrypt(message("", `{}`), bob, "A128GCM")
	expectErr(t, err, ErrUnsupported)
	ed := f.alice.sign[keys.Ed25519]
	_, err = PackAuthcrypt(message(f.alice.did, `{}`), ed, bob)
	expectErr(t, err, ErrUnsupported)
	_, err = Sign(message(f.alice.did, `{}`), x)
	expectErr(t, err, ErrUnsupported)
}

// TestNesting checks that only anoncrypt(authcrypt(signed(plaintext))) and its
// sub-sequences are accepted.
func TestNesting(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	x := f.alice.ka[keys.X25519]
	ed := f.alice.sign[keys.Ed25519]
	bob := f.bob.kaKeys(keys.X25519)[:1]
	plain := message(f.alice.did, `{}`)
	signed, _ := Sign(plain, ed)
	auth, _ := PackAuthcrypt(plain, x, bob)
	anon, _ := PackAnoncrypt(plain, bob, "")

	bad := map[string]func() ([]byte, error){
		"sign(sign)":      func() ([]byte, error) { return Sign(signed, ed) },
		"sign(authcrypt)": func() ([]byte, error) { return Sign(auth, ed) },
		"sign(anoncrypt)": func() ([]byte, error) { return Sign(anon, ed) },
		"authcrypt(auth)": func() ([]byte, error) { return PackAuthcrypt(auth, x, bob) },
		"authcrypt(anon)": func() ([]byte, error) { return PackAuthcrypt(anon, x, bob) },
		"anoncrypt(anon)": func() ([]byte, error) { return PackAnoncrypt(anon, bob, "") },
		"anon(anon(auth))": func() ([]byte, error) {
			a, _ := PackAnoncrypt(auth, bob, "")
			return PackAnoncrypt(a, bob, "")
		},
	}
	for name, mk := range bad {
		msg, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = Unpack(ctx, msg, f.bobOpts())
		t.Run(name, func(t *testing.T) { expectErr(t, err, ErrMalformed) })
	}

	// Pack refuses non-plaintext input.
	_, err := Pack(signed, PackOptions{Recipients: bob})
	expectErr(t, err, ErrMalformed)
}

func TestLimits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bob := f.bob.ka[keys.X25519].PublicKey
	many := make([]keys.PublicKey, MaxRecipients+1)
	for i := range many {
		many[i] = relabel(keys.PrivateKey{PublicKey: bob}, fmt.Sprintf("did:example:bob#k%d", i)).PublicKey
	}
	if _, err := PackAnoncrypt(message("", `{}`), many, ""); err == nil {
		t.Fatal("packed for too many recipients")
	}
	ok, err := PackAnoncrypt(message("", `{}`), many[:MaxRecipients], "")
	if err != nil {
		t.Fatal(err)
	}
	tooMany := mutateJSON(t, ok, func(m map[string]any) {
		r := m["recipients"].([]any)
		extra := map[string]any{"header": map[string]any{"kid": "did:example:bob#extra"}, "encrypted_key": r[0].(map[string]any)["encrypted_key"]}
		m["recipients"] = append(r, extra)
	})
	_, _, err = Unpack(ctx, tooMany, f.bobOpts())
	expectErr(t, err, ErrMalformed)

	dup := mutateJSON(t, ok, func(m map[string]any) {
		r := m["recipients"].([]any)
		r[1] = r[0]
	})
	_, _, err = Unpack(ctx, dup, f.bobOpts())
	expectErr(t, err, ErrMalformed)
	if _, err := PackAnoncrypt(message("", `{}`), []keys.PublicKey{bob, bob}, ""); err == nil {
		t.Fatal("packed for a duplicated recipient")
	}
	if _, err := PackAnoncrypt(message("", `{}`), []keys.PublicKey{bob, f.bob.ka[keys.P256].PublicKey}, ""); err == nil {
		t.Fatal("packed for recipients on two curves")
	}
	x := f.alice.ka[keys.X25519]
	if _, err := PackAuthcrypt(message("", `{}`), x, []keys.PublicKey{f.bob.ka[keys.P256].PublicKey}); err == nil {
		t.Fatal("authcrypt across curves")
	}

	// One JWE is for the keys of one DID (spec "Message Encryption").
	two := []keys.PublicKey{bob, f.mallory.ka[keys.X25519].PublicKey}
	if _, err := PackAnoncrypt(message("", `{}`), two, ""); err == nil {
		t.Fatal("anoncrypt for two DIDs")
	}
	if _, err := PackAuthcrypt(message(f.alice.did, `{}`), x, two); err == nil {
		t.Fatal("authcrypt for two DIDs")
	}
	apv, _ := apvOf([]string{two[0].ID, two[1].ID})
	sk, _ := staticAgreeKey(x)
	jwe, err := packJWE(message(f.alice.did, `{}`), AlgAuthcrypt, A256CBCHS512, &sk, x.ID, apv, two, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Unpack(ctx, jwe, f.bobOpts())
	expectErr(t, err, ErrMalformed)
	if _, err := PackAnoncrypt(message("", `{}`), nil, ""); err == nil {
		t.Fatal("packed for no recipients")
	}
}

// TestLowOrderEPK: an X25519 epk of small order gives an all-zero shared
// secret and must be refused, not used.
func TestLowOrderEPK(t *testing.T) {
	f := newFixture(t)
	bob := f.bob.kaKeys(keys.X25519)[:1]
	anon, _ := PackAnoncrypt(message("", `{}`), bob, "")
	for _, p := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	} {
		x := base64.RawURLEncoding.EncodeToString(mustHex(t, p))
		msg := mutateProtected(t, anon, func(h map[string]any) {
			h["epk"] = map[string]string{"kty": "OKP", "crv": "X25519", "x": x}
		})
		_, _, err := Unpack(context.Background(), msg, f.bobOpts())
		expectErr(t, err, ErrMalformed)
		if !strings.Contains(err.Error(), "low-order") {
			t.Fatalf("rejected for another reason: %v", err)
		}
	}
}

func TestFromPrior(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := f.mallory.sign[keys.Ed25519] // mallory rotates to alice
	jwt := func(hdr, claims string, k keys.PrivateKey) string {
		s := base64.RawURLEncoding.EncodeToString([]byte(hdr)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
		sig, err := k.Sign([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return s + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	hdr := `{"typ":"JWT","alg":"EdDSA","kid":"` + old.ID + `"}`
	withFP := func(fp string) []byte {
		return mutateJSON(t, message(f.alice.did, `{}`), func(m map[string]any) { m["from_prior"] = fp })
	}
	good := withFP(jwt(hdr, `{"iss":"did:example:mallory","sub":"did:example:alice","iat":5}`, old))
	_, md, err := Unpack(ctx, good, UnpackOptions{Keys: f.r})
	if err != nil {
		t.Fatal(err)
	}
	if md.FromPriorIssuerKid != old.ID || *md.FromPrior != (FromPrior{Iss: "did:example:mallory", Sub: "did:example:alice", Iat: 5}) {
		t.Fatalf("metadata %+v", md)
	}
	for _, tc := range []struct {
		what string
		msg  []byte
		want error
	}{
		{"issuer is not the signer's DID", withFP(jwt(hdr, `{"iss":"did:example:bob","sub":"did:example:alice"}`, old)), ErrSenderMismatch},
		{"sub is not from", withFP(jwt(hdr, `{"iss":"did:example:mallory","sub":"did:example:bob"}`, old)), ErrSenderMismatch},
		{"no sub", withFP(jwt(hdr, `{"iss":"did:example:mallory"}`, old)), ErrMalformed},
		{"signed by another key", withFP(jwt(hdr, `{"iss":"did:example:mallory","sub":"did:example:alice"}`, f.bob.sign[keys.Ed25519])), ErrBadSignature},
		{"typ not JWT", withFP(jwt(`{"alg":"EdDSA","kid":"`+old.ID+`"}`, `{"iss":"did:example:mallory","sub":"did:example:alice"}`, old)), ErrMalformed},
		{"not a JWS", withFP("a.b"), ErrMalformed},
		{"not a string", mutateJSON(t, good, func(m map[string]any) { m["from_prior"] = 5 }), ErrMalformed},
	} {
		t.Run(tc.what, func(t *testing.T) {
			_, _, err := Unpack(ctx, tc.msg, UnpackOptions{Keys: f.r})
			expectErr(t, err, tc.want)
		})
	}
}

// TestPlaintextChecks covers plaintext shapes beyond the negative vectors.
func TestPlaintextChecks(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		msg  string
		want error
	}{
		{`{"id":"1","type":"t","body":{}}`, nil},
		{`{"id":"1","type":"t","typ":"didcomm-plain+json","body":{},"attachments":[{"data":{"json":null}}]}`, nil},
		{`{"id":"1","type":"t","body":[]}`, ErrMalformed},
		{`{"id":"1","type":"t","body":null}`, ErrMalformed},
		{`{"id":1,"type":"t","body":{}}`, ErrMalformed},
		{`{"id":"1","type":"t","body":{},"to":"did:example:bob"}`, ErrMalformed},
		{`{"id":"1","type":"t","body":{},"created_time":-1}`, ErrMalformed},
		{`{"id":"1","type":"t","body":{},"from":7}`, ErrMalformed},
		{`{"id":"1","type":"t","body":{},"typ":"application/didcomm-encrypted+json"}`, ErrMalformed},
		{`{"id":"1","type":"t","body":{},"typ":"text/plain"}`, ErrUnsupported},
		{`[1,2]`, ErrMalformed},
		{`null`, ErrMalformed},
		{``, ErrMalformed},
		{`{"ciphertext":"x","signatures":[]}`, ErrMalformed},
	} {
		_, _, err := Unpack(ctx, []byte(tc.msg), UnpackOptions{})
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.msg, err)
			}
			continue
		}
		expectErr(t, err, tc.want)
	}
}

// TestPackDeterministicSeam: with the random inputs fixed, packing is a pure
// function, and changing any of them changes the output.
func TestPackDeterministicSeam(t *testing.T) {
	f := newFixture(t)
	x := f.alice.ka[keys.X25519]
	bob := f.bob.kaKeys(keys.X25519)[:1]
	fx := &sealFixed{epkD: bytes.Repeat([]byte{7}, 32), cek: bytes.Repeat([]byte{1}, 64), iv: bytes.Repeat([]byte{2}, 16)}
	a, err := packAuthcrypt(message(f.alice.did, `{}`), x, bob, fx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := packAuthcrypt(message(f.alice.did, `{}`), x, bob, fx)
	if !bytes.Equal(a, b) {
		t.Fatal("fixed inputs, different output")
	}
	if _, _, err := Unpack(context.Background(), a, f.bobOpts()); err != nil {
		t.Fatal(err)
	}
	fx2 := *fx
	fx2.iv = bytes.Repeat([]byte{3}, 16)
	c, _ := packAuthcrypt(message(f.alice.did, `{}`), x, bob, &fx2)
	if bytes.Equal(a, c) {
		t.Fatal("iv not used")
	}
	r1, _ := PackAuthcrypt(message(f.alice.did, `{}`), x, bob)
	r2, _ := PackAuthcrypt(message(f.alice.did, `{}`), x, bob)
	if bytes.Equal(r1, r2) {
		t.Fatal("random packing repeated itself")
	}
}
