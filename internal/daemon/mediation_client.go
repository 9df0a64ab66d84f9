package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/protocols/mediation"
	"github.com/agentd/agentd/protocols/oob"
)

// The agent as a mediation client (mediation_client.invitation): it asks the
// mediator of the invitation for mediation, creates a did:peer:2 whose
// DIDComm service is the mediator's endpoint with the mediator's routing key,
// registers that DID with the mediator and publishes it as its own DID. Then
// it keeps a WebSocket to the mediator in live mode and hands every message
// delivered to the router, confirming it (messages-received) once handled;
// when no WebSocket can be kept open it polls over HTTP. Requests to the
// mediator come from the agent's own (direct) DID, the one the grant is for.

// mediationClient is the daemon's mediation client.
type mediationClient struct {
	d      *Daemon
	inv    oob.Invitation
	client mediation.Client
	poll   time.Duration
	log    *slog.Logger
	http   *http.Client

	mu    sync.Mutex
	rec   clientRecord
	ready bool
}

// clientRecord is what the client keeps in the records: the grant and the
// mediated DID.
type clientRecord struct {
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

const clientRecordID = "mediation-client"

func (d *Daemon) buildMediationClient(ctx context.Context) error {
	inv, err := oob.Parse(d.cfg.MediationClient.Invitation)
	if err != nil {
		return fmt.Errorf("mediation_client.invitation: %w", err)
	}
	if err := inv.Validate(); err != nil {
		return fmt.Errorf("mediation_client.invitation: %w", err)
	}
	v := mediation.V3
	if d.cfg.MediationClient.Version == "2.0" {
		v = mediation.V2
	}
	c := &mediationClient{
		d: d, inv: inv, poll: d.cfg.MediationClient.PollInterval,
		client: mediation.Client{DID: d.record.DID, Mediator: agent.DIDOf(inv.From), Version: v},
		log:    d.log.With("component", "mediation-client", "mediator", agent.DIDOf(inv.From)),
		http:   &http.Client{Timeout: 30 * time.Second},
	}
	raw, err := d.db.Records().Get(ctx, recordKind, clientRecordID)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &c.rec); err != nil {
			return fmt.Errorf("mediation client record is corrupt: %w", err)
		}
	case !errors.Is(err, agent.ErrNotFound):
		return err
	}
	for _, p := range c.rec.Previous {
		d.identity.AddDID(p)
	}
	if c.rec.DID != "" {
		d.identity.AddDID(c.rec.DID)
	}
	same := c.rec.Invitation == inv.ID && c.rec.MediatorDID == c.client.Mediator && c.rec.ClientDID == c.client.DID
	if same && c.rec.Registered {
		c.publish()
	} else if c.rec.DID != "" && !same {
		// A new mediator or a new direct DID: set up again, keeping the old
		// mediated DID answered.
		c.rec.Previous = append([]string{c.rec.DID}, c.rec.Previous...)
		c.rec.DID, c.rec.Registered = "", false
	}
	d.mediation.client = c
	return nil
}

// publish makes the mediated DID the agent's primary, published DID.
func (c *mediationClient) publish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d.identity.AddDID(c.rec.DID)
	if err := c.d.identity.SetPrimary(c.rec.DID); err != nil {
		c.log.Error("publishing the mediated DID failed", "err", err)
		return
	}
	c.ready = true
}

// mediatedDID returns the published mediated DID, or "" before mediation is set up.
func (c *mediationClient) mediatedDID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		return ""
	}
	return c.rec.DID
}

// publicDID is the DID the agent publishes (GET /did, the invitation, the
// banner): the mediated DID once mediation is set up, else its own.
func (d *Daemon) publicDID() string {
	if c := d.mediation.client; c != nil {
		if m := c.mediatedDID(); m != "" {
			return m
		}
	}
	return d.record.DID
}

