package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
)

// Observer receives the router's and outbox's measurements; the daemon backs it
// with Prometheus. Result is a short word such as "ok", "problem", "rejected",
// "replay", "failed", "dead".
type Observer interface {
	MessageIn(msgType, result string, elapsed time.Duration)
	MessageOut(msgType, result string)
}

type nopObserver struct{}

func (nopObserver) MessageIn(string, string, time.Duration) {}
func (nopObserver) MessageOut(string, string)               {}

// RouterConfig is what a Router needs.
type RouterConfig struct {
	Identity *Identity
	// Keys resolves other parties' public keys (skid, signer kids) by DID resolution.
	Keys envelope.KeyResolver
	// Store commits each message's unit of work: its replay record, its
	// handler's writes and its replies.
	Store Store
	// Replay is looked at before a handler runs, to drop a replay early
	// (the commit of the replay record is what decides); nil skips the look.
	Replay ReplayCache
	// Messenger packs replies for return_route and for the outbox.
	Messenger *Messenger
	// ReplayWindow is how long a message id is remembered when the message has
	// no later expires_time. Default 7 days.
	ReplayWindow time.Duration
	// MaxClockSkew tolerates created_time slightly in the future. Default 5 minutes.
	MaxClockSkew time.Duration
	Observer     Observer
	// SenderLimit, when set, rate-limits authenticated senders by DID: a
	// message whose handling queues outbound messages is refused with
	// CodeRateLimited when its sender is over its budget. Messages that
	// queue nothing are not counted.
	SenderLimit Limiter
	Logger      *slog.Logger
	// Attribute, when set, names the user account of an authenticated
	// sender's DID ("" for none); the router puts it in Inbound.User and
	// logs it with the message.
	Attribute func(ctx context.Context, did string) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limiter is a rate limiter by key (a client address, a sender DID). Allow
// takes one token from key's budget and reports whether there was one; when
// not, retryAfter is how long until there is.
type Limiter interface {
	Allow(key string) (ok bool, retryAfter time.Duration)
}

// outboxFullRetryAfter is the Retry-After of a refusal because the outbox
// is full: deliveries free it at their own pace.
const outboxFullRetryAfter = time.Minute

// Router is the heart of the agent: it unpacks inbound envelopes, checks the
// message (addressed to us, not expired, not a replay), dispatches it by
// protocol identifier to the registered Handler and delivers the replies.
// Register all protocols before the first Receive; Receive is safe for
// concurrent use.
type Router struct {
	cfg RouterConfig
	log *slog.Logger
	obs Observer

	mu        sync.RWMutex
	protocols map[string]Protocol
}

// NewRouter returns a Router with no protocols registered.
func NewRouter(cfg RouterConfig) *Router {
	if cfg.ReplayWindow == 0 {
		cfg.ReplayWindow = 7 * 24 * time.Hour
	}
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Router{cfg: cfg, log: cfg.Logger, obs: cfg.Observer, protocols: map[string]Protocol{}}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.obs == nil {
		r.obs = nopObserver{}
	}
	return r
}

// Register adds a protocol. A later registration of the same PIURI replaces
// the earlier one. Registering may happen in any order, before or after the
// Messenger first asks Signs.
func (r *Router) Register(p Protocol) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.protocols[p.PIURI] = p
}

// Signs reports whether msgType is one of the types a registered protocol
// signs before encrypting (Protocol.Signed). A Messenger asks it.
func (r *Router) Signs(msgType string) bool {
	r.mu.RLock()
	p, ok := r.protocols[PIURI(msgType)]
	r.mu.RUnlock()
	return ok && slices.Contains(p.Signed, msgType)
}

// Protocols lists the registered protocols in PIURI order. It makes the Router
// the agent's Features for Discover Features.
func (r *Router) Protocols() []Protocol {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Protocol, 0, len(r.protocols))
	for _, p := range r.protocols {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PIURI < out[j].PIURI })
	return out
}

// Reply is what Receive returns to the transport.
type Reply struct {
	// Payload is the packed reply to send back on the same connection
	// (return_route), or nil.
	Payload []byte
	// MediaType is Payload's media type.
	MediaType string
	// Message is the plaintext of the inbound message, when it could be read.
	Message *Message
}

