package presentproof

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
)

// Record kinds (agent.Records).
const (
	// KindExchange holds an exchange (record) by id.
	KindExchange = "pp3-exchange"
	// KindThread maps "<connection id>/<thread id>" to an exchange id, so
	// that an inbound message finds its exchange only on the connection
	// it came from.
	KindThread = "pp3-thread"
	// The listing indexes (empty values; keys end with the sort key, see
	// sortKey): all exchanges; by "<role>/<state>/"; by "<connection id>/";
	// by "<connection id>/<role>/<state>/".
	KindNewest     = "pp3-newest"
	KindByState    = "pp3-by-state"
	KindByConn     = "pp3-by-conn"
	KindByConnRole = "pp3-by-conn-state"
)

// record is an exchange as stored: what the API shows, and what the
// protocol needs to go on (the peer, the wire request).
type record struct {
	aip.ProofExchange
	// TheirDID and MyDID are the connection's DIDs when the exchange began.
	TheirDID string `json:"theirDid"`
	MyDID    string `json:"myDid"`
	// Request is the request attachment as it went on the wire (the
	// verifier checks presentations against its own; the prover answers
	// the one it got).
	Request *agent.Attachment `json:"requestAttachment,omitempty"`
	// WillConfirm is the request's will_confirm.
	WillConfirm bool `json:"willConfirm,omitempty"`
	// Presentation is the presentation attachment received (VERIFIER),
	// kept until it has been verified.
	Presentation *agent.Attachment `json:"presentationAttachment,omitempty"`
}

// sortKey orders exchanges newest first: the inverted creation time
// (nanoseconds, 16 hex digits) and the id.
func sortKey(created time.Time, id string) string {
	return hex.EncodeToString(be64(^uint64(created.UnixNano()))) + id
}

func be64(v uint64) []byte {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

// idOfSortKey is the exchange id at the end of a sort key.
func idOfSortKey(k string) string {
	if len(k) < 16 {
		return ""
	}
	return k[16:]
}

func stateIndex(r aip.ProofExRole, s aip.ProofExState) string {
	return string(r) + "/" + string(s) + "/"
}

func connStateIndex(conn string, r aip.ProofExRole, s aip.ProofExState) string {
	return conn + "/" + string(r) + "/" + string(s) + "/"
}

// saveNew stages a new exchange with its thread and index entries.
func saveNew(w *agent.Work, r *record) error {
	k := sortKey(r.Created, r.ID)
	w.Put(KindNewest, k, nil)
	w.Put(KindByConn, r.ConnectionID+"/"+k, nil)
	w.Put(KindByState, stateIndex(r.MyRole, r.State)+k, nil)
	w.Put(KindByConnRole, connStateIndex(r.ConnectionID, r.MyRole, r.State)+k, nil)
	w.Put(KindThread, r.ConnectionID+"/"+r.ThreadID, []byte(r.ID))
	return w.PutJSON(KindExchange, r.ID, r)
}

// move stages r's move from state from (its state as read) to its current
// state: the state indexes follow.
func move(w *agent.Work, r *record, from aip.ProofExState) error {
	if from != r.State {
		k := sortKey(r.Created, r.ID)
		w.Delete(KindByState, stateIndex(r.MyRole, from)+k)
		w.Delete(KindByConnRole, connStateIndex(r.ConnectionID, r.MyRole, from)+k)
		w.Put(KindByState, stateIndex(r.MyRole, r.State)+k, nil)
		w.Put(KindByConnRole, connStateIndex(r.ConnectionID, r.MyRole, r.State)+k, nil)
	}
	return w.PutJSON(KindExchange, r.ID, r)
}

// remove stages the deletion of r and its index entries.
func remove(w *agent.Work, r *record) {
	k := sortKey(r.Created, r.ID)
	w.Delete(KindNewest, k)
	w.Delete(KindByConn, r.ConnectionID+"/"+k)
	w.Delete(KindByState, stateIndex(r.MyRole, r.State)+k)
	w.Delete(KindByConnRole, connStateIndex(r.ConnectionID, r.MyRole, r.State)+k)
	w.Delete(KindThread, r.ConnectionID+"/"+r.ThreadID)
	w.Delete(KindExchange, r.ID)
}

// load reads an exchange through w.
func load(ctx context.Context, w *agent.Work, id string) (*record, error) {
	b, err := w.Get(ctx, KindExchange, id)
	if errors.Is(err, agent.ErrNotFound) {
		return nil, agent.Wrap(agent.CodeNotFound, err, "no proof exchange "+clip(id))
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "unreadable proof exchange record")
	}
	return &r, nil
}

// byThread finds the exchange of a connection's thread, or nil.
func byThread(ctx context.Context, w *agent.Work, connID, thid string) (*record, error) {
	b, err := w.Get(ctx, KindThread, connID+"/"+thid)
	if errors.Is(err, agent.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return load(ctx, w, string(b))
}

// view is the API's copy of r.
func (r *record) view() *aip.ProofExchange {
	v := r.ProofExchange
	return &v
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
