// Package mediation makes agentd a DIDComm v2 mediator, and a client of one:
//
//   - Coordinate Mediation 2.0 and 3.0 (coordinate.go): mediate-request is
//     answered with mediate-grant, carrying the mediator's routing DID, or
//     mediate-deny under the configured Policy (open, allow-list, or holders
//     of a mediation invitation); the client then registers the DIDs it wants
//     forwards for, and queries them with paging.
//   - Routing 2.0 (routing.go): a forward anoncrypted to the routing key is
//     unwrapped, and its attached messages are queued for next when next is a
//     registered recipient, relayed to next's endpoint when the mediator
//     relays, or refused. expires_time, a size limit and a per-recipient quota
//     (count and bytes) are honoured. The messages are staged in the
//     forward's unit of work (agent.Work), which the router commits with the
//     forward's replay record: one durable, group-committed write.
//   - Pickup 3.0 (pickup.go): status-request, delivery-request (the queue ids
//     are the attachment ids), messages-received (which alone removes
//     messages), and live-delivery-change, with live delivery on persistent
//     connections (live.go).
//
// Grants and registrations live in agent.Records (registry.go), changed
// through units of work (a grant commits with the mediate-grant that
// announces it) and indexed in memory; the messages in an agent.QueueStore.
// Client (client.go) is the recipient side of the same protocols, and
// ClientLoop (clientloop.go) runs it for an agent that uses a mediator:
// mediation set up once, then live pickup over a persistent connection with
// HTTP polling as fallback. The connections themselves are the caller's
// (Poster, LiveDialer; agentd gives transport/http's Peer).
package mediation
