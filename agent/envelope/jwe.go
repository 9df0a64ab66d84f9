package envelope

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agentd/agentd/agent/keys"
)

// Media types (JOSE typ values) of the three DIDComm v2 envelope kinds.
const (
	TypEncrypted = "application/didcomm-encrypted+json"
	TypSigned    = "application/didcomm-signed+json"
	TypPlain     = "application/didcomm-plain+json"
)

// MaxRecipients is the largest number of recipients Pack writes into, and
// Unpack accepts in, one JWE.
const MaxRecipients = 100

// DefaultEncAnon is the content encryption PackAnoncrypt and Pack use when
// none is given: XC20P, the default of the reference implementation
// didcomm-rust (AnonCryptAlg::default). The DIDComm v2 spec ("Curves and
// Content Encryption Algorithms") makes A256CBC-HS512 required, A256GCM
// recommended and XC20P optional, so pass A256CBCHS512 explicitly when the
// recipient's software is unknown.
const DefaultEncAnon = XC20P

// sealFixed injects the otherwise random values of a JWE. Only tests set it,
// to recompute published vectors.
type sealFixed struct {
	epkD    []byte // ephemeral private key
	cek, iv []byte
}

// PackAuthcrypt encrypts plaintext for the recipients with DIDComm authcrypt:
// a JWE in General JSON serialization with alg ECDH-1PU+A256KW (draft-04,
// the tag bound into the KDF) and enc A256CBC-HS512. sender is the sender's
// key agreement key; its ID becomes skid (and apu). All recipients must be on
// the sender's curve; one ephemeral key is shared by all of them.
//
// The plaintext is encrypted as given: a DIDComm plaintext message, or a JWS
// for sign-then-encrypt. Pack adds checks on the message itself.
func PackAuthcrypt(plaintext []byte, sender keys.PrivateKey, recipients []keys.PublicKey) ([]byte, error) {
	return packAuthcrypt(plaintext, sender, recipients, nil)
}

func packAuthcrypt(plaintext []byte, sender keys.PrivateKey, recipients []keys.PublicKey, fixed *sealFixed) ([]byte, error) {
	if err := checkKid(sender.ID, "sender"); err != nil {
		return nil, err
	}
	if !sender.Curve.IsKeyAgreement() {
		return nil, fmt.Errorf("%w: sender key %s is a %s key, not a key agreement key", ErrUnsupported, sender.ID, sender.Curve)
	}
	apv, err := recipientsAPV(recipients, sender.Curve)
	if err != nil {
		return nil, err
	}
	sk, err := staticAgreeKey(sender)
	if err != nil {
		return nil, err
	}
	return packJWE(plaintext, AlgAuthcrypt, A256CBCHS512, &sk, sender.ID, apv, recipients, fixed)
}

// PackAnoncrypt encrypts plaintext for the recipients with DIDComm anoncrypt:
// a JWE in General JSON serialization with alg ECDH-ES+A256KW and the given
// content encryption (A256CBC-HS512, A256GCM or XC20P; "" means
// DefaultEncAnon). All recipients must be on one curve.
func PackAnoncrypt(plaintext []byte, recipients []keys.PublicKey, enc Enc) ([]byte, error) {
	return packAnoncrypt(plaintext, recipients, enc, nil)
}

func packAnoncrypt(plaintext []byte, recipients []keys.PublicKey, enc Enc, fixed *sealFixed) ([]byte, error) {
	if enc == "" {
		enc = DefaultEncAnon
	}
	if _, _, _, ok := encParams(enc); !ok {
		return nil, fmt.Errorf("%w: enc %q", ErrUnsupported, enc)
	}
	if len(recipients) == 0 {
		return nil, errors.New("envelope: no recipients")
	}
	apv, err := recipientsAPV(recipients, recipients[0].Curve)
	if err != nil {
		return nil, err
	}
	return packJWE(plaintext, AlgAnoncrypt, enc, nil, "", apv, recipients, fixed)
}