// Receive takes a packed message that arrived on a one-way transport (mail,
// a message picked up from a mediator, an invitation's attachment, an
// imported file): replies always go through the outbox, whatever
// return_route asks. transport names the transport, for logs and metrics.
//
// An error means the message was refused (bad envelope, not for us,
// expired, refused by its handler with Refuse, or not recorded because of
// our own fault): it is an *Error whose code the transport maps to its
// status, and nothing was changed. Once a message is accepted, handler
// failures are answered by a problem report to the sender and Receive
// returns no error. A replay of a message already handled is dropped with
// no error and no reply.
//
// Accepting a message is one unit of work (see Work): its replay record,
// what its handler wrote and the replies it queued in the outbox are
// committed together, durably, before Receive returns, or none of them is.
func (r *Router) Receive(ctx context.Context, transport string, raw []byte) (*Reply, error) {
	return r.receive(ctx, raw, arrival{transport: transport})
}

// ReceiveVouched is Receive for a message the operator vouches for: a
// message attached to an invitation the operator accepted through the
// admin API, an import. Its replies go through the outbox even when it is
// not authenticated (plaintext, as an invitation's attachments are), which
// Receive and ReceiveDuplex never do for a message from the network.
func (r *Router) ReceiveVouched(ctx context.Context, transport string, raw []byte) (*Reply, error) {
	return r.receive(ctx, raw, arrival{transport: transport, vouched: true})
}

// ReceiveDuplex is Receive for a transport that can carry replies back
// (return_route): an HTTP request, whose response body takes the first
// reply (Reply.Payload), or a persistent connection such as a WebSocket
// (session not nil), on which further replies are pushed after the commit.
// The handler sees the session in Inbound.Session. Like Receive, it keeps
// nothing that shares memory with raw once it returns (the HTTP endpoint
// reuses the buffer).
func (r *Router) ReceiveDuplex(ctx context.Context, transport string, raw []byte, session Session) (*Reply, error) {
	return r.receive(ctx, raw, arrival{transport: transport, duplex: true, session: session})
}

// ReceiveDeclared is ReceiveDuplex for a request whose transport declared
// the message's form (HTTP's Content-Type), without a session: a message
// of another form is refused with CodeMediaType before anything is
// decrypted. The form is checked by the scan that unpacks the message, so
// the transport need not scan it first.
func (r *Router) ReceiveDeclared(ctx context.Context, transport string, raw []byte, form envelope.Form) (*Reply, error) {
	return r.receive(ctx, raw, arrival{transport: transport, duplex: true, form: form})
}

// maxHandlerRetries bounds how often a message's handler is run again when
// its unit of work conflicted with a concurrent one.
const maxHandlerRetries = 5

// arrival is how a packed message came in.
type arrival struct {
	// transport names it, for logs and metrics.
	transport string
	// duplex: replies may ride back on the connection (return_route).
	duplex bool
	// session is the persistent connection it came on, or nil.
	session Session
	// form is the form its transport declared ("": none).
	form envelope.Form
	// vouched: the operator vouches for the message (ReceiveVouched), so
	// it may be answered through the outbox even unauthenticated.
	vouched bool
}

