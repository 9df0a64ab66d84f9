package mediation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
)

// The agent as a mediation client: ClientLoop asks the mediator of an
// invitation for mediation, creates a did:peer:2 whose DIDComm service is the
// mediator's endpoint with the mediator's routing key, registers that DID
// with the mediator and publishes it as the agent's primary DID. Then it
// keeps a live connection (a WebSocket) to the mediator and hands every
// message delivered to the router, confirming it (messages-received) once
// handled; when no live connection can be kept open it polls over HTTP.
// Requests to the mediator come from the agent's own (direct) DID, the one
// the grant is for.

// ClientIdentity is the part of agent.Identity the client loop uses: it
// creates the mediated DID, answers for it and publishes it.
type ClientIdentity interface {
	envelope.SecretResolver
	AddDID(did string)
	SetPrimary(did string) error
	NewPeerDID(ctx context.Context, spec agent.PeerDIDSpec) (agent.PeerDID, error)
}

// Encrypter packs a request for the mediator: agent.Messenger.Encrypt.
type Encrypter interface {
	Encrypt(ctx context.Context, msg agent.Message, to string) ([]byte, error)
}

// InboundReceiver takes picked-up packed messages: agent.Router.Receive.
type InboundReceiver interface {
	Receive(ctx context.Context, transport string, raw []byte) (*agent.Reply, error)
}

// Poster posts a packed request to an http(s) DIDComm endpoint and returns
// the body of a 200 answer; any other status is an error.
type Poster interface {
	Post(ctx context.Context, endpoint string, packed []byte) ([]byte, error)
}

// LiveConn is a persistent connection to the mediator (a WebSocket): each
// Send and Receive is one packed message.
type LiveConn interface {
	Send(ctx context.Context, packed []byte) error
	Receive(ctx context.Context) ([]byte, error)
	// Ping checks that the other end still answers.
	Ping(ctx context.Context) error
	// Close closes the connection at once.
	Close() error
}

// LiveDialer opens a LiveConn to the mediator at its http(s) DIDComm endpoint.
type LiveDialer func(ctx context.Context, endpoint string) (LiveConn, error)

// ClientLoopConfig is what a ClientLoop needs.
type ClientLoopConfig struct {
	// Client holds the agent's direct DID, the mediator's DID and the
	// Coordinate Mediation version.
	Client Client
	// InvitationID is the id of the mediation invitation, sent as the pthid
	// of mediate-request.
	InvitationID string
	// PollInterval is the time between polls when there is no live connection.
	PollInterval time.Duration
	// Records keeps the client's state (kind "agent", id "mediation-client").
	Records agent.Records
	// Identity creates and publishes the mediated DID and opens answers.
	Identity ClientIdentity
	// Resolver resolves the mediator's and its routing DID.
	Resolver did.Resolver
	// Keys resolves the public keys of the mediator's answers.
	Keys envelope.KeyResolver
	// Encrypter packs requests.
	Encrypter Encrypter
	// Receiver takes the messages picked up.
	Receiver InboundReceiver
	// HTTP posts requests with return_route.
	HTTP Poster
	// DialLive opens live connections.
	DialLive LiveDialer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// ClientRecord is the client's persisted state: the grant and the mediated DID.
type ClientRecord struct {
	Invitation  string `json:"invitation"`
	MediatorDID string `json:"mediator_did"`
	ClientDID   string `json:"client_did"`
	RoutingDID  string `json:"routing_did,omitempty"`
	Endpoint    string `json:"endpoint,omitempty"`
	// DID is the mediated DID, published once Registered.
	DID        string `json:"did,omitempty"`
	Registered bool   `json:"registered"`
	// Previous are mediated DIDs of earlier setups, still answered.
	Previous []string `json:"previous,omitempty"`
}

// Where the ClientRecord is kept in agent.Records.
const (
	ClientRecordKind = "agent"
	ClientRecordID   = "mediation-client"
)

// PickupTransport names messages picked up from the mediator for the
// router: replies to them cannot go back on the connection they came on.
const PickupTransport = "pickup"

// ClientLoop is the agent's mediation client.
type ClientLoop struct {
	cfg ClientLoopConfig
	log *slog.Logger

	mu    sync.Mutex
	rec   ClientRecord
	ready bool
}

// NewClientLoop loads the client's state, makes the identity answer for the
// mediated DIDs it had, and publishes the current one when it is registered
// with the same mediator for the same direct DID. Run does the rest.
func NewClientLoop(ctx context.Context, cfg ClientLoopConfig) (*ClientLoop, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &ClientLoop{cfg: cfg, log: log}
	raw, err := cfg.Records.Get(ctx, ClientRecordKind, ClientRecordID)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &c.rec); err != nil {
			return nil, fmt.Errorf("mediation client record is corrupt: %w", err)
		}
	case !errors.Is(err, agent.ErrNotFound):
		return nil, err
	}
	for _, p := range c.rec.Previous {
		cfg.Identity.AddDID(p)
	}
	if c.rec.DID != "" {
		cfg.Identity.AddDID(c.rec.DID)
	}
	same := c.rec.Invitation == cfg.InvitationID && c.rec.MediatorDID == cfg.Client.Mediator && c.rec.ClientDID == cfg.Client.DID
	if same && c.rec.Registered {
		c.publish()
	} else if c.rec.DID != "" && !same {
		// A new mediator or a new direct DID: set up again, keeping the old
		// mediated DID answered.
		c.rec.Previous = append([]string{c.rec.DID}, c.rec.Previous...)
		c.rec.DID, c.rec.Registered = "", false
	}
	return c, nil
}

