package connections

import (
	"context"
	"errors"
	"slices"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/protocols/oob"
	"github.com/agentd/agentd/protocols/trustping"
)

// pingBody is the invitee's ping: Trust Ping 2.0's body with the invitee's
// label.
type pingBody struct {
	ResponseRequested bool   `json:"response_requested"`
	Label             string `json:"label,omitempty"`
}

// maxLabelLen bounds labels and aliases.
const maxLabelLen = 256

// CreateInvitation makes a single-use invitation and an INVITER exchange in
// INVITATION. An empty label is the configured one.
func (s *Service) CreateInvitation(ctx context.Context, alias, label string) (*aip.ConnectionExchange, error) {
	if label == "" {
		label = s.cfg.Label
	}
	if len(alias) > maxLabelLen || len(label) > maxLabelLen {
		return nil, agent.Errorf(agent.CodeMsg, "alias and label are at most %d bytes", maxLabelLen)
	}
	me := s.cfg.MyDID()
	inv, err := s.cfg.OOB.Create(ctx, me, oob.WithGoal(GoalCode, "Connect"), oob.WithLabel(label))
	if err != nil {
		return nil, internal(err)
	}
	now := s.now()
	e := &exchange{
		ConnectionExchange: aip.ConnectionExchange{
			ID: agent.NewID(), MyRole: aip.ConnExInviter, State: aip.ConnExInvitation, Alias: alias,
			Invitation: &aip.Invitation{MessageID: inv.ID, Label: label, ServiceEndpoint: s.cfg.Endpoint, URL: inv.URL(s.cfg.Endpoint)},
			Created:    now, Modified: now,
		},
		MyDID: agent.DIDOf(me), InvitationID: inv.ID,
	}
	e.Key = newestKey(now, e.ID)
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		if err := putExchange(w, nil, e); err != nil {
			return err
		}
		w.Put(KindInvitation, inv.ID, []byte(e.ID))
		return s.publish(w, aip.TopicConnectionExchange, &e.ConnectionExchange)
	})
	if err != nil {
		return nil, internal(err)
	}
	s.log.InfoContext(ctx, "connection invitation created", "exchange", e.ID, "invitation", inv.ID)
	out := e.ConnectionExchange
	return &out, nil
}

// AcceptInvitation accepts an invitation (URL, encoded value or JSON): it
// resolves the inviter, records the invitation as accepted and an INVITEE
// exchange in REQUEST, and queues a ping to the inviter in the same unit
// of work. Accepting an invitation again returns its exchange. The
// invitation's attached messages are not acted upon.
func (s *Service) AcceptInvitation(ctx context.Context, alias, invitation string) (*aip.ConnectionExchange, error) {
	if len(alias) > maxLabelLen {
		return nil, agent.Errorf(agent.CodeMsg, "alias is at most %d bytes", maxLabelLen)
	}
	inv, err := oob.Parse(invitation)
	if err != nil {
		return nil, err
	}
	if e, err := s.accepted(ctx, inv.ID); err == nil || !isNotFound(err) {
		return e, err
	}
	inviter := agent.DIDOf(inv.From)
	if inviter == agent.DIDOf(s.cfg.MyDID()) {
		return nil, agent.Errorf(agent.CodeMsg, "the invitation is the agent's own")
	}
	doc, err := s.cfg.Resolver.Resolve(ctx, inviter)
	if err != nil {
		if errors.Is(err, did.ErrUnsupportedMethod) {
			return nil, agent.Wrap(agent.CodeDIDUnsupported, err, err.Error())
		}
		return nil, agent.Wrap(agent.CodeDIDUnresolved, err, "cannot resolve the inviter's DID")
	}
	if _, err := s.cfg.OOB.Accept(ctx, inv); err != nil {
		return nil, err
	}
	label := inv.Body.Label
	if len(label) > maxLabelLen {
		label = label[:maxLabelLen]
	}
	now := s.now()
	me := agent.DIDOf(s.cfg.MyDID())
	e := &exchange{
		ConnectionExchange: aip.ConnectionExchange{
			ID: agent.NewID(), MyRole: aip.ConnExInvitee, State: aip.ConnExRequest, Alias: alias, TheirLabel: label,
			Invitation: &aip.Invitation{MessageID: inv.ID, Label: label, ServiceEndpoint: serviceEndpoint(doc), URL: invitation},
			TheirDID:   inviter, Created: now, Modified: now,
		},
		MyDID: me, InvitationID: inv.ID,
	}
	if !isURL(invitation) {
		e.Invitation.URL = ""
	}
	e.Key = newestKey(now, e.ID)
	ping, err := agent.NewMessage(trustping.PingType, pingBody{ResponseRequested: true, Label: s.cfg.Label})
	if err != nil {
		return nil, internal(err)
	}
	ping.From, ping.To, ping.PThID = me, []string{inviter}, inv.ID
	e.PingID = ping.ID
	outs, err := s.cfg.Packer.Outbound(ctx, ping)
	if err != nil {
		return nil, err
	}
	var existing *aip.ConnectionExchange
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		existing = nil
		if b, err := w.Get(ctx, KindAccepted, inv.ID); err == nil {
			x, err := getJSON[exchange](ctx, w, KindExchange, string(b))
			if err != nil {
				return err
			}
			existing = &x.ConnectionExchange
			return nil
		} else if !isNotFound(err) {
			return err
		}
		if err := putExchange(w, nil, e); err != nil {
			return err
		}
		w.Put(KindThread, ping.ID, []byte(e.ID))
		w.Put(KindAccepted, inv.ID, []byte(e.ID))
		w.Enqueue(outs...)
		return s.publish(w, aip.TopicConnectionExchange, &e.ConnectionExchange)
	})
	if err != nil {
		return nil, internal(err)
	}
	if existing != nil {
		return existing, nil
	}
	s.log.InfoContext(ctx, "connection invitation accepted", "exchange", e.ID, "invitation", inv.ID, "inviter", inviter)
	out := e.ConnectionExchange
	return &out, nil
}

