package mediation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
)

// GrantState is the mediator's state of mediation for one client (the DID
// that asked for it).
type GrantState string

// The states of a grant. A client the mediator knows nothing of is in
// GrantNone, which is never stored.
const (
	GrantNone    GrantState = ""
	GrantGranted GrantState = "granted"
	GrantRevoked GrantState = "revoked"
)

// GrantEvent is what moves a grant from one state to another.
type GrantEvent string

// The events of a grant.
const (
	// EventRequestAllowed is a mediate-request the policy allows.
	EventRequestAllowed GrantEvent = "request-allowed"
	// EventRequestRefused is a mediate-request the policy refuses.
	EventRequestRefused GrantEvent = "request-refused"
	// EventOperatorGrant is an operator granting mediation (admin API).
	EventOperatorGrant GrantEvent = "operator-grant"
	// EventOperatorRevoke is an operator revoking it.
	EventOperatorRevoke GrantEvent = "operator-revoke"
)

// grantTransitions is the mediator's state machine. A request by a client
// already granted is granted again (the answer may have been lost); a
// revoked client stays revoked whatever the policy says until an operator
// grants it again. Pairs not in the table are refused.
var grantTransitions = map[GrantState]map[GrantEvent]GrantState{
	GrantNone: {
		EventRequestAllowed: GrantGranted,
		EventRequestRefused: GrantNone,
		EventOperatorGrant:  GrantGranted,
	},
	GrantGranted: {
		EventRequestAllowed: GrantGranted,
		EventRequestRefused: GrantGranted,
		EventOperatorGrant:  GrantGranted,
		EventOperatorRevoke: GrantRevoked,
	},
	GrantRevoked: {
		EventRequestAllowed: GrantRevoked,
		EventRequestRefused: GrantRevoked,
		EventOperatorGrant:  GrantGranted,
		EventOperatorRevoke: GrantRevoked,
	},
}

// Next returns the state after event, and false if event is not allowed in s.
func (s GrantState) Next(event GrantEvent) (GrantState, bool) {
	next, ok := grantTransitions[s][event]
	return next, ok
}