func (r *Router) receive(ctx context.Context, raw []byte, a arrival) (*Reply, error) {
	if c, ok := r.cfg.Store.Committer.(InflightCounter); ok {
		c.Inflight(1)
		defer c.Inflight(-1)
	}
	transport, duplex, session, vouched := a.transport, a.duplex, a.session, a.vouched
	start := time.Now()
	in, err := r.check(ctx, transport, raw, a.form)
	if err != nil {
		r.obs.MessageIn(typeOf(in), "rejected", time.Since(start))
		r.log.Info("message refused", "transport", transport, "code", ErrorCode(err), "reason", ErrorComment(err), "err", err)
		return nil, err
	}
	in.Session = session
	if r.cfg.Attribute != nil && authenticatedSender(in) {
		if in.User = r.cfg.Attribute(ctx, in.Message.From); in.User != "" {
			r.log.Debug("message from a user", "user", in.User, "from", in.Message.From, "type", in.Message.Type, "transport", transport)
		}
	}
	key, until := r.replayKey(in)
	if r.cfg.Replay != nil && in.Message.From != "" {
		// The commit of the replay record decides; this look only spares
		// the handler's work for a replay. It is for authenticated
		// messages, whose handlers may start deliveries outside the agent
		// (a text message, a letter) before their commit; anonymous ones
		// (forwards above all) skip its cost.
		if seen, err := r.cfg.Replay.Seen(ctx, key); err == nil && seen {
			return r.replayed(in, transport, start), nil
		}
	}
	counted := false
	for attempt := 0; ; attempt++ {
		in.Work = r.cfg.Store.New()
		in.Attempt = attempt
		in.Work.Remember(key, until)
		replies, result, refused := r.dispatch(ctx, in, duplex && !r.answerable(in, vouched))
		if refused != nil && errors.Is(refused, ErrUnavailable) && !HasCode(refused, CodeUnavailable) {
			// The handler could not read the store: say so, as for a commit.
			e := Wrap(CodeUnavailable, refused, "the agent cannot record messages now; try again later")
			e.RetryAfter = unavailableRetryAfter
			refused = e
		}
		if refused != nil {
			r.obs.MessageIn(in.Message.Type, "refused", time.Since(start))
			r.log.Info("message refused by its handler", "transport", transport, "type", in.Message.Type, "code", ErrorCode(refused), "reason", ErrorComment(refused))
			return &Reply{Message: &in.Message}, refused
		}
		out, pushes := r.route(ctx, in, replies, duplex, vouched)
		if len(in.Work.Outbound) > 0 && !counted && r.cfg.SenderLimit != nil && authenticatedSender(in) {
			counted = true // a conflict's second run is the same message
			if ok, wait := r.cfg.SenderLimit.Allow(in.Message.From); !ok {
				r.obs.MessageIn(in.Message.Type, "rate-limited", time.Since(start))
				r.log.Info("message refused: sender over its rate limit", "transport", transport, "type", in.Message.Type, "from", in.Message.From)
				e := Errorf(CodeRateLimited, "too many messages from this sender; try again later")
				e.RetryAfter = wait
				return &Reply{Message: &in.Message}, e
			}
		}
		err := r.cfg.Store.Commit(ctx, in.Work)
		switch {
		case errors.Is(err, ErrConflict) && attempt < maxHandlerRetries:
			continue
		case errors.Is(err, ErrReplay):
			return r.replayed(in, transport, start), nil
		case errors.Is(err, ErrQuota):
			r.obs.MessageIn(in.Message.Type, "refused", time.Since(start))
			r.log.Info("message refused: storage quota", "transport", transport, "type", in.Message.Type, "err", err)
			return &Reply{Message: &in.Message}, Wrap(CodeMeResStorage, err, "the recipient's queue is full")
		case errors.Is(err, ErrOutboxFull):
			r.obs.MessageIn(in.Message.Type, "outbox-full", time.Since(start))
			r.log.Warn("message refused: outbox full", "transport", transport, "type", in.Message.Type, "err", err)
			e := Wrap(CodeOutboxFull, err, "the agent cannot queue more outbound messages now; try again later")
			e.RetryAfter = outboxFullRetryAfter
			return &Reply{Message: &in.Message}, e
		case errors.Is(err, ErrUnavailable):
			r.obs.MessageIn(in.Message.Type, "unavailable", time.Since(start))
			r.log.Warn("message not recorded: the store is unavailable", "transport", transport, "type", in.Message.Type, "id", in.Message.ID, "err", err)
			e := Wrap(CodeUnavailable, err, "the agent cannot record messages now; try again later")
			e.RetryAfter = unavailableRetryAfter
			return &Reply{Message: &in.Message}, e
		case err != nil:
			r.obs.MessageIn(in.Message.Type, "failed", time.Since(start))
			r.log.Error("message not recorded", "transport", transport, "type", in.Message.Type, "id", in.Message.ID, "err", err)
			return &Reply{Message: &in.Message}, Wrap(CodeMe, err, "could not record the message")
		}
		for _, p := range pushes {
			if err := session.Push(ctx, p.mediaType, p.payload); err != nil {
				r.log.Info("pushing a return-route reply failed", "session", session.ID(), "err", err)
			} else {
				r.obs.MessageOut(p.msgType, "return-route")
			}
		}
		r.obs.MessageIn(in.Message.Type, result, time.Since(start))
		return out, nil
	}
}

// unavailableRetryAfter is the pause the agent asks for while its store is
// unreachable.
const unavailableRetryAfter = 5 * time.Second

