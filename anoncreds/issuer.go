package anoncreds

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"filippo.io/bigmod"
)

// Issuer parameters (anoncreds-clsignatures constants).
const (
	// MaxSchemaAttributes is the most attributes NewSchema accepts (anoncreds-rs's limit).
	MaxSchemaAttributes = 125
	// SafePrimeBits is the size of each of the two safe primes of an issuer key:
	// the modulus n has 2·SafePrimeBits = 2048 bits.
	SafePrimeBits    = 1024
	largeERange      = 119  // e = 2^596 + e', e' < 2^119
	largeVPrimePrime = 2724 // v” has this many bits, its top bit set
	maxIDLength      = 1024 // issuer identifiers, names, versions, tags
)

// ErrInvalidRequest is returned by IssueCredential for a credential request
// it refuses: a blinded-secrets correctness proof that does not verify (a
// tampered request, or one made for another offer's nonce), another
// credential definition, or a blinded link secret outside the key's group.
var ErrInvalidRequest = errors.New("anoncreds: invalid credential request")

// NewSchema validates and builds a schema: a non-empty issuer identifier,
// name and version (at most 1,024 bytes of printable UTF-8 each), and 1 to
// MaxSchemaAttributes attribute names, unique after CanonicalAttrName, none
// empty or master_secret. attrNames is copied.
func NewSchema(issuerID, name, version string, attrNames []string) (*Schema, error) {
	for what, v := range map[string]string{"issuer id": issuerID, "name": name, "version": version} {
		if err := checkText(what, v); err != nil {
			return nil, err
		}
	}
	if len(attrNames) == 0 || len(attrNames) > MaxSchemaAttributes {
		return nil, fmt.Errorf("%w: schema has %d attributes (1..%d allowed)", ErrMalformed, len(attrNames), MaxSchemaAttributes)
	}
	for _, a := range attrNames {
		if err := checkText("attribute name", a); err != nil {
			return nil, err
		}
	}
	s := &Schema{Name: name, Version: version, AttrNames: slices.Clone(attrNames), IssuerID: issuerID}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func checkText(what, v string) error {
	if v == "" || len(v) > maxIDLength || !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s must be 1..%d bytes of UTF-8", ErrMalformed, what, maxIDLength)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s contains a control character", ErrMalformed, what)
		}
	}
	return nil
}

// CredentialDefinitionPrivate is the issuer's secret key for a credential
// definition: the primes p' and q' of the modulus n = (2p'+1)(2q'+1). (The
// secret exponents of the bases S^x are not kept: signing needs only the
// factorisation, as in anoncreds-rs.) Its JSON form is anoncreds-rs's
// CredentialDefinitionPrivate, {"value":{"p_key":{"p":"…","q":"…"}}}, for
// storage (the caller seals it); String and GoString redact it, and no error
// shows it.
type CredentialDefinitionPrivate struct {
	pPrime, qPrime *big.Int
}

type credDefPrivateJSON struct {
	Value struct {
		PKey struct {
			P *BigInt `json:"p"`
			Q *BigInt `json:"q"`
		} `json:"p_key"`
		RKey json.RawMessage `json:"r_key,omitempty"`
	} `json:"value"`
}

// MarshalJSON writes anoncreds-rs's form (secret: seal it).
func (c *CredentialDefinitionPrivate) MarshalJSON() ([]byte, error) {
	if c == nil || c.pPrime == nil {
		return nil, errors.New("anoncreds: empty credential definition private key")
	}
	var j credDefPrivateJSON
	j.Value.PKey.P = &BigInt{Int: *c.pPrime}
	j.Value.PKey.Q = &BigInt{Int: *c.qPrime}
	return json.Marshal(j)
}

// UnmarshalJSON reads anoncreds-rs's form; a revocation key (r_key) is refused.
func (c *CredentialDefinitionPrivate) UnmarshalJSON(data []byte) error {
	var j credDefPrivateJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("%w: credential definition private key", ErrMalformed)
	}
	if r := strings.TrimSpace(string(j.Value.RKey)); r != "" && r != "null" {
		return fmt.Errorf("%w: credential definition private key has a revocation key", ErrNonRevocationUnsupported)
	}
	if j.Value.PKey.P == nil || j.Value.PKey.Q == nil {
		return fmt.Errorf("%w: credential definition private key incomplete", ErrMalformed)
	}
	p, q := new(big.Int).Set(&j.Value.PKey.P.Int), new(big.Int).Set(&j.Value.PKey.Q.Int)
	if _, err := newIssuerKey(p, q); err != nil {
		return fmt.Errorf("%w: credential definition private key", ErrMalformed)
	}
	c.pPrime, c.qPrime = p, q
	return nil
}

