package agent

import (
	"fmt"
	"testing"

	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
)

// A sender key that cannot be resolved because the resolutions are at their
// cap is the agent's momentary capacity, not the sender's fault: e.p.xfer.busy
// with a Retry-After, which HTTP answers 503; other resolution failures stay
// the sender's (e.p.did).
func TestUnpackErrorResolutionBusy(t *testing.T) {
	busy := unpackError(fmt.Errorf("%w: %w", envelope.ErrSenderKey, fmt.Errorf("did: resolving did:web:x: %w (limit 32)", did.ErrBusy)))
	if ErrorCode(busy) != CodeBusy || RetryAfter(busy) <= 0 {
		t.Fatalf("busy resolution: %v (code %s, retry after %v)", busy, ErrorCode(busy), RetryAfter(busy))
	}
	other := unpackError(fmt.Errorf("%w: %w", envelope.ErrSenderKey, fmt.Errorf("did:web: 404")))
	if ErrorCode(other) != CodeDIDUnresolved {
		t.Fatalf("failed resolution: %v", other)
	}
}