// accepted returns the exchange of an invitation accepted before.
func (s *Service) accepted(ctx context.Context, invitationID string) (*aip.ConnectionExchange, error) {
	b, err := s.cfg.Store.Records.Get(ctx, KindAccepted, invitationID)
	if err != nil {
		return nil, err
	}
	return s.ConnectionExchange(ctx, string(b))
}

func isURL(s string) bool {
	return len(s) > 8 && (s[:7] == "http://" || s[:8] == "https://" || s[:7] == "didcomm")
}

// serviceEndpoint is the first DIDComm service endpoint of doc, or "".
func serviceEndpoint(doc *did.Doc) string {
	if doc == nil {
		return ""
	}
	for _, sv := range doc.Service {
		if sv.Type == did.ServiceTypeDIDCommMessaging && sv.ServiceEndpoint.URI != "" {
			return sv.ServiceEndpoint.URI
		}
	}
	return ""
}

// ConnectionExchange returns an exchange.
func (s *Service) ConnectionExchange(ctx context.Context, id string) (*aip.ConnectionExchange, error) {
	e, err := readJSON[exchange](ctx, s.cfg.Store.Records, KindExchange, id)
	if isNotFound(err) {
		return nil, notFound("connection exchange", id)
	}
	if err != nil {
		return nil, internal(err)
	}
	return &e.ConnectionExchange, nil
}

// ConnectionExchanges lists exchanges newest first.
func (s *Service) ConnectionExchanges(ctx context.Context, p aip.Page, f aip.ConnectionExchangeFilter) ([]*aip.ConnectionExchange, string, error) {
	var prefixes []string
	switch {
	case f.Role != "" && len(f.States) > 0:
		for _, st := range f.States {
			prefixes = append(prefixes, "rs/"+string(f.Role)+"/"+string(st)+"/")
		}
	case f.Role != "":
		prefixes = []string{"r/" + string(f.Role) + "/"}
	case len(f.States) > 0:
		for _, st := range f.States {
			prefixes = append(prefixes, "s/"+string(st)+"/")
		}
	default:
		prefixes = []string{"all/"}
	}
	slices.Sort(prefixes)
	prefixes = slices.Compact(prefixes)
	ids, next, err := page(ctx, s.cfg.Store.Records, KindExchangeIndex, prefixes, p.NextToken, p.Clamp(), nil)
	if err != nil {
		return nil, "", internal(err)
	}
	out := make([]*aip.ConnectionExchange, 0, len(ids))
	for _, id := range ids {
		e, err := s.ConnectionExchange(ctx, id)
		if isNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, e)
	}
	return out, next, nil
}

// DeleteConnectionExchange deletes an exchange; one that is not terminal is
// abandoned first (its ABANDONED state is published). A deleted inviter's
// invitation is withdrawn: answers to it are refused. The connection an
// exchange made stays.
func (s *Service) DeleteConnectionExchange(ctx context.Context, id string) error {
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		e, err := getJSON[exchange](ctx, w, KindExchange, id)
		if isNotFound(err) {
			return notFound("connection exchange", id)
		}
		if err != nil {
			return err
		}
		if !aip.Terminal(e.State) && aip.CanMove(e.State, aip.ConnExAbandoned) {
			ab := *e
			ab.State, ab.ErrorMessage, ab.Modified = aip.ConnExAbandoned, "deleted by the operator", s.now()
			if err := s.publish(w, aip.TopicConnectionExchange, &ab.ConnectionExchange); err != nil {
				return err
			}
		}
		deleteExchange(w, e)
		if e.MyRole == aip.ConnExInviter {
			w.Put(KindInvitation, e.InvitationID, nil)
		} else {
			w.Delete(KindThread, e.PingID)
			w.Delete(KindAccepted, e.InvitationID)
		}
		return nil
	})
	if err != nil {
		return internal(err)
	}
	return nil
}