// recipientsAPV checks the recipient list (1..MaxRecipients keys of one DID
// with distinct ids, all on curve) and returns the DIDComm apv:
// SHA-256 of the sorted kids joined with '.'.
func recipientsAPV(recipients []keys.PublicKey, curve keys.Curve) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, errors.New("envelope: no recipients")
	}
	if len(recipients) > MaxRecipients {
		return nil, fmt.Errorf("envelope: %d recipients, at most %d allowed", len(recipients), MaxRecipients)
	}
	if !curve.IsKeyAgreement() {
		return nil, fmt.Errorf("%w: %q is not a key agreement curve", ErrUnsupported, curve)
	}
	kids := make([]string, len(recipients))
	for i, r := range recipients {
		if err := checkKid(r.ID, "recipient"); err != nil {
			return nil, err
		}
		if r.Curve != curve {
			return nil, fmt.Errorf("envelope: recipient %s is on %s, expected %s: all keys of one JWE must share a curve", r.ID, r.Curve, curve)
		}
		if didOf(r.ID) != didOf(recipients[0].ID) {
			return nil, fmt.Errorf("envelope: recipients %s and %s belong to different DIDs: encrypt for each DID separately", recipients[0].ID, r.ID)
		}
		kids[i] = r.ID
	}
	return apvOf(kids)
}

// apvOf hashes kids (in any order) into the DIDComm apv. Duplicates are an error.
func apvOf(kids []string) ([]byte, error) {
	sum, err := apvSum(kids)
	if err != nil {
		return nil, err
	}
	return sum[:], nil
}

// apvSum is apvOf as an array: for kids that fit a stack buffer joined, it
// allocates nothing.
func apvSum(kids []string) (sum [sha256.Size]byte, err error) {
	sorted := kids
	if !slices.IsSorted(kids) {
		sorted = slices.Clone(kids)
		slices.Sort(sorted)
	}
	n := 0
	for i, k := range sorted {
		if i > 0 && k == sorted[i-1] {
			return sum, fmt.Errorf("%w: recipient %s is listed twice", ErrMalformed, k)
		}
		n += len(k) + 1
	}
	var buf [512]byte
	if n <= len(buf) {
		b := buf[:0]
		for i, k := range sorted {
			if i > 0 {
				b = append(b, '.')
			}
			b = append(b, k...)
		}
		return sha256.Sum256(b), nil
	}
	h := sha256.New()
	for i, k := range sorted {
		if i > 0 {
			h.Write([]byte{'.'})
		}
		h.Write([]byte(k))
	}
	h.Sum(sum[:0])
	return sum, nil
}

// packJWE builds the protected header and seals. sender is nil for anoncrypt.
func packJWE(plaintext []byte, alg string, enc Enc, sender *agreeKey, skid string, apv []byte, recipients []keys.PublicKey, fixed *sealFixed) ([]byte, error) {
	var epkD []byte
	if fixed != nil {
		epkD = fixed.epkD
	}
	eph, epk, err := newEphemeral(recipients[0].Curve, epkD)
	if err != nil {
		return nil, err
	}
	defer eph.destroy()
	h := make([]byte, 0, 384+2*len(skid))
	h = append(h, `{"typ":"`+TypEncrypted+`","alg":"`...)
	h = append(h, alg...)
	h = append(h, `","enc":"`...)
	h = append(h, enc...)
	h = append(h, '"')
	var apu []byte
	if skid != "" {
		apu = []byte(skid)
		h = append(h, `,"skid":`...)
		h = appendJSONString(h, skid)
		h = append(h, `,"apu":"`...)
		h = appendB64(h, apu)
		h = append(h, '"')
	}
	h = append(h, `,"apv":"`...)
	h = appendB64(h, apv)
	h = append(h, `","epk":`...)
	if h, err = appendEPK(h, epk); err != nil {
		return nil, err
	}
	h = append(h, '}')
	p := &sealParams{
		alg: alg, kekLen: 32, enc: enc,
		protected: appendB64(make([]byte, 0, (len(h)*4+2)/3), h),
		apu:       apu, apv: apv,
		eph: eph, sender: sender,
		recipients: recipients,
	}
	if fixed != nil {
		p.cek, p.iv = fixed.cek, fixed.iv
	}
	return seal(p, plaintext)
}

