package mediation

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
)

// handleRouting takes a forward: it unwraps the attached messages and queues
// them for next, when next is a registered recipient, in one durable,
// group-committed write that also records the forward against replays; or,
// with relay on, passes them on to next's endpoint; or refuses the forward.
// Refusals (agent.Refuse) make the transport refuse the forward itself, with
// the problem code in its answer, since a forward's sender is anonymous and
// cannot be sent a problem report: a forward that did not arrive encrypted
// (e.p.trust), unknown recipient, quota (e.p.me.res.storage), a forwarded
// message over the size limit or more attachments than
// Config.MaxAttachments (e.p.xfer.too-large), malformed forward. Nothing is
// stored for a refused forward, so the sender may retry it.
//
// A forward must arrive encrypted: the router opens only envelopes
// encrypted to a key this agent holds (its routing DID's, old and new, or
// its own DID's), so an encrypted forward was meant for this mediator,
// while a plaintext or merely signed one could be anyone's message replayed
// at it, and would let anyone queue into a recipient's inbox without the
// routing key the recipient published.
func (m *Mediator) handleRouting(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	if in.Message.Type != ForwardType {
		return nil, agent.Refuse(agent.Errorf(agent.CodeMsgUnsupported, "unsupported message type %s", in.Message.Type))
	}
	if !in.Envelope.Encrypted {
		return nil, agent.Refuse(agent.Errorf(agent.CodeTrust, "a forward must be encrypted to the mediator's routing key"))
	}
	if n := len(in.Message.Attachments); n > m.cfg.MaxAttachments {
		return nil, agent.Refuse(agent.Errorf(agent.CodeTooLarge, "forward carries %d attachments, more than the limit of %d", n, m.cfg.MaxAttachments))
	}
	body, err := decodeForwardBody(in.Message.Body)
	if err != nil {
		return nil, agent.Refuse(agent.Wrap(agent.CodeMsg, err, "malformed forward body"))
	}
	if body.Next == "" || !validRecipient(body.Next) {
		return nil, agent.Refuse(agent.Errorf(agent.CodeMsg, "forward needs next: the DID of the recipient"))
	}
	payloads, err := m.forwarded(in.Message.Attachments)
	if err != nil {
		return nil, agent.Refuse(err)
	}

	canonical, clientDID, raw, ok := m.registry.route(body.Next)
	if !ok {
		return m.relay(ctx, in, body.Next, payloads)
	}
	// Read the registration through the work: if the recipient is removed
	// (and its queue purged) before this forward commits, the commit
	// conflicts and the forward is routed again, and refused. The registry
	// has the record as committed: the work expects it without reading the
	// store (a read transaction on bbolt, a round trip on PostgreSQL), and
	// reads it on the rerun when that was stale.
	if raw != nil && in.Attempt == 0 {
		in.Work.Expect(KindRecipient, canonical, raw)
	} else {
		if raw != nil {
			m.registry.refreshRecipient(ctx, canonical) // it was stale
		}
		if _, err := in.Work.Get(ctx, KindRecipient, canonical); err != nil {
			if errors.Is(err, agent.ErrNotFound) {
				return nil, agent.Refuse(agent.Errorf(CodeUnknownRecipient, "%s is not a recipient of this mediator", body.Next))
			}
			return nil, agent.Refuse(agent.Wrap(agent.CodeMe, err, "could not read the registration"))
		}
	}
	now := m.cfg.Now()
	expires := now.Add(m.cfg.MessageTTL)
	if e := in.Message.ExpiresTime; e != 0 && time.Unix(e, 0).Before(expires) {
		expires = time.Unix(e, 0)
	}
	msgs := make([]*agent.QueuedMessage, len(payloads))
	for i, p := range payloads {
		msgs[i] = &agent.QueuedMessage{Recipient: canonical, Payload: p, Received: now, Expires: expires}
	}
	// Committed by the router with the forward's replay record, in one
	// durable write; over quota, the router refuses the forward with
	// e.p.me.res.storage.
	in.Work.Queue(m.cfg.Limits, msgs...)
	in.Work.AfterCommit(func() { m.live.notify(clientDID, msgs) })
	return nil, nil
}

