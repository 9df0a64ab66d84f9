package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/netguard"
	"github.com/agentd/agentd/protocols/aipevents"
	"github.com/agentd/agentd/protocols/connections"
	"github.com/agentd/agentd/protocols/credstore"
	"github.com/agentd/agentd/protocols/issuecredential"
	"github.com/agentd/agentd/protocols/oob"
	"github.com/agentd/agentd/protocols/presentproof"
	"github.com/agentd/agentd/protocols/provecontrol"
	"github.com/agentd/agentd/protocols/reportproblem"
	"github.com/agentd/agentd/transport/graphql"
	httptransport "github.com/agentd/agentd/transport/http"
	"github.com/agentd/agentd/w3cvc"
)

// aipParts are the cloud-agent services of seed 004 (aip.enabled): what
// the GraphQL admin API resolves onto.
type aipParts struct {
	// conns are connections, their exchanges and basic messages.
	conns *connections.Service
	// events publish every change: webhook through the outbox, and broker
	// for subscriptions.
	events *aipevents.Events
	broker *aipevents.Broker
	// store holds credentials and AnonCreds objects; credEx is Issue
	// Credential 3.0, proofs Present Proof 3.0.
	store  *credstore.Service
	credEx *issuecredential.Service
	proofs *presentproof.Service
	// signer signs standalone credentials (signCredential).
	signer *issuerSigner
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
	// identity holds the agent's keys; authKID is the key id of its DID's
	// authentication key, whose did:key issues W3C credentials.
	identity *agent.Identity
	authKID  string
	sealer   func() (credstore.Sealer, error)
	// leases claim the verification of each presentation for one instance
	// when several share the database.
	leases agent.Leases
}

// fetchTimeout bounds one status list fetch.
const fetchTimeout = 10 * time.Second

// buildAIP builds the cloud-agent services and registers their protocols,
// or returns nil when aip.enabled is off. wrapAIP must run once every
// protocol is registered.
func buildAIP(cfg config.Config, deps aipDeps, log *slog.Logger) (*aipParts, error) {
	ac := cfg.AIP
	if !ac.Enabled {
		return nil, nil
	}
	alog := log.With("component", "aip")
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
		Events: p.events, Label: ac.Label, Endpoint: cfg.Endpoint(), Logger: alog,
	})
	if err != nil {
		return nil, err
	}
	sealer, err := deps.sealer()
	if err != nil {
		return nil, err
	}
	p.store, err = credstore.New(credstore.Config{
		Store: deps.store, Sealer: sealer, IssuerDID: deps.myDID,
		Dir: ac.AnonCreds.Dir, Web: ac.AnonCreds.Web, WebAllowPrivate: ac.FetchAllowPrivate, Logger: alog,
	})
	if err != nil {
		return nil, fmt.Errorf("aip.anoncreds: %w", err)
	}
	verifier := w3cvc.NewVerifier(w3cvc.VerifierConfig{Resolver: deps.resolver,
		HTTPClient: netguard.Policy{AllowPrivate: ac.FetchAllowPrivate}.Client(fetchTimeout), Logger: alog})
	p.signer = &issuerSigner{identity: deps.identity, authKID: deps.authKID}
	p.credEx, err = issuecredential.New(issuecredential.Config{
		Store: deps.store, Messenger: deps.messenger, Connections: p.conns, Credentials: p.store,
		Events: p.events, Sealer: sealer, Verifier: verifier, Signer: p.signer.signer, Logger: alog,
	})
	if err != nil {
		return nil, err
	}
	w3c, err := presentproof.NewW3C(presentproof.W3CConfig{Verifier: verifier,
		Signer: presentproof.IdentitySigner(deps.identity, deps.resolver), Resolver: deps.resolver})
	if err != nil {
		return nil, err
	}
	p.proofs, err = presentproof.New(presentproof.Config{
		Store: deps.store, Messenger: deps.messenger, Connections: p.conns, Credentials: p.store, W3C: w3c,
		Events: p.events, WillConfirm: true, Leases: deps.leases, Logger: alog,
	})
	if err != nil {
		return nil, err
	}
	for _, proto := range p.conns.Protocols() {
		deps.router.Register(proto)
	}
	deps.router.Register(p.credEx.Protocol())
	deps.router.Register(p.proofs.Protocol())
	// Problem reports about our credential and proof exchanges abandon
	// them, in the report's unit of work; every report still reaches the
	// Report Problem handler.
	for _, proto := range deps.router.Protocols() {
		if proto.PIURI == reportproblem.PIURI {
			proto.Handler = p.proofs.ProblemReports(p.credEx.WrapProblemReports(proto.Handler))
			deps.router.Register(proto)
		}
	}
	log.Info("cloud-agent services", "label", ac.Label, "webhook", ac.WebhookURL != "",
		"anoncreds_dir", ac.AnonCreds.Dir, "anoncreds_web", ac.AnonCreds.Web)
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

