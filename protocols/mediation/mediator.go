package mediation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
)

// Policy says who the mediator grants mediation to.
type Policy string

// The mediation policies.
const (
	// PolicyOpen grants every authenticated requester.
	PolicyOpen Policy = "open"
	// PolicyAllowList grants the DIDs in Config.AllowList.
	PolicyAllowList Policy = "allow-list"
	// PolicyInvitation grants the holders of a mediation invitation the
	// operator made (CreateInvitation): the mediate-request's pthid names it.
	// Each invitation is good for one grant.
	PolicyInvitation Policy = "invitation"
)

// ParsePolicy checks a policy name.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case PolicyOpen, PolicyAllowList, PolicyInvitation:
		return p, nil
	}
	return "", fmt.Errorf("unknown mediation policy %q (open, allow-list or invitation)", s)
}

// Packer packs a message for its recipient, as agent.Messenger.PackReply
// does; the mediator packs its live deliveries with it.
type Packer interface {
	PackReply(ctx context.Context, reply agent.Message, in *agent.Inbound) ([]byte, string, error)
}

// Relayer prepares already packed messages to be passed on to other
// parties: agent.Messenger.PrepareRelay.
type Relayer interface {
	// PrepareRelay resolves next and wraps packed for its service.
	PrepareRelay(ctx context.Context, packed []byte, next string) (*agent.OutboundMessage, error)
}