// decodeForwardBody decodes a forward's body as agent.Message.DecodeBody
// does, with the same result and error. A body of plain members (lower-case
// ASCII names, each once) whose next is a string without escapes is read by
// the envelope's scanner; anything else goes to encoding/json.
func decodeForwardBody(raw json.RawMessage) (ForwardBody, error) {
	var body ForwardBody
	if len(raw) > 0 {
		seen := false
		if envelope.Members(raw, func(name, v []byte) bool {
			if string(name) != "next" {
				return true // encoding/json ignores other members
			}
			if seen || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 || !utf8.Valid(v) {
				return false
			}
			seen = true
			body.Next = string(v[1 : len(v)-1])
			return true
		}) {
			return body, nil
		}
		body = ForwardBody{}
	}
	err := agent.Message{Body: raw}.DecodeBody(&body)
	return body, err
}

// forwarded returns the messages attached to a forward: inline JSON or
// base64, each a JSON object (an encrypted DIDComm message) within the size
// limit.
func (m *Mediator) forwarded(atts []agent.Attachment) ([][]byte, error) {
	if len(atts) == 0 {
		return nil, agent.Errorf(agent.CodeMsg, "forward has no attached message")
	}
	out := make([][]byte, 0, len(atts))
	for i, a := range atts {
		var p []byte
		valid := false
		switch {
		case len(a.Data.JSON) > 0:
			// Decoding the forward checked that it is JSON.
			p, valid = a.Data.JSON, true
		case a.Data.Base64 != "":
			b, err := decodeBase64(a.Data.Base64)
			if err != nil {
				return nil, agent.Errorf(agent.CodeMsg, "forward attachment %d: bad base64", i)
			}
			p = b
		default:
			return nil, agent.Errorf(agent.CodeMsg, "forward attachment %d must carry the message inline (data.json or data.base64)", i)
		}
		if len(p) > m.cfg.MaxMessageBytes {
			return nil, agent.Errorf(agent.CodeTooLarge, "forwarded message of %d bytes exceeds the limit of %d bytes", len(p), m.cfg.MaxMessageBytes)
		}
		p = bytes.TrimSpace(p)
		if len(p) == 0 || p[0] != '{' || (!valid && !json.Valid(p)) {
			return nil, agent.Errorf(agent.CodeMsg, "forward attachment %d is not a DIDComm message (a JSON object)", i)
		}
		out = append(out, p)
	}
	return out, nil
}

func decodeBase64(s string) ([]byte, error) {
	s = string(bytes.TrimRight([]byte(s), "="))
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// relay passes the messages of a forward for an unregistered next on, when
// the mediator relays: each is resolved and wrapped, and the results are
// staged for the outbox in the forward's unit of work, so that they are
// queued together with the forward's replay record, or not at all.
func (m *Mediator) relay(ctx context.Context, in *agent.Inbound, next string, payloads [][]byte) ([]agent.Message, error) {
	if !m.cfg.Relay || m.relayer == nil {
		m.log.InfoContext(ctx, "forward refused: unknown recipient", "next", next)
		return nil, agent.Refuse(agent.Errorf(CodeUnknownRecipient, "%s is not a recipient of this mediator", next))
	}
	for _, p := range payloads {
		out, err := m.relayer.PrepareRelay(ctx, p, next)
		if err != nil {
			m.log.InfoContext(ctx, "forward refused: cannot relay", "next", next, "code", agent.ErrorCode(err), "err", err)
			if agent.ErrorCode(err) == agent.CodeXfer {
				return nil, agent.Refuse(agent.Errorf(CodeUnknownRecipient, "%s is not a recipient of this mediator, and cannot be relayed to", next))
			}
			return nil, agent.Refuse(err)
		}
		in.Work.Enqueue(out)
	}
	m.log.DebugContext(ctx, "forward relayed", "next", next, "messages", len(payloads))
	return nil, nil
}
