package privado

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/iden3auth"
	"github.com/iden3/iden3comm/v2/protocol"
)

// Circuits of the two alternative scopes.
const (
	CircuitMTP = "credentialAtomicQueryMTPV2"
	CircuitSig = "credentialAtomicQuerySigV2"
)

// ProofRequest is an exchange's request.
type ProofRequest struct {
	UserReference string
	Challenge     json.RawMessage
	Callback      string
	// Query, when set, replaces the exchange's proof template.
	Query map[string]any
}

// MaxReferenceLen bounds a user reference.
const MaxReferenceLen = 200

// Request takes exchange ex's proof request: it checks everything, then
// stores the interaction, its consent-token index and the consent mail in
// one unit of work. A refusal stores nothing and mails nothing.
func (s *Service) Request(ctx context.Context, ex ExchangeView, req ProofRequest) (InteractionView, error) {
	if l := s.cfg.RequestLimit; l != nil {
		if ok, wait := l.Allow(ex.ID); !ok {
			return InteractionView{}, &agent.Error{Code: agent.CodeRateLimited, RetryAfter: wait,
				Comment: "too many proof requests from this exchange; try again later"}
		}
	}
	if req.UserReference == "" || len(req.UserReference) > MaxReferenceLen {
		return InteractionView{}, agent.Errorf(agent.CodeMsg, "userReference: required, at most %d characters", MaxReferenceLen)
	}
	challenge, err := ParseChallenge(req.Challenge)
	if err != nil {
		return InteractionView{}, err
	}
	query := req.Query
	if query == nil {
		query = ex.ProofTemplate
	}
	if err := CheckQuery(query); err != nil {
		return InteractionView{}, err
	}
	if _, err := scopes(challenge, query); err != nil {
		return InteractionView{}, err
	}
	callback, err := s.cfg.Callbacks.Check(ctx, req.Callback, ex.CallbackAllowList)
	if err != nil {
		return InteractionView{}, err
	}
	user, err := s.cfg.Users.LookupUser(ctx, req.UserReference)
	if err != nil {
		return InteractionView{}, err
	}
	now := s.now()
	in := Interaction{ID: newInteractionID(now), ExchangeID: ex.ID, ExchangeName: ex.Name, UserID: user.ID,
		UserReference: req.UserReference, Challenge: challenge, Callback: callback, Query: query,
		State: StateProofRequest, Created: now, Updated: now, ConsentExpires: now.Add(s.cfg.ConsentTTL).Truncate(time.Second),
		History: []Transition{{To: StateProofRequest, At: now, Cause: "requested by " + ex.Name}}}
	token := newSecret()
	link := s.cfg.BaseURL + ConsentPath + "?token=" + url.QueryEscape(token)
	msg, err := s.cfg.Template.compose("", s.cfg.MailFrom, user.Email, MailData{
		Name: user.Name, Email: user.Email, Exchange: ex.Name, What: Describe(query), Challenge: challenge, Link: link,
		Expires: in.ConsentExpires.Format(time.RFC1123), TTL: s.cfg.ConsentTTL.String(), Agent: s.cfg.AgentName,
	}, now)
	if err != nil {
		return InteractionView{}, fmt.Errorf("privado: consent mail: %w", err)
	}
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		if err := w.PutJSON(KindToken, hashKey(token), &tokenIndex{InteractionID: in.ID, UserID: user.ID, Expires: in.ConsentExpires}); err != nil {
			return err
		}
		w.Enqueue(&agent.OutboundMessage{To: user.Email, Endpoint: "mailto:" + user.Email, MediaType: MediaTypeMail,
			MessageType: "privado-consent", Payload: msg})
		return saveNew(w, &in)
	})
	if err != nil {
		return InteractionView{}, err
	}
	s.log.InfoContext(ctx, "privado: proof requested", "interaction", in.ID, "exchange", ex.ID, "user", user.ID)
	return in.View(now), nil
}

