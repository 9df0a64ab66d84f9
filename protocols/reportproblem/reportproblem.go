// Package reportproblem handles inbound Report Problem 2.0 messages
// (https://identity.foundation/didcomm-messaging/spec/#problem-reports).
//
// The message itself (agent.ProblemReportType, agent.ProblemReportBody) and
// the building of outbound problem reports belong to package agent: the router
// answers every handler error with one. This package is the receiving side: it
// logs a problem report, and hands it to whoever waits on the thread it
// reports on, so that a client call such as a trust ping fails at once with
// the peer's problem code instead of timing out. Problem turns an inbound
// problem report into a Go error for such callers.
//
// A problem report is never answered with a problem report: the handler never
// returns an error or a reply, whatever it receives (the spec's guard against
// cascading problems).
package reportproblem

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agentd/agentd/agent"
)

// PIURI is the protocol identifier of Report Problem 2.0.
const PIURI = "https://didcomm.org/report-problem/2.0"

// Roles of Report Problem 2.0: the agent notifies (the router sends problem
// reports) and is notified (this package receives them).
const (
	RoleNotifier = "notifier"
	RoleNotified = "notified"
)

// MaxCommentLen bounds the length in bytes of an interpolated comment. A peer
// controls both comment and args, so without a bound a short message whose
// comment repeats {1} could expand into a huge string.
const MaxCommentLen = 2048

// Problem is a problem report received from a peer, as a Go error. Calls that
// wait for a peer's answer (trustping.Service.Ping, discoverfeatures
// Service.Query) return it when the peer answers with a problem report;
// errors.As recovers it.
type Problem struct {
	// Code is the problem code, e.g. "e.p.msg.unsupported".
	Code string
	// Comment is the peer's comment with args interpolated, at most
	// MaxCommentLen bytes. It is text from the peer: treat it as untrusted.
	Comment string
	// Args are the raw args of the report; a null arg is "?".
	Args []string
	// EscalateTo is the URI the peer offers for further help, if any.
	EscalateTo string
	// From is the DID of the peer that sent the report (empty if anonymous).
	From string
	// MessageID is the id of the problem-report message.
	MessageID string
	// PThID is the thread the problem occurred in.
	PThID string
	// ThID is the problem report's own thread, if it has one.
	ThID string
}

// Error returns the code and comment.
func (p *Problem) Error() string {
	if p.Comment == "" {
		return "peer reported problem " + p.Code
	}
	return "peer reported problem " + p.Code + ": " + p.Comment
}

// IsError reports whether the problem is an error (sorter "e"), as opposed to
// a warning (sorter "w") whose consequences the peer leaves to us to judge.
func (p *Problem) IsError() bool { return strings.HasPrefix(p.Code, "e.") }

// wireBody is agent.ProblemReportBody as received: args may hold nulls, which
// interpolate as "?".
type wireBody struct {
	Code       string    `json:"code"`
	Comment    string    `json:"comment,omitempty"`
	Args       []*string `json:"args,omitempty"`
	EscalateTo string    `json:"escalate_to,omitempty"`
}

// Decode reads a problem-report message. It fails if m is not a problem
// report, if its body is malformed, or if it lacks the required code.
func Decode(m agent.Message) (*Problem, error) {
	if m.Type != agent.ProblemReportType {
		return nil, agent.Errorf(agent.CodeMsg, "not a problem report: %s", m.Type)
	}
	var b wireBody
	if err := m.DecodeBody(&b); err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "malformed problem-report body")
	}
	if b.Code == "" {
		return nil, agent.Errorf(agent.CodeMsg, "problem report has no code")
	}
	args := make([]string, len(b.Args))
	for i, a := range b.Args {
		args[i] = "?"
		if a != nil {
			args[i] = *a
		}
	}
	return &Problem{
		Code:       b.Code,
		Comment:    Interpolate(b.Comment, args),
		Args:       args,
		EscalateTo: b.EscalateTo,
		From:       m.From,
		MessageID:  m.ID,
		PThID:      m.PThID,
		ThID:       m.ThID,
	}, nil
}

