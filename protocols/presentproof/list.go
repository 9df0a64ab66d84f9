package presentproof

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
)

// Listing. Every exchange has four index entries whose keys end with its
// sort key (inverted creation time and id, newest first): one in the list
// of all, one under its role and state, one under its connection, one
// under its connection, role and state. A filter picks the narrowest
// indexes that cover it (the states of a role, or the connections, or
// both) and merges them by sort key, so a page reads about as many index
// entries and records as it returns, whatever the number of exchanges.
// The next token is the last sort key returned: an exchange created later
// sorts before it, so pages stay stable under concurrent inserts.

// MaxFilterConnections bounds the connection ids of one filter.
const MaxFilterConnections = aip.MaxLimit

var allStates = []aip.ProofExState{aip.ProofExProposal, aip.ProofExRequest, aip.ProofExPresented, aip.ProofExDone, aip.ProofExAbandoned}
var allRoles = []aip.ProofExRole{aip.ProofExVerifier, aip.ProofExProver}

// ProofExchanges lists exchanges newest first.
func (s *Service) ProofExchanges(ctx context.Context, p aip.Page, f aip.ProofExchangeFilter) ([]*aip.ProofExchange, string, error) {
	limit := p.Clamp()
	after := ""
	if p.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.NextToken)
		if err != nil || len(b) < 17 {
			return nil, "", agent.Errorf(agent.CodeMsg, "nextToken is not one this API returned")
		}
		after = string(b)
	}
	prefixes, kind, err := indexesFor(f)
	if err != nil {
		return nil, "", err
	}
	m := &merger{s: s, kind: kind}
	for _, pre := range prefixes {
		m.cursors = append(m.cursors, &cursor{prefix: pre, after: pre + after})
	}
	var out []*aip.ProofExchange
	last := ""
	for len(out) < limit {
		key, ok, err := m.next(ctx, limit)
		if err != nil {
			return nil, "", err
		}
		if !ok {
			return out, "", nil
		}
		b, err := s.cfg.Store.Records.Get(ctx, KindExchange, idOfSortKey(key))
		if errors.Is(err, agent.ErrNotFound) {
			continue // deleted between the index read and this one
		}
		if err != nil {
			return nil, "", err
		}
		var r record
		if json.Unmarshal(b, &r) != nil || !matches(&r.ProofExchange, f) {
			continue // moved since the index read
		}
		out = append(out, r.view())
		last = key
	}
	// One more look tells whether there is a next page.
	if _, ok, err := m.peek(ctx, limit); err != nil || !ok {
		return out, "", err
	}
	return out, base64.RawURLEncoding.EncodeToString([]byte(last)), nil
}

// indexesFor picks the index kind and prefixes that cover f.
func indexesFor(f aip.ProofExchangeFilter) ([]string, string, error) {
	for _, st := range f.States {
		if !slices.Contains(allStates, st) {
			return nil, "", agent.Errorf(agent.CodeMsg, "unknown proof exchange state %q", clip(string(st)))
		}
	}
	if f.Role != "" && !slices.Contains(allRoles, f.Role) {
		return nil, "", agent.Errorf(agent.CodeMsg, "unknown proof exchange role %q", clip(string(f.Role)))
	}
	if len(f.ConnectionIDs) > MaxFilterConnections {
		return nil, "", agent.Errorf(agent.CodeMsg, "at most %d connection ids in a filter", MaxFilterConnections)
	}
	roles, states := allRoles, allStates
	if f.Role != "" {
		roles = []aip.ProofExRole{f.Role}
	}
	if len(f.States) > 0 {
		states = dedup(f.States)
	}
	byState := f.Role != "" || len(f.States) > 0
	var out []string
	switch {
	case len(f.ConnectionIDs) > 0 && byState:
		for _, c := range dedup(f.ConnectionIDs) {
			for _, r := range roles {
				for _, st := range states {
					out = append(out, connStateIndex(c, r, st))
				}
			}
		}
		return out, KindByConnRole, nil
	case len(f.ConnectionIDs) > 0:
		for _, c := range dedup(f.ConnectionIDs) {
			out = append(out, c+"/")
		}
		return out, KindByConn, nil
	case byState:
		for _, r := range roles {
			for _, st := range states {
				out = append(out, stateIndex(r, st))
			}
		}
		return out, KindByState, nil
	}
	return []string{""}, KindNewest, nil
}

func dedup[T comparable](in []T) []T {
	var out []T
	for _, v := range in {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func matches(x *aip.ProofExchange, f aip.ProofExchangeFilter) bool {
	return (f.Role == "" || x.MyRole == f.Role) &&
		(len(f.States) == 0 || slices.Contains(f.States, x.State)) &&
		(len(f.ConnectionIDs) == 0 || slices.Contains(f.ConnectionIDs, x.ConnectionID))
}

// cursor walks one index prefix in key order, a batch at a time.
type cursor struct {
	prefix, after string
	buf           []string // sort keys read and not yet taken
	done          bool
}

func (c *cursor) fill(ctx context.Context, recs agent.Records, kind string, n int) error {
	if len(c.buf) > 0 || c.done {
		return nil
	}
	rs, err := recs.List(ctx, kind, c.after, n)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if !strings.HasPrefix(r.ID, c.prefix) {
			c.done = true
			break
		}
		c.buf = append(c.buf, r.ID[len(c.prefix):])
		c.after = r.ID
	}
	if len(rs) < n {
		c.done = true
	}
	return nil
}

// merger merges cursors by sort key.
type merger struct {
	s       *Service
	kind    string
	cursors []*cursor
}

// peek returns the smallest sort key of all cursors without taking it.
func (m *merger) peek(ctx context.Context, batch int) (string, bool, error) {
	var best string
	found := false
	for _, c := range m.cursors {
		if err := c.fill(ctx, m.s.cfg.Store.Records, m.kind, batch+1); err != nil {
			return "", false, err
		}
		if len(c.buf) > 0 && (!found || c.buf[0] < best) {
			best, found = c.buf[0], true
		}
	}
	return best, found, nil
}

// next takes the smallest sort key of all cursors.
func (m *merger) next(ctx context.Context, batch int) (string, bool, error) {
	best, ok, err := m.peek(ctx, batch)
	if !ok || err != nil {
		return "", false, err
	}
	for _, c := range m.cursors {
		if len(c.buf) > 0 && c.buf[0] == best {
			c.buf = c.buf[1:]
		}
	}
	return best, true, nil
}