// run sets up mediation and picks up messages until ctx ends, retrying with
// backoff after failures.
func (c *mediationClient) run(ctx context.Context) {
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

func (c *mediationClient) save(ctx context.Context) error {
	c.mu.Lock()
	b, err := json.Marshal(c.rec)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.d.db.Records().Put(ctx, recordKind, clientRecordID, b)
}

// setup requests mediation and registers the mediated DID, unless done.
func (c *mediationClient) setup(ctx context.Context) error {
	c.mu.Lock()
	done := c.rec.Registered
	c.mu.Unlock()
	if done {
		return nil
	}
	ex, err := c.httpExchanger(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	routing, err := c.client.RequestMediation(ctx, ex, c.inv.ID)
	if err != nil {
		return fmt.Errorf("mediate-request: %w", err)
	}
	routingDID := agent.DIDOf(routing[0])
	rdoc, err := c.d.resolver.Resolve(ctx, routingDID)
	if err != nil {
		return fmt.Errorf("resolving the routing DID %s: %w", routingDID, err)
	}
	ka, err := rdoc.KeyAgreement()
	if err != nil || len(ka) == 0 {
		return fmt.Errorf("the routing DID %s has no key agreement key", routingDID)
	}
	endpoint := ex.endpoint
	for _, s := range rdoc.DIDCommServices() {
		if u := s.ServiceEndpoint.URI; strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
			endpoint = u
			break
		}
	}

	c.mu.Lock()
	c.rec.Invitation, c.rec.MediatorDID, c.rec.ClientDID = c.inv.ID, c.client.Mediator, c.client.DID
	fresh := c.rec.DID == "" || c.rec.RoutingDID != routingDID || c.rec.Endpoint != endpoint
	c.mu.Unlock()
	if fresh {
		ks, err := c.d.db.Keys()
		if err != nil {
			return err
		}
		mediated, err := newMediatedDID(ctx, ks, endpoint, ka[0].ID)
		if err != nil {
			return err
		}
		c.mu.Lock()
		if c.rec.DID != "" {
			c.rec.Previous = append([]string{c.rec.DID}, c.rec.Previous...)
		}
		c.rec.DID, c.rec.RoutingDID, c.rec.Endpoint = mediated, routingDID, endpoint
		c.mu.Unlock()
		c.d.identity.AddDID(mediated)
		if err := c.save(ctx); err != nil {
			return err
		}
	}
	results, err := c.client.UpdateRecipients(ctx, ex, []mediation.Update{{RecipientDID: c.rec.DID, Action: mediation.ActionAdd}})
	if err != nil {
		return fmt.Errorf("registering the mediated DID: %w", err)
	}
	if len(results) != 1 || (results[0].Result != mediation.ResultSuccess && results[0].Result != mediation.ResultNoChange) {
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

// newMediatedDID creates a did:peer:2 with fresh X25519 and Ed25519 keys
// whose DIDComm service is the mediator's endpoint with the mediator's
// routing key, and stores its private keys.
func newMediatedDID(ctx context.Context, ks keys.Store, endpoint, routingKey string) (string, error) {
	x, err := keys.Generate(keys.X25519, "")
	if err != nil {
		return "", err
	}
	e, err := keys.Generate(keys.Ed25519, "")
	if err != nil {
		return "", err
	}
	svc := did.Service{ID: "#didcomm", Type: did.ServiceTypeDIDCommMessaging, ServiceEndpoint: did.ServiceEndpoint{
		URI: endpoint, Accept: []string{"didcomm/v2"}, RoutingKeys: []string{routingKey},
	}}
	id, err := did.NewPeer2([]keys.PublicKey{x.PublicKey}, []keys.PublicKey{e.PublicKey}, []did.Service{svc})
	if err != nil {
		return "", err
	}
	doc, err := did.ResolvePeer2(id)
	if err != nil {
		return "", err
	}
	ka, _ := doc.KeyAgreement()
	au, _ := doc.Authentication()
	if len(ka) != 1 || len(au) != 1 {
		return "", errors.New("the mediated DID's document lacks its keys")
	}
	x.ID, e.ID = ka[0].ID, au[0].ID
	for _, k := range []keys.PrivateKey{x, e} {
		if err := ks.Put(ctx, k); err != nil {
			return "", fmt.Errorf("storing a key of the mediated DID: %w", err)
		}
	}
	return id, nil
}

// mediatorEndpoint returns the mediator's http(s) DIDComm endpoint.
func (c *mediationClient) mediatorEndpoint(ctx context.Context) (string, error) {
	doc, err := c.d.resolver.Resolve(ctx, c.client.Mediator)
	if err != nil {
		return "", fmt.Errorf("resolving the mediator's DID: %w", err)
	}
	for _, s := range doc.DIDCommServices() {
		if u := s.ServiceEndpoint.URI; strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
			return u, nil
		}
	}
	return "", errors.New("the mediator's DID has no http(s) DIDComm endpoint")
}

// open unpacks a message from the mediator.
func (c *mediationClient) open(ctx context.Context, packed []byte) (agent.Message, error) {
	plain, _, err := envelope.Unpack(ctx, packed, envelope.UnpackOptions{Keys: c.d.mediation.keys, Secrets: c.d.identity})
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
	c        *mediationClient
	endpoint string
}

func (c *mediationClient) httpExchanger(ctx context.Context) (*httpExchanger, error) {
	ep, err := c.mediatorEndpoint(ctx)
	if err != nil {
		return nil, err
	}
	return &httpExchanger{c: c, endpoint: ep}, nil
}

// Exchange implements mediation.Exchanger.
func (e *httpExchanger) Exchange(ctx context.Context, msg agent.Message) (agent.Message, error) {
	packed, err := e.c.d.mediation.messenger.Encrypt(ctx, msg, e.c.client.Mediator)
	if err != nil {
		return agent.Message{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.endpoint, bytes.NewReader(packed))
	if err != nil {
		return agent.Message{}, err
	}
	req.Header.Set("Content-Type", agent.MediaTypeEncrypted)
	req.Header.Set("User-Agent", "agentd/"+Version)
	resp, err := e.c.http.Do(req)
	if err != nil {
		return agent.Message{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return agent.Message{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return agent.Message{}, fmt.Errorf("the mediator answered %s to %s: %s", resp.Status, msg.Type, bytes.TrimSpace(body[:min(len(body), 300)]))
	}
	return e.c.open(ctx, body)
}

// pickup collects messages until the connection to the mediator fails: live
// over a WebSocket, or by polling over HTTP for a while when no WebSocket can
// be opened.
func (c *mediationClient) pickup(ctx context.Context) error {
	ep, err := c.mediatorEndpoint(ctx)
	if err != nil {
		return err
	}
	wsURL, ok := webSocketURL(ep)
	if ok {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		conn, _, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"didcomm/v2"}})
		cancel()
		if err == nil {
			return c.live(ctx, conn)
		}
		c.log.Info("no WebSocket to the mediator: polling over HTTP", "err", err)
	}
	return c.pollFor(ctx, &httpExchanger{c: c, endpoint: ep}, 5*time.Minute)
}

// pollFor fetches messages over HTTP every poll interval for a while.
func (c *mediationClient) pollFor(ctx context.Context, ex mediation.Exchanger, d time.Duration) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := c.drain(ctx, ex); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.poll):
		}
	}
	return errors.New("polling period over: trying a WebSocket again")
}