// publish makes the mediated DID the agent's primary, published DID.
func (c *ClientLoop) publish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.Identity.AddDID(c.rec.DID)
	if err := c.cfg.Identity.SetPrimary(c.rec.DID); err != nil {
		c.log.Error("publishing the mediated DID failed", "err", err)
		return
	}
	c.ready = true
}

// MediatedDID returns the published mediated DID, or "" before mediation is
// set up.
func (c *ClientLoop) MediatedDID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		return ""
	}
	return c.rec.DID
}

// Run sets up mediation and picks up messages until ctx ends, retrying with
// backoff after failures.
func (c *ClientLoop) Run(ctx context.Context) {
	delay := time.Second
	for ctx.Err() == nil {
		err := c.setup(ctx)
		if err == nil {
			start := time.Now()
			err = c.pickup(ctx)
			if time.Since(start) > time.Minute {
				delay = time.Second // it worked for a while
			}
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("mediation: will retry", "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay + time.Duration(rand.Int64N(int64(delay/4+1)))):
		}
		delay = min(delay*2, time.Minute)
	}
}

func (c *ClientLoop) save(ctx context.Context) error {
	c.mu.Lock()
	b, err := json.Marshal(c.rec)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.cfg.Records.Put(ctx, ClientRecordKind, ClientRecordID, b)
}

// setup requests mediation and registers the mediated DID, unless done.
func (c *ClientLoop) setup(ctx context.Context) error {
	c.mu.Lock()
	done := c.rec.Registered
	c.mu.Unlock()
	if done {
		return nil
	}
	ep, err := c.mediatorEndpoint(ctx)
	if err != nil {
		return err
	}
	ex := &httpExchanger{c: c, endpoint: ep}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	client := &c.cfg.Client
	routing, err := client.RequestMediation(ctx, ex, c.cfg.InvitationID)
	if err != nil {
		return fmt.Errorf("mediate-request: %w", err)
	}
	routingDID := agent.DIDOf(routing[0])
	rdoc, err := c.cfg.Resolver.Resolve(ctx, routingDID)
	if err != nil {
		return fmt.Errorf("resolving the routing DID %s: %w", routingDID, err)
	}
	ka, err := rdoc.KeyAgreement()
	if err != nil || len(ka) == 0 {
		return fmt.Errorf("the routing DID %s has no key agreement key", routingDID)
	}
	endpoint := ep
	if u := httpService(rdoc); u != "" {
		endpoint = u
	}

	c.mu.Lock()
	c.rec.Invitation, c.rec.MediatorDID, c.rec.ClientDID = c.cfg.InvitationID, client.Mediator, client.DID
	fresh := c.rec.DID == "" || c.rec.RoutingDID != routingDID || c.rec.Endpoint != endpoint
	c.mu.Unlock()
	if fresh {
		// The mediated DID: fresh X25519 and Ed25519 keys, and the
		// mediator's endpoint with its routing key as DIDComm service.
		mediated, err := c.cfg.Identity.NewPeerDID(ctx, agent.PeerDIDSpec{
			Services: []did.Service{agent.DIDCommService("#didcomm", endpoint, ka[0].ID)},
		})
		if err != nil {
			return fmt.Errorf("creating the mediated DID: %w", err)
		}
		c.mu.Lock()
		if c.rec.DID != "" {
			c.rec.Previous = append([]string{c.rec.DID}, c.rec.Previous...)
		}
		c.rec.DID, c.rec.RoutingDID, c.rec.Endpoint = mediated.DID, routingDID, endpoint
		c.mu.Unlock()
		if err := c.save(ctx); err != nil {
			return err
		}
	}
	results, err := client.UpdateRecipients(ctx, ex, []Update{{RecipientDID: c.rec.DID, Action: ActionAdd}})
	if err != nil {
		return fmt.Errorf("registering the mediated DID: %w", err)
	}
	if len(results) != 1 || (results[0].Result != ResultSuccess && results[0].Result != ResultNoChange) {
		return fmt.Errorf("the mediator did not register the mediated DID: %+v", results)
	}
	c.mu.Lock()
	c.rec.Registered = true
	c.mu.Unlock()
	if err := c.save(ctx); err != nil {
		return err
	}
	c.publish()
	c.log.Info("mediation set up: publishing the mediated DID", "did", c.rec.DID, "routing_did", routingDID, "endpoint", endpoint)
	return nil
}

// httpService returns the first http(s) DIDComm endpoint of doc, or "".
func httpService(doc *did.Doc) string {
	for _, s := range doc.DIDCommServices() {
		if u := s.ServiceEndpoint.URI; strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
			return u
		}
	}
	return ""
}

