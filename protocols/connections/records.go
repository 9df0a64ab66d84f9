package connections

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
)

// Record kinds.
const (
	KindExchange       = "aip-connex"          // exchanges by id
	KindExchangeIndex  = "aip-connex-idx"      // all/, r/ROLE/, s/STATE/, rs/ROLE/STATE/ + key → id
	KindInvitation     = "aip-connex-inv"      // our invitations' ids → exchange id ("" once withdrawn)
	KindThread         = "aip-connex-thid"     // the invitee's ping ids → exchange id
	KindAccepted       = "aip-connex-accepted" // invitations we accepted → exchange id
	KindConnection     = "aip-conn"            // connections by id
	KindConnIndex      = "aip-conn-idx"        // all/, did/DID/, bm/, nobm/ + key → id
	KindBasicMessage   = "aip-bm"              // basic messages by id
	KindBasicMsgIndex  = "aip-bm-idx"          // CONNECTION-ID/ + key → id
	KindBasicMsgLast   = "aip-bm-last"         // CONNECTION-ID → key of its last message stored
	walkBatch          = 256
	maxBasicMessageLen = 64 << 10
)

// exchange is a connection exchange as stored.
type exchange struct {
	aip.ConnectionExchange
	Key          string `json:"key"`
	MyDID        string `json:"myDid"`
	InvitationID string `json:"invitationId"`
	// PingID is the id of the invitee's ping.
	PingID string `json:"pingId,omitempty"`
}

// connection is a connection as stored.
type connection struct {
	aip.Connection
	Key string `json:"key"`
}

// basicMessage is a basic message as stored.
type basicMessage struct {
	aip.BasicMessage
	Key       string `json:"key"`
	MessageID string `json:"messageId,omitempty"`
	Lang      string `json:"lang,omitempty"`
}

// newestKey orders records newest first: the inverted creation time, then
// the id.
func newestKey(t time.Time, id string) string {
	return fmt.Sprintf("%016x.%s", ^uint64(t.UnixNano()), id)
}

func encodeToken(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

func decodeToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 18 || b[16] != '.' || strings.ContainsRune(string(b), '/') {
		return "", agent.Errorf(agent.CodeMsg, "invalid nextToken")
	}
	return string(b), nil
}

func exIndexKeys(e *exchange) []string {
	r, st := string(e.MyRole), string(e.State)
	return []string{"all/" + e.Key, "r/" + r + "/" + e.Key, "s/" + st + "/" + e.Key, "rs/" + r + "/" + st + "/" + e.Key}
}

// putExchange stages e with its index entries, replacing those of old.
func putExchange(w *agent.Work, old, e *exchange) error {
	if old != nil {
		for _, k := range exIndexKeys(old) {
			w.Delete(KindExchangeIndex, k)
		}
	}
	for _, k := range exIndexKeys(e) {
		w.Put(KindExchangeIndex, k, []byte(e.ID))
	}
	return w.PutJSON(KindExchange, e.ID, e)
}

func deleteExchange(w *agent.Work, e *exchange) {
	for _, k := range exIndexKeys(e) {
		w.Delete(KindExchangeIndex, k)
	}
	w.Delete(KindExchange, e.ID)
}

func getJSON[T any](ctx context.Context, w *agent.Work, kind, id string) (*T, error) {
	b, err := w.Get(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("record %s/%s: %w", kind, id, err)
	}
	return v, nil
}

func readJSON[T any](ctx context.Context, r agent.Records, kind, id string) (*T, error) {
	b, err := r.Get(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("record %s/%s: %w", kind, id, err)
	}
	return v, nil
}

// entry is an index entry: its key (without prefix) and the id it names.
type entry struct{ key, id string }

// walk returns up to limit entries of the index kind under prefix whose key
// comes after after, in key order, for which keep holds (nil: all).
func walk(ctx context.Context, r agent.Records, kind, prefix, after string, limit int, keep func(id string) bool) ([]entry, error) {
	var out []entry
	cur := prefix + after
	for {
		recs, err := r.List(ctx, kind, cur, walkBatch)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			if !strings.HasPrefix(rec.ID, prefix) {
				return out, nil
			}
			cur = rec.ID
			id := string(rec.Value)
			if keep != nil && !keep(id) {
				continue
			}
			out = append(out, entry{key: rec.ID[len(prefix):], id: id})
			if len(out) == limit {
				return out, nil
			}
		}
		if len(recs) < walkBatch {
			return out, nil
		}
	}
}

// page merges the walks of several prefixes of one index (any of them
// matches) newest first, and cuts one page of limit after the token.
func page(ctx context.Context, r agent.Records, kind string, prefixes []string, token string, limit int, keep func(id string) bool) (ids []string, next string, err error) {
	after, err := decodeToken(token)
	if err != nil {
		return nil, "", err
	}
	var all []entry
	for _, p := range prefixes {
		es, err := walk(ctx, r, kind, p, after, limit+1, keep)
		if err != nil {
			return nil, "", err
		}
		all = append(all, es...)
	}
	slices.SortFunc(all, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	all = slices.CompactFunc(all, func(a, b entry) bool { return a.key == b.key })
	if len(all) > limit {
		all = all[:limit]
		next = encodeToken(all[limit-1].key)
	}
	for _, e := range all {
		ids = append(ids, e.id)
	}
	return ids, next, nil
}

func isNotFound(err error) bool { return errors.Is(err, agent.ErrNotFound) }