// drain fetches and handles queued messages until the queue is empty.
func (c *mediationClient) drain(ctx context.Context, ex mediation.Exchanger) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		got, err := c.client.Deliver(rctx, ex, 100, "")
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
func (c *mediationClient) handle(ctx context.Context, ex mediation.Exchanger, got []mediation.Delivered) error {
	ids := make([]string, 0, len(got))
	for _, m := range got {
		_, err := c.d.router.Receive(ctx, pickupTransport, m.Message)
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
	if _, err := c.client.Received(rctx, ex, ids); err != nil {
		return fmt.Errorf("messages-received: %w", err)
	}
	return nil
}

// pickupTransport names messages picked up from the mediator for the
// router: replies to them cannot go back on the connection they came on.
const pickupTransport = "pickup"

// wsExchanger sends requests on the WebSocket and matches the answers by
// thread; deliveries pushed by the mediator go to pushed.
type wsExchanger struct {
	c       *mediationClient
	conn    *websocket.Conn
	mu      sync.Mutex
	pending map[string]chan agent.Message
	pushed  chan agent.Message
}

// Exchange implements mediation.Exchanger.
func (w *wsExchanger) Exchange(ctx context.Context, msg agent.Message) (agent.Message, error) {
	packed, err := w.c.d.mediation.messenger.Encrypt(ctx, msg, w.c.client.Mediator)
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
	if err := w.conn.Write(ctx, websocket.MessageText, packed); err != nil {
		return agent.Message{}, err
	}
	select {
	case ans := <-ch:
		return ans, nil
	case <-ctx.Done():
		return agent.Message{}, ctx.Err()
	}
}

// read takes the mediator's messages off the socket until it fails.
func (w *wsExchanger) read(ctx context.Context) error {
	for {
		_, data, err := w.conn.Read(ctx)
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
		case m.Type == mediation.DeliveryType:
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

// live turns live delivery on over the socket, drains what is queued, then
// handles pushed deliveries as they come.
func (c *mediationClient) live(ctx context.Context, conn *websocket.Conn) error {
	defer conn.CloseNow()
	conn.SetReadLimit(32 << 20)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &wsExchanger{c: c, conn: conn, pending: map[string]chan agent.Message{}, pushed: make(chan agent.Message, 64)}
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
	st, err := c.client.SetLive(rctx, w, true)
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
			got, err := mediation.ParseDelivery(m)
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