// mediatorEndpoint returns the mediator's http(s) DIDComm endpoint.
func (c *ClientLoop) mediatorEndpoint(ctx context.Context) (string, error) {
	doc, err := c.cfg.Resolver.Resolve(ctx, c.cfg.Client.Mediator)
	if err != nil {
		return "", fmt.Errorf("resolving the mediator's DID: %w", err)
	}
	if u := httpService(doc); u != "" {
		return u, nil
	}
	return "", errors.New("the mediator's DID has no http(s) DIDComm endpoint")
}

// open unpacks a message from the mediator.
func (c *ClientLoop) open(ctx context.Context, packed []byte) (agent.Message, error) {
	plain, _, err := envelope.Unpack(ctx, packed, envelope.UnpackOptions{Keys: c.cfg.Keys, Secrets: c.cfg.Identity})
	if err != nil {
		return agent.Message{}, fmt.Errorf("unpacking the mediator's answer: %w", err)
	}
	var m agent.Message
	if err := json.Unmarshal(plain, &m); err != nil {
		return agent.Message{}, fmt.Errorf("the mediator's answer is not a DIDComm message: %w", err)
	}
	return m, nil
}

// httpExchanger sends requests to the mediator by HTTP POST and reads the
// answers from the response bodies (return_route).
type httpExchanger struct {
	c        *ClientLoop
	endpoint string
}

// Exchange implements Exchanger.
func (e *httpExchanger) Exchange(ctx context.Context, msg agent.Message) (agent.Message, error) {
	packed, err := e.c.cfg.Encrypter.Encrypt(ctx, msg, e.c.cfg.Client.Mediator)
	if err != nil {
		return agent.Message{}, err
	}
	body, err := e.c.cfg.HTTP.Post(ctx, e.endpoint, packed)
	if err != nil {
		return agent.Message{}, fmt.Errorf("%s to the mediator: %w", msg.Type, err)
	}
	return e.c.open(ctx, body)
}

// pickup collects messages until the connection to the mediator fails: live
// over a WebSocket, or by polling over HTTP for a while when no live
// connection can be opened.
func (c *ClientLoop) pickup(ctx context.Context) error {
	ep, err := c.mediatorEndpoint(ctx)
	if err != nil {
		return err
	}
	if c.cfg.DialLive != nil {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		conn, err := c.cfg.DialLive(dctx, ep)
		cancel()
		if err == nil {
			return c.live(ctx, conn)
		}
		c.log.Info("no WebSocket to the mediator: polling over HTTP", "err", err)
	}
	return c.pollFor(ctx, &httpExchanger{c: c, endpoint: ep}, 5*time.Minute)
}

// pollFor fetches messages over HTTP every poll interval for a while.
func (c *ClientLoop) pollFor(ctx context.Context, ex Exchanger, d time.Duration) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := c.drain(ctx, ex); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.cfg.PollInterval):
		}
	}
	return errors.New("polling period over: trying a WebSocket again")
}

// drain fetches and handles queued messages until the queue is empty.
func (c *ClientLoop) drain(ctx context.Context, ex Exchanger) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		got, err := c.cfg.Client.Deliver(rctx, ex, 100, "")
		cancel()
		if err != nil {
			return fmt.Errorf("delivery-request: %w", err)
		}
		if len(got) == 0 {
			return nil
		}
		if err := c.handle(ctx, ex, got); err != nil {
			return err
		}
	}
}

