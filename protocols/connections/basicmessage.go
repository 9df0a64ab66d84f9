package connections

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
)

// BasicMessagePIURI is the protocol identifier of Basic Message 2.0
// (https://didcomm.org/basicmessage/2.0/).
const BasicMessagePIURI = "https://didcomm.org/basicmessage/2.0"

// BasicMessageType is its one message type.
const BasicMessageType = BasicMessagePIURI + "/message"

// BasicMessageBody is the body of a basic message.
type BasicMessageBody struct {
	Content string `json:"content"`
}

// handleBasicMessage stores a basic message from a connection's DID
// (INBOUND) and publishes it; one from a DID without a connection is
// refused with a problem report and nothing is stored.
func (s *Service) handleBasicMessage(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	m := in.Message
	if m.Type != BasicMessageType {
		return nil, agent.Errorf(agent.CodeMsgUnsupported, "unsupported message type %s", m.Type)
	}
	if !authenticated(in) {
		return nil, agent.Errorf(agent.CodeTrust, "basic messages are taken only from an authenticated connection")
	}
	var body BasicMessageBody
	if err := m.DecodeBody(&body); err != nil {
		return nil, agent.Errorf(agent.CodeMsg, "malformed basic message body")
	}
	if err := checkContent(body.Content); err != nil {
		return nil, err
	}
	c, err := s.connectionOf(ctx, in.Work, m.From)
	if isNotFound(err) {
		return nil, agent.Errorf(agent.CodeForbidden, "no connection with %s", agent.DIDOf(m.From))
	}
	if err != nil {
		return nil, err
	}
	ts := in.Received
	if m.CreatedTime > 0 {
		ts = time.Unix(m.CreatedTime, 0)
	}
	if ts.IsZero() {
		ts = s.now()
	}
	bm := &basicMessage{BasicMessage: aip.BasicMessage{ID: agent.NewID(), ConnectionID: c.ID, Content: body.Content,
		Timestamp: ts.UTC(), Direction: aip.Inbound}, MessageID: m.ID, Lang: m.Lang}
	if err := s.putMessage(ctx, in.Work, c, bm); err != nil {
		return nil, internal(err)
	}
	return nil, s.publish(in.Work, aip.TopicBasicMessage, &bm.BasicMessage)
}

func checkContent(content string) error {
	switch {
	case content == "":
		return agent.Errorf(agent.CodeMsg, "a basic message needs content")
	case len(content) > maxBasicMessageLen:
		return agent.Errorf(agent.CodeMsg, "basic message content is over %d bytes", maxBasicMessageLen)
	case !utf8.ValidString(content):
		return agent.Errorf(agent.CodeMsg, "basic message content is not UTF-8")
	}
	return nil
}

// putMessage stages a new message of c with its index entry, marking c as
// having messages. The message's key orders by our receipt/sending time.
func (s *Service) putMessage(ctx context.Context, w *agent.Work, c *connection, bm *basicMessage) error {
	bm.Key = newestKey(s.now(), bm.ID)
	w.Put(KindBasicMsgIndex, c.ID+"/"+bm.Key, []byte(bm.ID))
	// Deletions read this record before they list the connection's
	// messages: a message stored meanwhile makes them run again.
	w.Put(KindBasicMsgLast, c.ID, []byte(bm.Key))
	if _, err := w.Get(ctx, KindConnIndex, "bm/"+c.Key); isNotFound(err) {
		setHasMessages(w, c, true)
	} else if err != nil {
		return err
	}
	return w.PutJSON(KindBasicMessage, bm.ID, bm)
}

// SendBasicMessage stores an OUTBOUND message and queues it to the
// connection's DID in one unit of work.
func (s *Service) SendBasicMessage(ctx context.Context, connectionID, content string) (*aip.BasicMessage, error) {
	if err := checkContent(content); err != nil {
		return nil, err
	}
	c, err := readJSON[connection](ctx, s.cfg.Store.Records, KindConnection, connectionID)
	if isNotFound(err) {
		return nil, notFound("connection", connectionID)
	}
	if err != nil {
		return nil, internal(err)
	}
	msg, err := agent.NewMessage(BasicMessageType, BasicMessageBody{Content: content})
	if err != nil {
		return nil, internal(err)
	}
	msg.From, msg.To = c.MyDID, []string{c.TheirDID}
	outs, err := s.cfg.Packer.Outbound(ctx, msg)
	if err != nil {
		return nil, err
	}
	var bm *basicMessage
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		c, err := getJSON[connection](ctx, w, KindConnection, connectionID)
		if isNotFound(err) {
			return notFound("connection", connectionID)
		}
		if err != nil {
			return err
		}
		bm = &basicMessage{BasicMessage: aip.BasicMessage{ID: agent.NewID(), ConnectionID: c.ID, Content: content,
			Timestamp: time.Unix(msg.CreatedTime, 0).UTC(), Direction: aip.Outbound}, MessageID: msg.ID}
		if err := s.putMessage(ctx, w, c, bm); err != nil {
			return err
		}
		w.Enqueue(outs...)
		return nil
	})
	if err != nil {
		return nil, internal(err)
	}
	out := bm.BasicMessage
	return &out, nil
}

