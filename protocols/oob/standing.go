package oob

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/agentd/agentd/agent"
)

// Where the id of the standing invitation is kept in agent.Records.
const (
	standingKind = "agent"
	standingID   = "standing-invitation"
)

// Standing returns the agent's standing invitation from the DID from: the
// one printed at start and served at GET /invitation, with the goal
// "connect". It stays the same across restarts until from changes, when a
// new one is made.
func (s *Service) Standing(ctx context.Context, from string) (Invitation, error) {
	raw, err := s.records.Get(ctx, standingKind, standingID)
	if err == nil {
		var id string
		if json.Unmarshal(raw, &id) == nil {
			inv, err := s.Invitation(ctx, id)
			if err == nil && inv.From == from {
				return inv, nil
			}
		}
	} else if !errors.Is(err, agent.ErrNotFound) {
		return Invitation{}, err
	}
	inv, err := s.Create(ctx, from, WithGoal("connect", "Connect with this agent"))
	if err != nil {
		return Invitation{}, err
	}
	b, _ := json.Marshal(inv.ID)
	if err := s.records.Put(ctx, standingKind, standingID, b); err != nil {
		return Invitation{}, err
	}
	return inv, nil
}