// handle gives delivered messages to the router and confirms the ones it
// took. A message the router refuses is confirmed too (delivering it again
// would not help), except for our own failures (e.p.me), which stay at the
// mediator to be tried again.
func (c *ClientLoop) handle(ctx context.Context, ex Exchanger, got []Delivered) error {
	ids := make([]string, 0, len(got))
	for _, m := range got {
		_, err := c.cfg.Receiver.Receive(ctx, PickupTransport, m.Message)
		if err != nil && strings.HasPrefix(agent.ErrorCode(err), agent.CodeMe) {
			c.log.Warn("a picked-up message could not be handled now; it stays at the mediator", "id", m.ID, "err", err)
			continue
		}
		ids = append(ids, m.ID)
	}
	if len(ids) == 0 {
		return errors.New("no picked-up message could be handled")
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := c.cfg.Client.Received(rctx, ex, ids); err != nil {
		return fmt.Errorf("messages-received: %w", err)
	}
	return nil
}

// liveExchanger sends requests on the live connection and matches the
// answers by thread; deliveries pushed by the mediator go to pushed.
type liveExchanger struct {
	c       *ClientLoop
	conn    LiveConn
	mu      sync.Mutex
	pending map[string]chan agent.Message
	pushed  chan agent.Message
}

// Exchange implements Exchanger.
func (w *liveExchanger) Exchange(ctx context.Context, msg agent.Message) (agent.Message, error) {
	packed, err := w.c.cfg.Encrypter.Encrypt(ctx, msg, w.c.cfg.Client.Mediator)
	if err != nil {
		return agent.Message{}, err
	}
	ch := make(chan agent.Message, 1)
	w.mu.Lock()
	w.pending[msg.ID] = ch
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.pending, msg.ID)
		w.mu.Unlock()
	}()
	if err := w.conn.Send(ctx, packed); err != nil {
		return agent.Message{}, err
	}
	select {
	case ans := <-ch:
		return ans, nil
	case <-ctx.Done():
		return agent.Message{}, ctx.Err()
	}
}

// read takes the mediator's messages off the connection until it fails.
func (w *liveExchanger) read(ctx context.Context) error {
	for {
		data, err := w.conn.Receive(ctx)
		if err != nil {
			return err
		}
		m, err := w.c.open(ctx, data)
		if err != nil {
			// A plaintext problem report about a request the mediator refused.
			var pr agent.Message
			if json.Unmarshal(data, &pr) == nil && pr.Type == agent.ProblemReportType {
				m, err = pr, nil
				m.ThID = pr.PThID
			} else {
				w.c.log.Warn("unreadable message from the mediator", "err", err)
				continue
			}
		}
		w.mu.Lock()
		ch := w.pending[m.ThID]
		w.mu.Unlock()
		switch {
		case ch != nil && m.ThID != "":
			ch <- m
		case m.Type == DeliveryType:
			select {
			case w.pushed <- m:
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			w.c.log.Debug("unexpected message from the mediator", "type", m.Type)
		}
	}
}

// live turns live delivery on over the connection, drains what is queued,
// then handles pushed deliveries as they come.
func (c *ClientLoop) live(ctx context.Context, conn LiveConn) error {
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &liveExchanger{c: c, conn: conn, pending: map[string]chan agent.Message{}, pushed: make(chan agent.Message, 64)}
	readErr := make(chan error, 1)
	go func() { readErr <- w.read(ctx); cancel() }()
	go func() { // our own keepalive: find a dead mediator
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				pctx, pc := context.WithTimeout(ctx, 15*time.Second)
				err := conn.Ping(pctx)
				pc()
				if err != nil {
					c.log.Info("the mediator's WebSocket does not answer pings: reconnecting")
					cancel()
					return
				}
			}
		}
	}()
	rctx, rc := context.WithTimeout(ctx, time.Minute)
	st, err := c.cfg.Client.SetLive(rctx, w, true)
	rc()
	if err != nil {
		return fmt.Errorf("live-delivery-change: %w", err)
	}
	c.log.Info("live delivery from the mediator on", "waiting", st.MessageCount)
	if err := c.drain(ctx, w); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			select {
			case err := <-readErr:
				return fmt.Errorf("the mediator's WebSocket closed: %w", err)
			default:
				return ctx.Err()
			}
		case m := <-w.pushed:
			got, err := ParseDelivery(m)
			if err != nil {
				c.log.Warn("malformed live delivery", "err", err)
				continue
			}
			if err := c.handle(ctx, w, got); err != nil {
				return err
			}
		}
	}
}