// ParseCredentialDefinitionPrivate reads a private key written by
// MarshalJSON or by anoncreds-rs.
func ParseCredentialDefinitionPrivate(data []byte) (*CredentialDefinitionPrivate, error) {
	var c CredentialDefinitionPrivate
	if len(data) > MaxJSONSize {
		return nil, fmt.Errorf("%w: credential definition private key too large", ErrMalformed)
	}
	if err := c.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return &c, nil
}

// String redacts the key.
func (c *CredentialDefinitionPrivate) String() string {
	return "anoncreds.CredentialDefinitionPrivate(redacted)"
}

// GoString redacts the key.
func (c *CredentialDefinitionPrivate) GoString() string { return c.String() }

// Format redacts the key for every verb (%v, %+v, %#v, %s, %d…).
func (c *CredentialDefinitionPrivate) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// Modulus returns n = (2p'+1)(2q'+1), to match the key with its public definition.
func (c *CredentialDefinitionPrivate) Modulus() *big.Int {
	p := new(big.Int).Lsh(c.pPrime, 1)
	p.Add(p, bigOne)
	q := new(big.Int).Lsh(c.qPrime, 1)
	q.Add(q, bigOne)
	return p.Mul(p, q)
}

// CredentialDefinitionConfig holds the options of NewCredentialDefinitionContext.
type CredentialDefinitionConfig struct {
	// SupportRevocation asks for a revocable definition: not supported yet
	// (ErrNonRevocationUnsupported).
	SupportRevocation bool
	// Primes, for tests only, reuses the safe primes of an existing private
	// key instead of generating new ones (fresh S, Z and R are still drawn).
	// Each real definition must get its own key: leave it nil.
	Primes *CredentialDefinitionPrivate
	// Workers is the number of goroutines searching for safe primes
	// (GOMAXPROCS when 0).
	Workers int
}

// NewCredentialDefinition generates a CL primary key for schema and
// returns the public credential definition (issuerID, schemaID, tag, type
// CL), its private key and the key-correctness proof that goes in every
// credential offer. The key is a 2048-bit modulus n = pq with p = 2p'+1 and
// q = 2q'+1 safe primes of 1024 bits, a random generator S of the quadratic
// residues mod n, and Z, Rctxt and one R per attribute (canonical names)
// plus master_secret, each S raised to a random secret exponent.
// Safe-prime generation dominates the time (see generateSafePrime).
func NewCredentialDefinition(issuerID string, schemaID string, schema *Schema, tag string) (*CredentialDefinition, *CredentialDefinitionPrivate, *KeyCorrectnessProof, error) {
	return NewCredentialDefinitionContext(context.Background(), issuerID, schemaID, schema, tag, CredentialDefinitionConfig{})
}