// sealParams are the inputs of seal, the core of JWE encryption.
type sealParams struct {
	alg        string // AlgorithmID of the KDF
	kekLen     int    // 32 for A256KW, 16 for A128KW
	enc        Enc
	protected  []byte // BASE64URL(protected header): written as is and used as AAD
	apu, apv   []byte // KDF PartyUInfo and PartyVInfo (decoded)
	eph        agreeKey
	sender     *agreeKey // ECDH-1PU when set, ECDH-ES otherwise
	recipients []keys.PublicKey
	cek, iv    []byte // random when nil
}

// seal encrypts plaintext and wraps the CEK for every recipient, returning the
// JWE in General JSON serialization.
func seal(p *sealParams, plaintext []byte) ([]byte, error) {
	keyLen, ivLen, _, ok := encParams(p.enc)
	if !ok {
		return nil, fmt.Errorf("%w: enc %q", ErrUnsupported, p.enc)
	}
	cek, iv := p.cek, p.iv
	if cek == nil {
		cek = make([]byte, keyLen)
		rand.Read(cek)
		defer clear(cek)
	}
	if iv == nil {
		iv = make([]byte, ivLen)
		rand.Read(iv)
	}
	if len(cek) != keyLen || len(iv) != ivLen {
		return nil, errors.New("envelope: CEK or IV of the wrong size")
	}
	ct, tag, err := sealContent(p.enc, cek, iv, plaintext, p.protected)
	if err != nil {
		return nil, err
	}

	wrappedLen := keyLen + 8
	size := len(p.protected) + (len(ct)*4+2)/3 + 128
	for _, r := range p.recipients {
		size += len(r.ID) + (wrappedLen*4+2)/3 + 48
	}
	out := make([]byte, 0, size)
	out = append(out, `{"protected":"`...)
	out = append(out, p.protected...)
	out = append(out, `","recipients":[`...)
	z := make([]byte, 0, 2*66)
	for i, r := range p.recipients {
		ze, err := p.eph.agree(r)
		if err != nil {
			return nil, fmt.Errorf("envelope: recipient %s: %w", r.ID, err)
		}
		z = append(z[:0], ze...)
		if p.sender != nil {
			zs, err := p.sender.agree(r)
			if err != nil {
				return nil, fmt.Errorf("envelope: recipient %s: %w", r.ID, err)
			}
			z = append(z, zs...)
			clear(zs)
		}
		clear(ze)
		kek := concatKDF(z, p.alg, p.apu, p.apv, p.sender != nil, tag, p.kekLen)
		ek, err := aesKeyWrap(kek, cek)
		clear(kek)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"header":{"kid":`...)
		out = appendJSONString(out, r.ID)
		out = append(out, `},"encrypted_key":"`...)
		out = appendB64(out, ek)
		out = append(out, `"}`...)
	}
	clear(z)
	out = append(out, `],"iv":"`...)
	out = appendB64(out, iv)
	out = append(out, `","ciphertext":"`...)
	out = appendB64(out, ct)
	out = append(out, `","tag":"`...)
	out = appendB64(out, tag)
	out = append(out, `"}`...)
	return out, nil
}

// jweHeader is the protected header of a DIDComm JWE.
type jweHeader struct {
	Typ  *string         `json:"typ"`
	Alg  string          `json:"alg"`
	Enc  string          `json:"enc"`
	Skid *string         `json:"skid"`
	Apu  *string         `json:"apu"`
	Apv  *string         `json:"apv"`
	Epk  *keys.JWK       `json:"epk"`
	Crit json.RawMessage `json:"crit"`
	Zip  json.RawMessage `json:"zip"`
}

type jweRecipient struct {
	Header       *jweRecipientHeader `json:"header"`
	EncryptedKey *string             `json:"encrypted_key"`
}

type jweRecipientHeader struct {
	Kid *string `json:"kid"`
}

