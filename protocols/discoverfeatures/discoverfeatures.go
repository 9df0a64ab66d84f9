// Package discoverfeatures implements Discover Features 2.0
// (https://identity.foundation/didcomm-messaging/spec/#discover-features-protocol-20):
// one agent asks which features (protocols, goal codes, ...) another supports,
// and the other discloses those that match.
//
// The Service answers queries from the protocols the agent has registered (an
// agent.Features, which the router implements) and, as requester, sends
// queries and waits for the disclosure.
package discoverfeatures

import (
	"context"
	"log/slog"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/reportproblem"
)

// PIURI is the protocol identifier of Discover Features 2.0.
const PIURI = "https://didcomm.org/discover-features/2.0"

// Message types of Discover Features 2.0.
const (
	QueriesType  = PIURI + "/queries"
	DiscloseType = PIURI + "/disclose"
)

// Roles of Discover Features 2.0.
const (
	RoleRequester = "requester"
	RoleResponder = "responder"
)

// Feature types the spec requires implementations to recognise. Queries for
// other types are ignored, as the spec asks.
const (
	FeatureProtocol       = "protocol"
	FeatureGoalCode       = "goal-code"
	FeatureGovFramework   = "gov-fw"
	FeatureDIDCommVersion = "didcomm-version"
	FeatureHeader         = "header"
)

// DIDCommV2 is the identifier of DIDComm Messaging v2 as a didcomm-version
// feature: the URI where the version is developed.
const DIDCommV2 = "https://github.com/decentralized-identity/didcomm-messaging"

// Limits on a queries message, so that a peer cannot make the agent do
// unbounded matching work.
const (
	MaxQueries  = 64
	MaxMatchLen = 512
)

// Query asks for the features of one type whose identifiers match a pattern,
// in which "*" matches any run of characters.
type Query struct {
	FeatureType string `json:"feature-type"`
	Match       string `json:"match"`
}

// QueriesBody is the body of a queries message.
type QueriesBody struct {
	Queries []Query `json:"queries"`
}

// Disclosure describes one supported feature.
type Disclosure struct {
	FeatureType string `json:"feature-type"`
	ID          string `json:"id"`
	// Roles are the roles the agent plays in a protocol; only for protocols,
	// and optional even then.
	Roles []string `json:"roles,omitempty"`
}

// DiscloseBody is the body of a disclose message.
type DiscloseBody struct {
	Disclosures []Disclosure `json:"disclosures"`
}