// Config configures a Mediator.
type Config struct {
	// DID is the agent DID live deliveries come from when the client's
	// request did not name one in its to.
	DID string
	// RoutingDID is the mediator's routing DID, given in mediate-grant. The
	// agent must hold its key agreement key, so that forwards encrypted to
	// it can be opened.
	RoutingDID string
	Policy     Policy
	// AllowList holds the DIDs granted under PolicyAllowList.
	AllowList []string
	// Relay makes the mediator pass forwards whose next is not one of its
	// recipients on to next's endpoint, instead of refusing them.
	Relay bool
	// MaxMessageBytes bounds one forwarded message; larger ones are refused
	// with e.p.xfer.too-large (HTTP 413: resending cannot help). Zero means
	// 512 KiB.
	MaxMessageBytes int
	// MaxAttachments bounds the messages one forward carries; a forward
	// with more is refused with e.p.xfer.too-large. Zero means
	// DefaultMaxAttachments.
	MaxAttachments int
	// Limits is the quota of each recipient DID.
	Limits agent.QueueLimits
	// MessageTTL is how long an undelivered message is kept (a forward's
	// earlier expires_time wins). Zero means 14 days.
	MessageTTL time.Duration
	// MaxRecipients bounds the DIDs one client may register. Zero means 1000.
	MaxRecipients int
	// MaxDeliveryMessages and MaxDeliveryBytes bound one delivery message.
	// Zero means 100 messages and 4 MiB.
	MaxDeliveryMessages int
	MaxDeliveryBytes    int
	// InvitationTTL is how long a mediation invitation stays good. Zero means 7 days.
	InvitationTTL time.Duration
	// LiveBuffer is how many messages wait for a live connection before
	// further pushes are skipped (they stay queued). Zero means 1024.
	LiveBuffer int
	Logger     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultMaxAttachments is the default of Config.MaxAttachments. A sender
// forwards one message per forward (Routing 2.0 allows several, for
// several copies of one message); ten leaves room for that and keeps one
// anonymous forward from filling a queue at once.
const DefaultMaxAttachments = 10

// Deps are the services a Mediator uses.
type Deps struct {
	// Store keeps grants, registrations and mediation invitations; every
	// change is a unit of work of it (the router's, for a message).
	Store agent.Store
	// Queue keeps the messages.
	Queue agent.QueueStore
	// Packer packs live deliveries.
	Packer Packer
	// Relayer passes on forwards for other parties; needed when Config.Relay is on.
	Relayer Relayer
}

// Mediator plays the mediator role of Coordinate Mediation 2.0 and 3.0,
// Routing 2.0 and Pickup 3.0, with live delivery on persistent connections.
type Mediator struct {
	cfg      Config
	log      *slog.Logger
	registry *Registry
	queue    agent.QueueStore
	store    agent.Store
	packer   Packer
	relayer  Relayer
	live     *Hub
	pushers  pushers // queue reads of pushes signalled by other instances (Share)
	allow    map[string]bool

	invMu sync.Mutex
}

// NewMediator returns a Mediator over deps. Call Load before use.
func NewMediator(cfg Config, deps Deps) *Mediator {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 512 << 10
	}
	if cfg.MaxAttachments <= 0 {
		cfg.MaxAttachments = DefaultMaxAttachments
	}
	if cfg.MessageTTL <= 0 {
		cfg.MessageTTL = 14 * 24 * time.Hour
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = 1000
	}
	if cfg.MaxDeliveryMessages <= 0 {
		cfg.MaxDeliveryMessages = 100
	}
	if cfg.MaxDeliveryBytes <= 0 {
		cfg.MaxDeliveryBytes = 4 << 20
	}
	if cfg.InvitationTTL <= 0 {
		cfg.InvitationTTL = 7 * 24 * time.Hour
	}
	if cfg.Policy == "" {
		cfg.Policy = PolicyOpen
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("component", "mediator")
	m := &Mediator{cfg: cfg, log: log, registry: NewRegistry(deps.Store.Records), queue: deps.Queue, store: deps.Store,
		packer: deps.Packer, relayer: deps.Relayer, allow: normalizeDIDs(cfg.AllowList)}
	m.registry.now = cfg.Now
	m.live = newHub(deps.Packer, cfg.LiveBuffer, cfg.MaxDeliveryMessages, log)
	return m
}

// Load reads the grants and registrations.
func (m *Mediator) Load(ctx context.Context) error { return m.registry.Load(ctx) }

// Registry returns the grants and registrations, for the admin API.
func (m *Mediator) Registry() *Registry { return m.registry }

// Live returns the live-delivery hub, for metrics.
func (m *Mediator) Live() *Hub { return m.live }

// Protocols returns the protocols the mediator serves: Coordinate Mediation
// 2.0 and 3.0, Routing 2.0 (whose forward de-duplicates itself in the queue
// write) and Pickup 3.0. The coordinate-mediation handlers also hand answers
// meant for a mediation client (mediate-grant, ...) to clientAnswers when it
// is not nil.
func (m *Mediator) Protocols() []agent.Protocol {
	return []agent.Protocol{
		{PIURI: CoordinateV2PIURI, Roles: []string{RoleMediator}, Handler: m.coordinateHandler(V2)},
		{PIURI: CoordinateV3PIURI, Roles: []string{RoleMediator}, Handler: m.coordinateHandler(V3)},
		{PIURI: RoutingPIURI, Roles: []string{RoleMediator}, Handler: agent.HandlerFunc(m.handleRouting)},
		{PIURI: PickupPIURI, Roles: []string{RoleMediator}, Handler: agent.HandlerFunc(m.handlePickup)},
	}
}

// client returns the authenticated sender of a request, or an error: the
// mediator acts only for a sender whose DID the envelope proves.
func client(in *agent.Inbound) (string, error) {
	if in.Message.From == "" || !in.Envelope.Authenticated {
		return "", agent.Errorf(agent.CodeTrust, "%s needs an authenticated sender (authcrypt or a signature)", in.Message.Type)
	}
	return agent.DIDOf(in.Message.From), nil
}

// mediatorDID is the agent DID a request was sent to.
func mediatorDID(in *agent.Inbound) string {
	for _, to := range in.Message.To {
		return agent.DIDOf(to)
	}
	return ""
}

func (m *Mediator) coordinateHandler(v Version) agent.Handler {
	return agent.HandlerFunc(func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
		switch strings.TrimPrefix(in.Message.Type, v.PIURI+"/") {
		case MediateRequest:
			return m.handleMediateRequest(ctx, in, v)
		case v.Update:
			return m.handleUpdate(ctx, in, v)
		case v.Query:
			return m.handleQuery(ctx, in, v)
		case MediateGrant, MediateDeny, v.UpdateResponse, v.List:
			// Answers to a mediation client arrive on the connection that
			// asked (return_route), not here; one that does is unsolicited.
			m.log.DebugContext(ctx, "unsolicited coordinate-mediation answer", "type", in.Message.Type, "from", in.Message.From)
			return nil, nil
		}
		return nil, agent.Errorf(agent.CodeMsgUnsupported, "unsupported message type %s", in.Message.Type)
	})
}

// decision is the policy's answer to a mediate-request.
type decision struct {
	allowed    bool
	invitation string
	reason     string
}

