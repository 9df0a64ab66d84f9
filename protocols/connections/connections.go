package connections

import (
	"context"
	"slices"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
)

func connIndexKeys(c *connection, hasMessages bool) []string {
	bm := "nobm/"
	if hasMessages {
		bm = "bm/"
	}
	return []string{"all/" + c.Key, "did/" + c.TheirDID + "/" + c.Key, bm + c.Key}
}

// putConnection stages a new connection with its index entries.
func putConnection(w *agent.Work, c *connection, hasMessages bool) error {
	for _, k := range connIndexKeys(c, hasMessages) {
		w.Put(KindConnIndex, k, []byte(c.ID))
	}
	return w.PutJSON(KindConnection, c.ID, c)
}

// setHasMessages moves c between the with- and without-messages indexes.
func setHasMessages(w *agent.Work, c *connection, has bool) {
	if has {
		w.Delete(KindConnIndex, "nobm/"+c.Key)
		w.Put(KindConnIndex, "bm/"+c.Key, []byte(c.ID))
	} else {
		w.Delete(KindConnIndex, "bm/"+c.Key)
		w.Put(KindConnIndex, "nobm/"+c.Key, []byte(c.ID))
	}
}

// ConnectionOf returns the connection of the peer DID fromDID (a DID URL's
// DID part counts), read in w so that its commit fails if the connection
// changes meanwhile: the newest when there are several. Its error wraps
// agent.ErrNotFound when there is none. Other protocols use it for the
// authenticated sender of an inbound message.
func (s *Service) ConnectionOf(ctx context.Context, w *agent.Work, fromDID string) (*aip.Connection, error) {
	c, err := s.connectionOf(ctx, w, fromDID)
	if err != nil {
		return nil, err
	}
	return &c.Connection, nil
}

func (s *Service) connectionOf(ctx context.Context, w *agent.Work, fromDID string) (*connection, error) {
	d := agent.DIDOf(fromDID)
	if d == "" {
		return nil, notFound("connection with", "an anonymous sender")
	}
	es, err := walk(ctx, s.cfg.Store.Records, KindConnIndex, "did/"+d+"/", "", 4, nil)
	if err != nil {
		return nil, internal(err)
	}
	for _, e := range es {
		c, err := getJSON[connection](ctx, w, KindConnection, e.id)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, internal(err)
		}
		return c, nil
	}
	return nil, notFound("connection with", d)
}

// Connection returns a connection.
func (s *Service) Connection(ctx context.Context, id string) (*aip.Connection, error) {
	c, err := readJSON[connection](ctx, s.cfg.Store.Records, KindConnection, id)
	if isNotFound(err) {
		return nil, notFound("connection", id)
	}
	if err != nil {
		return nil, internal(err)
	}
	return &c.Connection, nil
}

// ConnectionByDID returns the (newest) connection with the peer DID.
func (s *Service) ConnectionByDID(ctx context.Context, did string) (*aip.Connection, error) {
	return s.ConnectionOf(ctx, s.cfg.Store.New(), did)
}

// Connections lists connections newest first.
func (s *Service) Connections(ctx context.Context, p aip.Page, f aip.ConnectionFilter) ([]*aip.Connection, string, error) {
	if len(f.ConnectionIDs) > 0 {
		return s.connectionsByID(ctx, p, f)
	}
	prefix := "all/"
	if f.HasBasicMessages != nil {
		prefix = map[bool]string{true: "bm/", false: "nobm/"}[*f.HasBasicMessages]
	}
	ids, next, err := page(ctx, s.cfg.Store.Records, KindConnIndex, []string{prefix}, p.NextToken, p.Clamp(), nil)
	if err != nil {
		return nil, "", internal(err)
	}
	out := make([]*aip.Connection, 0, len(ids))
	for _, id := range ids {
		c, err := s.Connection(ctx, id)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, c)
	}
	return out, next, nil
}

// connectionsByID pages the connections named in f: read by id, not by scan.
func (s *Service) connectionsByID(ctx context.Context, p aip.Page, f aip.ConnectionFilter) ([]*aip.Connection, string, error) {
	after, err := decodeToken(p.NextToken)
	if err != nil {
		return nil, "", err
	}
	if len(f.ConnectionIDs) > 1000 {
		return nil, "", agent.Errorf(agent.CodeMsg, "at most 1000 connection ids")
	}
	var all []*connection
	for _, id := range f.ConnectionIDs {
		c, err := readJSON[connection](ctx, s.cfg.Store.Records, KindConnection, id)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, "", internal(err)
		}
		if c.Key <= after {
			continue
		}
		if f.HasBasicMessages != nil {
			_, err := s.cfg.Store.Records.Get(ctx, KindConnIndex, "bm/"+c.Key)
			if err != nil && !isNotFound(err) {
				return nil, "", internal(err)
			}
			if (err == nil) != *f.HasBasicMessages {
				continue
			}
		}
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b *connection) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	all = slices.CompactFunc(all, func(a, b *connection) bool { return a.ID == b.ID })
	limit, next := p.Clamp(), ""
	if len(all) > limit {
		all = all[:limit]
		next = encodeToken(all[limit-1].Key)
	}
	out := make([]*aip.Connection, len(all))
	for i, c := range all {
		out[i] = &c.Connection
	}
	return out, next, nil
}

// DeleteConnection deletes a connection and its basic messages in one
// unit of work. Its exchange stays.
func (s *Service) DeleteConnection(ctx context.Context, id string) error {
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		c, err := getJSON[connection](ctx, w, KindConnection, id)
		if isNotFound(err) {
			return notFound("connection", id)
		}
		if err != nil {
			return err
		}
		if _, err := s.deleteMessagesOf(ctx, w, c.ID); err != nil {
			return err
		}
		for _, k := range connIndexKeys(c, true) {
			w.Delete(KindConnIndex, k)
		}
		w.Delete(KindConnIndex, "nobm/"+c.Key)
		w.Delete(KindBasicMsgLast, c.ID)
		w.Delete(KindConnection, c.ID)
		return nil
	})
	return internal(err)
}