// Grant is the mediator's record of one client, kept in agent.Records as kind
// KindGrant under the client's DID.
type Grant struct {
	// ClientDID is the DID that asked for mediation: the one its Coordinate
	// Mediation and Pickup messages come from.
	ClientDID string     `json:"client_did"`
	State     GrantState `json:"state"`
	// Version is the Coordinate Mediation version of the last request.
	Version string `json:"version,omitempty"`
	// MediatorDID is the agent DID the client talked to, which live
	// deliveries come from.
	MediatorDID string    `json:"mediator_did,omitempty"`
	RoutingDID  string    `json:"routing_did,omitempty"`
	GrantedAt   time.Time `json:"granted_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Invitation is the mediation invitation the grant was made for, under
	// the invitation policy.
	Invitation string `json:"invitation,omitempty"`
}

// Recipient is one DID a client registered, kept in agent.Records as kind
// KindRecipient under its canonical DID (the DID of the registered value).
type Recipient struct {
	ClientDID string `json:"client_did"`
	// Registered is the value as the client gave it: a DID, or a key id (2.0
	// clients often register did:key DID URLs).
	Registered string    `json:"recipient_did"`
	AddedAt    time.Time `json:"added_at"`
}

// Record kinds of the mediator in agent.Records.
const (
	KindGrant      = "mediation-grant"
	KindRecipient  = "mediation-recipient"
	KindInvitation = "mediation-invitation"
)

// Canonical returns the key a DID or DID URL is registered and routed under:
// its DID. A forward's next and a registered recipient match when their DIDs
// do, so a key id registered by a 2.0 client and a forward to the bare DID
// (or the other way round) meet.
func Canonical(didOrURL string) string { return agent.DIDOf(didOrURL) }

// validRecipient checks that s is a DID or DID URL.
func validRecipient(s string) bool {
	if len(s) > 4096 {
		return false
	}
	_, _, err := did.ParseDID(Canonical(s))
	return err == nil
}

// Registry keeps the grants and recipient registrations durably in
// agent.Records and indexes them in memory, so that routing a forward costs
// a map lookup. Changes are staged in a unit of work, reading the records
// they change through it (so that concurrent changes conflict instead of
// overwriting each other); the index follows each commit by reading the
// committed record back. Load it once at start; it is safe for concurrent
// use.
type Registry struct {
	records agent.Records
	now     func() time.Time

	mu         sync.RWMutex
	grants     map[string]*Grant
	recipients map[string]Recipient       // canonical DID → registration
	byClient   map[string]map[string]bool // client DID → canonical DIDs
	// raw are the registrations' records as committed, which a forward
	// expects (Work.Expect) instead of reading them again.
	raw map[string][]byte

	// shared is set by Share: other instances change the records too.
	shared bool
	// catchUp waits for the changes other instances committed (CatchUp;
	// set by Share).
	catchUp func(context.Context) error
	// missing is the negative cache of read-throughs: "g"+client or
	// "r"+canonical → until when a lookup is not read again. Signals
	// clear entries.
	missing map[string]time.Time
	// readThroughs counts the store reads of lookups missing from the
	// index (shared registries only).
	readThroughs atomic.Int64
}

// missTTL is how long a shared registry remembers that a grant or
// registration is not in the store: a forward to an unknown DID costs one
// store read per missTTL, and a registration made through another instance
// whose signal is lost is seen after missTTL at most.
const missTTL = time.Second

// maxMissing bounds the negative cache; it is emptied when full.
const maxMissing = 10000

// readThroughTimeout bounds a read-through's store read.
const readThroughTimeout = 2 * time.Second

// NewRegistry returns an empty registry over records; call Load.
func NewRegistry(records agent.Records) *Registry {
	return &Registry{records: records, now: time.Now, grants: map[string]*Grant{},
		recipients: map[string]Recipient{}, byClient: map[string]map[string]bool{}, raw: map[string][]byte{}}
}

// Load reads every grant and registration into memory.
func (r *Registry) Load(ctx context.Context) error {
	grants := map[string]*Grant{}
	if err := eachRecord(ctx, r.records, KindGrant, func(id string, v []byte) error {
		g := new(Grant)
		if err := json.Unmarshal(v, g); err != nil {
			return fmt.Errorf("mediation grant %q: %w", id, err)
		}
		grants[id] = g
		return nil
	}); err != nil {
		return err
	}
	recipients := map[string]Recipient{}
	byClient := map[string]map[string]bool{}
	raw := map[string][]byte{}
	if err := eachRecord(ctx, r.records, KindRecipient, func(id string, v []byte) error {
		var rc Recipient
		if err := json.Unmarshal(v, &rc); err != nil {
			return fmt.Errorf("mediation recipient %q: %w", id, err)
		}
		recipients[id] = rc
		raw[id] = v
		if byClient[rc.ClientDID] == nil {
			byClient[rc.ClientDID] = map[string]bool{}
		}
		byClient[rc.ClientDID][id] = true
		return nil
	}); err != nil {
		return err
	}
	r.mu.Lock()
	r.grants, r.recipients, r.byClient, r.raw = grants, recipients, byClient, raw
	r.mu.Unlock()
	return nil
}

func eachRecord(ctx context.Context, records agent.Records, kind string, fn func(id string, v []byte) error) error {
	after := ""
	for {
		page, err := records.List(ctx, kind, after, 500)
		if err != nil {
			return err
		}
		for _, rec := range page {
			if err := fn(rec.ID, rec.Value); err != nil {
				return err
			}
		}
		if len(page) < 500 {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// Grant returns a copy of the client's grant; State is GrantNone for an
// unknown client. A shared registry reads a grant missing from its index
// through from the store.
func (r *Registry) Grant(client string) Grant {
	r.mu.RLock()
	g, ok := r.grants[client]
	r.mu.RUnlock()
	if !ok && r.shared {
		g = r.readGrant(client)
	}
	if g != nil {
		return *g
	}
	return Grant{ClientDID: client}
}

// Grants returns up to limit grants in client DID order after the DID after.
func (r *Registry) Grants(after string, limit int) []Grant {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]string, 0, len(r.grants))
	for id := range r.grants {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]Grant, len(ids))
	for i, id := range ids {
		out[i] = *r.grants[id]
	}
	return out
}

// apply moves the client's grant by event and stages the result in w;
// update changes the record being stored (mediator DID, invitation, ...).
// It returns the new grant, and an error for a transition the table
// refuses. The index follows once w commits.
func (r *Registry) apply(ctx context.Context, w *agent.Work, client string, event GrantEvent, update func(g *Grant)) (Grant, error) {
	g := Grant{ClientDID: client}
	switch b, err := w.Get(ctx, KindGrant, client); {
	case err == nil:
		if err := json.Unmarshal(b, &g); err != nil {
			return g, agent.Wrap(agent.CodeMe, err, "the mediation grant record is corrupt")
		}
	case !errors.Is(err, agent.ErrNotFound):
		return g, agent.Wrap(agent.CodeMe, err, "could not read the mediation grant")
	}
	next, ok := g.State.Next(event)
	if !ok {
		return g, agent.Errorf(agent.CodeForbidden, "mediation for %s cannot go from %q on %s", client, g.State, event)
	}
	if next == g.State && event == EventRequestRefused {
		return g, nil // nothing to record
	}
	now := r.now().UTC()
	if next == GrantGranted && g.State != GrantGranted {
		g.GrantedAt = now
	}
	g.State, g.UpdatedAt = next, now
	if update != nil {
		update(&g)
	}
	if next == GrantNone {
		return g, nil
	}
	if err := w.PutJSON(KindGrant, client, g); err != nil {
		return g, err
	}
	w.AfterCommit(func() { r.refreshGrant(ctx, client) })
	return g, nil
}

// refreshGrant sets the index entry of client's grant from the committed
// record. Refreshing from the store, not from what a work wrote, keeps the
// index right whatever order commits finish their after-commit steps in.
func (r *Registry) refreshGrant(ctx context.Context, client string) {
	b, err := r.records.Get(ctx, KindGrant, client)
	var g *Grant
	if err == nil {
		g = new(Grant)
		if json.Unmarshal(b, g) != nil {
			g = nil
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.missing, missKey(KindGrant, client))
	if g == nil {
		delete(r.grants, client)
		return
	}
	r.grants[client] = g
}

// refreshRecipient sets the index entry of a canonical recipient DID from
// the committed record (see refreshGrant).
func (r *Registry) refreshRecipient(ctx context.Context, canonical string) {
	b, err := r.records.Get(ctx, KindRecipient, canonical)
	var rc Recipient
	found := err == nil && json.Unmarshal(b, &rc) == nil
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.missing, missKey(KindRecipient, canonical))
	if old, ok := r.recipients[canonical]; ok {
		delete(r.byClient[old.ClientDID], canonical)
		delete(r.recipients, canonical)
		delete(r.raw, canonical)
	}
	if !found {
		return
	}
	r.recipients[canonical] = rc
	r.raw[canonical] = b
	if r.byClient[rc.ClientDID] == nil {
		r.byClient[rc.ClientDID] = map[string]bool{}
	}
	r.byClient[rc.ClientDID][canonical] = true
}

// Route returns the client a forward's next is registered for, with the
// canonical DID its messages are queued under.
//
// A shared registry reads a registration or grant missing from its index
// through from the store (what another instance committed and whose signal
// has not arrived yet), remembering for missTTL what is not there.
func (r *Registry) Route(next string) (canonical, client string, ok bool) {
	canonical, client, _, ok = r.route(next)
	return canonical, client, ok
}

// route is Route, with the registration's record as committed when the
// registry has it (nil otherwise). A registry changes its index after the
// commits that change a record (AfterCommit), so the record may be stale
// for a moment: a work that expects it then conflicts at its commit and is
// run again, and reads the record (Mediator.handleRouting).
func (r *Registry) route(next string) (canonical, client string, raw []byte, ok bool) {
	canonical = Canonical(next)
	r.mu.RLock()
	rc, found := r.recipients[canonical]
	var g *Grant
	if found {
		g = r.grants[rc.ClientDID]
		raw = r.raw[canonical]
	}
	r.mu.RUnlock()
	if r.shared {
		if !found {
			var p *Recipient
			if p, raw = r.readRecipient(canonical); p != nil {
				rc, found = *p, true
			}
		}
		if found && g == nil {
			g = r.readGrant(rc.ClientDID)
		}
	}
	ok = found && g != nil && g.State == GrantGranted
	return canonical, rc.ClientDID, raw, ok
}

// Recipients returns the canonical DIDs the client registered, sorted.
func (r *Registry) Recipients(client string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.byClient[client]))
	for c := range r.byClient[client] {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// Registrations returns the client's registrations (as registered), sorted
// by canonical DID.
func (r *Registry) Registrations(client string) []Recipient {
	r.mu.RLock()
	defer r.mu.RUnlock()
	keys := make([]string, 0, len(r.byClient[client]))
	for c := range r.byClient[client] {
		keys = append(keys, c)
	}
	slices.Sort(keys)
	out := make([]Recipient, len(keys))
	for i, k := range keys {
		out[i] = r.recipients[k]
	}
	return out
}

// errTaken is an add of a DID another client registered.
var errTaken = errors.New("registered by another client")

// errLimit is an add beyond the per-client limit.
var errLimit = errors.New("too many recipients")

// addRecipient stages the registration of value for client in w. It
// reports false (no change) when the client had already registered that
// DID. purge runs before the registration is staged (the mediator drops
// messages left over for the DID there; nothing new is queued for a DID
// before its registration commits).
func (r *Registry) addRecipient(ctx context.Context, w *agent.Work, client, value string, maxPerClient int, purge func(canonical string) error) (bool, error) {
	canonical := Canonical(value)
	switch b, err := w.Get(ctx, KindRecipient, canonical); {
	case err == nil:
		var cur Recipient
		if json.Unmarshal(b, &cur) == nil && cur.ClientDID == client {
			return false, nil
		}
		return false, errTaken
	case !errors.Is(err, agent.ErrNotFound):
		return false, err
	}
	r.mu.RLock()
	count := len(r.byClient[client])
	r.mu.RUnlock()
	for _, wr := range w.Writes { // what this work already changed for the client
		if wr.Kind == KindRecipient {
			if wr.Delete {
				count--
			} else {
				count++
			}
		}
	}
	if maxPerClient > 0 && count >= maxPerClient {
		return false, errLimit
	}
	if purge != nil {
		if err := purge(canonical); err != nil {
			return false, err
		}
	}
	rc := Recipient{ClientDID: client, Registered: value, AddedAt: r.now().UTC()}
	if err := w.PutJSON(KindRecipient, canonical, rc); err != nil {
		return false, err
	}
	w.AfterCommit(func() { r.refreshRecipient(ctx, canonical) })
	return true, nil
}

// removeRecipient stages the removal of value for client in w; once w
// commits, the DID stops being routed and purge runs (the mediator purges
// the DID's queue there, so that a later owner of the DID never sees its
// messages). A forward routed before the removal reads the recipient's
// record through its own unit of work (see Mediator.handleRouting), so it
// cannot commit after the record is deleted: nothing is queued for the DID
// after the purge. It reports false when the client had not registered it.
func (r *Registry) removeRecipient(ctx context.Context, w *agent.Work, client, value string, purge func(canonical string)) (bool, error) {
	canonical := Canonical(value)
	b, err := w.Get(ctx, KindRecipient, canonical)
	if errors.Is(err, agent.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var cur Recipient
	if err := json.Unmarshal(b, &cur); err != nil || cur.ClientDID != client {
		return false, nil
	}
	w.Delete(KindRecipient, canonical)
	w.AfterCommit(func() {
		r.refreshRecipient(ctx, canonical)
		if purge != nil {
			purge(canonical)
		}
	})
	return true, nil
}

// Counts returns the number of grants in each state and of registered recipients.
func (r *Registry) Counts() (granted, revoked, recipients int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, g := range r.grants {
		switch g.State {
		case GrantGranted:
			granted++
		case GrantRevoked:
			revoked++
		}
	}
	return granted, revoked, len(r.recipients)
}

// normalizeDIDs returns the canonical DIDs of a configuration list.
func normalizeDIDs(list []string) map[string]bool {
	out := make(map[string]bool, len(list))
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out[Canonical(s)] = true
		}
	}
	return out
}
