package envelope

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentd/agentd/agent/keys"
)

// rawEnvelope holds the top-level members of a JWE or JWS, still encoded.
// The values point into the message.
type rawEnvelope struct {
	// JWE
	Protected  json.RawMessage
	Recipients json.RawMessage
	IV         json.RawMessage
	Ciphertext json.RawMessage
	Tag        json.RawMessage
	// JWS: General JSON serialization has signatures; the Flattened one
	// (RFC 7515 section 7.2.2) has protected, header and signature at the
	// top level instead.
	Payload    json.RawMessage
	Signatures json.RawMessage
	Signature  json.RawMessage
	Header     json.RawMessage
}

// scanEnvelope checks that msg is a JSON object and picks out the JWE and JWS
// members (names are case-sensitive, as in JOSE). A duplicated member is
// refused: which copy counts would be up to the parser.
func scanEnvelope(msg []byte) (*rawEnvelope, error) {
	e := &rawEnvelope{}
	if err := scanEnvelopeInto(msg, e); err != nil {
		return nil, err
	}
	return e, nil
}

// scanEnvelopeInto is scanEnvelope into e, which must be zero.
func scanEnvelopeInto(msg []byte, e *rawEnvelope) error {
	var dup string
	err := scanTopObject(msg, func(name []byte, escaped bool, value []byte) {
		n := name[1 : len(name)-1]
		if escaped {
			var u string
			if json.Unmarshal(name, &u) != nil {
				return
			}
			n = []byte(u)
		}
		var slot *json.RawMessage
		switch string(n) {
		case "protected":
			slot = &e.Protected
		case "recipients":
			slot = &e.Recipients
		case "iv":
			slot = &e.IV
		case "ciphertext":
			slot = &e.Ciphertext
		case "tag":
			slot = &e.Tag
		case "payload":
			slot = &e.Payload
		case "signatures":
			slot = &e.Signatures
		case "signature":
			slot = &e.Signature
		case "header":
			slot = &e.Header
		default:
			return
		}
		if *slot != nil {
			dup = string(n)
		}
		*slot = value
	})
	if err != nil {
		return fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if dup != "" {
		return fmt.Errorf("%w: member %q appears twice", ErrMalformed, dup)
	}
	return nil
}

// kind tells the envelope kinds apart by structure: a JWE has ciphertext or
// recipients, a JWS has signatures (General JSON serialization) or payload
// and signature (Flattened JSON serialization); anything else must be a
// plaintext message.
func (e *rawEnvelope) kind() (string, error) {
	jwe := !isNull(e.Ciphertext) || !isNull(e.Recipients)
	jws := !isNull(e.Signatures) || !isNull(e.Signature) && !isNull(e.Payload)
	switch {
	case jwe && jws:
		return "", fmt.Errorf("%w: message has both JWE and JWS members", ErrMalformed)
	case jwe:
		return "JWE", nil
	case jws:
		return "JWS", nil
	}
	return "plaintext", nil
}

// plainJSON holds the members of a plaintext message Unpack checks. It is
// decoded with encoding/json, like agent.Message, so that both read the same
// values (encoding/json matches names case-insensitively and lets the last
// duplicate win). Members whose value is not needed are only type-checked.
type plainJSON struct {
	ID          jsonKind          `json:"id"`
	Type        jsonKind          `json:"type"`
	Typ         *string           `json:"typ"`
	Body        jsonKind          `json:"body"`
	From        *string           `json:"from"`
	To          []string          `json:"to"`
	Thid        jsonKind          `json:"thid"`
	Pthid       jsonKind          `json:"pthid"`
	CreatedTime createdTimeJSON   `json:"created_time"`
	ExpiresTime expiresTimeJSON   `json:"expires_time"`
	Attachments *[]attachmentJSON `json:"attachments"`
	FromPrior   *string           `json:"from_prior"`

	// The fast decoder (fastPlain) checks the attachments as it scans them
	// instead of decoding them into Attachments: attScanned records that
	// it did, and attErr the outcome, what checkAttachments would have
	// returned for the decoded value. encoding/json ignores both.
	attScanned bool
	attErr     error
}

type attachmentJSON struct {
	ID          *string             `json:"id"`
	Description *string             `json:"description"`
	Filename    *string             `json:"filename"`
	MediaType   *string             `json:"media_type"`
	Format      *string             `json:"format"`
	LastmodTime *uint64             `json:"lastmod_time"`
	ByteCount   *uint64             `json:"byte_count"`
	Data        *attachmentDataJSON `json:"data"`
}

type attachmentDataJSON struct {
	JWS    jsonKind  `json:"jws"`
	Hash   *string   `json:"hash"`
	Links  *[]string `json:"links"`
	Base64 jsonKind  `json:"base64"`
	JSON   jsonKind  `json:"json"`
}

// createdTimeJSON and expiresTimeJSON check created_time and expires_time:
// a JSON number of seconds since the Unix epoch (a non-negative integer), or,
// as some stacks (Veramo) send them, an RFC 3339 (ISO 8601) date-time string
// not before the epoch. agent.Message reads them by the same rules.
type (
	createdTimeJSON struct{}
	expiresTimeJSON struct{}
)

// UnmarshalJSON implements json.Unmarshaler.
func (*createdTimeJSON) UnmarshalJSON(b []byte) error { return checkTimeJSON(b, "created_time") }

// UnmarshalJSON implements json.Unmarshaler.
func (*expiresTimeJSON) UnmarshalJSON(b []byte) error { return checkTimeJSON(b, "expires_time") }

// checkTimeJSON checks one time member's raw value (valid JSON). It decodes
// numbers as encoding/json decodes them into a uint64 (strconv.ParseUint),
// without its allocations: Unpack runs it for every plaintext.
func checkTimeJSON(b []byte, name string) error {
	switch b[0] {
	case 'n':
		return nil
	case '"':
		s, ok := plainString(b)
		if !ok && json.Unmarshal(b, &s) != nil {
			break
		}
		if t, err := time.Parse(time.RFC3339, s); err == nil && t.Unix() >= 0 {
			return nil
		}
		return fmt.Errorf("%w: plaintext member %s is a string but not an RFC 3339 date-time after 1970", ErrMalformed, name)
	default:
		if _, err := strconv.ParseUint(string(b), 10, 64); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: plaintext member %s is neither a non-negative integer nor an RFC 3339 date-time", ErrMalformed, name)
}

// jsonKind records that a member is present and the kind of its value (the
// value's first byte: '"', '{', '[', 'n' for null, ...) without copying it.
type jsonKind byte

// UnmarshalJSON implements json.Unmarshaler.
func (k *jsonKind) UnmarshalJSON(b []byte) error {
	*k = jsonKind(b[0])
	return nil
}

// checkAttachments checks that each attachment has data holding base64, json,
// or links with a hash, and returns the error for the first that has not.
func (m *plainJSON) checkAttachments() error {
	if m.attScanned {
		return m.attErr
	}
	if m.Attachments == nil {
		return nil
	}
	for i, a := range *m.Attachments {
		var c attachmentCheck
		if d := a.Data; d != nil {
			c = attachmentCheck{data: true, base64: d.Base64, json: d.JSON, links: d.Links != nil, hash: d.Hash != nil}
		}
		if err := c.check(i); err != nil {
			return err
		}
	}
	return nil
}

// attachmentCheck is what the plaintext check reads of one attachment: its
// data member as decoding it into attachmentJSON leaves it.
type attachmentCheck struct {
	data         bool     // Data != nil
	base64, json jsonKind // Data.Base64, Data.JSON
	links, hash  bool     // Data.Links != nil, Data.Hash != nil
}

// check returns the error for attachment i when its data is missing or holds
// neither base64, json nor links with a hash.
func (c *attachmentCheck) check(i int) error {
	if !c.data {
		return fmt.Errorf("%w: attachment %d has no data", ErrMalformed, i)
	}
	if c.base64 != '"' && c.json == 0 && (!c.links || !c.hash) {
		return fmt.Errorf("%w: attachment %d data has neither base64, json nor links with hash", ErrMalformed, i)
	}
	return nil
}

// parsePlaintext decodes and checks a plaintext message: id and type strings,
// a body object, the optional headers of the right JSON types, and
// attachments whose data holds base64, json, or links with a hash.
func parsePlaintext(msg []byte) (plainInfo, error) {
	var m plainJSON
	return checkPlain(&m, decodePlain(msg, &m))
}

// checkPlain checks a plaintext message decoded into m; err is the decoding
// error.
func checkPlain(m *plainJSON, err error) (plainInfo, error) {
	var p plainInfo
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			return p, err
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return p, fmt.Errorf("%w: plaintext member %s has the wrong JSON type", ErrMalformed, te.Field)
		}
		return p, fmt.Errorf("%w: plaintext is not a JSON object", ErrMalformed)
	}
	switch {
	case m.ID != '"':
		return p, fmt.Errorf("%w: id is missing or not a string", ErrMalformed)
	case m.Type != '"':
		return p, fmt.Errorf("%w: type is missing or not a string", ErrMalformed)
	case m.Body != '{':
		return p, fmt.Errorf("%w: body is missing or not a JSON object", ErrMalformed)
	case m.Thid != 0 && m.Thid != 'n' && m.Thid != '"', m.Pthid != 0 && m.Pthid != 'n' && m.Pthid != '"':
		return p, fmt.Errorf("%w: thid or pthid is not a string", ErrMalformed)
	}
	if m.Typ != nil && *m.Typ != TypPlain && *m.Typ != strings.TrimPrefix(TypPlain, "application/") {
		if *m.Typ == TypEncrypted || *m.Typ == TypSigned {
			return p, fmt.Errorf("%w: typ %q on a message that is not one", ErrMalformed, *m.Typ)
		}
		return p, fmt.Errorf("%w: plaintext typ %q", ErrUnsupported, *m.Typ)
	}
	if err := m.checkAttachments(); err != nil {
		return p, err
	}
	if m.From != nil {
		p.from = *m.From
	}
	if m.FromPrior != nil {
		p.fromPrior = *m.FromPrior
	}
	return p, nil
}