// scopes are the two alternative scopes of challenge c with query q.
func scopes(c uint32, q map[string]any) ([]protocol.ZeroKnowledgeProofRequest, error) {
	opt := true
	out := []protocol.ZeroKnowledgeProofRequest{
		{ID: c, CircuitID: CircuitMTP, Optional: &opt, Query: q},
		{ID: SigScopeID(c), CircuitID: CircuitSig, Optional: &opt, Query: q},
	}
	if err := iden3auth.ValidateScope(out); err != nil {
		return nil, agent.Errorf(agent.CodeMsg, "query: %s", agent.ErrorComment(err))
	}
	return out, nil
}

// tokenOwner returns the index of a consent token that has not expired.
func (s *Service) tokenOwner(ctx context.Context, token string) (tokenIndex, error) {
	var ix tokenIndex
	if !validSecret(token) {
		return ix, ErrTokenGone
	}
	b, err := s.cfg.Store.Records.Get(ctx, KindToken, hashKey(token))
	if isNotFound(err) {
		return ix, ErrTokenGone
	}
	if err != nil {
		return ix, err
	}
	if err := json.Unmarshal(b, &ix); err != nil {
		return ix, err
	}
	if !s.now().Before(ix.Expires) {
		return ix, ErrTokenGone
	}
	return ix, nil
}

func (s *Service) loadInteraction(ctx context.Context, id string) (*Interaction, error) {
	if !validHexID(id) {
		return nil, errNoInteraction
	}
	b, err := s.cfg.Store.Records.Get(ctx, KindInteraction, id)
	if isNotFound(err) {
		return nil, errNoInteraction
	}
	if err != nil {
		return nil, err
	}
	var in Interaction
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("privado: interaction %s is corrupt: %w", id, err)
	}
	return &in, nil
}

// Wallet is how the user's wallet reaches the iden3 request of an
// interaction.
type Wallet struct {
	SessionID  string `json:"sessionId"`
	RequestURI string `json:"request_uri"`
	// DeepLink is iden3comm://?request_uri=...; UniversalLink the form
	// web wallets accept.
	DeepLink      string    `json:"deepLink"`
	UniversalLink string    `json:"universalLink"`
	Expires       time.Time `json:"expires"`
}

// UniversalLinkBase is the Privado ID web wallet's link prefix.
const UniversalLinkBase = "https://wallet.privado.id/#"

// ConsentView is what the consent page shows.
type ConsentView struct {
	Interaction InteractionView `json:"interaction"`
	// Decided tells that the token decided already (it still reads).
	Decided bool `json:"decided"`
	// Wallet is set while the wallet can answer (after consent).
	Wallet *Wallet `json:"wallet,omitempty"`
}

func (s *Service) consentView(in *Interaction, now time.Time) ConsentView {
	v := ConsentView{Interaction: in.View(now), Decided: in.State != StateProofRequest}
	if in.Effective(now) == StateGivenConsent && in.SessionID != "" {
		uri := s.cfg.Verifier.RequestURI(in.SessionID)
		v.Wallet = &Wallet{SessionID: in.SessionID, RequestURI: uri, DeepLink: s.cfg.Verifier.DeepLink(in.SessionID),
			UniversalLink: UniversalLinkBase + "request_uri=" + url.QueryEscape(uri), Expires: in.ProofExpires}
	}
	return v
}

// ConsentInfo says what a consent token is about, changing nothing.
func (s *Service) ConsentInfo(ctx context.Context, token string) (ConsentView, error) {
	ix, err := s.tokenOwner(ctx, token)
	if err != nil {
		return ConsentView{}, err
	}
	if ix.InteractionID == "" {
		return ConsentView{}, errReadOnly
	}
	in, err := s.loadInteraction(ctx, ix.InteractionID)
	if err != nil {
		return ConsentView{}, err
	}
	return s.consentView(in, s.now()), nil
}

