package mediation

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/reportproblem"
)

// The recipient role: an agent that uses a mediator asks for mediation,
// registers its DIDs and picks up its messages. Client builds the requests
// and checks the answers; the caller moves them (an Exchanger), so that the
// same code runs over an HTTP POST with return_route and over a WebSocket.

// Exchanger sends a request to the mediator and returns the answer that came
// back on the same connection (the requests ask for return_route "all").
type Exchanger interface {
	Exchange(ctx context.Context, msg agent.Message) (agent.Message, error)
}

// ErrDenied is returned by RequestMediation when the mediator answers with
// mediate-deny.
var ErrDenied = errors.New("mediation denied")

// Client is the recipient side of Coordinate Mediation and Pickup 3.0 with
// one mediator.
type Client struct {
	// DID is the client's DID: the requests come from it and the grant is
	// the mediator's for it.
	DID string
	// Mediator is the mediator's DID.
	Mediator string
	// Version is the Coordinate Mediation version to speak; V3 when zero.
	Version Version
}

func (c *Client) version() Version {
	if c.Version.PIURI == "" {
		return V3
	}
	return c.Version
}

// Request builds a request of type typ with body, from the client to the
// mediator, asking for the answer on the same connection.
func (c *Client) Request(typ string, body any) (agent.Message, error) {
	m, err := agent.NewMessage(typ, body)
	if err != nil {
		return agent.Message{}, err
	}
	m.From, m.To, m.ReturnRoute = c.DID, []string{c.Mediator}, "all"
	return m, nil
}

// exchange sends req and checks that the answer is in its thread, comes from
// the mediator, is not a problem report (returned as a
// *reportproblem.Problem) and is of one of the types want.
func (c *Client) exchange(ctx context.Context, ex Exchanger, req agent.Message, want ...string) (agent.Message, error) {
	ans, err := ex.Exchange(ctx, req)
	if err != nil {
		return agent.Message{}, err
	}
	if ans.From != "" && agent.DIDOf(ans.From) != agent.DIDOf(c.Mediator) {
		return agent.Message{}, agent.Errorf(agent.CodeTrust, "answer came from %s, not the mediator %s", ans.From, c.Mediator)
	}
	if err := reportproblem.Check(ans); err != nil {
		return agent.Message{}, err
	}
	if ans.ThID != req.ID {
		return agent.Message{}, agent.Errorf(agent.CodeMsg, "answer of type %s is not in the request's thread", ans.Type)
	}
	if !slices.Contains(want, ans.Type) {
		return agent.Message{}, agent.Errorf(agent.CodeMsg, "unexpected answer of type %s to %s", ans.Type, req.Type)
	}
	return ans, nil
}

// RequestMediation sends mediate-request (with pthid, the mediation
// invitation's id, when not empty) and returns the routing DIDs of the grant,
// or ErrDenied.
func (c *Client) RequestMediation(ctx context.Context, ex Exchanger, pthid string) ([]string, error) {
	v := c.version()
	req, err := c.Request(v.Type(MediateRequest), nil)
	if err != nil {
		return nil, err
	}
	req.PThID = pthid
	ans, err := c.exchange(ctx, ex, req, v.Type(MediateGrant), v.Type(MediateDeny))
	if err != nil {
		return nil, err
	}
	if ans.Type == v.Type(MediateDeny) {
		return nil, ErrDenied
	}
	var body GrantBody
	if err := ans.DecodeBody(&body); err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "malformed mediate-grant body")
	}
	if len(body.RoutingDID) == 0 {
		return nil, agent.Errorf(agent.CodeMsg, "mediate-grant without a routing_did")
	}
	return body.RoutingDID, nil
}

// UpdateRecipients sends the updates and returns the results; an update the
// mediator did not report on is an error.
func (c *Client) UpdateRecipients(ctx context.Context, ex Exchanger, updates []Update) ([]UpdateResult, error) {
	v := c.version()
	req, err := c.Request(v.Type(v.Update), UpdateBody{Updates: updates})
	if err != nil {
		return nil, err
	}
	ans, err := c.exchange(ctx, ex, req, v.Type(v.UpdateResponse))
	if err != nil {
		return nil, err
	}
	var body UpdateResponseBody
	if err := ans.DecodeBody(&body); err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "malformed "+v.UpdateResponse+" body")
	}
	return body.Updated, nil
}

