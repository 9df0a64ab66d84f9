package daemon

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/netguard"
	"github.com/agentd/agentd/internal/ratelimit"
	"github.com/agentd/agentd/protocols/privado"
	"github.com/agentd/agentd/protocols/users"
	httptransport "github.com/agentd/agentd/transport/http"
	"rsc.io/qr"
)

// privadoNow, when set, is the clock of the proof-request service (tests).
var privadoNow func() time.Time

// buildPrivado sets up the proof-request service from the privado
// section, when it is enabled; it needs user accounts (and so mail) and
// the iden3 verifier. Its callbacks go through the outbox's "privado+"
// transport, signed with each exchange's secret.
func buildPrivado(cfg config.Config, db backend, store agent.Store, outbox *agent.Outbox, us *users.Service, i3 *iden3Parts, log *slog.Logger) (*privado.Service, error) {
	p := cfg.Privado
	if !p.Enabled {
		return nil, nil
	}
	if us == nil || i3 == nil {
		return nil, errors.New("privado.enabled: the proof-request service needs user accounts (users.enabled, email.address) and the iden3 verifier (iden3.resolvers)")
	}
	if p.Chain != "" && !slices.Contains(i3.svc.Chains(), p.Chain) {
		return nil, fmt.Errorf("privado.chain: %q is not one of iden3.resolvers (%s)", p.Chain, strings.Join(i3.svc.Chains(), ", "))
	}
	base := p.BaseURL
	if base == "" {
		u, err := url.Parse(cfg.Endpoint())
		if err != nil {
			return nil, fmt.Errorf("privado.base_url: cannot derive it from the endpoint: %w", err)
		}
		base = u.Scheme + "://" + u.Host
	}
	var tmpl *privado.Template
	var err error
	if p.MailTemplate != "" {
		if tmpl, err = privado.LoadTemplate(p.MailTemplate); err != nil {
			return nil, err
		}
	}
	key, err := db.Sealer()
	if err != nil {
		return nil, err
	}
	svc, err := privado.New(privado.Config{
		Store: store, Users: userLookup{us}, Verifier: i3.svc, Sealer: key, BaseURL: base,
		MailFrom: cfg.Email.Address, AgentName: p.AgentName, Template: tmpl,
		ConsentTTL: p.ConsentTTL, ProofTTL: p.ProofTTL, Chain: p.Chain, MaxAttempts: p.MaxAttempts,
		Callbacks:    privado.CallbackPolicy{AllowHTTP: p.AllowHTTPCallbacks, AllowPrivate: p.AllowPrivateCallbacks},
		LoginLimit:   ratelimit.NewPer(cfg.Users.AddressRate, time.Hour, cfg.Users.AddressBurst, cfg.Limits.MaxKeys),
		RequestLimit: requestLimit(p),
		Now:          privadoNow, Logger: log.With("component", "privado"),
	})
	if err != nil {
		return nil, err
	}
	var roots *x509.CertPool
	if p.CallbackCAFile != "" {
		pem, err := os.ReadFile(p.CallbackCAFile)
		if err != nil {
			return nil, fmt.Errorf("privado.callback_ca_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, errors.New("privado.callback_ca_file: no PEM certificate in it")
		}
	}
	cb := httptransport.NewCallbacks("agentd/"+Version, netguard.Policy{AllowPrivate: cfg.Outbox.AllowPrivate}, roots,
		func(ctx context.Context, endpoint string) (httptransport.CallbackTarget, error) {
			target, exID, delivery, err := privado.ParseCallbackEndpoint(endpoint)
			if err != nil {
				return httptransport.CallbackTarget{}, agent.Wrap(agent.CodeNotFound, err, "not a callback endpoint")
			}
			secret, err := svc.Secret(ctx, exID)
			if err != nil {
				return httptransport.CallbackTarget{}, err
			}
			return httptransport.CallbackTarget{URL: target, Secret: secret, DeliveryID: delivery}, nil
		})
	outbox.Handle("privado+https", cb)
	outbox.Handle("privado+http", cb)
	log.Info("proof-request service", "consent_links", base+privado.ConsentPath, "consent_ttl", p.ConsentTTL, "proof_ttl", p.ProofTTL)
	return svc, nil
}

// userLookup finds the account an exchange names, by id or reference.
type userLookup struct{ s *users.Service }

// LookupUser implements privado.Users.
func (u userLookup) LookupUser(ctx context.Context, ref string) (privado.User, error) {
	ok := func(a users.AccountView) (privado.User, error) {
		if a.State == users.AccountDisabled {
			return privado.User{}, agent.Errorf(agent.CodeNotFound, "userReference: no such user")
		}
		return privado.User{ID: a.ID, Email: a.Email, Name: a.Name, Reference: a.Reference}, nil
	}
	if a, err := u.s.Account(ctx, ref); err == nil {
		return ok(a)
	}
	a, err := u.s.AccountByReference(ctx, ref)
	if agent.HasCode(err, agent.CodeNotFound) {
		return privado.User{}, agent.Errorf(agent.CodeNotFound, "userReference: no such user")
	}
	if err != nil {
		return privado.User{}, err
	}
	return ok(a)
}

// UserByEmail implements privado.Users.
func (u userLookup) UserByEmail(ctx context.Context, email string) (privado.User, error) {
	a, err := u.s.AccountByEmail(ctx, email)
	if agent.HasCode(err, agent.CodeNotFound) || (err == nil && a.State == users.AccountDisabled) {
		return privado.User{}, agent.Errorf(agent.CodeNotFound, "no such user")
	}
	if err != nil {
		return privado.User{}, err
	}
	return privado.User{ID: a.ID, Email: a.Email, Name: a.Name, Reference: a.Reference}, nil
}

// privadoAPI implements the transport's Privado and PrivadoAdmin.
type privadoAPI struct{ s *privado.Service }

// AuthenticateExchange implements httptransport.Privado.
func (a privadoAPI) AuthenticateExchange(ctx context.Context, key string) (string, error) {
	ex, err := a.s.Authenticate(ctx, key)
	return ex.ID, err
}

func (a privadoAPI) exchange(ctx context.Context, id string) (privado.ExchangeView, error) {
	return a.s.Exchange(ctx, id)
}

// RequestProof implements httptransport.Privado.
func (a privadoAPI) RequestProof(ctx context.Context, exID string, req httptransport.ProofRequestBody) (httptransport.PrivadoInteraction, error) {
	ex, err := a.exchange(ctx, exID)
	if err != nil {
		return httptransport.PrivadoInteraction{}, err
	}
	v, err := a.s.Request(ctx, ex, privado.ProofRequest{UserReference: req.UserReference, Challenge: req.Challenge,
		Callback: req.Callback, Query: req.Query})
	return interactionOut(v), err
}

// VerifyProof implements httptransport.Privado.
func (a privadoAPI) VerifyProof(ctx context.Context, exID, proof string) (httptransport.ProofVerification, error) {
	ex, err := a.exchange(ctx, exID)
	if err != nil {
		return httptransport.ProofVerification{}, err
	}
	v, err := a.s.VerifyProof(ctx, ex, proof)
	return httptransport.ProofVerification(v), err
}

// ConsentInfo implements httptransport.Privado.
func (a privadoAPI) ConsentInfo(ctx context.Context, token string) (httptransport.ConsentAnswer, error) {
	v, err := a.s.ConsentInfo(ctx, token)
	return consentOut(v), err
}

// Consent implements httptransport.Privado.
func (a privadoAPI) Consent(ctx context.Context, token string, yes bool) (httptransport.ConsentAnswer, error) {
	v, err := a.s.Consent(ctx, token, yes)
	return consentOut(v), err
}

// UserInteractions implements httptransport.Privado.
func (a privadoAPI) UserInteractions(ctx context.Context, token, vaspID, after string, limit int) ([]httptransport.PrivadoInteraction, error) {
	l, err := a.s.UserInteractions(ctx, token, vaspID, after, limit)
	return interactionsOut(l), err
}

// MailLoginLink implements httptransport.Privado.
func (a privadoAPI) MailLoginLink(ctx context.Context, email string) error {
	return a.s.MailLoginLink(ctx, email)
}

// QRCode implements httptransport.Privado.
func (a privadoAPI) QRCode(link string) ([]byte, error) {
	c, err := qr.Encode(link, qr.M)
	if err != nil {
		return nil, err
	}
	c.Scale = 6
	return c.PNG(), nil
}

// CreateExchange implements httptransport.PrivadoAdmin.
func (a privadoAPI) CreateExchange(ctx context.Context, req httptransport.CreateExchangeRequest) (httptransport.ExchangeCredentials, error) {
	var tmpl map[string]any
	if len(req.ProofTemplate) > 0 && string(req.ProofTemplate) != "null" {
		if err := json.Unmarshal(req.ProofTemplate, &tmpl); err != nil || tmpl == nil {
			return httptransport.ExchangeCredentials{}, agent.Errorf(agent.CodeMsg, "proof_template: must be an iden3 query object {context, type, allowedIssuers, credentialSubject}")
		}
	}
	c, err := a.s.CreateExchange(ctx, privado.ExchangeRequest{Name: req.Name, CallbackAllowList: req.CallbackAllowList, ProofTemplate: tmpl})
	return httptransport.ExchangeCredentials(c), err
}

// Exchanges implements httptransport.PrivadoAdmin.
func (a privadoAPI) Exchanges(ctx context.Context, after string, limit int) ([]httptransport.PrivadoExchange, error) {
	l, err := a.s.Exchanges(ctx, after, limit)
	out := []httptransport.PrivadoExchange{}
	for _, e := range l {
		out = append(out, exchangeOut(e))
	}
	return out, err
}

// Exchange implements httptransport.PrivadoAdmin.
func (a privadoAPI) Exchange(ctx context.Context, id string) (httptransport.PrivadoExchange, error) {
	e, err := a.s.Exchange(ctx, id)
	return exchangeOut(e), err
}

// RotateExchangeKeys implements httptransport.PrivadoAdmin.
func (a privadoAPI) RotateExchangeKeys(ctx context.Context, id string) (httptransport.ExchangeCredentials, error) {
	c, err := a.s.RotateKeys(ctx, id)
	return httptransport.ExchangeCredentials(c), err
}

// DisableExchange implements httptransport.PrivadoAdmin.
func (a privadoAPI) DisableExchange(ctx context.Context, id string) (httptransport.PrivadoExchange, error) {
	e, err := a.s.DisableExchange(ctx, id)
	return exchangeOut(e), err
}

// Interactions implements httptransport.PrivadoAdmin.
func (a privadoAPI) Interactions(ctx context.Context, vaspID, userID, state, after string, limit int) ([]httptransport.PrivadoInteraction, error) {
	l, err := a.s.List(ctx, privado.Filter{ExchangeID: vaspID, UserID: userID, State: privado.State(state), Before: after, Limit: limit})
	return interactionsOut(l), err
}

// Interaction implements httptransport.PrivadoAdmin.
func (a privadoAPI) Interaction(ctx context.Context, id string) (httptransport.PrivadoInteraction, error) {
	v, err := a.s.Interaction(ctx, id)
	return interactionOut(v), err
}

func exchangeOut(e privado.ExchangeView) httptransport.PrivadoExchange {
	out := httptransport.PrivadoExchange{ID: e.ID, Name: e.Name, CallbackAllowList: e.CallbackAllowList,
		State: string(e.State), Created: e.Created, Updated: e.Updated, KeysRotated: e.KeysRotated}
	if e.ProofTemplate != nil {
		out.ProofTemplate, _ = json.Marshal(e.ProofTemplate)
	}
	return out
}

func interactionOut(v privado.InteractionView) httptransport.PrivadoInteraction {
	out := httptransport.PrivadoInteraction{ID: v.ID, VASPID: v.VASPID, VASPName: v.VASPName, UserReference: v.UserReference,
		Challenge: v.Challenge, State: string(v.State), What: v.What, Created: v.Created, Updated: v.Updated,
		ConsentExpires: v.ConsentExpires, ProofExpires: v.ProofExpires, ProofKind: v.ProofKind, CircuitID: v.CircuitID,
		Issuer: v.Issuer, History: []httptransport.PrivadoTransition{}}
	if v.VerifiedAt != nil {
		out.VerifiedAt = *v.VerifiedAt
	}
	for _, t := range v.History {
		out.History = append(out.History, httptransport.PrivadoTransition{From: string(t.From), To: string(t.To), At: t.At, Cause: t.Cause})
	}
	return out
}

func interactionsOut(l []privado.InteractionView) []httptransport.PrivadoInteraction {
	out := []httptransport.PrivadoInteraction{}
	for _, v := range l {
		out = append(out, interactionOut(v))
	}
	return out
}

func consentOut(v privado.ConsentView) httptransport.ConsentAnswer {
	out := httptransport.ConsentAnswer{Interaction: interactionOut(v.Interaction), Decided: v.Decided}
	if w := v.Wallet; w != nil {
		out.Wallet = &httptransport.PrivadoWallet{SessionID: w.SessionID, RequestURI: w.RequestURI, DeepLink: w.DeepLink,
			UniversalLink: w.UniversalLink, Expires: w.Expires}
	}
	return out
}

// requestLimit is the per-exchange limit on proof requests, or nil.
func requestLimit(p config.Privado) privado.Limiter {
	if p.RequestRate <= 0 {
		return nil
	}
	return ratelimit.NewPer(p.RequestRate, time.Hour, p.RequestBurst, 10000)
}