// Layers may appear only in this order, each at most once:
// anoncrypt(authcrypt(signed(plaintext))). So a message has at most three
// envelope layers.
const (
	stageAnon = iota
	stageAuth
	stageSign
	stagePlain
)

// Unpack opens a DIDComm v2 message of any kind: it tells JWE, JWS and
// plaintext apart by structure and peels the layers DIDComm allows, in this
// order and each at most once: anoncrypt (ECDH-ES+A256KW), authcrypt
// (ECDH-1PU+A256KW), signature (JWS), plaintext. It returns the plaintext
// message as it was packed (raw itself when raw is a plaintext message) and
// metadata describing the protection found.
//
// For a JWE it decrypts with the first recipient kid the SecretResolver holds
// (trying further held kids if the content key does not unwrap), after
// checking apv against the recipient kids and, for authcrypt, apu against skid
// and resolving skid (keyAgreement) through the KeyResolver. For a JWS it
// resolves the signer's kid (authentication) and verifies the signature.
// The plaintext must be a well-formed DIDComm message; its from must be the
// DID of the authcrypt skid and of the signer, when there are such, and a
// from_prior JWT must verify, be issued by its signer's DID and name from as
// sub.
//
// Errors wrap the sentinel errors of this package (see there).
func Unpack(ctx context.Context, raw []byte, opts UnpackOptions) ([]byte, Metadata, error) {
	var md Metadata
	stage := stageAnon
	msg := raw
	for outer := true; ; outer = false {
		var envStore rawEnvelope
		env := &envStore
		if err := scanEnvelopeInto(msg, env); err != nil {
			return nil, Metadata{}, err
		}
		kind, err := env.kind()
		if err != nil {
			return nil, Metadata{}, err
		}
		if outer && opts.Form != "" {
			if got := formOfKind(kind); got != opts.Form {
				return nil, Metadata{}, &FormMismatchError{Got: got, Declared: opts.Form}
			}
		}
		switch kind {
		case "JWE":
			j, err := parseJWE(env)
			if err != nil {
				return nil, Metadata{}, err
			}
			var authcrypt bool
			switch j.alg {
			case AlgAnoncrypt:
			case AlgAuthcrypt:
				authcrypt = true
				// Before the apv check, so that authcrypt with another
				// enc (Veramo's A256GCM) is refused for what it is.
				if j.enc != A256CBCHS512 {
					return nil, Metadata{}, fmt.Errorf("%w: enc %q with %s (DIDComm authcrypt uses A256CBC-HS512)", ErrUnsupported, j.enc, j.alg)
				}
			default:
				if err := j.checkAPV(); err != nil {
					return nil, Metadata{}, err
				}
				return nil, Metadata{}, fmt.Errorf("%w: JWE alg %q", ErrUnsupported, j.alg)
			}
			if err := j.checkAPV(); err != nil {
				return nil, Metadata{}, err
			}
			want := stageAnon
			if authcrypt {
				want = stageAuth
			}
			if stage > want {
				return nil, Metadata{}, fmt.Errorf("%w: %s JWE nested inside a layer it may not be in", ErrMalformed, j.alg)
			}
			pt, skid, err := openJWE(ctx, j, authcrypt, opts)
			if err != nil {
				return nil, Metadata{}, err
			}
			md.Encrypted = true
			if md.EncryptedTo == nil {
				md.EncryptedTo = j.kids // parseJWE's own slice, capacity its length
			}
			if authcrypt {
				md.Authenticated = true
				md.EncryptedFrom = skid
				md.EncAlgAuth = encAlg(j.enc, j.alg)
			} else {
				md.AnonymousSender = true
				md.EncAlgAnon = encAlg(j.enc, j.alg)
			}
			stage = want + 1
			msg = pt
		case "JWS":
			if stage > stageSign {
				return nil, Metadata{}, fmt.Errorf("%w: JWS nested inside a JWS", ErrMalformed)
			}
			v, err := verifyJWS(ctx, env, opts.Keys)
			if err != nil {
				return nil, Metadata{}, err
			}
			md.Authenticated = true
			md.NonRepudiation = true
			md.SignFrom = v.kid
			md.SignAlg = v.alg
			md.SignedMessage = slices.Clone(msg)
			stage = stagePlain
			msg = v.payload
		default:
			p, err := parsePlaintext(msg)
			if err != nil {
				return nil, Metadata{}, err
			}
			if err := checkSender(ctx, p, &md, opts.Keys); err != nil {
				return nil, Metadata{}, err
			}
			return msg, md, nil
		}
	}
}