// QueryRecipients returns the registered DIDs, a page of them when limit > 0.
func (c *Client) QueryRecipients(ctx context.Context, ex Exchanger, limit, offset int) (ListBody, error) {
	v := c.version()
	var body QueryBody
	if limit > 0 {
		body.Paginate = &Paginate{Limit: &limit, Offset: &offset}
	}
	req, err := c.Request(v.Type(v.Query), body)
	if err != nil {
		return ListBody{}, err
	}
	ans, err := c.exchange(ctx, ex, req, v.Type(v.List))
	if err != nil {
		return ListBody{}, err
	}
	var list ListBody
	if err := ans.DecodeBody(&list); err != nil {
		return ListBody{}, agent.Wrap(agent.CodeMsg, err, "malformed "+v.List+" body")
	}
	return list, nil
}

// Status asks for the status of the queue, of one recipient DID if not empty.
func (c *Client) Status(ctx context.Context, ex Exchanger, recipientDID string) (StatusBody, error) {
	req, err := c.Request(StatusRequestType, StatusRequestBody{RecipientDID: recipientDID})
	if err != nil {
		return StatusBody{}, err
	}
	return c.statusAnswer(ctx, ex, req)
}

func (c *Client) statusAnswer(ctx context.Context, ex Exchanger, req agent.Message) (StatusBody, error) {
	ans, err := c.exchange(ctx, ex, req, StatusType)
	if err != nil {
		return StatusBody{}, err
	}
	var st StatusBody
	if err := ans.DecodeBody(&st); err != nil {
		return StatusBody{}, agent.Wrap(agent.CodeMsg, err, "malformed status body")
	}
	return st, nil
}

// Delivered is one message picked up: its queue id and the packed message.
type Delivered struct {
	ID      string
	Message []byte
}

// Deliver asks for up to limit messages (for one recipient DID if not empty)
// and returns them; none when the mediator answered with a status.
func (c *Client) Deliver(ctx context.Context, ex Exchanger, limit int, recipientDID string) ([]Delivered, error) {
	req, err := c.Request(DeliveryRequestType, DeliveryRequestBody{Limit: &limit, RecipientDID: recipientDID})
	if err != nil {
		return nil, err
	}
	ans, err := c.exchange(ctx, ex, req, DeliveryType, StatusType)
	if err != nil {
		return nil, err
	}
	if ans.Type == StatusType {
		return nil, nil
	}
	return ParseDelivery(ans)
}

// Received tells the mediator the messages with ids arrived, so it removes
// them, and returns the status it answers with.
func (c *Client) Received(ctx context.Context, ex Exchanger, ids []string) (StatusBody, error) {
	if ids == nil {
		ids = []string{}
	}
	req, err := c.Request(MessagesReceivedType, MessagesReceivedBody{MessageIDList: ids})
	if err != nil {
		return StatusBody{}, err
	}
	return c.statusAnswer(ctx, ex, req)
}

// SetLive switches live delivery on the connection ex uses.
func (c *Client) SetLive(ctx context.Context, ex Exchanger, on bool) (StatusBody, error) {
	live := agent.FlexBool(on)
	req, err := c.Request(LiveDeliveryChangeType, LiveDeliveryChangeBody{LiveDelivery: &live})
	if err != nil {
		return StatusBody{}, err
	}
	return c.statusAnswer(ctx, ex, req)
}

// ParseDelivery returns the messages attached to a delivery.
func ParseDelivery(m agent.Message) ([]Delivered, error) {
	if m.Type != DeliveryType {
		return nil, fmt.Errorf("%s is not a delivery", m.Type)
	}
	out := make([]Delivered, 0, len(m.Attachments))
	for i, a := range m.Attachments {
		if a.ID == "" {
			return nil, agent.Errorf(agent.CodeMsg, "delivery attachment %d has no id", i)
		}
		var p []byte
		switch {
		case a.Data.Base64 != "":
			b, err := decodeBase64(a.Data.Base64)
			if err != nil {
				return nil, agent.Errorf(agent.CodeMsg, "delivery attachment %s: bad base64", a.ID)
			}
			p = b
		case len(a.Data.JSON) > 0:
			p = []byte(a.Data.JSON)
		default:
			return nil, agent.Errorf(agent.CodeMsg, "delivery attachment %s has no inline data", a.ID)
		}
		out = append(out, Delivered{ID: a.ID, Message: p})
	}
	return out, nil
}

// EncodeBase64 is the attachment encoding of deliveries (base64url without
// padding), for tests and tools that build them.
func EncodeBase64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
