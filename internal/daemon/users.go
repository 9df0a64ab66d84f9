package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/ratelimit"
	"github.com/agentd/agentd/protocols/users"
	httptransport "github.com/agentd/agentd/transport/http"
)

// usersNow, when set, is the clock of the user accounts (tests).
var usersNow func() time.Time

// buildUsers sets up user accounts from the users section, when they are
// enabled and the agent sends mail (email.address); nil otherwise.
func buildUsers(cfg config.Config, store agent.Store, keys envelope.KeyResolver, router *agent.Router, log *slog.Logger) (*users.Service, error) {
	u := cfg.Users
	if !u.Enabled || cfg.Email.Address == "" {
		return nil, nil
	}
	base := u.BaseURL
	if base == "" {
		p, err := url.Parse(cfg.Endpoint())
		if err != nil {
			return nil, fmt.Errorf("users.base_url: cannot derive it from the endpoint: %w", err)
		}
		base = p.Scheme + "://" + p.Host
	}
	tmpl, err := users.LoadTemplate(u.MailTemplate)
	if err != nil {
		return nil, err
	}
	svc, err := users.New(users.Config{
		Store: store, BaseURL: base, MailFrom: cfg.Email.Address, AgentName: u.AgentName, Template: tmpl,
		ConfirmTTL: u.ConfirmTTL, UploadTTL: u.KeyUploadTTL, MaxNameLength: u.MaxNameLength,
		PerAddress: ratelimit.NewPer(u.AddressRate, time.Hour, u.AddressBurst, cfg.Limits.MaxKeys),
		PerIP:      ratelimit.NewPer(u.IPRate, time.Hour, u.IPBurst, cfg.Limits.MaxKeys),
		Logger:     log.With("component", "users"), Now: usersNow,
	})
	if err != nil {
		return nil, err
	}
	router.Register(svc.Protocol(signedVerifier(keys)))
	log.Info("user accounts", "links", base+users.ConfirmPath, "confirm_ttl", u.ConfirmTTL)
	return svc, nil
}

// signedVerifier checks a signed DIDComm message (JWS) with the signer
// DID's keys, for DID registration.
func signedVerifier(keys envelope.KeyResolver) users.SignedVerifier {
	return func(ctx context.Context, jws []byte) ([]byte, string, error) {
		plain, meta, err := envelope.Unpack(ctx, jws, envelope.UnpackOptions{Keys: keys})
		if err != nil {
			return nil, "", err
		}
		if meta.Encrypted || !meta.NonRepudiation || meta.SignFrom == "" {
			return nil, "", agent.Errorf(agent.CodeTrust, "not a signed message")
		}
		return plain, agent.DIDOf(meta.SignFrom), nil
	}
}

// UserByDID returns the user account whose DID is userDID (the did:key of
// the user's EdDSA key): DIDComm messages authenticated by that DID come
// from that user. It is an error wrapping agent.CodeNotFound when there is
// none (or user accounts are off).
func (d *Daemon) UserByDID(ctx context.Context, userDID string) (httptransport.User, error) {
	if d.users == nil {
		return httptransport.User{}, agent.Errorf(agent.CodeNotFound, "user accounts are off")
	}
	v, err := d.users.UserByDID(ctx, userDID)
	return userOut(v), err
}

// attribution is the router's Attribute when user accounts run: the
// account of an authenticated sender's DID, looked up when the message
// comes (d.users is built after the router).
func (d *Daemon) attribution(cfg config.Config) func(context.Context, string) string {
	if !cfg.Users.Enabled || cfg.Email.Address == "" {
		return nil
	}
	return func(ctx context.Context, did string) string {
		if d.users == nil {
			return ""
		}
		v, err := d.users.UserByDID(ctx, did)
		if err != nil {
			return ""
		}
		return v.ID
	}
}

// usersAPI implements the user-account routes over the service.
type usersAPI struct{ svc *users.Service }

func (a usersAPI) RequestSignup(ctx context.Context, name, email, ip string) (httptransport.SignupReceipt, error) {
	r, err := a.svc.RequestSignup(ctx, name, email, ip)
	return httptransport.SignupReceipt(r), err
}

func (a usersAPI) SignupConfirmation(ctx context.Context, token string) (httptransport.SignupConfirmation, error) {
	v, err := a.svc.ConfirmInfo(ctx, token)
	return httptransport.SignupConfirmation(v), err
}

func (a usersAPI) ConfirmSignup(ctx context.Context, token string) (httptransport.SignupConfirmed, error) {
	c, err := a.svc.Confirm(ctx, token)
	return httptransport.SignupConfirmed{Action: c.Action, User: userOut(c.Account)}, err
}

func (a usersAPI) SignupStatus(ctx context.Context, id string, wait time.Duration) (httptransport.SignupStatus, error) {
	s, err := a.svc.Poll(ctx, id, wait)
	return httptransport.SignupStatus{ID: s.ID, State: string(s.State), ExpiresAt: s.ExpiresAt, UserID: s.UserID, Claimed: s.Claimed,
		KeyUploadToken: s.KeyUploadToken, KeyUploadExpiresAt: s.KeyUploadExpiresAt}, err
}

func (a usersAPI) UploadUserKeys(ctx context.Context, id, token string, k httptransport.UserKeys) (httptransport.User, error) {
	v, err := a.svc.UploadKeys(ctx, id, token, users.PublicKeys{EthereumAddress: k.EthereumAddress, Pubkeys: users.Pubkeys(k.Pubkeys)})
	return userOut(v), err
}

func (a usersAPI) Users(ctx context.Context, state, email, after string, limit int) ([]httptransport.User, error) {
	vs, err := a.svc.Accounts(ctx, users.Filter{State: users.AccountState(state), Email: email}, after, limit)
	out := make([]httptransport.User, len(vs))
	for i, v := range vs {
		out[i] = userOut(v)
	}
	return out, err
}

func (a usersAPI) User(ctx context.Context, id string) (httptransport.User, error) {
	v, err := a.svc.Account(ctx, id)
	return userOut(v), err
}

func (a usersAPI) CreateUser(ctx context.Context, email, name, reference string) (httptransport.User, error) {
	v, err := a.svc.CreateAccount(ctx, email, name, reference)
	return userOut(v), err
}

func (a usersAPI) DisableUser(ctx context.Context, id string) (httptransport.User, error) {
	v, err := a.svc.Disable(ctx, id)
	return userOut(v), err
}

func (a usersAPI) DeleteUser(ctx context.Context, id string) error { return a.svc.Delete(ctx, id) }

func (a usersAPI) IssueKeyUploadToken(ctx context.Context, id string) (httptransport.KeyUploadToken, error) {
	t, err := a.svc.IssueUploadToken(ctx, id)
	return httptransport.KeyUploadToken(t), err
}

func userOut(v users.AccountView) httptransport.User {
	u := httptransport.User{ID: v.ID, Email: v.Email, Name: v.Name, Reference: v.Reference, State: string(v.State),
		Created: v.Created, Updated: v.Updated, Confirmed: v.Confirmed, DID: v.DID}
	if v.Keys != nil {
		u.Keys = &httptransport.UserKeys{EthereumAddress: v.Keys.EthereumAddress, Pubkeys: httptransport.UserPubkeys(v.Keys.Pubkeys)}
	}
	for _, c := range v.Checks {
		u.Checks = append(u.Checks, httptransport.KeyCheck(c))
	}
	for _, d := range v.DIDs {
		u.DIDs = append(u.DIDs, httptransport.UserDID(d))
	}
	return u
}
