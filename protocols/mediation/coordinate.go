package mediation

import (
	"encoding/json"
	"fmt"
)

// Coordinate Mediation 2.0 (https://didcomm.org/coordinate-mediation/2.0/)
// and 3.0 (https://didcomm.org/coordinate-mediation/3.0/): a recipient asks a
// mediator for mediation (mediate-request), gets its routing DID
// (mediate-grant) or a refusal (mediate-deny), then keeps the list of its
// DIDs the mediator accepts forwards for. The versions differ only in names:
// 2.0 calls the list a keylist (keylist-update, keylist-update-response,
// keylist-query, keylist with body "keys") and 3.0 a recipient list
// (recipient-update, ..., recipient with body "dids"); and in routing_did,
// a string in 2.0 and a list in 3.0.

// Protocol identifiers of the two versions.
const (
	CoordinateV2PIURI = "https://didcomm.org/coordinate-mediation/2.0"
	CoordinateV3PIURI = "https://didcomm.org/coordinate-mediation/3.0"
)

// Roles of Coordinate Mediation.
const (
	RoleMediator  = "mediator"
	RoleRecipient = "recipient"
)

// Message names shared by both versions.
const (
	MediateRequest = "mediate-request"
	MediateGrant   = "mediate-grant"
	MediateDeny    = "mediate-deny"
)

// Version holds the names one version of Coordinate Mediation gives its
// messages.
type Version struct {
	// PIURI is the protocol identifier.
	PIURI string
	// Update, UpdateResponse, Query and List are the names of the recipient
	// list messages.
	Update, UpdateResponse, Query, List string
}

// The two versions agentd speaks.
var (
	V2 = Version{PIURI: CoordinateV2PIURI, Update: "keylist-update", UpdateResponse: "keylist-update-response", Query: "keylist-query", List: "keylist"}
	V3 = Version{PIURI: CoordinateV3PIURI, Update: "recipient-update", UpdateResponse: "recipient-update-response", Query: "recipient-query", List: "recipient"}
)

// Type returns the full message type of the message name in this version.
func (v Version) Type(name string) string { return v.PIURI + "/" + name }

// String returns the version number, "2.0" or "3.0".
func (v Version) String() string {
	if v.PIURI == CoordinateV2PIURI {
		return "2.0"
	}
	return "3.0"
}

// VersionOf returns the version a PIURI names.
func VersionOf(piuri string) (Version, bool) {
	switch piuri {
	case CoordinateV2PIURI:
		return V2, true
	case CoordinateV3PIURI:
		return V3, true
	}
	return Version{}, false
}

// GrantBody is the body of a mediate-grant. RoutingDID is the mediator's
// routing DID: the DID (whose key agreement key the mediator holds) that
// senders encrypt forwards to, and that recipients put in their services'
// routingKeys or use as their endpoint.
//
// In 2.0 routing_did is a string and in 3.0 a list; GrantBody writes the form
// of the version it is marshalled for (MarshalVersion) and reads either.
type GrantBody struct {
	RoutingDID []string
}

// MarshalVersion writes the body as version v spells it.
func (b GrantBody) MarshalVersion(v Version) ([]byte, error) {
	if v.PIURI == CoordinateV2PIURI {
		did := ""
		if len(b.RoutingDID) > 0 {
			did = b.RoutingDID[0]
		}
		return json.Marshal(struct {
			RoutingDID string `json:"routing_did"`
		}{did})
	}
	return json.Marshal(struct {
		RoutingDID []string `json:"routing_did"`
	}{b.RoutingDID})
}

// UnmarshalJSON reads routing_did as a string or a list of strings, since
// mediators in the field write either in either version.
func (b *GrantBody) UnmarshalJSON(data []byte) error {
	var raw struct {
		RoutingDID json.RawMessage `json:"routing_did"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	b.RoutingDID = nil
	if len(raw.RoutingDID) == 0 || string(raw.RoutingDID) == "null" {
		return nil
	}
	var one string
	if err := json.Unmarshal(raw.RoutingDID, &one); err == nil {
		if one != "" {
			b.RoutingDID = []string{one}
		}
		return nil
	}
	if err := json.Unmarshal(raw.RoutingDID, &b.RoutingDID); err != nil {
		return fmt.Errorf("routing_did must be a DID or a list of DIDs")
	}
	return nil
}

// Actions of a recipient list update.
const (
	ActionAdd    = "add"
	ActionRemove = "remove"
)

// Results of one update.
const (
	ResultSuccess     = "success"
	ResultNoChange    = "no_change"
	ResultClientError = "client_error"
	ResultServerError = "server_error"
)

// Update is one change of a keylist-update or recipient-update.
type Update struct {
	RecipientDID string `json:"recipient_did"`
	Action       string `json:"action"`
}

// UpdateBody is the body of keylist-update and recipient-update.
type UpdateBody struct {
	Updates []Update `json:"updates"`
}

// UpdateResult is the outcome of one Update.
type UpdateResult struct {
	RecipientDID string `json:"recipient_did"`
	Action       string `json:"action"`
	Result       string `json:"result"`
}

// UpdateResponseBody is the body of keylist-update-response and
// recipient-update-response.
type UpdateResponseBody struct {
	Updated []UpdateResult `json:"updated"`
}

// Paginate asks for a page of the recipient list; both members are required
// when it is present.
type Paginate struct {
	Limit  *int `json:"limit"`
	Offset *int `json:"offset"`
}

// QueryBody is the body of keylist-query and recipient-query.
type QueryBody struct {
	Paginate *Paginate `json:"paginate,omitempty"`
}

// Pagination describes the page of a keylist or recipient message: Count
// entries from Offset, with Remaining more after them.
type Pagination struct {
	Count     int `json:"count"`
	Offset    int `json:"offset"`
	Remaining int `json:"remaining"`
}

// RecipientEntry is one registered DID in a keylist or recipient message.
type RecipientEntry struct {
	RecipientDID string `json:"recipient_did"`
}

// ListBody is the body of keylist (2.0, list in "keys") and recipient (3.0,
// list in "dids").
type ListBody struct {
	Entries    []RecipientEntry
	Pagination *Pagination
}

// MarshalVersion writes the body as version v spells it.
func (b ListBody) MarshalVersion(v Version) ([]byte, error) {
	entries := b.Entries
	if entries == nil {
		entries = []RecipientEntry{}
	}
	if v.PIURI == CoordinateV2PIURI {
		return json.Marshal(struct {
			Keys       []RecipientEntry `json:"keys"`
			Pagination *Pagination      `json:"pagination,omitempty"`
		}{entries, b.Pagination})
	}
	return json.Marshal(struct {
		DIDs       []RecipientEntry `json:"dids"`
		Pagination *Pagination      `json:"pagination,omitempty"`
	}{entries, b.Pagination})
}

// UnmarshalJSON reads the list from "keys" or "dids".
func (b *ListBody) UnmarshalJSON(data []byte) error {
	var raw struct {
		Keys       []RecipientEntry `json:"keys"`
		DIDs       []RecipientEntry `json:"dids"`
		Pagination *Pagination      `json:"pagination"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	b.Entries, b.Pagination = raw.DIDs, raw.Pagination
	if b.Entries == nil {
		b.Entries = raw.Keys
	}
	return nil
}