// BasicMessages lists a connection's messages newest first.
func (s *Service) BasicMessages(ctx context.Context, connectionID string, p aip.Page) ([]*aip.BasicMessage, string, error) {
	if _, err := s.Connection(ctx, connectionID); err != nil {
		return nil, "", err
	}
	ids, next, err := page(ctx, s.cfg.Store.Records, KindBasicMsgIndex, []string{connectionID + "/"}, p.NextToken, p.Clamp(), nil)
	if err != nil {
		return nil, "", internal(err)
	}
	out := make([]*aip.BasicMessage, 0, len(ids))
	for _, id := range ids {
		bm, err := readJSON[basicMessage](ctx, s.cfg.Store.Records, KindBasicMessage, id)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, "", internal(err)
		}
		out = append(out, &bm.BasicMessage)
	}
	return out, next, nil
}

// DeleteBasicMessages deletes the messages with the given ids that exist
// and returns their ids.
func (s *Service) DeleteBasicMessages(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) > 1000 {
		return nil, agent.Errorf(agent.CodeMsg, "at most 1000 ids at a time")
	}
	var deleted []string
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		deleted = nil
		gone := map[string]map[string]bool{} // connection id → deleted keys
		for _, id := range ids {
			bm, err := getJSON[basicMessage](ctx, w, KindBasicMessage, id)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			w.Delete(KindBasicMessage, id)
			w.Delete(KindBasicMsgIndex, bm.ConnectionID+"/"+bm.Key)
			if gone[bm.ConnectionID] == nil {
				gone[bm.ConnectionID] = map[string]bool{}
			}
			gone[bm.ConnectionID][bm.Key] = true
			deleted = append(deleted, id)
		}
		for connID, keys := range gone {
			if err := readLast(ctx, w, connID); err != nil {
				return err
			}
			es, err := walk(ctx, s.cfg.Store.Records, KindBasicMsgIndex, connID+"/", "", len(keys)+1, nil)
			if err != nil {
				return err
			}
			left := false
			for _, e := range es {
				left = left || !keys[e.key]
			}
			if left {
				continue
			}
			c, err := getJSON[connection](ctx, w, KindConnection, connID)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			setHasMessages(w, c, false)
		}
		return nil
	})
	if err != nil {
		return nil, internal(err)
	}
	return deleted, nil
}

// DeleteBasicMessagesForConnection deletes all of a connection's messages
// and returns their ids.
func (s *Service) DeleteBasicMessagesForConnection(ctx context.Context, connectionID string) ([]string, error) {
	var deleted []string
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		c, err := getJSON[connection](ctx, w, KindConnection, connectionID)
		if isNotFound(err) {
			return notFound("connection", connectionID)
		}
		if err != nil {
			return err
		}
		if deleted, err = s.deleteMessagesOf(ctx, w, c.ID); err != nil {
			return err
		}
		setHasMessages(w, c, false)
		return nil
	})
	if err != nil {
		return nil, internal(err)
	}
	return deleted, nil
}

// deleteMessagesOf stages the deletion of every message of a connection.
func (s *Service) deleteMessagesOf(ctx context.Context, w *agent.Work, connID string) ([]string, error) {
	if err := readLast(ctx, w, connID); err != nil {
		return nil, err
	}
	es, err := walk(ctx, s.cfg.Store.Records, KindBasicMsgIndex, connID+"/", "", -1, nil)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(es))
	for _, e := range es {
		w.Delete(KindBasicMsgIndex, connID+"/"+e.key)
		w.Delete(KindBasicMessage, e.id)
		ids = append(ids, e.id)
	}
	return ids, nil
}

// readLast reads the connection's last-message record into w, so that w's
// commit fails (and its function runs again) if a message is stored for
// the connection after w listed them.
func readLast(ctx context.Context, w *agent.Work, connID string) error {
	if _, err := w.Get(ctx, KindBasicMsgLast, connID); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