// Match reports whether id matches pattern, where "*" stands for any
// sequence of characters (including none) and every other character stands
// for itself. "*" alone matches everything. It takes time proportional to
// len(pattern)*len(id) at worst.
func Match(pattern, id string) bool {
	p, s := 0, 0
	star, mark := -1, 0
	for s < len(id) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, s
			p++
		case p < len(pattern) && pattern[p] == id[s]:
			p++
			s++
		case star >= 0:
			p = star + 1
			mark++
			s = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Validate checks the queries of a queries message: at least one, at most
// MaxQueries, each with a feature-type and a match of at most MaxMatchLen
// bytes. Its error is an *agent.Error with code e.p.msg.
func Validate(queries []Query) error {
	if len(queries) == 0 {
		return agent.Errorf(agent.CodeMsg, "queries must hold at least one query")
	}
	if len(queries) > MaxQueries {
		return agent.Errorf(agent.CodeMsg, "too many queries (at most %d)", MaxQueries)
	}
	for i, q := range queries {
		switch {
		case q.FeatureType == "":
			return agent.Errorf(agent.CodeMsg, "query %d has no feature-type", i)
		case q.Match == "":
			return agent.Errorf(agent.CodeMsg, "query %d has no match", i)
		case len(q.Match) > MaxMatchLen:
			return agent.Errorf(agent.CodeMsg, "query %d: match longer than %d bytes", i, MaxMatchLen)
		}
	}
	return nil
}

// Disclose answers queries from the features an agent supports: every
// protocol and goal code of features, and DIDComm v2 as didcomm-version,
// whose identifier matches a query of its type. Each feature is disclosed
// once, in the order of the first query it matches. Feature types the agent
// has nothing to say about (gov-fw, header, unknown ones) yield nothing.
// features may be nil.
func Disclose(features agent.Features, queries []Query) []Disclosure {
	var all []Disclosure
	if features != nil {
		seen := map[string]bool{}
		goals := map[string]bool{}
		var goalOrder []string
		for _, p := range features.Protocols() {
			if !seen[p.PIURI] {
				seen[p.PIURI] = true
				all = append(all, Disclosure{FeatureType: FeatureProtocol, ID: p.PIURI, Roles: p.Roles})
			}
			for _, g := range p.GoalCodes {
				if !goals[g] {
					goals[g] = true
					goalOrder = append(goalOrder, g)
				}
			}
		}
		for _, g := range goalOrder {
			all = append(all, Disclosure{FeatureType: FeatureGoalCode, ID: g})
		}
	}
	all = append(all, Disclosure{FeatureType: FeatureDIDCommVersion, ID: DIDCommV2})

	out := []Disclosure{}
	done := make([]bool, len(all))
	for _, q := range queries {
		for i, d := range all {
			if !done[i] && d.FeatureType == q.FeatureType && Match(q.Match, d.ID) {
				done[i] = true
				out = append(out, d)
			}
		}
	}
	return out
}

// Service is the Discover Features 2.0 protocol: the responder that answers
// queries, and the requester side, Query.
type Service struct {
	features agent.Features
	sender   agent.Sender
	waiters  *agent.Waiters
	log      *slog.Logger
}

// New returns a Service that discloses the features of features (the
// router), sends queries through sender and waits for their answers on
// waiters. waiters should be shared with reportproblem.New so that a problem
// report about a query ends its Query at once; nil makes a private one. logger
// defaults to slog.Default().
func New(features agent.Features, sender agent.Sender, waiters *agent.Waiters, logger *slog.Logger) *Service {
	if waiters == nil {
		waiters = new(agent.Waiters)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{features: features, sender: sender, waiters: waiters, log: logger.With("protocol", PIURI)}
}

// Protocol describes Discover Features 2.0 for the router, with s as its handler.
func (s *Service) Protocol() agent.Protocol {
	return agent.Protocol{PIURI: PIURI, Roles: []string{RoleRequester, RoleResponder}, Handler: s}
}

// HandleMessage answers a queries message with a disclose message in its
// thread, and hands a disclose message to the Query waiting for it. A
// disclosure nobody waits for (the spec allows proactive ones) is logged and
// dropped. Malformed queries are an *agent.Error with code e.p.msg.
func (s *Service) HandleMessage(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	m := in.Message
	switch m.Type {
	case QueriesType:
		var body QueriesBody
		if err := m.DecodeBody(&body); err != nil {
			return nil, agent.Wrap(agent.CodeMsg, err, "malformed queries body")
		}
		if err := Validate(body.Queries); err != nil {
			return nil, err
		}
		r, err := m.Reply(DiscloseType, DiscloseBody{Disclosures: Disclose(s.features, body.Queries)})
		if err != nil {
			return nil, agent.Wrap(agent.CodeMe, err, "internal error")
		}
		return []agent.Message{r}, nil
	case DiscloseType:
		if !s.waiters.Notify(in) {
			s.log.InfoContext(ctx, "unsolicited disclosure dropped", "from", m.From, "thid", m.ThID)
		}
		return nil, nil
	}
	return nil, agent.Errorf(agent.CodeMsgUnsupported, "unsupported message type %s", m.Type)
}

// Query asks the agent with DID to about its features and waits for the
// disclosures; bound the wait with ctx. The queries are checked first, with
// the same rules a responder applies. If the peer answers with a problem
// report, the error is a *reportproblem.Problem carrying its code.
//
// The queries message has no from of its own: the agent.Sender sets the
// agent's DID, so that the peer can answer.
func (s *Service) Query(ctx context.Context, to string, queries ...Query) ([]Disclosure, error) {
	if to == "" {
		return nil, agent.Errorf(agent.CodeMsg, "query needs a recipient DID")
	}
	if err := Validate(queries); err != nil {
		return nil, err
	}
	msg, err := agent.NewMessage(QueriesType, QueriesBody{Queries: queries})
	if err != nil {
		return nil, err
	}
	msg.To = []string{to}
	wait, cancel := s.waiters.Expect(msg.ID)
	defer cancel()
	if err := s.sender.Send(ctx, msg); err != nil {
		return nil, err
	}
	in, err := wait(ctx)
	if err != nil {
		return nil, err
	}
	a := in.Message
	if a.From != "" && agent.DIDOf(a.From) != agent.DIDOf(to) {
		return nil, agent.Errorf(agent.CodeTrust, "answer came from %s, not %s", a.From, to)
	}
	if err := reportproblem.Check(a); err != nil {
		return nil, err
	}
	if a.Type != DiscloseType {
		return nil, agent.Errorf(agent.CodeMsg, "unexpected answer of type %s", a.Type)
	}
	var body DiscloseBody
	if err := a.DecodeBody(&body); err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "malformed disclose body")
	}
	return body.Disclosures, nil
}

// Supports reports whether disclosures include a protocol whose PIURI matches
// pattern, for example "https://didcomm.org/trust-ping/2.*".
func Supports(disclosures []Disclosure, pattern string) bool {
	for _, d := range disclosures {
		if d.FeatureType == FeatureProtocol && Match(pattern, d.ID) {
			return true
		}
	}
	return false
}