// Consent takes the user's decision. Yes creates the iden3 request and
// moves the interaction to GivenConsent; no moves it to NotGivenConsent and
// queues the exchange's callback, in the same unit of work. A token decides
// once: a second decision is agent.CodeConflict, an expired or unknown
// token ErrTokenGone.
func (s *Service) Consent(ctx context.Context, token string, yes bool) (ConsentView, error) {
	ix, err := s.tokenOwner(ctx, token)
	if err != nil {
		return ConsentView{}, err
	}
	if ix.InteractionID == "" {
		return ConsentView{}, errReadOnly
	}
	in, err := s.loadInteraction(ctx, ix.InteractionID)
	if err != nil {
		return ConsentView{}, err
	}
	now := s.now()
	if err := decidable(in, now); err != nil {
		return ConsentView{}, err
	}
	var create iden3auth.CreateRequest
	if yes {
		sc, err := scopes(in.Challenge, in.Query)
		if err != nil {
			return ConsentView{}, err
		}
		create = iden3auth.CreateRequest{
			Reason: in.ExchangeName + " asks for a proof " + clipWords(Describe(in.Query), 400),
			Scope:  sc, Message: strconv.FormatUint(uint64(in.Challenge), 10),
			ExpiresIn: s.cfg.ProofTTL, Chain: s.cfg.Chain, MaxRefusals: s.cfg.MaxAttempts,
		}
	}
	var out Interaction
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		var cur Interaction
		if err := getIn(ctx, w, KindInteraction, in.ID, &cur); err != nil {
			return err
		}
		if err := decidable(&cur, now); err != nil {
			return err
		}
		if yes {
			if err := cur.moveTo(StateGivenConsent, now, "the user gave consent"); err != nil {
				return err
			}
			// The wallet's request is made in this unit of work: it
			// exists if and only if the consent is recorded.
			sess, err := s.cfg.Verifier.CreateIn(ctx, w, create)
			if err != nil {
				return err
			}
			cur.SessionID, cur.ProofExpires = sess.ID, sess.Expires
			if err := w.PutJSON(KindSession, sess.ID, &sessionIndex{InteractionID: cur.ID}); err != nil {
				return err
			}
		} else {
			if err := cur.moveTo(StateNotGivenConsent, now, "the user refused consent"); err != nil {
				return err
			}
			if err := s.callback(w, &cur); err != nil {
				return err
			}
		}
		out = cur
		return save(w, &cur)
	})
	if err != nil {
		return ConsentView{}, err
	}
	s.log.InfoContext(ctx, "privado: consent decided", "interaction", out.ID, "state", out.State)
	return s.consentView(&out, now), nil
}

// errReadOnly refuses a decision with a token that only reads.
var errReadOnly = agent.Errorf(agent.CodeForbidden, "this link only shows your requests; decide with the link of the request's mail")

// MailLoginLink mails the user with address email a link that reads their
// interactions until ConsentTTL from now. The answer is the same whether
// or not the address has an account (nil; nothing is mailed without one),
// so that nobody learns which addresses have accounts; a rate-limited
// address is agent.CodeRateLimited.
func (s *Service) MailLoginLink(ctx context.Context, email string) error {
	email = strings.TrimSpace(email)
	if len(email) > 254 || !strings.Contains(email, "@") || strings.ContainsAny(email, " \t\r\n<>") {
		return agent.Errorf(agent.CodeMsg, "email: not a mail address")
	}
	if l := s.cfg.LoginLimit; l != nil {
		if ok, wait := l.Allow(strings.ToLower(email)); !ok {
			return &agent.Error{Code: agent.CodeRateLimited, RetryAfter: wait, Comment: "too many links asked for this address; try again later"}
		}
	}
	user, err := s.cfg.Users.UserByEmail(ctx, email)
	if agent.HasCode(err, agent.CodeNotFound) {
		s.log.InfoContext(ctx, "privado: login link asked for an address without an account")
		return nil
	}
	if err != nil {
		return err
	}
	now := s.now()
	expires := now.Add(s.cfg.ConsentTTL).Truncate(time.Second)
	token := newSecret()
	msg, err := s.cfg.Template.compose("login_", s.cfg.MailFrom, user.Email, MailData{
		Name: user.Name, Email: user.Email, Link: s.cfg.BaseURL + InteractionsPath + "?token=" + url.QueryEscape(token),
		Expires: expires.Format(time.RFC1123), TTL: s.cfg.ConsentTTL.String(), Agent: s.cfg.AgentName,
	}, now)
	if err != nil {
		return fmt.Errorf("privado: login mail: %w", err)
	}
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		w.Enqueue(&agent.OutboundMessage{To: user.Email, Endpoint: "mailto:" + user.Email, MediaType: MediaTypeMail,
			MessageType: "privado-login", Payload: msg})
		return w.PutJSON(KindToken, hashKey(token), &tokenIndex{UserID: user.ID, Expires: expires})
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "privado: login link mailed", "user", user.ID)
	return nil
}

