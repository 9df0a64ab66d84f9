package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/protocols/iden3auth"
	"github.com/agentd/agentd/protocols/iden3auth/schemas"
	httptransport "github.com/agentd/agentd/transport/http"
	auth "github.com/iden3/go-iden3-auth/v2"
	"github.com/iden3/iden3comm/v2/packers"
	"github.com/iden3/iden3comm/v2/protocol"
	"rsc.io/qr"
)

// iden3NewID, when set, makes the session ids (tests answering a recorded
// response, whose thid is fixed, set it).
var iden3NewID func() string

// iden3Parts is the iden3 verifier as the daemon runs it.
type iden3Parts struct {
	svc  *iden3auth.Service
	docs *schemas.Loader
}

// buildIden3 sets up the iden3 verifier from the iden3 section, when it
// has resolvers: the chains' state resolvers, the schema cache, the
// webhook transport of the outbox, and the service.
func buildIden3(cfg config.Config, store agent.Store, hooks *httptransport.Webhooks, m *metrics.Metrics, log *slog.Logger) (*iden3Parts, error) {
	ic := cfg.Iden3
	if !ic.Enabled() {
		return nil, nil
	}
	var chains []iden3auth.Chain
	for _, r := range ic.Resolvers {
		did := r.DID
		if did == "" {
			did = ic.VerifierDID
		}
		chains = append(chains, iden3auth.Chain{Blockchain: r.Chain, Network: r.Network, RPCURL: r.RPCURL,
			StateContract: r.StateContract, ChainID: r.ChainID, Method: r.Method, NetworkFlag: byte(r.NetworkFlag), VerifierDID: did})
	}
	resolvers, err := iden3auth.NewResolvers(chains, ic.RPCTimeout)
	if err != nil {
		return nil, err
	}
	dir := ic.Schemas.Dir
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, "iden3", "schemas")
	}
	docs, err := schemas.New(dir, ic.Schemas.Allow, ic.Schemas.Timeout, nil)
	if err != nil {
		return nil, err
	}
	// The libraries' default loader (merklize's too) would fetch anything:
	// every load goes through the cache and the allow-list instead.
	auth.SetDocumentLoader(docs)
	base := ic.PublicBaseURL
	if base == "" {
		u, err := url.Parse(cfg.Endpoint())
		if err != nil {
			return nil, fmt.Errorf("iden3.public_base_url: cannot derive it from the endpoint: %w", err)
		}
		base = u.Scheme + "://" + u.Host
	}
	var hook string
	if ic.Webhook.URL != "" {
		secret, err := readSecret(ic.Webhook.Secret, ic.Webhook.SecretFile, "iden3.webhook.secret_file")
		if err != nil {
			return nil, err
		}
		wh := httptransport.NewWebhook(ic.Webhook.URL, secret, "agentd/"+Version)
		hooks.Add(wh)
		hook = wh.Endpoint()
	}
	svc, err := iden3auth.New(iden3auth.Config{
		Store: store, Chains: chains, Resolvers: resolvers, Documents: docs, PublicBaseURL: base,
		DefaultExpiry: ic.DefaultExpiry, MaxExpiry: ic.MaxExpiry, ProofAge: ic.ProofMaxAge,
		StateTransitionDelay: ic.StateTransitionDelay, WebhookEndpoint: hook, NewID: iden3NewID, Retention: ic.Retention,
		Logger: log.With("component", "iden3"), Observe: m.Iden3Observer(),
	})
	if err != nil {
		return nil, err
	}
	log.Info("iden3 verifier", "chains", svc.Chains(), "public_base_url", base, "schemas", dir, "webhook", ic.Webhook.URL != "")
	return &iden3Parts{svc: svc, docs: docs}, nil
}

// iden3API returns the iden3 routes' implementation, or nil.
func (d *Daemon) iden3API() httptransport.Iden3 {
	if d.iden3 == nil {
		return nil
	}
	return iden3Admin{d.iden3}
}

// iden3Admin implements the transport's Iden3 over the service.
type iden3Admin struct{ p *iden3Parts }

// CreateIden3Request makes a verification session.
func (a iden3Admin) CreateIden3Request(ctx context.Context, req httptransport.Iden3CreateRequest) (httptransport.Iden3Created, error) {
	var out httptransport.Iden3Created
	cr := iden3auth.CreateRequest{Reason: req.Reason, Message: req.Message, Chain: req.Chain}
	for i, raw := range req.Scope {
		var sc protocol.ZeroKnowledgeProofRequest
		if err := json.Unmarshal(raw, &sc); err != nil {
			return out, agent.Errorf(agent.CodeMsg, "scope[%d] is not a proof request {id, circuitId, query}: %v", i, err)
		}
		cr.Scope = append(cr.Scope, sc)
	}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(string(req.ExpiresIn))
		if err != nil {
			return out, agent.Errorf(agent.CodeMsg, "expires_in must be a duration such as 15m or 24h")
		}
		cr.ExpiresIn = d
	}
	s, err := a.p.svc.Create(ctx, cr)
	if err != nil {
		return out, err
	}
	b, err := json.Marshal(s.Request)
	if err != nil {
		return out, err
	}
	return httptransport.Iden3Created{ID: s.ID, RequestURI: a.p.svc.RequestURI(s.ID), DeepLink: a.p.svc.DeepLink(s.ID),
		QRPNGURL: a.p.svc.RequestURI(s.ID) + "/qr.png", InlineLink: iden3auth.InlineLink(b), Request: b}, nil
}

