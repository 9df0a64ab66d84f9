package mediation

import (
	"context"
	"encoding/base64"
	"slices"

	"github.com/agentd/agentd/agent"
)

// handlePickup serves Pickup 3.0 to granted clients. A client only ever sees
// and removes messages queued for the DIDs it registered; a recipient_did
// that is not one of them is refused (e.p.req.not-allowed).
func (m *Mediator) handlePickup(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	switch in.Message.Type {
	case StatusType, DeliveryType:
		// Answers to a pickup client arrive on the connection that asked.
		m.log.DebugContext(ctx, "unsolicited pickup answer", "type", in.Message.Type, "from", in.Message.From)
		return nil, nil
	case StatusRequestType, DeliveryRequestType, MessagesReceivedType, LiveDeliveryChangeType:
	default:
		return nil, agent.Errorf(agent.CodeMsgUnsupported, "unsupported message type %s", in.Message.Type)
	}
	c, err := m.granted(in)
	if err != nil {
		return nil, err
	}
	if in.Message.Type != LiveDeliveryChangeType {
		// DIDs registered through another instance just before this
		// request are among the client's (a shared store).
		if err := m.registry.CatchUp(ctx); err != nil {
			m.log.WarnContext(ctx, "pickup served without the latest registrations of other instances", "client", c, "err", err)
		}
	}
	switch in.Message.Type {
	case StatusRequestType:
		var body StatusRequestBody
		if err := in.Message.DecodeBody(&body); err != nil {
			return nil, agent.Wrap(agent.CodeMsg, err, "malformed status-request body")
		}
		return m.status(ctx, in, c, body.RecipientDID)
	case DeliveryRequestType:
		return m.deliveryRequest(ctx, in, c)
	case MessagesReceivedType:
		var body MessagesReceivedBody
		if err := in.Message.DecodeBody(&body); err != nil {
			return nil, agent.Wrap(agent.CodeMsg, err, "malformed messages-received body")
		}
		if body.MessageIDList == nil {
			return nil, agent.Errorf(agent.CodeMsg, "messages-received needs message_id_list")
		}
		if len(body.MessageIDList) > 10000 {
			return nil, agent.Errorf(agent.CodeMsg, "at most 10000 ids per messages-received")
		}
		n, err := m.queue.Remove(ctx, m.registry.Recipients(c), body.MessageIDList)
		if err != nil {
			return nil, agent.Wrap(agent.CodeMe, err, "could not remove the messages")
		}
		m.log.DebugContext(ctx, "messages received", "client", c, "named", len(body.MessageIDList), "removed", n)
		return m.status(ctx, in, c, "")
	default: // LiveDeliveryChangeType
		var body LiveDeliveryChangeBody
		if err := in.Message.DecodeBody(&body); err != nil {
			return nil, agent.Errorf(agent.CodeMsg, "malformed live-delivery-change body: %v", err)
		}
		if body.LiveDelivery == nil {
			return nil, agent.Errorf(agent.CodeMsg, "live-delivery-change needs live_delivery")
		}
		if in.Session == nil {
			if !*body.LiveDelivery {
				return m.status(ctx, in, c, "")
			}
			return nil, agent.Errorf(CodeLiveModeNotSupported, "live delivery needs a persistent connection: open a WebSocket to this endpoint")
		}
		from := mediatorDID(in)
		if from == "" {
			from = m.registry.Grant(c).MediatorDID
		}
		if from == "" {
			from = m.cfg.DID
		}
		live := bool(*body.LiveDelivery)
		m.live.set(in.Session, c, from, live)
		m.log.InfoContext(ctx, "live delivery changed", "client", c, "live", live, "session", in.Session.ID())
		return m.status(ctx, in, c, "")
	}
}

// scope returns the canonical DIDs a request may see: all the client's, or
// the one it names.
func (m *Mediator) scope(c, recipientDID string) ([]string, error) {
	all := m.registry.Recipients(c)
	if recipientDID == "" {
		return all, nil
	}
	want := Canonical(recipientDID)
	if _, ok := slices.BinarySearch(all, want); !ok {
		return nil, agent.Errorf(agent.CodeForbidden, "%s is not one of your registered recipient DIDs", recipientDID)
	}
	return []string{want}, nil
}

// status answers with the state of the client's queue.
func (m *Mediator) status(ctx context.Context, in *agent.Inbound, c, recipientDID string) ([]agent.Message, error) {
	recipients, err := m.scope(c, recipientDID)
	if err != nil {
		return nil, err
	}
	st, err := m.queue.Stats(ctx, recipients)
	if err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "could not read the queue")
	}
	body := StatusBody{RecipientDID: recipientDID, MessageCount: st.Messages, LiveDelivery: agent.FlexBool(m.live.isLive(in.Session))}
	if st.Messages > 0 {
		now := m.cfg.Now()
		waited := int64(now.Sub(st.Oldest).Seconds())
		newest, oldest, total := st.Newest.Unix(), st.Oldest.Unix(), st.Bytes
		body.LongestWaitedSeconds, body.NewestReceivedTime, body.OldestReceivedTime, body.TotalBytes = &waited, &newest, &oldest, &total
	} else {
		var zero int64
		body.TotalBytes = &zero
	}
	reply, err := in.Message.Reply(StatusType, body)
	if err != nil {
		return nil, err
	}
	return []agent.Message{reply}, nil
}

func (m *Mediator) deliveryRequest(ctx context.Context, in *agent.Inbound, c string) ([]agent.Message, error) {
	var body DeliveryRequestBody
	if err := in.Message.DecodeBody(&body); err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "malformed delivery-request body")
	}
	if body.Limit == nil || *body.Limit < 1 {
		return nil, agent.Errorf(agent.CodeMsg, "delivery-request needs a limit of at least 1")
	}
	recipients, err := m.scope(c, body.RecipientDID)
	if err != nil {
		return nil, err
	}
	limit := min(*body.Limit, m.cfg.MaxDeliveryMessages)
	msgs, err := m.queue.List(ctx, recipients, m.cfg.Now(), limit)
	if err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "could not read the queue")
	}
	if len(msgs) == 0 {
		return m.status(ctx, in, c, body.RecipientDID)
	}
	reply, err := in.Message.Reply(DeliveryType, DeliveryBody{RecipientDID: body.RecipientDID})
	if err != nil {
		return nil, err
	}
	reply.Attachments = m.attachments(msgs)
	return []agent.Message{reply}, nil
}

// attachments turns queued messages into delivery attachments, stopping at
// the byte limit (but always taking the first).
func (m *Mediator) attachments(msgs []*agent.QueuedMessage) []agent.Attachment {
	out := make([]agent.Attachment, 0, len(msgs))
	size := 0
	for _, q := range msgs {
		size += len(q.Payload)
		if len(out) > 0 && size > m.cfg.MaxDeliveryBytes {
			break
		}
		out = append(out, Attachment(q))
	}
	return out
}

// Attachment returns the delivery attachment of a queued message: the queue
// id as its id, the encrypted message in data.base64.
func Attachment(q *agent.QueuedMessage) agent.Attachment {
	return agent.Attachment{ID: q.ID, MediaType: agent.MediaTypeEncrypted,
		Data: agent.AttachmentData{Base64: base64.RawURLEncoding.EncodeToString(q.Payload)}}
}