func (r *Router) replayed(in *Inbound, transport string, start time.Time) *Reply {
	m := &in.Message
	r.log.Warn("replayed message dropped", "id", m.ID, "type", m.Type, "from", m.From, "transport", transport)
	r.obs.MessageIn(m.Type, "replay", time.Since(start))
	return &Reply{Message: m}
}

// replayKey is what the replay cache remembers of in, and until when.
//
// An authenticated message (authcrypted or signed) is keyed on its sender
// and id: the sender owns its id space. An unauthenticated one (a forward
// above all: anoncrypted, or plaintext) has no sender to own the id, and
// all anonymous senders would share one id space, so that one could
// suppress another's message by reusing its id. Its key is the id and the
// SHA-256 digest of the packed message as received: an exact replay of the
// bytes is still dropped, while a different message that reuses an id is
// handled. The digest costs one pass over a body that is already in memory
// (a few microseconds for a forward of a few KiB).
func (r *Router) replayKey(in *Inbound) (string, time.Time) {
	m := &in.Message
	until := in.Received.Add(r.cfg.ReplayWindow)
	if m.ExpiresTime != 0 && time.Unix(m.ExpiresTime, 0).After(until) {
		until = time.Unix(m.ExpiresTime, 0)
	}
	if in.Envelope.Authenticated || in.Envelope.NonRepudiation {
		return m.From + "\x00" + m.ID, until
	}
	sum := sha256.Sum256(in.raw)
	return anonReplayKey(m.ID, &sum), until
}

// anonReplayKey is "\x00" + id + "\x00" + BASE64URL(sum), made with one
// allocation (the string) when it fits a buffer on the stack.
func anonReplayKey(id string, sum *[sha256.Size]byte) string {
	var buf [160]byte
	b := buf[:0]
	if n := 2 + len(id) + base64.RawURLEncoding.EncodedLen(len(sum)); n > len(buf) {
		b = make([]byte, 0, n)
	}
	b = append(b, 0)
	b = append(b, id...)
	b = append(b, 0)
	b = base64.RawURLEncoding.AppendEncode(b, sum[:])
	return string(b)
}

// answerable reports whether a reply to in can reach its sender: on the
// connection (return_route), or through the outbox to an authenticated (or
// operator-vouched) sender.
func (r *Router) answerable(in *Inbound, vouched bool) bool {
	switch strings.ToLower(in.Message.ReturnRoute) {
	case "all", "thread":
		return true
	}
	return in.Message.From != "" && (vouched || authenticatedSender(in))
}

// push is a packed reply to push on the session once the work is committed.
type push struct {
	msgType, mediaType string
	payload            []byte
}

// route packs the replies: the first that may go back on the connection
// becomes the Reply's payload, further ones are pushed on the session after
// the commit, and the others are staged in the message's work for the
// outbox. A reply that can go nowhere is dropped with a log line.
//
// Only an authenticated sender (authcrypt, or signed, by the DID in from)
// is answered through the outbox: a plaintext or anoncrypted message may
// name anyone in from, and answering it there would let any client make
// the agent send to an endpoint of its choosing. Such a message's replies,
// problem reports included, go back on its own connection when
// return_route allows, or nowhere, unless the operator vouches for it
// (ReceiveVouched).
func (r *Router) route(ctx context.Context, in *Inbound, replies []Message, duplex, vouched bool) (*Reply, []push) {
	out := &Reply{Message: &in.Message}
	var pushes []push
	authenticated := vouched || authenticatedSender(in)
	for _, m := range replies {
		if duplex && r.wantsReturnRoute(in, m) {
			payload, mt, err := r.cfg.Messenger.PackReply(ctx, m, in)
			switch {
			case err != nil:
				r.log.Warn("packing return-route reply failed", "type", m.Type, "err", err)
			case out.Payload == nil:
				out.Payload, out.MediaType = payload, mt
				r.obs.MessageOut(m.Type, "return-route")
				continue
			case in.Session != nil:
				pushes = append(pushes, push{msgType: m.Type, mediaType: mt, payload: payload})
				continue
			}
		}
		if len(m.To) == 0 {
			r.log.Info("reply dropped: sender is anonymous and the transport has no way back", "type", m.Type, "thid", m.ThID)
			continue
		}
		if !authenticated {
			r.log.Info("reply dropped: the sender is not authenticated and the reply cannot go back on its connection", "type", m.Type, "thid", m.ThID, "transport", in.Transport)
			r.obs.MessageOut(m.Type, "unauthenticated-dropped")
			continue
		}
		outs, err := r.cfg.Messenger.Outbound(ctx, m)
		if err != nil {
			r.log.Warn("reply not sent: packing failed", "type", m.Type, "to", m.To, "code", ErrorCode(err), "err", err)
			continue
		}
		in.Work.Enqueue(outs...)
	}
	return out, pushes
}

