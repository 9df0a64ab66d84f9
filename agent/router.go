package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	// Replay remembers message ids to drop replays.
	Replay ReplayCache
	// Messenger packs replies for return_route and sends the others through the outbox.
	Messenger *Messenger
	// ReplayWindow is how long a message id is remembered when the message has
	// no later expires_time. Default 7 days.
	ReplayWindow time.Duration
	// MaxClockSkew tolerates created_time slightly in the future. Default 5 minutes.
	MaxClockSkew time.Duration
	Observer     Observer
	Logger       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

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
// the earlier one.
func (r *Router) Register(p Protocol) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.protocols[p.PIURI] = p
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

// Receive takes a packed message as a transport received it. An error means the
// message was refused before any processing (bad envelope, not for us,
// expired, ...) or by its handler (see Refuse): it is an *Error whose code
// maps to the transport's status, and nothing was changed. Once a message is
// accepted, handler failures are answered by a problem report to the sender
// and Receive returns no error.
func (r *Router) Receive(ctx context.Context, transport string, raw []byte) (*Reply, error) {
	return r.ReceiveSession(ctx, transport, raw, nil)
}

// ReceiveSession is Receive for a message that came on a persistent
// connection (a WebSocket): the handler sees the session in
// Inbound.Session, and replies that go back on the connection beyond the
// first (which is returned in Reply.Payload, as with Receive) are pushed on
// it. A nil session makes it Receive.
func (r *Router) ReceiveSession(ctx context.Context, transport string, raw []byte, session Session) (*Reply, error) {
	start := time.Now()
	in, err := r.accept(ctx, transport, raw)
	if err != nil {
		if errors.Is(err, errReplay) {
			r.obs.MessageIn(in.Message.Type, "replay", time.Since(start))
			return &Reply{Message: &in.Message}, nil
		}
		r.obs.MessageIn(typeOf(in), "rejected", time.Since(start))
		r.log.Info("message refused", "transport", transport, "code", ErrorCode(err), "reason", ErrorComment(err), "err", err)
		return nil, err
	}
	in.Session = session
	replies, result, refused := r.dispatch(ctx, in)
	if refused != nil {
		r.obs.MessageIn(in.Message.Type, "refused", time.Since(start))
		r.log.Info("message refused by its handler", "transport", transport, "type", in.Message.Type, "code", ErrorCode(refused), "reason", ErrorComment(refused))
		return &Reply{Message: &in.Message}, refused
	}
	out := &Reply{Message: &in.Message}
	for _, m := range replies {
		if Duplex(transport) && r.wantsReturnRoute(in, m) {
			payload, mt, perr := r.cfg.Messenger.PackReply(ctx, m, in)
			if perr == nil && out.Payload == nil {
				out.Payload, out.MediaType = payload, mt
				r.obs.MessageOut(m.Type, "return-route")
				continue
			}
			if perr == nil && session != nil {
				if err := session.Push(ctx, mt, payload); err == nil {
					r.obs.MessageOut(m.Type, "return-route")
					continue
				}
			}
			if perr != nil {
				r.log.Warn("packing return-route reply failed", "type", m.Type, "err", perr)
			}
		}
		if len(m.To) == 0 {
			r.log.Info("reply dropped: sender is anonymous and asked for no return route", "type", m.Type, "thid", m.ThID)
			continue
		}
		if serr := r.cfg.Messenger.Send(ctx, m); serr != nil {
			r.log.Warn("sending reply failed", "type", m.Type, "to", m.To, "err", serr)
		}
	}
	r.obs.MessageIn(in.Message.Type, result, time.Since(start))
	return out, nil
}

var errReplay = errors.New("replay")