// NewCredentialDefinitionContext is NewCredentialDefinition with options
// and a context that stops the safe-prime search.
func NewCredentialDefinitionContext(ctx context.Context, issuerID, schemaID string, schema *Schema, tag string, cfg CredentialDefinitionConfig) (*CredentialDefinition, *CredentialDefinitionPrivate, *KeyCorrectnessProof, error) {
	if cfg.SupportRevocation {
		return nil, nil, nil, fmt.Errorf("%w: revocable credential definitions cannot be created", ErrNonRevocationUnsupported)
	}
	if schema == nil {
		return nil, nil, nil, fmt.Errorf("%w: nil schema", ErrMalformed)
	}
	if err := schema.Validate(); err != nil {
		return nil, nil, nil, err
	}
	if len(schema.AttrNames) > MaxSchemaAttributes {
		return nil, nil, nil, fmt.Errorf("%w: schema has more than %d attributes", ErrMalformed, MaxSchemaAttributes)
	}
	for what, v := range map[string]string{"issuer id": issuerID, "schema id": schemaID, "tag": tag} {
		if err := checkText(what, v); err != nil {
			return nil, nil, nil, err
		}
	}
	priv := cfg.Primes
	if priv == nil {
		p, err := generateSafePrime(ctx, defaultRandom, SafePrimeBits, cfg.Workers)
		if err != nil {
			return nil, nil, nil, err
		}
		var q *big.Int
		for q == nil || q.Cmp(p) == 0 {
			if q, err = generateSafePrime(ctx, defaultRandom, SafePrimeBits, cfg.Workers); err != nil {
				return nil, nil, nil, err
			}
		}
		priv = &CredentialDefinitionPrivate{pPrime: p.Rsh(p, 1), qPrime: q.Rsh(q, 1)}
	}
	k, err := newIssuerKey(priv.pPrime, priv.qPrime)
	if err != nil {
		return nil, nil, nil, err
	}
	// S: a random quadratic residue generating QR_n (of order p'q': neither
	// S^p' nor S^q' is 1).
	var s qrPow
	var sBig *big.Int
	for {
		x, err := randInt(k.n)
		if err != nil {
			return nil, nil, nil, err
		}
		if x.Sign() == 0 || new(big.Int).GCD(nil, nil, x, k.n).Cmp(bigOne) != 0 {
			continue
		}
		sBig = x.Mul(x, x).Mod(x, k.n)
		s = k.split(sBig)
		if sBig.Cmp(bigOne) != 0 && !isOneMod(k.exp(s, k.ppModOrder), k) && !isOneMod(k.exp(s, k.qpModOrder), k) {
			break
		}
	}
	// Secret exponents x in [2, p'q'-1), as anoncreds-clsignatures's gen_x.
	names := []string{linkSecretName}
	for _, a := range schema.AttrNames {
		names = append(names, CanonicalAttrName(a))
	}
	sort.Strings(names)
	genX := func() (*bigmod.Nat, *big.Int, error) { return k.randOrder(2) }
	pub := PrimaryPublicKey{N: &BigInt{Int: *k.n}, S: &BigInt{Int: *sBig}, R: map[string]*BigInt{}}
	xz, xzBig, err := genX()
	if err != nil {
		return nil, nil, nil, err
	}
	pub.Z = &BigInt{Int: *k.join(k.exp(s, xz))}
	xctxt, _, err := genX()
	if err != nil {
		return nil, nil, nil, err
	}
	pub.Rctxt = &BigInt{Int: *k.join(k.exp(s, xctxt))}
	xr := map[string]*big.Int{}
	for _, name := range names {
		x, xBig, err := genX()
		if err != nil {
			return nil, nil, nil, err
		}
		xr[name] = xBig
		pub.R[name] = &BigInt{Int: *k.join(k.exp(s, x))}
	}
	kcp, err := newKeyCorrectnessProof(k, s, &pub, names, xzBig, xr)
	if err != nil {
		return nil, nil, nil, err
	}
	cd := &CredentialDefinition{SchemaID: schemaID, Type: "CL", Tag: tag, IssuerID: issuerID,
		Value: CredentialDefinitionValue{Primary: pub}}
	if err := cd.Validate(); err != nil {
		return nil, nil, nil, err
	}
	return cd, &CredentialDefinitionPrivate{pPrime: new(big.Int).Set(priv.pPrime), qPrime: new(big.Int).Set(priv.qPrime)}, kcp, nil
}

func isOneMod(x qrPow, k *issuerKey) bool {
	return x.p.IsOne()&x.q.IsOne() == 1
}

// newKeyCorrectnessProof proves knowledge of the exponents of Z and of each
// R (names in order, master_secret included) to the base S:
// c = H(Z ‖ R… ‖ Z̃ ‖ R̃…), x̂ = c·x + x̃.
func newKeyCorrectnessProof(k *issuerKey, s qrPow, pub *PrimaryPublicKey, names []string, xz *big.Int, xr map[string]*big.Int) (*KeyCorrectnessProof, error) {
	xzTilde, xzTildeBig, err := k.randOrder(2)
	if err != nil {
		return nil, err
	}
	zTilde := k.join(k.exp(s, xzTilde))
	xrTilde := make([]*big.Int, len(names))
	rTilde := make([]*big.Int, len(names))
	for i := range names {
		x, xBig, err := k.randOrder(2)
		if err != nil {
			return nil, err
		}
		xrTilde[i] = xBig
		rTilde[i] = k.join(k.exp(s, x))
	}
	h := sha256.New()
	h.Write(pub.Z.Bytes())
	for _, name := range names {
		h.Write(pub.R[name].Bytes())
	}
	h.Write(zTilde.Bytes())
	for _, v := range rTilde {
		h.Write(v.Bytes())
	}
	c := new(big.Int).SetBytes(h.Sum(nil))
	resp := func(x, tilde *big.Int) *BigInt {
		v := new(big.Int).Mul(c, x)
		return &BigInt{Int: *v.Add(v, tilde)}
	}
	p := &KeyCorrectnessProof{C: &BigInt{Int: *c}, XzCap: resp(xz, xzTildeBig)}
	for i, name := range names {
		p.XrCap = append(p.XrCap, XrEntry{Name: name, Value: resp(xr[name], xrTilde[i])})
	}
	return p, nil
}