// Check returns the problem that m reports, as a *Problem, when m is a problem
// report, and nil for any other message. A malformed problem report still
// yields an error (an *agent.Error), since it too ends the exchange.
func Check(m agent.Message) error {
	if m.Type != agent.ProblemReportType {
		return nil
	}
	p, err := Decode(m)
	if err != nil {
		return err
	}
	return p
}

// Interpolate fills the placeholders {1}, {2}, ... of comment with args, as
// Report Problem 2.0 describes: a placeholder without an arg becomes "?", and
// args no placeholder refers to are appended as comma-separated values. Text
// that is not a placeholder, such as {0} or {x}, is kept as is. The result is
// cut to MaxCommentLen bytes.
func Interpolate(comment string, args []string) string {
	var b strings.Builder
	used := make([]bool, len(args))
	full := false
	write := func(s string) {
		if full {
			return
		}
		if b.Len()+len(s) > MaxCommentLen {
			s = truncate(s, MaxCommentLen-b.Len())
			full = true
		}
		b.WriteString(s)
	}
	for rest := comment; rest != "" && !full; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			write(rest)
			break
		}
		write(rest[:i])
		rest = rest[i:]
		j := strings.IndexByte(rest, '}')
		n, err := strconv.Atoi(rest[1:max(j, 1)])
		if j < 0 || err != nil || n < 1 || rest[1] == '+' || rest[1] == '-' {
			write("{")
			rest = rest[1:]
			continue
		}
		if n <= len(args) {
			write(args[n-1])
			used[n-1] = true
		} else {
			write("?")
		}
		rest = rest[j+1:]
	}
	sep := ", "
	if comment == "" {
		sep = ""
	}
	for i, a := range args {
		if !used[i] {
			write(sep + a)
			sep = ", "
		}
	}
	return b.String()
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Service receives problem reports.
type Service struct {
	waiters *agent.Waiters
	log     *slog.Logger
}

// New returns a Service that logs problem reports to logger (slog.Default()
// when nil) and hands them to the waiters of the threads they concern.
// waiters should be the one shared with the client sides of other protocols
// (trustping, discoverfeatures); nil means nobody waits.
func New(waiters *agent.Waiters, logger *slog.Logger) *Service {
	if waiters == nil {
		waiters = new(agent.Waiters)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{waiters: waiters, log: logger.With("protocol", PIURI)}
}

// Protocol describes Report Problem 2.0 for the router, with s as its handler.
func (s *Service) Protocol() agent.Protocol {
	return agent.Protocol{PIURI: PIURI, Roles: []string{RoleNotifier, RoleNotified}, Handler: s}
}

// HandleMessage logs an inbound problem report at warn level (code, comment,
// threads; never the whole body) and notifies the waiters of its pthid and of
// its thid. It never returns a reply or an error, so that no problem report is
// ever answered with another.
func (s *Service) HandleMessage(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	m := in.Message
	if m.Type != agent.ProblemReportType {
		s.log.DebugContext(ctx, "ignoring unknown report-problem message", "type", m.Type, "id", m.ID)
		return nil, nil
	}
	p, err := Decode(m)
	if err != nil {
		s.log.WarnContext(ctx, "malformed problem report", "id", m.ID, "from", m.From, "pthid", m.PThID, "error", err)
		// Waiters still learn that their exchange failed.
	} else {
		attrs := []any{"code", p.Code, "comment", p.Comment, "pthid", p.PThID, "id", p.MessageID, "from", p.From}
		if p.ThID != "" {
			attrs = append(attrs, "thid", p.ThID)
		}
		if p.EscalateTo != "" {
			attrs = append(attrs, "escalate_to", truncate(p.EscalateTo, 256))
		}
		s.log.WarnContext(ctx, "peer reported a problem", attrs...)
	}
	notified := s.waiters.NotifyThread(m.PThID, in)
	if m.ThID != m.PThID && s.waiters.NotifyThread(m.ThID, in) {
		notified = true
	}
	if !notified {
		s.log.DebugContext(ctx, "no one waits on the problem's thread", "pthid", m.PThID)
	}
	return nil, nil
}