// Check unpacks and checks a packed message exactly as Receive does (envelope,
// addressed to us, not expired, created_time) but records and dispatches
// nothing: no replay-cache entry, no handler, no reply. Transports that must
// refuse bad input before they acknowledge a message they process later (SMTP
// answers 250 only for a message it stored) call Check first and Receive when
// they process it. The error is an *Error as from Receive.
func (r *Router) Check(ctx context.Context, transport string, raw []byte) (*Message, error) {
	start := time.Now()
	in, err := r.check(ctx, transport, raw)
	if err != nil {
		r.obs.MessageIn(typeOf(in), "rejected", time.Since(start))
		r.log.Info("message refused", "transport", transport, "code", ErrorCode(err), "reason", ErrorComment(err), "err", err)
		return nil, err
	}
	return &in.Message, nil
}

// Duplex reports whether replies can travel back on the connection a message
// came in on, which return_route asks for. Mail ("smtp") is one-way, and so
// is a message picked up from a mediator ("pickup"): replies to them always
// go through the outbox.
func Duplex(transport string) bool {
	return transport != "smtp" && transport != "pickup"
}

func typeOf(in *Inbound) string {
	if in == nil || in.Message.Type == "" {
		return "unknown"
	}
	return in.Message.Type
}

// accept unpacks and checks a message and records it in the replay cache. On
// errReplay the returned Inbound holds the message.
func (r *Router) accept(ctx context.Context, transport string, raw []byte) (*Inbound, error) {
	in, err := r.check(ctx, transport, raw)
	if err != nil {
		return in, err
	}
	m := &in.Message
	now := in.Received
	if r.cfg.Replay != nil {
		until := now.Add(r.cfg.ReplayWindow)
		if m.ExpiresTime != 0 && time.Unix(m.ExpiresTime, 0).After(until) {
			until = time.Unix(m.ExpiresTime, 0)
		}
		if r.ownReplay(m.Type) {
			in.ReplayKey, in.ReplayUntil = m.From+"\x00"+m.ID, until
			return in, nil
		}
		seen, err := r.cfg.Replay.Remember(ctx, m.From+"\x00"+m.ID, until)
		if err != nil {
			return in, Wrap(CodeMe, err, "could not record the message")
		}
		if seen {
			r.log.Warn("replayed message dropped", "id", m.ID, "type", m.Type, "from", m.From, "transport", transport)
			return in, errReplay
		}
	}
	return in, nil
}

// check unpacks a message and checks everything but replays; it changes nothing.
func (r *Router) check(ctx context.Context, transport string, raw []byte) (*Inbound, error) {
	plain, meta, err := envelope.Unpack(ctx, raw, envelope.UnpackOptions{Keys: r.cfg.Keys, Secrets: r.cfg.Identity})
	if err != nil {
		return nil, unpackError(err)
	}
	in := &Inbound{Envelope: meta, Transport: transport, Received: r.cfg.Now()}
	if err := json.Unmarshal(plain, &in.Message); err != nil {
		return nil, Wrap(CodeMsg, err, "plaintext is not a valid DIDComm message")
	}
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
		return Wrap(CodeDIDUnresolved, err, err.Error())
	case errors.Is(err, envelope.ErrMalformed):
		return Wrap(CodeMsg, err, err.Error())
	}
	return Wrap(CodeMsg, err, "message could not be unpacked")
}

// ownReplay reports whether the protocol of msgType de-duplicates messages of
// that type itself (Protocol.OwnReplay).
func (r *Router) ownReplay(msgType string) bool {
	r.mu.RLock()
	p, ok := r.protocols[PIURI(msgType)]
	r.mu.RUnlock()
	if !ok || len(p.OwnReplay) == 0 {
		return false
	}
	name := msgType[len(p.PIURI)+1:]
	for _, n := range p.OwnReplay {
		if n == name {
			return true
		}
	}
	return false
}

// dispatch runs the handler and returns the replies, problem reports included,
// and a result word for metrics; or the handler's refusal (see Refuse).
func (r *Router) dispatch(ctx context.Context, in *Inbound) ([]Message, string, error) {
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

func (r *Router) safeHandle(ctx context.Context, h Handler, in *Inbound) (replies []Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("handler panicked", "type", in.Message.Type, "panic", fmt.Sprint(p))
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