// parsedJWE is a structurally checked JWE.
type parsedJWE struct {
	protected []byte // as transmitted: the AAD
	hdr       jweHeader
	alg       string
	enc       Enc
	kids      []string
	eks       []string // encrypted_key, still base64url
	epk       keys.PublicKey
	apu, apv  []byte
	iv, ct    []byte
	tag       []byte

	// Storage the fields above point into, so that parsing a JWE
	// allocates little: the header's *string and *keys.JWK members, and
	// the short decoded members.
	hst    jweHeaderStore
	epkRaw [32]byte
	apvBuf [sha256.Size]byte
	ivBuf  [24]byte
	tagBuf [maxTagLen]byte
	cekBuf [64]byte  // the content key unwrapCEK returns; cleared by its users
	hdrBuf [512]byte // the decoded protected header, when it fits
}

// jweHeaderStore holds what the pointer members of a jweHeader decoded by
// the fast path point to.
type jweHeaderStore struct {
	typ, skid, apu, apv string
	epk                 keys.JWK
}

// parseJWE checks the structure of a JWE and decodes its members: header
// members and their encodings and the recipient list. The DIDComm rules
// (checkAPV, skid/apu), the choice of algorithms and the sizes that depend on
// them (checkSizes) are left to the caller.
//
// protected and the encrypted keys point into env's message (the AAD and
// the base64url of each encrypted key are only read during Unpack); the
// strings it hands on (kids, skid) are copies.
func parseJWE(env *rawEnvelope) (*parsedJWE, error) {
	j := &parsedJWE{}
	var (
		hdrJSON []byte
		err     error
	)
	if p := env.Protected; len(p) >= 2 && p[0] == '"' && bytes.IndexByte(p, '\\') < 0 {
		// A string without escapes is its own value (requiredString).
		j.protected = p[1 : len(p)-1]
		hdrJSON, err = decodeB64To(j.hdrBuf[:], j.protected, "protected")
	} else {
		var prot string
		if prot, err = requiredString(env.Protected, "protected"); err != nil {
			return nil, err
		}
		j.protected = []byte(prot)
		hdrJSON, err = decodeB64To(j.hdrBuf[:], j.protected, "protected")
	}
	if err != nil {
		return nil, err
	}
	// One string for the whole header: the fast decoder's strings are
	// substrings of it.
	if err := decodeJWEHeaderIn(hdrJSON, string(hdrJSON), &j.hdr, &j.hst); err != nil {
		return nil, fmt.Errorf("%w: protected header is not a JSON object of the expected shape", ErrMalformed)
	}
	h := &j.hdr
	if h.Typ != nil && *h.Typ != TypEncrypted && *h.Typ != strings.TrimPrefix(TypEncrypted, "application/") {
		return nil, fmt.Errorf("%w: JWE typ %q", ErrUnsupported, *h.Typ)
	}
	if !isNull(h.Crit) {
		return nil, fmt.Errorf("%w: JWE crit header", ErrUnsupported)
	}
	if !isNull(h.Zip) {
		return nil, fmt.Errorf("%w: JWE zip header", ErrUnsupported)
	}
	if h.Alg == "" || h.Enc == "" {
		return nil, fmt.Errorf("%w: protected header lacks alg or enc", ErrMalformed)
	}
	j.alg, j.enc = h.Alg, Enc(h.Enc)
	if h.Epk == nil {
		return nil, fmt.Errorf("%w: protected header lacks epk", ErrMalformed)
	}
	if h.Epk.Kty == "OKP" && h.Epk.Crv == string(keys.X25519) {
		// What h.Epk.PublicKey("") does for an X25519 key, into j.epkRaw:
		// x must be strict base64url of 32 bytes.
		if n, err := decodeB64Exact(j.epkRaw[:], h.Epk.X); err != nil || n != len(j.epkRaw) {
			return nil, fmt.Errorf("%w: epk is not a valid public key", ErrMalformed)
		}
		j.epk = keys.PublicKey{Curve: keys.X25519, Raw: j.epkRaw[:]}
	} else if j.epk, err = h.Epk.PublicKey(""); err != nil {
		if errors.Is(err, keys.ErrUnsupportedCurve) {
			return nil, fmt.Errorf("%w: epk curve %q", ErrUnsupported, h.Epk.Crv)
		}
		return nil, fmt.Errorf("%w: epk is not a valid public key", ErrMalformed)
	}
	if !j.epk.Curve.IsKeyAgreement() {
		return nil, fmt.Errorf("%w: epk curve %q", ErrUnsupported, j.epk.Curve)
	}
	// A missing apv is left to checkAPV: anoncrypt without apv is accepted
	// (the KDF then uses an empty PartyVInfo), authcrypt without it is not.
	if h.Apv != nil {
		if j.apv, err = decodeB64To(j.apvBuf[:], []byte(*h.Apv), "apv"); err != nil {
			return nil, err
		}
	}
	if h.Apu != nil {
		if j.apu, err = decodeB64String(*h.Apu, "apu"); err != nil {
			return nil, err
		}
	}

	if isNull(env.Recipients) {
		return nil, fmt.Errorf("%w: recipients is missing", ErrMalformed)
	}
	if j.kids, j.eks, err = recipientKids(env.Recipients); err != nil {
		return nil, err
	}
	if j.iv, err = decodeB64In(j.ivBuf[:], env.IV, "iv"); err != nil {
		return nil, err
	}
	// Room for the tag after the ciphertext lets the AEADs open in place.
	if j.ct, err = decodeB64(env.Ciphertext, "ciphertext", maxTagLen); err != nil {
		return nil, err
	}
	if j.tag, err = decodeB64In(j.tagBuf[:], env.Tag, "tag"); err != nil {
		return nil, err
	}
	return j, nil
}

