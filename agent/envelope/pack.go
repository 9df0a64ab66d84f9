package envelope

import (
	"errors"
	"fmt"

	"github.com/agentd/agentd/agent/keys"
)

// PackOptions selects the protection Pack applies to a plaintext message.
type PackOptions struct {
	// Sender is the sender's key agreement key. When set the message is
	// authcrypted (ECDH-1PU); when nil it is anoncrypted (ECDH-ES).
	Sender *keys.PrivateKey
	// SignBy, when set, signs the plaintext first (sign-then-encrypt, or a
	// signed-only message when there are no Recipients).
	SignBy *keys.PrivateKey
	// Recipients are the recipients' key agreement keys, all on one curve
	// (the Sender's, for authcrypt). At most MaxRecipients.
	Recipients []keys.PublicKey
	// ProtectSender wraps the authcrypt JWE in an anoncrypt JWE to the same
	// recipients, hiding skid from intermediaries. Requires Sender.
	ProtectSender bool
	// EncAnon is the content encryption of the anoncrypt layer; ""
	// means DefaultEncAnon (XC20P, as didcomm-rust).
	EncAnon Enc
}

// Pack protects a DIDComm plaintext message as opts say, producing
// anoncrypt(plaintext), authcrypt(plaintext), anoncrypt(authcrypt(plaintext))
// (ProtectSender), any of these around signed(plaintext) (SignBy), or just
// signed(plaintext) when SignBy is set and there are no recipients.
//
// The plaintext must be a well-formed DIDComm plaintext message, and its from
// must be the DID of Sender and of SignBy when they are set; Pack refuses
// (ErrSenderMismatch) what Unpack would reject for that reason.
func Pack(plaintext []byte, opts PackOptions) ([]byte, error) {
	if opts.ProtectSender && opts.Sender == nil {
		return nil, errors.New("envelope: ProtectSender needs a Sender")
	}
	if len(opts.Recipients) == 0 && (opts.SignBy == nil || opts.Sender != nil) {
		return nil, errors.New("envelope: no recipients to encrypt for")
	}
	env, err := scanEnvelope(plaintext)
	if err != nil {
		return nil, err
	}
	if k, err := env.kind(); err != nil || k != "plaintext" {
		return nil, fmt.Errorf("%w: Pack takes a plaintext message, not a JWE or JWS", ErrMalformed)
	}
	p, err := parsePlaintext(plaintext)
	if err != nil {
		return nil, err
	}
	for _, k := range []*keys.PrivateKey{opts.Sender, opts.SignBy} {
		if k != nil && p.from != didOf(k.ID) {
			return nil, fmt.Errorf("%w: from %q is not the DID of key %s", ErrSenderMismatch, p.from, k.ID)
		}
	}
	msg := plaintext
	if opts.SignBy != nil {
		if msg, err = Sign(msg, *opts.SignBy); err != nil {
			return nil, err
		}
	}
	if len(opts.Recipients) == 0 {
		return msg, nil
	}
	if opts.Sender == nil {
		return PackAnoncrypt(msg, opts.Recipients, opts.EncAnon)
	}
	if msg, err = PackAuthcrypt(msg, *opts.Sender, opts.Recipients); err != nil {
		return nil, err
	}
	if opts.ProtectSender {
		return PackAnoncrypt(msg, opts.Recipients, opts.EncAnon)
	}
	return msg, nil
}
