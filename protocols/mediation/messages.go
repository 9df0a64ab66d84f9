package mediation

import "github.com/agentd/agentd/agent"

// Routing 2.0 (https://identity.foundation/didcomm-messaging/spec/#routing-protocol-20):
// a sender wraps a message encrypted for its recipient in a forward,
// anoncrypted to the mediator's routing key, whose body names the next hop.

// Routing 2.0 identifiers.
const (
	RoutingPIURI = "https://didcomm.org/routing/2.0"
	ForwardType  = RoutingPIURI + "/forward"
)

// Roles of Routing 2.0.
const (
	RoleSender = "sender"
	// RoleMediator and RoleRecipient are shared with Coordinate Mediation.
)

// ForwardBody is the body of a forward: the DID (or key id) of the party the
// attached message is for. The attachments are the message(s) to pass on.
type ForwardBody struct {
	Next string `json:"next"`
}

// Pickup 3.0 (https://didcomm.org/messagepickup/3.0/): the recipient asks the
// mediator how many messages wait (status-request, status), has them
// delivered (delivery-request, delivery), confirms what it got
// (messages-received) and switches live delivery on a persistent connection
// (live-delivery-change).

// Pickup 3.0 identifiers.
const (
	PickupPIURI            = "https://didcomm.org/messagepickup/3.0"
	StatusRequestType      = PickupPIURI + "/status-request"
	StatusType             = PickupPIURI + "/status"
	DeliveryRequestType    = PickupPIURI + "/delivery-request"
	DeliveryType           = PickupPIURI + "/delivery"
	MessagesReceivedType   = PickupPIURI + "/messages-received"
	LiveDeliveryChangeType = PickupPIURI + "/live-delivery-change"
)

// StatusRequestBody is the body of a status-request. RecipientDID, when set,
// limits the status to the messages for that DID.
type StatusRequestBody struct {
	RecipientDID string `json:"recipient_did,omitempty"`
}

// StatusBody is the body of a status. MessageCount is required; the mediator
// fills in the others when there are messages. Times are Unix seconds (UTC).
type StatusBody struct {
	RecipientDID         string `json:"recipient_did,omitempty"`
	MessageCount         int    `json:"message_count"`
	LongestWaitedSeconds *int64 `json:"longest_waited_seconds,omitempty"`
	NewestReceivedTime   *int64 `json:"newest_received_time,omitempty"`
	OldestReceivedTime   *int64 `json:"oldest_received_time,omitempty"`
	TotalBytes           *int64 `json:"total_bytes,omitempty"`
	// LiveDelivery takes "true"/"false" strings too (agent.FlexBool).
	LiveDelivery agent.FlexBool `json:"live_delivery"`
}

// DeliveryRequestBody is the body of a delivery-request: deliver up to Limit
// (required) messages, for RecipientDID only when it is set.
type DeliveryRequestBody struct {
	Limit        *int   `json:"limit"`
	RecipientDID string `json:"recipient_did,omitempty"`
}

// DeliveryBody is the body of a delivery; the messages are its attachments,
// each with the queue id as its id and the encrypted message in data.base64.
type DeliveryBody struct {
	RecipientDID string `json:"recipient_did,omitempty"`
}

// MessagesReceivedBody is the body of messages-received: the attachment ids
// of the delivered messages the recipient has safely received.
type MessagesReceivedBody struct {
	MessageIDList []string `json:"message_id_list"`
}

// LiveDeliveryChangeBody is the body of live-delivery-change. LiveDelivery
// is required; it takes "true"/"false" strings too (agent.FlexBool).
type LiveDeliveryChangeBody struct {
	LiveDelivery *agent.FlexBool `json:"live_delivery"`
}

// Problem codes the mediator answers with, beyond the agent's general ones
// (agent.CodeMeResStorage for a full queue or an oversized message,
// agent.CodeTrust for an unauthenticated request).
const (
	// CodeNotGranted: the sender has no mediation grant (send mediate-request first).
	CodeNotGranted = "e.p.req.not-granted"
	// CodeUnknownRecipient: a forward's next is not a DID the mediator
	// routes for, and it does not relay.
	CodeUnknownRecipient = "e.p.req.unknown-recipient"
	// CodeLiveModeNotSupported is Pickup 3.0's answer to live-delivery-change
	// on a connection that cannot carry live delivery (an HTTP POST).
	CodeLiveModeNotSupported = "e.m.live-mode-not-supported"
)