func (m *Mediator) decide(ctx context.Context, w *agent.Work, clientDID string, in *agent.Inbound) (decision, error) {
	switch m.cfg.Policy {
	case PolicyOpen:
		return decision{allowed: true}, nil
	case PolicyAllowList:
		if m.allow[clientDID] {
			return decision{allowed: true}, nil
		}
		return decision{reason: "not on the allow-list"}, nil
	case PolicyInvitation:
		if in.Message.PThID == "" {
			return decision{reason: "no mediation invitation (pthid) given"}, nil
		}
		ok, err := m.useInvitation(ctx, w, in.Message.PThID, clientDID)
		if err != nil {
			return decision{}, err
		}
		if !ok {
			return decision{reason: "mediation invitation unknown, used or expired"}, nil
		}
		return decision{allowed: true, invitation: in.Message.PThID}, nil
	}
	return decision{reason: "no policy"}, nil
}

func (m *Mediator) handleMediateRequest(ctx context.Context, in *agent.Inbound, v Version) ([]agent.Message, error) {
	c, err := client(in)
	if err != nil {
		return nil, err
	}
	cur := m.registry.Grant(c)
	event := EventRequestRefused
	var d decision
	if cur.State == GrantNone {
		if d, err = m.decide(ctx, in.Work, c, in); err != nil {
			return nil, err
		}
		if d.allowed {
			event = EventRequestAllowed
		}
	} else if cur.State == GrantGranted {
		event = EventRequestAllowed
	}
	g, err := m.registry.apply(ctx, in.Work, c, event, func(g *Grant) {
		if g.State != GrantGranted {
			return
		}
		g.Version, g.MediatorDID, g.RoutingDID = v.String(), mediatorDID(in), m.cfg.RoutingDID
		if d.invitation != "" {
			g.Invitation = d.invitation
		}
	})
	if err != nil {
		return nil, err
	}
	if g.State != GrantGranted {
		reason := d.reason
		if cur.State == GrantRevoked {
			reason = "mediation was revoked by the operator"
		}
		m.log.InfoContext(ctx, "mediation denied", "client", c, "version", v.String(), "reason", reason)
		deny, err := in.Message.Reply(v.Type(MediateDeny), nil)
		if err != nil {
			return nil, err
		}
		return []agent.Message{deny}, nil
	}
	m.log.InfoContext(ctx, "mediation granted", "client", c, "version", v.String(), "routing_did", m.cfg.RoutingDID)
	body, err := GrantBody{RoutingDID: []string{m.cfg.RoutingDID}}.MarshalVersion(v)
	if err != nil {
		return nil, err
	}
	grant, err := in.Message.Reply(v.Type(MediateGrant), nil)
	if err != nil {
		return nil, err
	}
	grant.Body = body
	return []agent.Message{grant}, nil
}

// granted returns the authenticated client of a request and checks its grant.
func (m *Mediator) granted(in *agent.Inbound) (string, error) {
	c, err := client(in)
	if err != nil {
		return "", err
	}
	if g := m.registry.Grant(c); g.State != GrantGranted {
		return "", agent.Errorf(CodeNotGranted, "%s has no mediation grant: send mediate-request first", c)
	}
	return c, nil
}

// maxUpdates bounds the updates of one message.
const maxUpdates = 1000

func (m *Mediator) handleUpdate(ctx context.Context, in *agent.Inbound, v Version) ([]agent.Message, error) {
	c, err := m.granted(in)
	if err != nil {
		return nil, err
	}
	var body UpdateBody
	if err := in.Message.DecodeBody(&body); err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "malformed "+v.Update+" body")
	}
	if len(body.Updates) > maxUpdates {
		return nil, agent.Errorf(agent.CodeMsg, "at most %d updates per message", maxUpdates)
	}
	results := make([]UpdateResult, 0, len(body.Updates))
	for _, u := range body.Updates {
		r := UpdateResult{RecipientDID: u.RecipientDID, Action: u.Action, Result: ResultSuccess}
		switch {
		case !validRecipient(u.RecipientDID):
			r.Result = ResultClientError
		case u.Action == ActionAdd:
			changed, err := m.addRecipient(ctx, in.Work, c, u.RecipientDID)
			switch {
			case errors.Is(err, errTaken), errors.Is(err, errLimit):
				r.Result = ResultClientError
			case err != nil:
				m.log.ErrorContext(ctx, "registering a recipient failed", "client", c, "err", err)
				r.Result = ResultServerError
			case !changed:
				r.Result = ResultNoChange
			}
		case u.Action == ActionRemove:
			changed, err := m.removeRecipient(ctx, in.Work, c, u.RecipientDID)
			switch {
			case err != nil:
				m.log.ErrorContext(ctx, "unregistering a recipient failed", "client", c, "err", err)
				r.Result = ResultServerError
			case !changed:
				r.Result = ResultNoChange
			}
		default:
			r.Result = ResultClientError
		}
		results = append(results, r)
	}
	m.log.InfoContext(ctx, "recipients updated", "client", c, "version", v.String(), "updates", len(results))
	reply, err := in.Message.Reply(v.Type(v.UpdateResponse), UpdateResponseBody{Updated: results})
	if err != nil {
		return nil, err
	}
	return []agent.Message{reply}, nil
}