// NewCredentialOffer makes an offer for the credential definition credDefID
// (of schema schemaID) with its key-correctness proof and a fresh 80-bit
// nonce, which the holder's request must prove against.
func NewCredentialOffer(schemaID, credDefID string, kcp *KeyCorrectnessProof) (*CredentialOffer, error) {
	if kcp == nil || kcp.C == nil || kcp.XzCap == nil || len(kcp.XrCap) == 0 {
		return nil, fmt.Errorf("%w: key correctness proof missing", ErrMalformed)
	}
	for what, v := range map[string]string{"schema id": schemaID, "credential definition id": credDefID} {
		if err := checkText(what, v); err != nil {
			return nil, err
		}
	}
	nonce, err := randInt(new(big.Int).Lsh(bigOne, largeNonce))
	if err != nil {
		return nil, err
	}
	return &CredentialOffer{SchemaID: schemaID, CredDefID: credDefID, KeyCorrectnessProof: *kcp, Nonce: nonce.String()}, nil
}

// ParseCredentialRequest parses a holder's credential request and checks
// its shape.
func ParseCredentialRequest(data []byte) (*CredentialRequest, error) {
	var r CredentialRequest
	if err := decodeJSON(data, &r, "credential request"); err != nil {
		return nil, err
	}
	if r.BlindedMS.U == nil || r.BlindedMSCorrectnessProof.C == nil || r.BlindedMSCorrectnessProof.VDashCap == nil {
		return nil, fmt.Errorf("%w: credential request incomplete", ErrMalformed)
	}
	return &r, nil
}

