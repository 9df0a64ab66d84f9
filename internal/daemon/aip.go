package daemon

import (
	"log/slog"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/protocols/aipevents"
	"github.com/agentd/agentd/protocols/connections"
	"github.com/agentd/agentd/protocols/oob"
	httptransport "github.com/agentd/agentd/transport/http"
)

// aipParts are the cloud-agent services of seed 004 (aip.enabled): what
// the GraphQL admin API resolves onto. Each service that lands adds its
// field here and its construction to buildAIP.
type aipParts struct {
	// conns are connections, their exchanges and basic messages.
	conns *connections.Service
	// events publish every change: webhook through the outbox, and broker
	// for subscriptions.
	events *aipevents.Events
	broker *aipevents.Broker
	// creds is the credential store (protocols/credstore), credEx Issue
	// Credential 3.0 (protocols/issuecredential), proofs Present Proof 3.0
	// (protocols/presentproof): nil until they are built here.
	creds  aip.Credentials
	credEx aip.CredentialExchanges
	proofs aip.ProofExchanges
}

// aipDeps are the parts of the agent the cloud-agent services use.
type aipDeps struct {
	store     agent.Store
	messenger *agent.Messenger
	oob       *oob.Service
	resolver  did.Resolver
	myDID     func() string
	hooks     *httptransport.Webhooks
	router    *agent.Router
}

// buildAIP builds the cloud-agent services and registers their protocols,
// or returns nil when aip.enabled is off. wrapAIP must run once every
// protocol is registered.
func buildAIP(cfg config.Config, deps aipDeps, log *slog.Logger) (*aipParts, error) {
	ac := cfg.AIP
	if !ac.Enabled {
		return nil, nil
	}
	p := &aipParts{broker: &aipevents.Broker{}}
	var hook string
	if ac.WebhookURL != "" {
		secret, err := readSecret(ac.WebhookSecret, ac.WebhookSecretFile, "aip.webhook_secret_file")
		if err != nil {
			return nil, err
		}
		wh := httptransport.NewWebhookTree(ac.WebhookURL, secret, "agentd/"+Version)
		deps.hooks.Add(wh)
		hook = wh.Endpoint()
	}
	p.events = aipevents.New(aipevents.Config{Broker: p.broker, WebhookEndpoint: hook})
	var err error
	p.conns, err = connections.New(connections.Config{
		Store: deps.store, Packer: deps.messenger, OOB: deps.oob, Resolver: deps.resolver, MyDID: deps.myDID,
		Events: p.events, Label: ac.Label, Endpoint: cfg.Endpoint(), Logger: log.With("component", "aip"),
	})
	if err != nil {
		return nil, err
	}
	for _, proto := range p.conns.Protocols() {
		deps.router.Register(proto)
	}
	log.Info("cloud-agent services", "label", ac.Label, "webhook", ac.WebhookURL != "")
	return p, nil
}

// wrapAIP puts the connections' Middleware around every registered
// protocol's handler, so that the answer to an invitation of ours, of
// whatever protocol, makes the connection in its unit of work.
func wrapAIP(p *aipParts, r *agent.Router) {
	if p == nil {
		return
	}
	for _, proto := range r.Protocols() {
		proto.Handler = p.conns.Middleware(proto.Handler)
		r.Register(proto)
	}
}
