package issuecredential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/protocols/internal/listing"
)

// Record kinds (agent.Records).
const (
	KindExchange = "issuecred-exchange" // exchange, by id
	KindThread   = "issuecred-thread"   // exchange id, by role/thid
	// KindIndex + a filter combination (see indexes): the listings' indexes.
	KindIndex = "issuecred-idx-"
)

// Transition is one recorded state change and the message that caused it.
type Transition struct {
	From  aip.CredExState `json:"from,omitempty"`
	To    aip.CredExState `json:"to"`
	At    time.Time       `json:"at"`
	Cause string          `json:"cause"` // a message type, or an operator action
	MsgID string          `json:"msgId,omitempty"`
}

// exchange is a credential exchange as stored.
type exchange struct {
	aip.CredentialExchange
	// TheirDID and MyDID are the connection's DIDs when it started.
	TheirDID string `json:"theirDid"`
	MyDID    string `json:"myDid"`
	Family   family `json:"family"`
	// OfferFormat and RequestFormat are the attachment formats used (the
	// answers use the same naming: anoncreds/* or hlindy/*).
	OfferFormat   string `json:"offerFormat,omitempty"`
	RequestFormat string `json:"requestFormat,omitempty"`
	// Offer and Request are the attachments' data as sent or received.
	Offer   json.RawMessage `json:"offer,omitempty"`
	Request json.RawMessage `json:"request,omitempty"`
	// SealedMeta is a holder's AnonCreds request metadata (secret blinding
	// factor), sealed with additional data metaAAD(ID).
	SealedMeta []byte       `json:"sealedMeta,omitempty"`
	History    []Transition `json:"history"`
}

func metaAAD(id string) []byte { return []byte("issuecred-request-meta:" + id) }

// move changes the state as aip.CanMove allows, recording the cause.
func (e *exchange) move(to aip.CredExState, at time.Time, cause, msgID string) error {
	if !aip.CanMove(e.State, to) {
		return agent.Errorf(agent.CodeConflict, "credential exchange %s is %s: it cannot move to %s", e.ID, e.State, to)
	}
	e.History = append(e.History, Transition{From: e.State, To: to, At: at, Cause: cause, MsgID: msgID})
	e.State, e.Modified = to, at
	return nil
}

// indexCombos are the filter combinations indexed: r(ole), s(tate),
// c(onnection), every subset; "" is the listing of all.
var indexCombos = []string{"", "r", "s", "c", "rs", "rc", "sc", "rsc"}

// indexPrefix is the prefix of e's entry in the index of combo.
func indexPrefix(combo string, role aip.CredExRole, state aip.CredExState, conn string) string {
	p := ""
	for _, c := range combo {
		switch c {
		case 'r':
			p += listing.Prefix(string(role))
		case 's':
			p += listing.Prefix(string(state))
		case 'c':
			p += listing.Prefix(conn)
		}
	}
	return p
}

// save stores e with its index entries; old is e as it was before (nil
// for a new exchange), whose entries that changed are removed.
func save(w *agent.Work, e, old *exchange) error {
	key := listing.Key(e.Created, e.ID)
	if old == nil {
		w.Put(KindThread, string(e.MyRole)+"/"+e.ThreadID, []byte(e.ID))
	}
	for _, combo := range indexCombos {
		p := indexPrefix(combo, e.MyRole, e.State, e.ConnectionID)
		if old != nil {
			op := indexPrefix(combo, old.MyRole, old.State, old.ConnectionID)
			if op == p {
				continue
			}
			w.Delete(KindIndex+combo, op+key)
		}
		w.Put(KindIndex+combo, p+key, nil)
	}
	return w.PutJSON(KindExchange, e.ID, e)
}

// remove deletes e and its index entries.
func remove(w *agent.Work, e *exchange) {
	key := listing.Key(e.Created, e.ID)
	w.Delete(KindThread, string(e.MyRole)+"/"+e.ThreadID)
	for _, combo := range indexCombos {
		w.Delete(KindIndex+combo, indexPrefix(combo, e.MyRole, e.State, e.ConnectionID)+key)
	}
	w.Delete(KindExchange, e.ID)
}

// load reads an exchange through w.
func load(ctx context.Context, w *agent.Work, id string) (*exchange, error) {
	b, err := w.Get(ctx, KindExchange, id)
	if errors.Is(err, agent.ErrNotFound) {
		return nil, &agent.Error{Code: agent.CodeNotFound, Comment: fmt.Sprintf("credential exchange %s: not found", clip(id, 80)), Err: agent.ErrNotFound}
	}
	if err != nil {
		return nil, err
	}
	var e exchange
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("credential exchange %s: record corrupt: %w", id, err)
	}
	return &e, nil
}

// byThread finds the exchange of role on thread thid, or nil.
func byThread(ctx context.Context, w *agent.Work, role aip.CredExRole, thid string) (*exchange, error) {
	b, err := w.Get(ctx, KindThread, string(role)+"/"+thid)
	if errors.Is(err, agent.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return load(ctx, w, string(b))
}

// clone copies e deeply enough for save's old.
func (e *exchange) clone() *exchange {
	c := *e
	c.History = append([]Transition(nil), e.History...)
	return &c
}

// view is what the API shows: the aip record, no secrets.
func (e *exchange) view() *aip.CredentialExchange {
	v := e.CredentialExchange
	return &v
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
