package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/agent/keys"
)

// ForwardType is the message type of Routing 2.0 forward messages.
const ForwardType = "https://didcomm.org/routing/2.0/forward"

// Messenger packs plaintext messages for their recipients and hands them to
// the outbox: it resolves each recipient's DID document, picks a DIDComm
// service endpoint the agent can reach, encrypts with authcrypt from the
// agent's own key on the recipient's curve, and wraps the result in Routing
// 2.0 forward messages for each routing key of the service.
type Messenger struct {
	Identity *Identity
	Resolver did.Resolver
	Keys     envelope.KeyResolver
	Outbox   *Outbox
	// Schemes are the endpoint URI schemes the agent can deliver to, in order of
	// preference (e.g. "https", "http", "mailto").
	Schemes []string
}

// Send packs msg for each DID in msg.To and enqueues it in the outbox. It
// returns after every copy is durably queued, or with the first error.
func (m *Messenger) Send(ctx context.Context, msg Message) error {
	if len(msg.To) == 0 {
		return Errorf(CodeMsg, "message has no recipient")
	}
	if msg.From == "" {
		msg.From = m.Identity.DID()
	}
	plain, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	for _, to := range msg.To {
		packed, endpoint, err := m.packFor(ctx, plain, msg.From, DIDOf(to))
		if err != nil {
			return err
		}
		out := &OutboundMessage{
			ID: NewID(), To: DIDOf(to), Endpoint: endpoint, MediaType: MediaTypeEncrypted,
			MessageType: msg.Type, Payload: packed,
		}
		if err := m.Outbox.Enqueue(ctx, out); err != nil {
			return err
		}
	}
	return nil
}

// SendTo packs msg for each DID in msg.To and enqueues it for delivery to the
// explicit endpoint (for example "mailto:alice@example.org") instead of the
// service endpoint the recipient's DID document lists. The envelope is
// authcrypted to the recipient's key agreement keys as with Send, but not
// wrapped for the document's routing keys: it goes straight to endpoint.
func (m *Messenger) SendTo(ctx context.Context, msg Message, endpoint string) error {
	if len(msg.To) == 0 {
		return Errorf(CodeMsg, "message has no recipient")
	}
	if endpoint == "" {
		return Errorf(CodeXfer, "no endpoint to send to")
	}
	if msg.From == "" {
		msg.From = m.Identity.DID()
	}
	plain, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	for _, to := range msg.To {
		recipients, err := m.recipientKeys(ctx, DIDOf(to), nil)
		if err != nil {
			return err
		}
		packed, err := m.encrypt(ctx, plain, msg.From, recipients)
		if err != nil {
			return err
		}
		out := &OutboundMessage{
			ID: NewID(), To: DIDOf(to), Endpoint: endpoint, MediaType: MediaTypeEncrypted,
			MessageType: msg.Type, Payload: packed,
		}
		if err := m.Outbox.Enqueue(ctx, out); err != nil {
			return err
		}
	}
	return nil
}

// PackReply packs a reply for return on the connection the inbound message came
// on. It mirrors the inbound protection: authcrypt to the sender when the
// sender is known, plaintext to an anonymous sender that asked for a return
// route (there is no key to encrypt to).
func (m *Messenger) PackReply(ctx context.Context, reply Message, in *Inbound) ([]byte, string, error) {
	plain, err := json.Marshal(reply)
	if err != nil {
		return nil, "", err
	}
	if len(reply.To) == 0 {
		return plain, MediaTypePlain, nil
	}
	recipients, err := m.recipientKeys(ctx, DIDOf(reply.To[0]), in)
	if err != nil {
		return nil, "", err
	}
	packed, err := m.encrypt(ctx, plain, reply.From, recipients)
	if err != nil {
		return nil, "", err
	}
	return packed, MediaTypeEncrypted, nil
}

// Pack packs msg for one recipient DID and returns the envelope and the
// endpoint to deliver it to, without queueing it.
func (m *Messenger) Pack(ctx context.Context, msg Message, to string) (packed []byte, endpoint string, err error) {
	if msg.From == "" {
		msg.From = m.Identity.DID()
	}
	plain, err := json.Marshal(msg)
	if err != nil {
		return nil, "", err
	}
	return m.packFor(ctx, plain, msg.From, DIDOf(to))
}

func (m *Messenger) packFor(ctx context.Context, plain []byte, from, to string) ([]byte, string, error) {
	doc, err := m.Resolver.Resolve(ctx, to)
	if err != nil {
		return nil, "", resolveError(to, err)
	}
	recipients, err := doc.KeyAgreement()
	if err != nil || len(recipients) == 0 {
		return nil, "", Errorf(CodeDIDUnresolved, "%s has no usable key agreement key", to)
	}
	packed, err := m.encrypt(ctx, plain, from, recipients)
	if err != nil {
		return nil, "", err
	}
	svc, err := m.pickService(ctx, doc, 0)
	if err != nil {
		return nil, "", err
	}
	packed, err = m.wrapForward(ctx, packed, to, svc.ServiceEndpoint.RoutingKeys)
	if err != nil {
		return nil, "", err
	}
	return packed, svc.ServiceEndpoint.URI, nil
}

