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
	// Store commits what Send and SendTo queue, one unit of work per call.
	Store Store
	// Schemes are the endpoint URI schemes the agent can deliver to, in order of
	// preference (e.g. "https", "http", "mailto").
	Schemes []string
	// Signs reports whether a message type is signed (a JWS by an
	// authentication key of the sender's DID) before it is encrypted, for
	// non-repudiation: Router.Signs, which answers from the registered
	// protocols' Protocol.Signed. Nil: nothing is signed.
	Signs func(msgType string) bool
}

// Send packs msg for each DID in msg.To and queues the envelopes in the
// outbox, in one unit of work. It returns after every copy is durably
// queued, or with the first error and nothing queued (CodeOutboxFull when
// the outbox is at its limits, see OutboxLimits). A handler, whose
// messages must commit with its own writes, calls Outbound and stages the
// result in its Work instead.
func (m *Messenger) Send(ctx context.Context, msg Message) error {
	outs, err := m.Outbound(ctx, msg)
	if err != nil {
		return err
	}
	return m.commit(ctx, outs)
}

// Outbound packs msg for each DID in msg.To (authcrypt from msg.From, the
// agent's primary DID when empty; signed first if Signs says so; wrapped in
// forwards for the routing keys of the recipient's service) and returns the
// outbound messages for the outbox, without queueing them.
func (m *Messenger) Outbound(ctx context.Context, msg Message) ([]*OutboundMessage, error) {
	if len(msg.To) == 0 {
		return nil, Errorf(CodeMsg, "message has no recipient")
	}
	if msg.From == "" {
		msg.From = m.Identity.DID()
	}
	plain, err := m.plaintext(ctx, msg)
	if err != nil {
		return nil, err
	}
	outs := make([]*OutboundMessage, 0, len(msg.To))
	for _, to := range msg.To {
		packed, endpoint, err := m.packFor(ctx, plain, msg.From, DIDOf(to))
		if err != nil {
			return nil, err
		}
		outs = append(outs, &OutboundMessage{
			ID: NewID(), To: DIDOf(to), Endpoint: endpoint, MediaType: MediaTypeEncrypted,
			MessageType: msg.Type, Payload: packed,
		})
	}
	return outs, nil
}

// SendTo is Send to an explicit endpoint (see OutboundTo).
func (m *Messenger) SendTo(ctx context.Context, msg Message, endpoint string) error {
	outs, err := m.OutboundTo(ctx, msg, endpoint)
	if err != nil {
		return err
	}
	return m.commit(ctx, outs)
}

// OutboundTo packs msg for each DID in msg.To for delivery to the explicit
// endpoint (for example "mailto:alice@example.org") instead of the service
// endpoint the recipient's DID document lists. The envelope is authcrypted
// to the recipient's key agreement keys as with Outbound, but not wrapped
// for the document's routing keys: it goes straight to endpoint.
func (m *Messenger) OutboundTo(ctx context.Context, msg Message, endpoint string) ([]*OutboundMessage, error) {
	if len(msg.To) == 0 {
		return nil, Errorf(CodeMsg, "message has no recipient")
	}
	if endpoint == "" {
		return nil, Errorf(CodeXfer, "no endpoint to send to")
	}
	if msg.From == "" {
		msg.From = m.Identity.DID()
	}
	plain, err := m.plaintext(ctx, msg)
	if err != nil {
		return nil, err
	}
	outs := make([]*OutboundMessage, 0, len(msg.To))
	for _, to := range msg.To {
		recipients, err := m.recipientKeys(ctx, DIDOf(to), nil)
		if err != nil {
			return nil, err
		}
		packed, err := m.encrypt(ctx, plain, msg.From, recipients)
		if err != nil {
			return nil, err
		}
		outs = append(outs, &OutboundMessage{
			ID: NewID(), To: DIDOf(to), Endpoint: endpoint, MediaType: MediaTypeEncrypted,
			MessageType: msg.Type, Payload: packed,
		})
	}
	return outs, nil
}

// commit queues outs in the outbox in one unit of work.
func (m *Messenger) commit(ctx context.Context, outs []*OutboundMessage) error {
	err := m.Store.Update(ctx, func(w *Work) error {
		w.Enqueue(outs...)
		return nil
	})
	switch {
	case errors.Is(err, ErrOutboxFull):
		e := Wrap(CodeOutboxFull, err, "the outbox is full; try again later")
		e.RetryAfter = outboxFullRetryAfter
		return e
	case err != nil:
		return Wrap(CodeMe, err, "could not queue the message")
	}
	return nil
}