// Middleware wraps a protocol's handler: before h sees a message, an
// authenticated answer to a pending invitation of ours (pthid) creates the
// Connection with its sender, and the inviter's answer to our ping
// (ping-response, or a problem report) ends our INVITEE exchange, in the
// message's unit of work. An answer to an invitation already used by
// another DID, or withdrawn, is refused with a problem report (h does not
// see it).
func (s *Service) Middleware(h agent.Handler) agent.Handler {
	return agent.HandlerFunc(func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
		if err := s.observe(ctx, in); err != nil {
			return nil, err
		}
		return h.HandleMessage(ctx, in)
	})
}

func (s *Service) observe(ctx context.Context, in *agent.Inbound) error {
	m := &in.Message
	if m.PThID != "" {
		b, err := in.Work.Get(ctx, KindInvitation, m.PThID)
		switch {
		case err == nil:
			return s.answered(ctx, in, string(b))
		case !isNotFound(err):
			return internal(err)
		}
	}
	var thread string
	switch m.Type {
	case trustping.PingResponseType:
		thread = m.ThID
	case agent.ProblemReportType:
		thread = m.PThID
	default:
		return nil
	}
	if thread == "" {
		return nil
	}
	b, err := in.Work.Get(ctx, KindThread, thread)
	switch {
	case isNotFound(err):
		return nil
	case err != nil:
		return internal(err)
	}
	return s.responded(ctx, in, string(b))
}

// answered handles, as inviter, a message whose pthid is our invitation.
func (s *Service) answered(ctx context.Context, in *agent.Inbound, exID string) error {
	if exID == "" {
		return agent.Errorf(agent.CodeGone, "the invitation was withdrawn")
	}
	if !authenticated(in) {
		return agent.Errorf(agent.CodeTrust, "an answer to an invitation must be authenticated")
	}
	from := agent.DIDOf(in.Message.From)
	e, err := getJSON[exchange](ctx, in.Work, KindExchange, exID)
	if isNotFound(err) {
		return agent.Errorf(agent.CodeGone, "the invitation was withdrawn")
	}
	if err != nil {
		return internal(err)
	}
	switch {
	case e.State == aip.ConnExDone && e.TheirDID == from:
		return nil // the connection exists: the message is the protocol's
	case aip.Terminal(e.State):
		s.log.InfoContext(ctx, "answer to a used invitation refused", "exchange", e.ID, "from", from)
		return agent.Errorf(agent.CodeGone, "the invitation was already used")
	case !aip.CanMove(e.State, aip.ConnExDone):
		return agent.Errorf(agent.CodeConflict, "the connection exchange is in state %s", e.State)
	}
	var body struct {
		Label string `json:"label"`
	}
	_ = in.Message.DecodeBody(&body) // the label is optional and any body is the protocol's
	if len(body.Label) > maxLabelLen {
		body.Label = body.Label[:maxLabelLen]
	}
	now := s.now()
	done := *e
	done.State, done.TheirDID, done.TheirLabel, done.Modified = aip.ConnExDone, from, body.Label, now
	c := &connection{Connection: aip.Connection{ID: e.ID, Alias: e.Alias, TheirLabel: body.Label, TheirDID: from,
		MyDID: e.MyDID, Created: now, Modified: now}}
	c.Key = newestKey(now, c.ID)
	if err := putExchange(in.Work, e, &done); err != nil {
		return internal(err)
	}
	if err := putConnection(in.Work, c, false); err != nil {
		return internal(err)
	}
	s.log.InfoContext(ctx, "connection made", "connection", c.ID, "their_did", from, "role", aip.ConnExInviter)
	return s.publish(in.Work, aip.TopicConnectionExchange, &done.ConnectionExchange)
}

// responded handles, as invitee, the inviter's answer to our ping.
func (s *Service) responded(ctx context.Context, in *agent.Inbound, exID string) error {
	e, err := getJSON[exchange](ctx, in.Work, KindExchange, exID)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return internal(err)
	}
	if !authenticated(in) || agent.DIDOf(in.Message.From) != e.TheirDID || aip.Terminal(e.State) {
		return nil // not the inviter's, or late: the protocol's handler deals with it
	}
	now := s.now()
	next := *e
	next.Modified = now
	if in.Message.Type == agent.ProblemReportType {
		var pr agent.ProblemReportBody
		_ = in.Message.DecodeBody(&pr)
		next.State, next.ErrorMessage = aip.ConnExAbandoned, truncate("the inviter refused: "+pr.Code+" "+pr.Comment, 1024)
	} else {
		next.State = aip.ConnExDone
	}
	if !aip.CanMove(e.State, next.State) {
		return nil
	}
	if err := putExchange(in.Work, e, &next); err != nil {
		return internal(err)
	}
	if next.State == aip.ConnExDone {
		c := &connection{Connection: aip.Connection{ID: e.ID, Alias: e.Alias, TheirLabel: e.TheirLabel, TheirDID: e.TheirDID,
			MyDID: e.MyDID, Created: now, Modified: now}}
		c.Key = newestKey(now, c.ID)
		if err := putConnection(in.Work, c, false); err != nil {
			return internal(err)
		}
		s.log.InfoContext(ctx, "connection made", "connection", c.ID, "their_did", e.TheirDID, "role", aip.ConnExInvitee)
	}
	return s.publish(in.Work, aip.TopicConnectionExchange, &next.ConnectionExchange)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