// recipientKids reads the kids and encrypted keys of the JWE recipients r
// (present and not null), checking that there are 1 to MaxRecipients, each
// with a non-empty header.kid and an encrypted_key. The fast path
// (fastRecipientKids) gives what decoding r into []jweRecipient and checking
// it (recipientKidsSlow) gives, the same errors included.
func recipientKids(r []byte) (kids, eks []string, err error) {
	if kids, eks, err, ok := fastRecipientKids(r); ok {
		return kids, eks, err
	}
	return recipientKidsSlow(r)
}

func recipientKidsSlow(r []byte) (kids, eks []string, err error) {
	var rs []jweRecipient
	if err := decodeRecipients(r, &rs); err != nil {
		return nil, nil, fmt.Errorf("%w: recipients is not an array of recipient objects", ErrMalformed)
	}
	if len(rs) == 0 || len(rs) > MaxRecipients {
		return nil, nil, fmt.Errorf("%w: %d recipients (1 to %d allowed)", ErrMalformed, len(rs), MaxRecipients)
	}
	kids = make([]string, len(rs))
	eks = make([]string, len(rs))
	for i, r := range rs {
		if r.Header == nil || r.Header.Kid == nil || *r.Header.Kid == "" {
			return nil, nil, fmt.Errorf("%w: recipient %d has no header.kid", ErrMalformed, i)
		}
		if r.EncryptedKey == nil {
			return nil, nil, fmt.Errorf("%w: recipient %d has no encrypted_key", ErrMalformed, i)
		}
		kids[i], eks[i] = *r.Header.Kid, *r.EncryptedKey
	}
	return kids, eks, nil
}

// checkSizes checks iv and tag against the (supported) enc.
func (j *parsedJWE) checkSizes() error {
	_, ivLen, tagLen, ok := encParams(j.enc)
	if !ok {
		return fmt.Errorf("%w: JWE enc %q", ErrUnsupported, j.enc)
	}
	if len(j.iv) != ivLen || len(j.tag) != tagLen {
		return fmt.Errorf("%w: iv or tag size does not fit enc %s", ErrMalformed, j.enc)
	}
	return nil
}