// addRecipient stages the registration of value for the client c. Nothing
// may be waiting for a DID its new owner did not register before: anything
// left over is dropped before the DID is routed.
func (m *Mediator) addRecipient(ctx context.Context, w *agent.Work, c, value string) (bool, error) {
	return m.registry.addRecipient(ctx, w, c, value, m.cfg.MaxRecipients, func(canonical string) error {
		if _, err := m.queue.Purge(ctx, canonical); err != nil {
			m.log.WarnContext(ctx, "purging the queue of a new recipient failed", "err", err)
		}
		return nil
	})
}

// removeRecipient stages the removal of value for the client c; its queue
// is purged once the removal commits.
func (m *Mediator) removeRecipient(ctx context.Context, w *agent.Work, c, value string) (bool, error) {
	return m.registry.removeRecipient(ctx, w, c, value, func(canonical string) {
		if _, err := m.queue.Purge(ctx, canonical); err != nil {
			// The messages expire with the queue's TTL, and a new owner's
			// registration purges them first.
			m.log.WarnContext(ctx, "purging the queue of a removed recipient failed", "recipient", canonical, "err", err)
		}
	})
}

func (m *Mediator) handleQuery(ctx context.Context, in *agent.Inbound, v Version) ([]agent.Message, error) {
	c, err := m.granted(in)
	if err != nil {
		return nil, err
	}
	var body QueryBody
	if err := in.Message.DecodeBody(&body); err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "malformed "+v.Query+" body")
	}
	regs := m.registry.Registrations(c)
	list := ListBody{}
	start, end := 0, len(regs)
	if p := body.Paginate; p != nil {
		if p.Limit == nil || p.Offset == nil || *p.Limit < 0 || *p.Offset < 0 {
			return nil, agent.Errorf(agent.CodeMsg, "paginate needs a non-negative limit and offset")
		}
		start = min(*p.Offset, len(regs))
		end = min(start+*p.Limit, len(regs))
	}
	for _, r := range regs[start:end] {
		list.Entries = append(list.Entries, RecipientEntry{RecipientDID: r.Registered})
	}
	if body.Paginate != nil {
		list.Pagination = &Pagination{Count: end - start, Offset: start, Remaining: len(regs) - end}
	}
	b, err := list.MarshalVersion(v)
	if err != nil {
		return nil, err
	}
	reply, err := in.Message.Reply(v.Type(v.List), nil)
	if err != nil {
		return nil, err
	}
	reply.Body = b
	return []agent.Message{reply}, nil
}

// Revoke ends a client's mediation (operator action): its recipients are
// unregistered and their queues purged, and later requests are denied until
// an operator grants it again.
func (m *Mediator) Revoke(ctx context.Context, clientDID string) error {
	clientDID = agent.DIDOf(clientDID)
	if g := m.registry.Grant(clientDID); g.State == GrantNone {
		return fmt.Errorf("mediation for %s: %w", clientDID, agent.ErrNotFound)
	}
	err := m.store.Update(ctx, func(w *agent.Work) error {
		for _, r := range m.registry.Registrations(clientDID) {
			if _, err := m.removeRecipient(ctx, w, clientDID, r.Registered); err != nil {
				return err
			}
		}
		_, err := m.registry.apply(ctx, w, clientDID, EventOperatorRevoke, nil)
		return err
	})
	if err != nil {
		return err
	}
	m.live.dropClient(clientDID)
	m.log.InfoContext(ctx, "mediation revoked by the operator", "client", clientDID)
	return nil
}