// recipientKeys returns the sender's key agreement keys, preferring the curve
// the inbound message was encrypted with.
func (m *Messenger) recipientKeys(ctx context.Context, to string, in *Inbound) ([]keys.PublicKey, error) {
	doc, err := m.Resolver.Resolve(ctx, to)
	if err != nil {
		return nil, resolveError(to, err)
	}
	ka, err := doc.KeyAgreement()
	if err != nil || len(ka) == 0 {
		return nil, Errorf(CodeDIDUnresolved, "%s has no usable key agreement key", to)
	}
	if in != nil && in.Envelope.EncryptedFrom != "" {
		for _, k := range ka {
			if k.ID == in.Envelope.EncryptedFrom {
				return []keys.PublicKey{k}, nil
			}
		}
	}
	return ka, nil
}

// encrypt authcrypts plain from the agent's DID from to the recipients on the
// first curve both sides have.
func (m *Messenger) encrypt(ctx context.Context, plain []byte, from string, recipients []keys.PublicKey) ([]byte, error) {
	if !m.Identity.Owns(from) {
		return nil, Errorf(CodeMe, "cannot send as %s: not one of this agent's DIDs", from)
	}
	doc, err := m.Resolver.Resolve(ctx, from)
	if err != nil {
		return nil, resolveError(from, err)
	}
	ours, err := doc.KeyAgreement()
	if err != nil {
		return nil, Wrap(CodeMe, err, "our own DID document has no usable key agreement key")
	}
	for _, mine := range ours {
		var same []keys.PublicKey
		for _, r := range recipients {
			if r.Curve == mine.Curve {
				same = append(same, r)
			}
		}
		if len(same) == 0 {
			continue
		}
		priv, err := m.Identity.PrivateKey(ctx, mine.ID)
		if err != nil {
			return nil, fmt.Errorf("sender key %s: %w", mine.ID, err)
		}
		return envelope.PackAuthcrypt(plain, priv, same)
	}
	return nil, Errorf(CodeTrustCrypto, "no key agreement curve in common with the recipient")
}

// pickService chooses the first DIDComm v2 service whose endpoint scheme the
// agent can deliver to. An endpoint that is itself a DID (a mediator) is
// followed once.
func (m *Messenger) pickService(ctx context.Context, doc *did.Doc, depth int) (did.Service, error) {
	services := doc.DIDCommServices()
	for _, scheme := range m.Schemes {
		for _, s := range services {
			uri := s.ServiceEndpoint.URI
			if strings.HasPrefix(uri, "did:") && depth == 0 {
				mdoc, err := m.Resolver.Resolve(ctx, DIDOf(uri))
				if err != nil {
					continue
				}
				ms, err := m.pickService(ctx, mdoc, 1)
				if err != nil {
					continue
				}
				ms.ServiceEndpoint.RoutingKeys = append(append([]string(nil), s.ServiceEndpoint.RoutingKeys...), ms.ServiceEndpoint.RoutingKeys...)
				if strings.HasPrefix(ms.ServiceEndpoint.URI, scheme+":") {
					return ms, nil
				}
				continue
			}
			if strings.HasPrefix(uri, scheme+":") {
				return s, nil
			}
		}
	}
	return did.Service{}, Errorf(CodeXfer, "%s has no DIDComm v2 endpoint this agent can reach", doc.ID)
}

// wrapForward wraps packed in one Routing 2.0 forward per routing key, the
// last routing key outermost, each anoncrypted to that key.
func (m *Messenger) wrapForward(ctx context.Context, packed []byte, next string, routingKeys []string) ([]byte, error) {
	for i := len(routingKeys) - 1; i >= 0; i-- {
		rk := routingKeys[i]
		target, err := m.routingKey(ctx, rk)
		if err != nil {
			return nil, err
		}
		fwd, err := NewMessage(ForwardType, map[string]string{"next": next})
		if err != nil {
			return nil, err
		}
		fwd.ExpiresTime = time.Now().Add(14 * 24 * time.Hour).Unix()
		fwd.Attachments = []Attachment{{ID: NewID(), MediaType: MediaTypeEncrypted, Data: AttachmentData{JSON: packed}}}
		plain, err := json.Marshal(fwd)
		if err != nil {
			return nil, err
		}
		packed, err = envelope.PackAnoncrypt(plain, target, envelope.A256CBCHS512)
		if err != nil {
			return nil, err
		}
		next = rk
	}
	return packed, nil
}

// routingKey resolves a routing key: a DID URL names one key, a bare DID means
// its key agreement keys.
func (m *Messenger) routingKey(ctx context.Context, rk string) ([]keys.PublicKey, error) {
	if strings.Contains(rk, "#") {
		k, err := m.Keys.PublicKey(ctx, rk)
		if err != nil {
			return nil, resolveError(rk, err)
		}
		return []keys.PublicKey{k}, nil
	}
	doc, err := m.Resolver.Resolve(ctx, rk)
	if err != nil {
		return nil, resolveError(rk, err)
	}
	ka, err := doc.KeyAgreement()
	if err != nil || len(ka) == 0 {
		return nil, Errorf(CodeDIDUnresolved, "routing key %s has no key agreement key", rk)
	}
	return ka[:1], nil
}

func resolveError(what string, err error) error {
	if errors.Is(err, did.ErrUnsupportedMethod) {
		return Wrap(CodeDIDUnsupported, err, err.Error())
	}
	return Wrap(CodeDIDUnresolved, err, fmt.Sprintf("cannot resolve %s", what))
}