// checkAPV enforces the DIDComm apv: SHA-256 of the sorted recipient kids
// joined with '.'. Duplicate kids are rejected too.
//
// An anoncrypt (ECDH-ES) JWE without apv is accepted, as other DIDComm
// stacks (Veramo) send it: apv only binds the recipient list into the key
// derivation, which the sender chose to leave empty, and an anonymous sender
// asserts nothing a recipient could rely on. The KDF then uses an empty
// PartyVInfo, as the sender did. An apv that is present must be right, and
// authcrypt always needs one.
func (j *parsedJWE) checkAPV() error {
	want, err := apvSum(j.kids)
	if err != nil {
		return err
	}
	if j.hdr.Apv == nil {
		if j.alg == AlgAnoncrypt {
			return nil
		}
		return fmt.Errorf("%w: protected header lacks apv", ErrMalformed)
	}
	if string(want[:]) != string(j.apv) {
		return fmt.Errorf("%w: apv does not match the recipient kids", ErrMalformed)
	}
	return nil
}

// apvStripped tells, for an anoncrypt JWE without apv whose content key does
// not unwrap for recipient i, whether it unwraps with the DIDComm apv: then
// the sender used one and it was removed on the way, and the JWE is reported
// as malformed rather than as undecryptable. Only the failure path pays.
func (j *parsedJWE) apvStripped(i int, ours agreeKey) bool {
	apv, err := apvOf(j.kids)
	if err != nil {
		return false
	}
	j.apv = apv
	cek, err := j.unwrapCEK(i, ours, nil, 32)
	j.apv = nil
	clear(cek)
	return err == nil
}

// unwrapCEK derives the KEK for recipient i with our key (and, for ECDH-1PU,
// the sender's public key) and unwraps the CEK. kekLen selects A256KW (32) or
// A128KW (16).
func (j *parsedJWE) unwrapCEK(i int, ours agreeKey, sender *keys.PublicKey, kekLen int) ([]byte, error) {
	var ekBuf [72]byte
	ek, err := decodeB64To(ekBuf[:], []byte(j.eks[i]), "encrypted_key")
	if err != nil {
		return nil, err
	}
	keyLen, _, _, _ := encParams(j.enc)
	if len(ek) != keyLen+8 {
		return nil, fmt.Errorf("%w: encrypted_key of recipient %s has the wrong size", ErrMalformed, j.kids[i])
	}
	ze, err := ours.agree(j.epk)
	if err != nil {
		return nil, fmt.Errorf("%w: epk unusable with recipient key %s (low-order or invalid point)", ErrMalformed, j.kids[i])
	}
	z := ze
	if sender != nil {
		zs, err := ours.agree(*sender)
		if err != nil {
			clear(ze)
			return nil, fmt.Errorf("%w: sender key unusable with recipient key %s", ErrSenderKey, j.kids[i])
		}
		z = append(append(make([]byte, 0, len(ze)+len(zs)), ze...), zs...)
		clear(ze)
		clear(zs)
	}
	var kekBuf [sha256.Size]byte
	kek := concatKDFTo(kekBuf[:0], z, j.alg, j.apu, j.apv, sender != nil, j.tag, kekLen)
	clear(z)
	cek, err := aesKeyUnwrapTo(j.cekBuf[:len(ek)-8], kek, ek)
	clear(kekBuf[:])
	if err != nil {
		return nil, fmt.Errorf("%w: cannot unwrap the content key for %s", ErrDecrypt, j.kids[i])
	}
	return cek, nil
}

// decrypt decrypts the content with the CEK.
func (j *parsedJWE) decrypt(cek []byte) ([]byte, error) {
	if err := j.checkSizes(); err != nil {
		return nil, err
	}
	if keyLen, _, _, _ := encParams(j.enc); len(cek) != keyLen {
		return nil, fmt.Errorf("%w: content key of the wrong size", ErrDecrypt)
	}
	pt, err := openContent(j.enc, cek, j.iv, j.ct, j.tag, j.protected)
	if err != nil {
		if errors.Is(err, ErrUnsupported) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: content authentication failed", ErrDecrypt)
	}
	return pt, nil
}