// Check unpacks and checks a packed message exactly as Receive does (envelope,
// addressed to us, not expired, created_time) but records and dispatches
// nothing: no replay-cache entry, no handler, no reply. Transports that must
// refuse bad input before they acknowledge a message they process later (SMTP
// answers 250 only for a message it stored) call Check first and Receive when
// they process it. The error is an *Error as from Receive.
func (r *Router) Check(ctx context.Context, transport string, raw []byte) (*Message, error) {
	start := time.Now()
	in, err := r.check(ctx, transport, raw, "")
	if err != nil {
		r.obs.MessageIn(typeOf(in), "rejected", time.Since(start))
		r.log.Info("message refused", "transport", transport, "code", ErrorCode(err), "reason", ErrorComment(err), "err", err)
		return nil, err
	}
	return &in.Message, nil
}

func typeOf(in *Inbound) string {
	if in == nil || in.Message.Type == "" {
		return "unknown"
	}
	return in.Message.Type
}

// check unpacks a message and checks everything but replays; it changes nothing.
func (r *Router) check(ctx context.Context, transport string, raw []byte, form envelope.Form) (*Inbound, error) {
	plain, meta, err := envelope.Unpack(ctx, raw, envelope.UnpackOptions{Keys: r.cfg.Keys, Secrets: r.cfg.Identity, Form: form})
	if err != nil {
		return nil, unpackError(err)
	}
	msg, err := ParseMessage(plain)
	if err != nil {
		return nil, Wrap(CodeMsg, err, "plaintext is not a valid DIDComm message")
	}
	in := &Inbound{Message: msg, Envelope: meta, Transport: transport, Received: r.cfg.Now(), raw: raw}
	m := &in.Message
	switch {
	case m.ID == "":
		return in, Errorf(CodeMsg, "message has no id")
	case m.Type == "":
		return in, Errorf(CodeMsg, "message has no type")
	case len(m.Body) > 0 && m.Body[0] != '{':
		return in, Errorf(CodeMsg, "message body must be a JSON object")
	}
	if len(m.To) > 0 {
		mine := false
		for _, to := range m.To {
			if r.cfg.Identity.Owns(DIDOf(to)) {
				mine = true
				break
			}
		}
		if !mine {
			return in, Errorf(CodeNotForUs, "message is not addressed to this agent")
		}
	}
	now := in.Received
	if m.Expired(now) {
		return in, Errorf(CodeMsgExpired, "message expired at %s", time.Unix(m.ExpiresTime, 0).UTC().Format(time.RFC3339))
	}
	if m.CreatedTime > now.Add(r.cfg.MaxClockSkew).Unix() {
		return in, Errorf(CodeMsg, "created_time lies in the future")
	}
	return in, nil
}

// unpackError maps envelope errors onto problem codes with a short reason.
func unpackError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	switch {
	case errors.Is(err, envelope.ErrUnsupported):
		return Wrap(CodeMsgUnsupported, err, err.Error())
	case errors.Is(err, envelope.ErrNoRecipientKey):
		return Wrap(CodeNotForUs, err, "none of the recipient keys belongs to this agent")
	case errors.Is(err, envelope.ErrDecrypt):
		return Wrap(CodeTrustCrypto, err, "decryption failed: wrong key or tampered message")
	case errors.Is(err, envelope.ErrBadSignature):
		return Wrap(CodeTrustCrypto, err, "signature verification failed")
	case errors.Is(err, envelope.ErrSenderMismatch):
		return Wrap(CodeTrust, err, err.Error())
	case errors.Is(err, envelope.ErrSenderKey):
		if errors.Is(err, did.ErrUnsupportedMethod) {
			return Wrap(CodeDIDUnsupported, err, err.Error())
		}
		if errors.Is(err, did.ErrBusy) {
			e := Wrap(CodeBusy, err, "too many DID resolutions in progress; try again later")
			e.RetryAfter = time.Second
			return e
		}
		return Wrap(CodeDIDUnresolved, err, err.Error())
	case errors.Is(err, envelope.ErrMalformed):
		return Wrap(CodeMsg, err, err.Error())
	case errors.Is(err, envelope.ErrFormMismatch):
		return Wrap(CodeMediaType, err, err.Error())
	}
	return Wrap(CodeMsg, err, "message could not be unpacked")
}