// encAlg returns enc+"+"+alg, the common ones without allocating.
func encAlg(enc Enc, alg string) string {
	switch {
	case alg == AlgAnoncrypt && enc == XC20P:
		return string(XC20P) + "+" + AlgAnoncrypt
	case alg == AlgAnoncrypt && enc == A256CBCHS512:
		return string(A256CBCHS512) + "+" + AlgAnoncrypt
	case alg == AlgAnoncrypt && enc == A256GCM:
		return string(A256GCM) + "+" + AlgAnoncrypt
	case alg == AlgAuthcrypt && enc == A256CBCHS512:
		return string(A256CBCHS512) + "+" + AlgAuthcrypt
	}
	return string(enc) + "+" + alg
}

// openJWE finds a recipient key we hold, unwraps the content key with it and
// decrypts. For authcrypt it returns the skid.
func openJWE(ctx context.Context, j *parsedJWE, authcrypt bool, opts UnpackOptions) (pt []byte, skid string, err error) {
	if authcrypt && j.enc != A256CBCHS512 {
		return nil, "", fmt.Errorf("%w: enc %q with %s (DIDComm authcrypt uses A256CBC-HS512)", ErrUnsupported, j.enc, j.alg)
	}
	if err := j.checkSizes(); err != nil {
		return nil, "", err
	}
	// apu is BASE64URL(skid); skid may be left out and is then read from apu.
	if j.hdr.Skid != nil {
		skid = *j.hdr.Skid
		if j.hdr.Apu == nil {
			return nil, "", fmt.Errorf("%w: skid present but no apu", ErrMalformed)
		}
		if string(j.apu) != skid {
			return nil, "", fmt.Errorf("%w: apu does not encode skid", ErrSenderMismatch)
		}
	} else if authcrypt {
		if j.hdr.Apu == nil {
			return nil, "", fmt.Errorf("%w: authcrypt JWE has neither skid nor apu", ErrMalformed)
		}
		skid = string(j.apu)
	}
	if authcrypt && skid == "" {
		return nil, "", fmt.Errorf("%w: empty skid", ErrMalformed)
	}
	if authcrypt {
		// As didcomm-rust: an authcrypt JWE is for the keys of one DID.
		for _, kid := range j.kids[1:] {
			if didOf(kid) != didOf(j.kids[0]) {
				return nil, "", fmt.Errorf("%w: recipients %s and %s belong to different DIDs", ErrMalformed, j.kids[0], kid)
			}
		}
	}

	// Try the recipient kids we hold in JWE order; resolve the sender only
	// once one of them is ours.
	var (
		cek     []byte
		sender  *keys.PublicKey
		held    int
		lastErr error
	)
	for i, kid := range j.kids {
		if opts.Secrets == nil {
			break
		}
		k, err := opts.Secrets.PrivateKey(ctx, kid)
		if errors.Is(err, keys.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("envelope: looking up recipient key %s: %w", kid, err)
		}
		held++
		if k.Curve != j.epk.Curve {
			lastErr = fmt.Errorf("%w: epk is on %s, recipient key %s on %s", ErrMalformed, j.epk.Curve, kid, k.Curve)
			continue
		}
		if authcrypt && sender == nil {
			sk, err := resolveKey(ctx, opts.Keys, skid, PurposeKeyAgreement)
			if err != nil {
				return nil, "", err
			}
			if !sk.Curve.IsKeyAgreement() {
				return nil, "", fmt.Errorf("%w: skid %s is a %s key, not a key agreement key", ErrSenderKey, skid, sk.Curve)
			}
			if sk.Curve != j.epk.Curve {
				return nil, "", fmt.Errorf("%w: skid %s is on %s but epk on %s", ErrMalformed, skid, sk.Curve, j.epk.Curve)
			}
			sender = &sk
		}
		ak, err := staticAgreeKey(k)
		if err != nil {
			return nil, "", fmt.Errorf("%w: recipient key %s is unusable: %v", ErrNoRecipientKey, kid, err)
		}
		if cek, err = j.unwrapCEK(i, ak, sender, 32); err == nil {
			break
		}
		if !errors.Is(err, ErrDecrypt) {
			return nil, "", err
		}
		if j.hdr.Apv == nil && j.apvStripped(i, ak) {
			return nil, "", fmt.Errorf("%w: apv was removed from the protected header", ErrMalformed)
		}
		lastErr = err // a stale or wrong secret under this kid: try the next one held
	}
	if cek == nil {
		if held == 0 {
			return nil, "", fmt.Errorf("%w: none of %d recipient kids", ErrNoRecipientKey, len(j.kids))
		}
		return nil, "", lastErr
	}
	defer clear(cek)
	pt, err = j.decrypt(cek)
	if err != nil {
		return nil, "", err
	}
	return pt, skid, nil
}