// PackReply packs a reply for return on the connection the inbound message came
// on. It mirrors the inbound protection: authcrypt to the sender when the
// sender is known, plaintext to an anonymous sender that asked for a return
// route (there is no key to encrypt to).
func (m *Messenger) PackReply(ctx context.Context, reply Message, in *Inbound) ([]byte, string, error) {
	if len(reply.To) == 0 {
		plain, err := json.Marshal(reply)
		if err != nil {
			return nil, "", err
		}
		return plain, MediaTypePlain, nil
	}
	plain, err := m.plaintext(ctx, reply)
	if err != nil {
		return nil, "", err
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

// PrepareRelay prepares a message that is already packed for next (a DID or
// a key id) to be handed on: it resolves next's DIDComm service, wraps the
// message in a forward for each of the service's routing keys and returns
// the outbound message for the service endpoint, for the caller's unit of
// work. A mediator relays this way the forwards whose next is not one of its
// own recipients. A service that routes through one of the agent's own keys
// is refused (e.p.xfer): relaying there would loop.
func (m *Messenger) PrepareRelay(ctx context.Context, packed []byte, next string) (*OutboundMessage, error) {
	to := DIDOf(next)
	doc, err := m.Resolver.Resolve(ctx, to)
	if err != nil {
		return nil, resolveError(to, err)
	}
	svc, err := m.pickService(ctx, doc, 0)
	if err != nil {
		return nil, err
	}
	for _, rk := range svc.ServiceEndpoint.RoutingKeys {
		if m.Identity.Owns(DIDOf(rk)) {
			return nil, Errorf(CodeXfer, "%s is routed through this agent, which does not mediate for it", to)
		}
	}
	wrapped, err := m.wrapForward(ctx, packed, next, svc.ServiceEndpoint.RoutingKeys)
	if err != nil {
		return nil, err
	}
	return &OutboundMessage{
		ID: NewID(), To: to, Endpoint: svc.ServiceEndpoint.URI, MediaType: MediaTypeEncrypted,
		MessageType: ForwardType, Payload: wrapped,
	}, nil
}

// Pack packs msg for one recipient DID and returns the envelope and the
// endpoint to deliver it to, without queueing it.
func (m *Messenger) Pack(ctx context.Context, msg Message, to string) (packed []byte, endpoint string, err error) {
	if msg.From == "" {
		msg.From = m.Identity.DID()
	}
	plain, err := m.plaintext(ctx, msg)
	if err != nil {
		return nil, "", err
	}
	return m.packFor(ctx, plain, msg.From, DIDOf(to))
}

// Encrypt authcrypts msg for the key agreement keys of the DID to and
// returns the envelope, without routing: no forward wrapping and no endpoint,
// for a message that travels outside DIDComm routing (fetched through a
// one-time link, printed, handed over by hand). Signed types are signed
// first, as everywhere.
func (m *Messenger) Encrypt(ctx context.Context, msg Message, to string) ([]byte, error) {
	if msg.From == "" {
		msg.From = m.Identity.DID()
	}
	plain, err := m.plaintext(ctx, msg)
	if err != nil {
		return nil, err
	}
	recipients, err := m.recipientKeys(ctx, DIDOf(to), nil)
	if err != nil {
		return nil, err
	}
	return m.encrypt(ctx, plain, msg.From, recipients)
}

// plaintext returns what is encrypted for msg: its JSON, or for a signed
// type (Signs) a JWS of it by an authentication key of msg.From that the agent
// holds.
func (m *Messenger) plaintext(ctx context.Context, msg Message) ([]byte, error) {
	plain, err := json.Marshal(msg)
	if err != nil || m.Signs == nil || !m.Signs(msg.Type) {
		return plain, err
	}
	if !m.Identity.Owns(msg.From) {
		return nil, Errorf(CodeMe, "cannot sign as %s: not one of this agent's DIDs", msg.From)
	}
	doc, err := m.Resolver.Resolve(ctx, msg.From)
	if err != nil {
		return nil, resolveError(msg.From, err)
	}
	auth, err := doc.Authentication()
	if err != nil {
		return nil, Wrap(CodeMe, err, "our own DID document has no usable authentication key")
	}
	for _, k := range auth {
		priv, err := m.Identity.PrivateKey(ctx, k.ID)
		if err != nil {
			continue
		}
		return envelope.Sign(plain, priv)
	}
	return nil, Errorf(CodeMe, "no authentication key of %s to sign %s with", msg.From, msg.Type)
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