// GrantTo grants mediation to a client (operator action), whatever the
// policy: its mediate-request will be answered with a grant. The DID must
// be well formed for its method (see checkClientDID); a bad one is refused
// with e.p.msg and changes nothing.
func (m *Mediator) GrantTo(ctx context.Context, clientDID string) (Grant, error) {
	clientDID = agent.DIDOf(clientDID)
	if err := checkClientDID(clientDID); err != nil {
		return Grant{}, err
	}
	var g Grant
	err := m.store.Update(ctx, func(w *agent.Work) error {
		var err error
		g, err = m.registry.apply(ctx, w, clientDID, EventOperatorGrant, func(g *Grant) {
			if g.RoutingDID == "" {
				g.RoutingDID = m.cfg.RoutingDID
			}
		})
		return err
	})
	if err == nil {
		m.log.InfoContext(ctx, "mediation granted by the operator", "client", clientDID)
	}
	return g, err
}

// checkClientDID checks a DID the operator grants mediation to. The DID
// syntax of DID Core is checked for every method; a DID that resolves
// offline is resolved too, so that its keys are known to decode: did:key,
// did:peer:0, did:peer:2 and the long form of did:peer:4. did:web (which
// would need the network), did:peer:3 and short did:peer:4 (which resolve
// only once their long form was seen) and other methods are checked for
// syntax only: a DID that cannot be resolved later simply never gets its
// mediate-request through.
func checkClientDID(id string) error {
	if len(id) > 4096 {
		return agent.Errorf(agent.CodeMsg, "the DID is longer than 4096 characters")
	}
	method, msid, err := did.ParseDID(id)
	if err != nil {
		return agent.Wrap(agent.CodeMsg, err, fmt.Sprintf("%.80q is not a DID", id))
	}
	switch {
	case method == "key":
		_, err = did.ResolveKey(id)
	case method == "peer" && (strings.HasPrefix(msid, "0") || strings.HasPrefix(msid, "2") ||
		strings.HasPrefix(msid, "4") && strings.Contains(msid, ":")):
		_, err = (&did.PeerResolver{}).Resolve(context.Background(), id)
	case method == "peer" && (strings.HasPrefix(msid, "3") || strings.HasPrefix(msid, "4")):
	case method == "peer":
		err = fmt.Errorf("%w: unknown did:peer numalgo", did.ErrInvalidDID)
	case method == "web":
		_, err = did.WebURL(id)
	}
	if err != nil {
		return agent.Wrap(agent.CodeMsg, err, fmt.Sprintf("%.80q is not a valid %s DID: %v", id, "did:"+method, err))
	}
	return nil
}

// invitationRecord is a mediation invitation the operator made.
type invitationRecord struct {
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedBy    string    `json:"used_by,omitempty"`
	UsedAt    time.Time `json:"used_at,omitzero"`
}

// RecordInvitation remembers the id of an Out-of-Band invitation the operator
// made for mediation, good for one grant under PolicyInvitation until it
// expires; it returns the expiry.
func (m *Mediator) RecordInvitation(ctx context.Context, id string) (time.Time, error) {
	now := m.cfg.Now().UTC()
	rec := invitationRecord{CreatedAt: now, ExpiresAt: now.Add(m.cfg.InvitationTTL)}
	b, err := json.Marshal(rec)
	if err != nil {
		return time.Time{}, err
	}
	err = m.store.Update(ctx, func(w *agent.Work) error {
		w.Put(KindInvitation, id, b)
		return nil
	})
	return rec.ExpiresAt, err
}

// InvitationTTL is how long a mediation invitation stays good.
func (m *Mediator) InvitationTTL() time.Duration { return m.cfg.InvitationTTL }

// useInvitation stages the use of a mediation invitation by client in w
// (read through w: two requests with one invitation cannot both commit).
func (m *Mediator) useInvitation(ctx context.Context, w *agent.Work, id, clientDID string) (bool, error) {
	b, err := w.Get(ctx, KindInvitation, id)
	if errors.Is(err, agent.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, agent.Wrap(agent.CodeMe, err, "could not read the invitation")
	}
	var rec invitationRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return false, agent.Wrap(agent.CodeMe, err, "could not read the invitation")
	}
	now := m.cfg.Now()
	if rec.UsedBy != "" || now.After(rec.ExpiresAt) {
		return false, nil
	}
	rec.UsedBy, rec.UsedAt = clientDID, now.UTC()
	if err := w.PutJSON(KindInvitation, id, rec); err != nil {
		return false, err
	}
	return true, nil
}

// Sweep removes the expired messages from the queue.
func (m *Mediator) Sweep(ctx context.Context) (int, error) {
	return m.queue.Sweep(ctx, m.cfg.Now())
}