// plainInfo is what Unpack needs from a plaintext message after checking it.
type plainInfo struct {
	from      string
	fromPrior string
}

// checkSender enforces that from is the DID of the authcrypt sender key and of
// the signer, and verifies from_prior.
func checkSender(ctx context.Context, p plainInfo, md *Metadata, kr KeyResolver) error {
	if md.EncryptedFrom != "" && p.from != didOf(md.EncryptedFrom) {
		return fmt.Errorf("%w: from %q is not the DID of skid %s", ErrSenderMismatch, p.from, md.EncryptedFrom)
	}
	if md.SignFrom != "" && p.from != didOf(md.SignFrom) {
		return fmt.Errorf("%w: from %q is not the DID of signer %s", ErrSenderMismatch, p.from, md.SignFrom)
	}
	if p.fromPrior == "" {
		return nil
	}
	payload, kid, err := verifyCompactJWS(ctx, p.fromPrior, kr, "JWT")
	if err != nil {
		return fmt.Errorf("from_prior: %w", err)
	}
	var c struct {
		Iss *string `json:"iss"`
		Sub *string `json:"sub"`
		FromPrior
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Iss == nil || c.Sub == nil {
		return fmt.Errorf("%w: from_prior claims are not a JSON object with iss and sub", ErrMalformed)
	}
	c.FromPrior.Iss, c.FromPrior.Sub = *c.Iss, *c.Sub
	if didOf(kid) != c.FromPrior.Iss {
		return fmt.Errorf("%w: from_prior signed by %s, not by its issuer %q", ErrSenderMismatch, kid, c.FromPrior.Iss)
	}
	if c.FromPrior.Sub != p.from {
		return fmt.Errorf("%w: from_prior sub %q is not from %q", ErrSenderMismatch, c.FromPrior.Sub, p.from)
	}
	md.FromPriorIssuerKid = kid
	fp := c.FromPrior
	md.FromPrior = &fp
	return nil
}

// Form is the form of a packed DIDComm message, as its media type names it.
type Form string

// The forms of a DIDComm message, spelled as their media types.
const (
	FormEncrypted Form = "application/didcomm-encrypted+json"
	FormSigned    Form = "application/didcomm-signed+json"
	FormPlain     Form = "application/didcomm-plain+json"
)

// FormOf tells the form of msg by the members of its top-level object, as
// Unpack does for the outermost layer: a JWE (ciphertext or recipients), a
// JWS (signatures, or payload and signature) or else a plaintext message.
// It makes one pass over msg, checking that it is exactly one JSON object,
// and decodes nothing; a transport that was told a media type compares it
// with the form before it unpacks. An error wraps ErrMalformed.
func FormOf(msg []byte) (Form, error) {
	env, err := scanEnvelope(msg)
	if err != nil {
		return "", err
	}
	kind, err := env.kind()
	if err != nil {
		return "", err
	}
	return formOfKind(kind), nil
}

// formOfKind is the form of an envelope of kind (rawEnvelope.kind).
func formOfKind(kind string) Form {
	switch kind {
	case "JWE":
		return FormEncrypted
	case "JWS":
		return FormSigned
	}
	return FormPlain
}