// dispatch runs the handler and returns the replies, problem reports included,
// and a result word for metrics; or the handler's refusal (see Refuse).
//
// When unanswerable, a problem has no way to reach the sender (an
// unauthenticated message that asked for no return route, on a transport
// that can answer with a status): the handler's error is then returned as
// a refusal, so that the transport answers with it and nothing of the
// message is kept, instead of accepting a message whose failure nobody
// would learn of.
func (r *Router) dispatch(ctx context.Context, in *Inbound, unanswerable bool) ([]Message, string, error) {
	m := in.Message
	r.mu.RLock()
	p, ok := r.protocols[PIURI(m.Type)]
	r.mu.RUnlock()
	var replies []Message
	var err error
	if !ok {
		err = Errorf(CodeMsgUnsupported, "message type %q is not supported", m.Type)
	} else {
		replies, err = r.safeHandle(ctx, p.Handler, in)
	}
	if err != nil && IsRefusal(err) {
		return nil, "", err
	}
	if err != nil && unanswerable && m.Type != ProblemReportType {
		return nil, "", Refuse(err)
	}
	result := "ok"
	if err != nil {
		result = "problem"
		r.log.Info("message answered with a problem report", "type", m.Type, "id", m.ID, "code", ErrorCode(err), "err", err)
		if m.Type == ProblemReportType {
			return nil, result, nil // never answer a problem report with one
		}
		replies = append(replies, ProblemReport(m, err))
	}
	self := r.replyFrom(in)
	for i := range replies {
		if replies[i].From == "" {
			replies[i].From = self
		}
		if len(replies[i].To) == 0 && m.From != "" {
			replies[i].To = []string{m.From}
		}
	}
	return replies, result, nil
}

// safeHandle runs the handler; a panic is logged with its stack and its
// unit of work discarded, and the message answered as an internal error.
func (r *Router) safeHandle(ctx context.Context, h Handler, in *Inbound) (replies []Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("handler panicked", "type", in.Message.Type, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			in.Work = r.cfg.Store.New()
			key, until := r.replayKey(in)
			in.Work.Remember(key, until)
			replies, err = nil, Errorf(CodeMe, "internal error")
		}
	}()
	return h.HandleMessage(ctx, in)
}

// replyFrom picks the DID the agent answers as: the DID the message was sent to.
func (r *Router) replyFrom(in *Inbound) string {
	for _, to := range in.Message.To {
		if r.cfg.Identity.Owns(DIDOf(to)) {
			return DIDOf(to)
		}
	}
	for _, kid := range in.Envelope.EncryptedTo {
		if r.cfg.Identity.Owns(DIDOf(kid)) {
			return DIDOf(kid)
		}
	}
	return r.cfg.Identity.DID()
}

// authenticatedSender reports whether in's sender is proven: the envelope
// was authcrypted or signed with a key of the DID in its from (Unpack
// refuses a from that is not the DID of the authcrypt sender or signer).
func authenticatedSender(in *Inbound) bool {
	m, md := &in.Message, &in.Envelope
	if m.From == "" || !md.Authenticated {
		return false
	}
	return (md.EncryptedFrom != "" && DIDOf(md.EncryptedFrom) == m.From) ||
		(md.NonRepudiation && md.SignFrom != "" && DIDOf(md.SignFrom) == m.From)
}

// wantsReturnRoute reports whether reply m should go back on the inbound connection.
func (r *Router) wantsReturnRoute(in *Inbound, m Message) bool {
	switch strings.ToLower(in.Message.ReturnRoute) {
	case "all":
		return true
	case "thread":
		return m.ThID == in.Message.Thread() || m.PThID == in.Message.Thread()
	}
	return false
}