// Iden3Session describes a session.
func (a iden3Admin) Iden3Session(ctx context.Context, id string) (httptransport.Iden3Session, error) {
	s, err := a.p.svc.Get(ctx, id)
	if err != nil {
		return httptransport.Iden3Session{}, err
	}
	return iden3SessionOut(s), nil
}

// Iden3Sessions lists sessions.
func (a iden3Admin) Iden3Sessions(ctx context.Context, state, after string, limit int) ([]httptransport.Iden3Session, error) {
	ss, err := a.p.svc.List(ctx, iden3auth.State(state), after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]httptransport.Iden3Session, 0, len(ss))
	for _, s := range ss {
		out = append(out, iden3SessionOut(s))
	}
	return out, nil
}

// CancelIden3 cancels a pending session.
func (a iden3Admin) CancelIden3(ctx context.Context, id string) (httptransport.Iden3Session, error) {
	s, err := a.p.svc.Cancel(ctx, id)
	if err != nil {
		return httptransport.Iden3Session{}, err
	}
	return iden3SessionOut(s), nil
}

// LoadIden3Schema puts a document into the schema cache.
func (a iden3Admin) LoadIden3Schema(_ context.Context, u string, doc []byte) error {
	if err := a.p.docs.Store(u, doc); err != nil {
		return agent.Wrap(agent.CodeMsg, err, err.Error())
	}
	return nil
}

// Iden3Request returns a pending session's request JSON.
func (a iden3Admin) Iden3Request(ctx context.Context, id string) ([]byte, error) {
	return a.p.svc.RequestMessage(ctx, id)
}

// Iden3RequestQR returns the PNG QR code of a pending session's deep link.
func (a iden3Admin) Iden3RequestQR(ctx context.Context, id string) ([]byte, error) {
	if _, err := a.p.svc.RequestMessage(ctx, id); err != nil {
		return nil, err
	}
	code, err := qr.Encode(a.p.svc.DeepLink(id), qr.M)
	if err != nil {
		return nil, err
	}
	return code.PNG(), nil
}

// Iden3Answer verifies a wallet's answer to a session.
func (a iden3Admin) Iden3Answer(ctx context.Context, id string, token []byte) (httptransport.Iden3Session, error) {
	s, err := a.p.svc.Verify(ctx, id, token)
	if err != nil {
		return httptransport.Iden3Session{}, err
	}
	return iden3SessionOut(s), nil
}

// Iden3Receive takes an iden3comm message from the DIDComm endpoint: a JWZ,
// or a JWS signed by a did:pkh account, goes to its thread's session; a
// plain message proves nothing of its sender, and agentd has no iden3comm
// encryption key: those are refused.
func (a iden3Admin) Iden3Receive(ctx context.Context, mediaType string, body []byte) (httptransport.Iden3Session, error) {
	switch mediaType {
	case "application/iden3-zkp-json", "application/iden3comm-signed-json":
		thid, err := iden3auth.ThreadOf(body)
		if err != nil {
			return httptransport.Iden3Session{}, err
		}
		return a.Iden3Answer(ctx, thid, body)
	case string(packers.MediaTypePlainMessage):
		msg, err := (&packers.PlainMessagePacker{}).Unpack(body)
		if err != nil {
			return httptransport.Iden3Session{}, agent.Wrap(agent.CodeMsg, err, "not a plain iden3comm message")
		}
		if msg.Type != protocol.AuthorizationResponseMessageType {
			return httptransport.Iden3Session{}, agent.Errorf(agent.CodeMsgUnsupported,
				"iden3comm message type %q is not handled (agentd takes %s)", msg.Type, protocol.AuthorizationResponseMessageType)
		}
		return httptransport.Iden3Session{}, agent.Errorf(agent.CodeMediaType,
			"a plain authorization response proves nothing about its sender: send it as a JWZ (application/iden3-zkp-json)")
	default:
		return httptransport.Iden3Session{}, agent.Errorf(agent.CodeMediaType,
			"agentd has no iden3comm encryption key: send the authorization response as a JWZ (application/iden3-zkp-json)")
	}
}

func iden3SessionOut(s iden3auth.Session) httptransport.Iden3Session {
	req, _ := json.Marshal(s.Request)
	out := httptransport.Iden3Session{ID: s.ID, State: string(s.State), Reason: s.Reason, Chain: s.Chain,
		Created: s.Created, Expires: s.Expires, Updated: s.Updated, Request: req}
	if r := s.Result; r != nil {
		res := &httptransport.Iden3Result{UserDID: r.UserDID, Verified: r.Verified, Scopes: []httptransport.Iden3ScopeResult{}}
		for _, sc := range r.Scopes {
			res.Scopes = append(res.Scopes, httptransport.Iden3ScopeResult{ID: sc.ID, CircuitID: sc.CircuitID, ProofKind: sc.ProofKind,
				Issuer: sc.Issuer, Timestamp: sc.Timestamp, VerifiablePresentation: sc.VerifiablePresentation,
				OperatorOutput: sc.OperatorOutput, Nullifier: sc.Nullifier, LinkID: sc.LinkID})
		}
		out.Result = res
	}
	return out
}