// IssueCredential signs values (raw strings, each encoded with EncodeValue;
// every attribute of the definition and no other, matched by
// CanonicalAttrName) for the holder's request on offer. It first checks the
// request: the same credential definition as the offer and cd, a blinded
// link secret only (no committed attributes, no revocation part), and the
// blinded-secrets correctness proof against the offer's nonce; it also
// refuses a blinded secret that is not a quadratic residue mod n (an honest
// one always is). The credential it returns carries the CL signature
// (A, e, v”, m2) and the signature-correctness proof for the request's
// nonce, in anoncreds-rs's JSON form; the holder finishes it with
// ProcessCredential.
//
// m2 (the credential context) is computed from the request's entropy (or
// prover_did) as anoncreds-rs does; e is a random prime in
// [2^596, 2^596+2^119); v” has 2,724 bits, its top bit set.
func IssueCredential(cd *CredentialDefinition, priv *CredentialDefinitionPrivate, offer *CredentialOffer, req *CredentialRequest, values map[string]string) (*Credential, error) {
	if cd == nil || priv == nil || priv.pPrime == nil || offer == nil || req == nil {
		return nil, fmt.Errorf("%w: nil credential definition, private key, offer or request", ErrMalformed)
	}
	if err := cd.Validate(); err != nil {
		return nil, err
	}
	if cd.Value.SupportsRevocation() {
		return nil, fmt.Errorf("%w: the credential definition supports revocation", ErrNonRevocationUnsupported)
	}
	k, err := newIssuerKey(priv.pPrime, priv.qPrime)
	if err != nil {
		return nil, err
	}
	pub := &cd.Value.Primary
	if k.n.Cmp(&pub.N.Int) != 0 {
		return nil, fmt.Errorf("%w: the private key is not the credential definition's", ErrMalformed)
	}
	// The values: every key but master_secret, once.
	encoded := make(map[string]*big.Int, len(values))
	credValues := make(map[string]AttributeValue, len(values))
	for name, raw := range values {
		c := CanonicalAttrName(name)
		if c == "" || c == linkSecretName || pub.R[c] == nil {
			return nil, fmt.Errorf("%w: value %q is not an attribute of the credential definition", ErrMalformed, shortName(name))
		}
		if _, dup := encoded[c]; dup {
			return nil, fmt.Errorf("%w: attribute %q given twice", ErrMalformed, shortName(name))
		}
		enc := EncodeValue(raw)
		encoded[c], _ = new(big.Int).SetString(enc, 10)
		credValues[name] = AttributeValue{Raw: raw, Encoded: enc}
	}
	if len(encoded)+1 != len(pub.R) {
		var missing []string
		for name := range pub.R {
			if _, ok := encoded[name]; !ok && name != linkSecretName {
				missing = append(missing, shortName(name))
			}
		}
		sort.Strings(missing)
		return nil, fmt.Errorf("%w: no value for attribute(s) %s", ErrMalformed, strings.Join(missing, ", "))
	}
	if err := checkRequest(k, pub, offer, req); err != nil {
		return nil, err
	}
	reqNonce, err := parseDecimal(req.Nonce)
	if err != nil || reqNonce.Sign() < 0 {
		return nil, fmt.Errorf("%w: request nonce", ErrMalformed)
	}
	prover := req.Entropy
	if prover == "" {
		prover = req.ProverDID
	}
	m2 := credentialContext(prover)

	vpp, err := randBits(largeVPrimePrime)
	if err != nil {
		return nil, err
	}
	vpp.SetBit(vpp, largeVPrimePrime-1, 1)
	e, err := randomPrimeInRange(largeEStart, largeERange)
	if err != nil {
		return nil, err
	}
	// Rx = S^v” · U · Rctxt^m2 · Π R_i^m_i mod n (exponents given to the
	// holder, or the holder's values: constant-time exponentiation).
	pairs := []*big.Int{&pub.S.Int, vpp, &pub.Rctxt.Int, m2}
	names := make([]string, 0, len(encoded))
	for name := range encoded {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pairs = append(pairs, &pub.R[name].Int, encoded[name])
	}
	rx, err := expProductSecret(k.n, pairs...)
	if err != nil {
		return nil, fmt.Errorf("%w: credential definition", ErrMalformed)
	}
	rx.Mul(rx, &req.BlindedMS.U.Int).Mod(rx, k.n)
	// Q = Z / Rx, A = Q^(e^-1 mod p'q').
	rxs := k.split(rx)
	if !k.inQR(rxs) {
		return nil, fmt.Errorf("%w: the credential definition's bases are not quadratic residues of its key", ErrMalformed)
	}
	qs := k.mul(k.split(&pub.Z.Int), k.inverse(rxs))
	d := k.invOrder(e)
	as := k.exp(qs, d)
	a, q := k.join(as), k.join(qs)
	// A^e = Q, checked before anything leaves (a fault would reveal the key).
	if check, err := modExpSecret(a, e, k.n); err != nil || check.Cmp(q) != 0 {
		return nil, errors.New("anoncreds: signature self-check failed")
	}
	// Signature correctness proof: Â = Q^r, c = H(Q ‖ A ‖ Â ‖ nonce),
	// se = r - c·e^-1 mod p'q'.
	r, _, err := k.randOrder(0)
	if err != nil {
		return nil, err
	}
	aCap := k.join(k.exp(qs, r))
	h := sha256.New()
	h.Write(q.Bytes())
	h.Write(a.Bytes())
	h.Write(aCap.Bytes())
	h.Write(reqNonce.Bytes())
	c := new(big.Int).SetBytes(h.Sum(nil))
	cd2 := k.natMod(c, k.mOrder).Mul(d, k.mOrder)
	se := r.Sub(cd2, k.mOrder)
	scp, err := json.Marshal(map[string]*BigInt{"se": {Int: *natBig(se, k.mOrder)}, "c": {Int: *c}})
	if err != nil {
		return nil, err
	}
	return &Credential{
		SchemaID:  offer.SchemaID,
		CredDefID: offer.CredDefID,
		Values:    credValues,
		Signature: CredentialSignature{PCredential: PrimaryCredentialSignature{
			M2: &BigInt{Int: *m2}, A: &BigInt{Int: *a}, E: &BigInt{Int: *e}, V: &BigInt{Int: *vpp}}},
		SignatureCorrectnessProof: scp,
	}, nil
}