// resume starts the verifications of presentations left unverified (by a
// restart, a crashed instance, or a source that was down). The daemon
// runs it at start and then every minute, on one instance at a time; each
// verification is claimed by its own lease besides.
func (p *aipParts) resume(ctx context.Context, log *slog.Logger) {
	if err := p.proofs.Resume(ctx); err != nil && ctx.Err() == nil {
		log.Warn("resuming proof verifications failed", "err", err)
	}
}

// close waits for the verifications under way.
func (p *aipParts) close() {
	if p != nil {
		p.proofs.Close()
	}
}

// features are the HTTP routes of the cloud-agent services: the GraphQL
// admin API and the AnonCreds object import.
func (p *aipParts) features(token string, log *slog.Logger) []httptransport.Feature {
	if p == nil {
		return nil
	}
	api := graphql.New(graphql.Config{Resolver: &graphql.Resolver{
		Connections: p.conns, Credentials: p.store, CredentialExchanges: p.credEx, ProofExchanges: p.proofs,
		Events: p.broker, Signer: p.signer,
	}, AdminToken: token, Logger: log.With("component", "graphql")})
	imp := p.store.ImportHandler()
	return []httptransport.Feature{api, httptransport.FeatureFunc(func(r *httptransport.Routes) {
		r.Admin("POST /admin/anoncreds/objects", httptransport.Op{
			Summary: "Import an AnonCreds schema or credential definition of another issuer ({\"id\", \"schema\"} or {\"id\", \"credentialDefinition\"}); 201, 400 malformed, 409 already stored",
			Request: map[string]any{}, Response: map[string]string{}, Status: http.StatusCreated,
		}, imp.ServeHTTP)
		r.Admin("GET /admin/anoncreds/objects/{id}", httptransport.Op{
			Summary:  "Export a schema or credential definition this agent created or imported (public part only), as POST /admin/anoncreds/objects takes it; id path-escaped (its slashes as %2F); 404 when unknown",
			Response: map[string]any{},
		}, func(w http.ResponseWriter, req *http.Request) {
			b, err := p.store.Export(req.Context(), req.PathValue("id"))
			switch {
			case err == nil:
				w.Header().Set("Content-Type", "application/json")
				w.Write(b)
			case errors.Is(err, agent.ErrNotFound) || agent.HasCode(err, agent.CodeNotFound):
				http.Error(w, `{"error":"no such schema or credential definition"}`, http.StatusNotFound)
			default:
				log.ErrorContext(req.Context(), "anoncreds export failed", "err", err)
				http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
			}
		})
	})}
}

// issuerSigner signs the W3C credentials the agent issues as the did:key
// of its DID's Ed25519 authentication key. The agent's did:peer:2 has no
// assertionMethod key (adding one would change the DID of every existing
// data directory), while a did:key document lists its key under both
// authentication and assertionMethod, and resolves without a network.
type issuerSigner struct {
	identity *agent.Identity
	authKID  string
}

// signer is the issuecredential Config.Signer.
func (s *issuerSigner) signer(ctx context.Context) (w3cvc.Signer, error) {
	priv, err := s.identity.PrivateKey(ctx, s.authKID)
	if err != nil {
		return nil, fmt.Errorf("the agent's signing key: %w", err)
	}
	if !priv.Curve.IsSigning() {
		return nil, fmt.Errorf("the agent's authentication key is a %s key", priv.Curve)
	}
	pub := priv.Public()
	priv.ID = "#" + pub.Multikey()
	return w3cvc.KeySigner(did.KeyDID(pub), priv), nil
}

