package fakes

import (
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/storetest"
)

// The fake queue passes the conformance suite, so protocol tests see the
// real store's semantics.
func TestQueueConformance(t *testing.T) {
	storetest.TestQueue(t, func(t *testing.T) agent.QueueStore { return &Queue{} })
}