// checkRequest checks a credential request against the offer and the key:
// U^-c · S^v̂' · R_ms^m̂ hashed with U and the offer's nonce gives c.
func checkRequest(k *issuerKey, pub *PrimaryPublicKey, offer *CredentialOffer, req *CredentialRequest) error {
	if req.CredDefID != offer.CredDefID {
		return fmt.Errorf("%w: the request names another credential definition than the offer", ErrInvalidRequest)
	}
	if req.Entropy == "" && req.ProverDID == "" || req.Entropy != "" && req.ProverDID != "" {
		return fmt.Errorf("%w: the request needs entropy or prover_did (one of them)", ErrInvalidRequest)
	}
	b, p := &req.BlindedMS, &req.BlindedMSCorrectnessProof
	if b.U == nil || p.C == nil || p.VDashCap == nil {
		return fmt.Errorf("%w: request incomplete", ErrMalformed)
	}
	if len(b.HiddenAttributes) != 1 || b.HiddenAttributes[0] != linkSecretName || len(b.CommittedAttributes) != 0 ||
		len(p.MCaps) != 1 || p.MCaps[linkSecretName] == nil || len(p.RCaps) != 0 {
		return fmt.Errorf("%w: the request must blind the link secret (master_secret) only", ErrInvalidRequest)
	}
	if ur := strings.TrimSpace(string(b.UR)); ur != "" && ur != "null" {
		return fmt.Errorf("%w: the request has a revocation part", ErrNonRevocationUnsupported)
	}
	u := &b.U.Int
	if u.Sign() <= 0 || u.Cmp(k.n) >= 0 {
		return fmt.Errorf("%w: blinded secret out of range", ErrInvalidRequest)
	}
	nonce, err := parseDecimal(offer.Nonce)
	if err != nil || nonce.Sign() < 0 {
		return fmt.Errorf("%w: offer nonce", ErrMalformed)
	}
	uInv, err := modInv(u, k.n)
	if err != nil {
		return fmt.Errorf("%w: blinded secret not invertible", ErrInvalidRequest)
	}
	uCap, err := expProduct(k.n, uInv, &p.C.Int, &pub.S.Int, &p.VDashCap.Int, &pub.R[linkSecretName].Int, &p.MCaps[linkSecretName].Int)
	if err != nil {
		return fmt.Errorf("%w: blinded secrets correctness proof", ErrInvalidRequest)
	}
	h := sha256.New()
	h.Write(u.Bytes())
	h.Write(uCap.Bytes())
	h.Write(nonce.Bytes())
	if new(big.Int).SetBytes(h.Sum(nil)).Cmp(&p.C.Int) != 0 {
		return fmt.Errorf("%w: the blinded secrets correctness proof does not verify (tampered, or made for another offer)", ErrInvalidRequest)
	}
	if !k.inQR(k.split(u)) {
		return fmt.Errorf("%w: blinded secret is not a quadratic residue", ErrInvalidRequest)
	}
	return nil
}

// credentialContext is m2 as anoncreds-clsignatures computes it for a
// credential without revocation index:
// SHA-256(le(SHA-256(prover)) ‖ le(SHA-256("-1"))), where le reads the hash
// as a little-endian number (written back big-endian, minimal).
func credentialContext(prover string) *big.Int {
	le := func(s string) []byte {
		h := sha256.Sum256([]byte(s))
		slices.Reverse(h[:])
		return new(big.Int).SetBytes(h[:]).Bytes()
	}
	h := sha256.New()
	h.Write(le(prover))
	h.Write(le("-1"))
	return new(big.Int).SetBytes(h.Sum(nil))
}

// randomPrimeInRange is a random prime in [2^start, 2^start + 2^rangeBits).
func randomPrimeInRange(start, rangeBits int) (*big.Int, error) {
	base := new(big.Int).Lsh(bigOne, uint(start))
	for {
		x, err := randBits(rangeBits)
		if err != nil {
			return nil, err
		}
		x.SetBit(x, 0, 1).Add(x, base)
		if x.ProbablyPrime(20) {
			return x, nil
		}
	}
}

func randInt(max *big.Int) (*big.Int, error) {
	return rand.Int(defaultRandom, max)
}