// decidable refuses a decision on an interaction that is not waiting for
// one.
func decidable(in *Interaction, now time.Time) error {
	switch st := in.Effective(now); st {
	case StateProofRequest:
		return nil
	case StateExpired:
		return agent.Errorf(agent.CodeGone, "this request expired before a decision")
	default:
		return agent.Errorf(agent.CodeConflict, "this request was decided already (%s)", st)
	}
}

// clipWords shortens s to at most n bytes, on a character boundary.
func clipWords(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Callback is the JSON body posted to an exchange's callback URL.
type Callback struct {
	ID            string     `json:"id"`
	UserReference string     `json:"userReference"`
	Challenge     uint32     `json:"challenge"`
	State         State      `json:"state"`
	ProofKind     string     `json:"proofKind,omitempty"`
	CircuitID     string     `json:"circuitId,omitempty"`
	Proof         string     `json:"proof,omitempty"`
	Verified      bool       `json:"verified,omitempty"`
	Issuer        string     `json:"issuer,omitempty"`
	VerifiedAt    *time.Time `json:"verifiedAt,omitempty"`
	// Reason says why an interaction expired or failed.
	Reason string `json:"reason,omitempty"`
}

// callback queues the exchange's callback for in's current state in w.
func (s *Service) callback(w *agent.Work, in *Interaction) error {
	cb := Callback{ID: in.ID, UserReference: in.UserReference, Challenge: in.Challenge, State: in.State}
	if p := in.Proof; p != nil && in.State == StateProofShared {
		at := p.VerifiedAt
		cb.ProofKind, cb.CircuitID, cb.Proof, cb.Verified, cb.Issuer, cb.VerifiedAt = p.Kind, p.CircuitID, p.Token, true, p.Issuer, &at
	}
	if in.State == StateExpired || in.State == StateFailed {
		cb.Reason = in.History[len(in.History)-1].Cause
	}
	b, err := json.Marshal(cb)
	if err != nil {
		return err
	}
	w.Enqueue(&agent.OutboundMessage{To: "exchange:" + in.ExchangeID,
		Endpoint:  CallbackEndpoint(in.Callback, in.ExchangeID, in.ID+"."+string(in.State)),
		MediaType: "application/json", MessageType: "privado-callback", Payload: b})
	return nil
}

// CallbackScheme prefixes the outbox endpoint of a callback:
// "privado+https://cb.example/x#exchange=<id>&delivery=<id>". The fragment
// (never sent) names the exchange whose secret signs it and the delivery
// id, the same on every retry.
const CallbackScheme = "privado+"

// CallbackEndpoint is the outbox endpoint of a callback to target.
func CallbackEndpoint(target, exchangeID, deliveryID string) string {
	return CallbackScheme + target + "#" + url.Values{"exchange": {exchangeID}, "delivery": {deliveryID}}.Encode()
}

// ParseCallbackEndpoint splits a callback endpoint.
func ParseCallbackEndpoint(endpoint string) (target, exchangeID, deliveryID string, err error) {
	rest, ok := cutPrefix(endpoint, CallbackScheme)
	if !ok {
		return "", "", "", fmt.Errorf("privado: %q is not a callback endpoint", endpoint)
	}
	u, err := url.Parse(rest)
	if err != nil {
		return "", "", "", fmt.Errorf("privado: callback endpoint: %w", err)
	}
	q, err := url.ParseQuery(u.Fragment)
	if err != nil || q.Get("exchange") == "" || q.Get("delivery") == "" {
		return "", "", "", fmt.Errorf("privado: callback endpoint without exchange and delivery")
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String(), q.Get("exchange"), q.Get("delivery"), nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

// onVerdict is the iden3 verdict hook: in the verdict's unit of work, the
// interaction of the session (if any) moves on and its callback is queued.
func (s *Service) onVerdict(ctx context.Context, w *agent.Work, sess *iden3auth.Session, now time.Time) error {
	var ix sessionIndex
	if err := getIn(ctx, w, KindSession, sess.ID, &ix); isNotFound(err) {
		return nil // not an exchange's session
	} else if err != nil {
		return err
	}
	var in Interaction
	if err := getIn(ctx, w, KindInteraction, ix.InteractionID, &in); err != nil {
		return err
	}
	if in.State != StateGivenConsent {
		return nil // decided otherwise already (e.g. expired by the sweep)
	}
	now = now.UTC()
	switch sess.State {
	case iden3auth.StateVerified:
		p := pick(sess)
		if p == nil {
			if err := in.moveTo(StateFailed, now, "the wallet's answer holds no credential proof"); err != nil {
				return err
			}
			break
		}
		if err := in.moveTo(StateProofShared, now, "the wallet's "+p.Kind+" proof was verified"); err != nil {
			return err
		}
		in.Proof = p
	case iden3auth.StateFailed:
		if err := in.moveTo(StateFailed, now, "the wallet's answers failed verification: "+sess.Reason); err != nil {
			return err
		}
	default: // expired, cancelled
		if err := in.moveTo(StateExpired, now, "no verified answer from the wallet before the request "+string(sess.State)); err != nil {
			return err
		}
	}
	if err := s.callback(w, &in); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "privado: interaction", "interaction", in.ID, "state", in.State)
	return save(w, &in)
}

// pick chooses the shared proof of a verified session: the full (MTP)
// proof when the wallet gave one, else the signature proof.
func pick(sess *iden3auth.Session) *SharedProof {
	if sess.Result == nil {
		return nil
	}
	var best *iden3auth.ScopeResult
	for i := range sess.Result.Scopes {
		sc := &sess.Result.Scopes[i]
		if sc.ProofKind == iden3auth.ProofKindMTP || (best == nil && sc.ProofKind == iden3auth.ProofKindSig) {
			best = sc
		}
	}
	if best == nil {
		return nil
	}
	return &SharedProof{Kind: best.ProofKind, CircuitID: best.CircuitID, Token: sess.Token, Issuer: best.Issuer,
		UserDID: sess.Result.UserDID, VerifiedAt: sess.Result.Verified.UTC()}
}

// Verification answers an exchange's POST /v1/proof/verify/.
type Verification struct {
	Valid         bool   `json:"valid"`
	Reason        string `json:"reason"`
	ProofKind     string `json:"proofKind,omitempty"`
	UserReference string `json:"userReference"`
	Challenge     uint32 `json:"challenge"`
	InteractionID string `json:"interactionId"`
}

// VerifyProof verifies token again, for exchange ex, against the
// interaction it answers and the chain as it is now. A token of no
// interaction, or of another exchange's, is agent.CodeNotFound (nothing
// is disclosed); a chain that cannot be read, agent.CodeBusy.
func (s *Service) VerifyProof(ctx context.Context, ex ExchangeView, token string) (Verification, error) {
	if token == "" {
		return Verification{}, agent.Errorf(agent.CodeMsg, "proof: required, the JWZ token the callback carried")
	}
	if len(token) > iden3auth.MaxTokenBytes {
		return Verification{}, agent.Errorf(agent.CodeTooLarge, "proof: larger than %d bytes", iden3auth.MaxTokenBytes)
	}
	thid, err := iden3auth.ThreadOf([]byte(token))
	if err != nil {
		return Verification{}, agent.Errorf(agent.CodeMsg, "proof: not an iden3 authorization response token")
	}
	b, err := s.cfg.Store.Records.Get(ctx, KindSession, thid)
	if isNotFound(err) {
		return Verification{}, errNoInteraction
	}
	if err != nil {
		return Verification{}, err
	}
	var ix sessionIndex
	if err := json.Unmarshal(b, &ix); err != nil {
		return Verification{}, err
	}
	in, err := s.loadInteraction(ctx, ix.InteractionID)
	if err != nil {
		return Verification{}, err
	}
	if in.ExchangeID != ex.ID {
		return Verification{}, errNoInteraction
	}
	v := Verification{UserReference: in.UserReference, Challenge: in.Challenge, InteractionID: in.ID}
	res, err := s.cfg.Verifier.Recheck(ctx, in.SessionID, []byte(token))
	switch {
	case err == nil:
		p := pick(&iden3auth.Session{Result: res, Token: token})
		if p == nil {
			v.Reason = "the token holds no credential proof"
			return v, nil
		}
		v.Valid, v.ProofKind, v.Reason = true, p.Kind, "the proof verifies against the request and the chain"
		return v, nil
	case agent.HasCode(err, iden3auth.CodeRefused), agent.HasCode(err, agent.CodeMsg):
		v.Reason = agent.ErrorComment(err)
		return v, nil
	}
	return Verification{}, err
}

// Page bounds.
const (
	DefaultPage = 50
	MaxPage     = 200
)

// Filter selects interactions.
type Filter struct {
	// UserID and ExchangeID, when set, select by user and by exchange;
	// State, by effective state.
	UserID, ExchangeID string
	State              State
	// Before is a cursor: only interactions older than this id.
	Before string
	Limit  int
}

// List returns interactions newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]InteractionView, error) {
	if f.State != "" && !f.State.Valid() {
		return nil, agent.Errorf(agent.CodeMsg, "state: not an interaction state")
	}
	if f.Limit <= 0 {
		f.Limit = DefaultPage
	}
	f.Limit = min(f.Limit, MaxPage)
	now := s.now()
	kind, prefix := KindNewest, ""
	switch {
	case f.UserID != "":
		kind, prefix = KindByUser, f.UserID+"/"
	case f.ExchangeID != "":
		kind, prefix = KindByExchange, f.ExchangeID+"/"
	}
	out := []InteractionView{}
	err := s.walkNewest(ctx, kind, prefix, f.Before, func(in *Interaction) bool {
		if (f.UserID == "" || in.UserID == f.UserID) && (f.ExchangeID == "" || in.ExchangeID == f.ExchangeID) &&
			(f.State == "" || in.Effective(now) == f.State) {
			out = append(out, in.View(now))
		}
		return len(out) < f.Limit
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UserInteractions lists the interactions of the user a consent token
// belongs to (a token reads until it expires, decided or not), newest
// first, those of exchange vaspID only when it is set.
func (s *Service) UserInteractions(ctx context.Context, token, vaspID, before string, limit int) ([]InteractionView, error) {
	ix, err := s.tokenOwner(ctx, token)
	if err != nil {
		return nil, err
	}
	return s.List(ctx, Filter{UserID: ix.UserID, ExchangeID: vaspID, Before: before, Limit: limit})
}

// Interaction describes one interaction (operators).
func (s *Service) Interaction(ctx context.Context, id string) (InteractionView, error) {
	in, err := s.loadInteraction(ctx, id)
	if err != nil {
		return InteractionView{}, err
	}
	return in.View(s.now()), nil
}

// Sweep records the expiry of interactions whose consent link expired
// undecided, each in its own unit of work with its callback. (An expired
// iden3 request reaches the interaction through the verdict hook.)
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.now()
	n := 0
	after := ""
	bound := pendingKey(now, "")
	for {
		recs, err := s.cfg.Store.Records.List(ctx, KindPending, after, 256)
		if err != nil {
			return n, err
		}
		for _, p := range recs {
			after = p.ID
			if p.ID >= bound {
				return n, nil
			}
			_, id, _ := strings.Cut(p.ID, "/")
			b, err := s.cfg.Store.Records.Get(ctx, KindInteraction, id)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return n, err
			}
			var in Interaction
			if json.Unmarshal(b, &in) != nil || in.State != StateProofRequest || now.Before(in.ConsentExpires) {
				continue
			}
			moved := false
			err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
				moved = false
				var cur Interaction
				if err := getIn(ctx, w, KindInteraction, id, &cur); err != nil {
					return err
				}
				if cur.State != StateProofRequest || now.Before(cur.ConsentExpires) {
					return nil
				}
				if err := cur.moveTo(StateExpired, now, "no decision before the consent link expired"); err != nil {
					return err
				}
				if err := s.callback(w, &cur); err != nil {
					return err
				}
				moved = true
				return save(w, &cur)
			})
			if err != nil {
				return n, err
			}
			if moved {
				n++
			}
		}
		if len(recs) < 256 {
			return n, nil
		}
	}
}

// Run sweeps every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("privado: sweep failed", "err", err)
		} else if n > 0 {
			s.log.Info("privado: sweep", "expired", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