// SignW3C implements graphql.CredentialSigner: signer must be the agent's
// issuer did:key.
func (s *issuerSigner) SignW3C(ctx context.Context, signer string, credential []byte, mechanism string) (string, string, error) {
	sg, err := s.signer(ctx)
	if err != nil {
		return "", "", err
	}
	if signer != sg.DID() {
		if s.identity.Owns(signer) {
			return "", "", agent.Errorf(agent.CodeMsg, "signer: this agent signs credentials as %s (its DID has no assertionMethod key)", sg.DID())
		}
		return "", "", agent.Errorf(agent.CodeMsg, "signer: %.120s is not a DID this agent signs for", signer)
	}
	var vc map[string]any
	if err := json.Unmarshal(credential, &vc); err != nil || vc == nil {
		return "", "", agent.Errorf(agent.CodeMsg, "credentialJson: not a JSON object")
	}
	if _, ok := vc["proof"]; ok {
		return "", "", agent.Errorf(agent.CodeMsg, "credentialJson: the credential to sign has a proof already")
	}
	var secured []byte
	switch mechanism {
	case "JWT":
		secured, err = w3cvc.IssueJWT(vc, sg)
	case "LINKED_DATA_PROOF":
		secured, err = w3cvc.IssueLDP(vc, sg)
	default:
		return "", "", agent.Errorf(agent.CodeMsgUnsupported, "securingMechanism: %.40q is not supported (JWT and LINKED_DATA_PROOF are)", mechanism)
	}
	if err != nil {
		return "", "", agent.Wrap(agent.CodeMsg, err, "credentialJson: cannot sign: "+err.Error())
	}
	c, err := w3cvc.ParseCredential(secured)
	if err != nil {
		return "", "", err
	}
	plain := c.Document
	if mechanism == "LINKED_DATA_PROOF" {
		plain = map[string]any{}
		for k, v := range c.Document {
			if k != "proof" {
				plain[k] = v
			}
		}
	}
	doc, err := json.Marshal(plain)
	if err != nil {
		return "", "", err
	}
	return string(doc), string(secured), nil
}

var _ graphql.CredentialSigner = (*issuerSigner)(nil)

// kindAdopted marks, by source, that the credentials a protocol held
// before the credential store existed have been put into it.
const kindAdopted = "aip-adopted"

// adoptProveControlCredentials puts the credentials Prove Control's user
// role received before the credential store held them into the store,
// once: each under its own id in a unit of work that skips one already
// there, then a mark so that later starts do not read them again (new
// ones reach the store through provecontrol.Config.Held).
func adoptProveControlCredentials(ctx context.Context, pc *proveControlParts, p *aipParts, store agent.Store) error {
	if pc == nil || p == nil {
		return nil
	}
	if _, err := store.Records.Get(ctx, kindAdopted, "provecontrol"); err == nil {
		return nil
	} else if !errors.Is(err, agent.ErrNotFound) {
		return err
	}
	const page = 100
	for after := ""; ; {
		creds, err := pc.service.Credentials(ctx, after, page)
		if err != nil {
			return err
		}
		for _, c := range creds {
			err := store.Update(ctx, func(w *agent.Work) error {
				if _, err := w.Get(ctx, credstore.KindCredential, c.ID); err == nil {
					return nil
				} else if !errors.Is(err, agent.ErrNotFound) {
					return err
				}
				return p.store.Put(w, provecontrol.HeldCredential(c), nil)
			})
			if err != nil {
				return fmt.Errorf("credential %s: %w", c.ID, err)
			}
		}
		if len(creds) < page {
			break
		}
		after = creds[len(creds)-1].ID
	}
	return store.Update(ctx, func(w *agent.Work) error {
		w.Put(kindAdopted, "provecontrol", []byte(`{}`))
		return nil
	})
}
