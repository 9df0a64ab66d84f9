package agent_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/agentd/agentd/agent"
)

func TestHasCode(t *testing.T) {
	expired := fmt.Errorf("prove: %w", agent.Errorf("e.p.req.time.provecontrol.expired", "too late"))
	for _, tc := range []struct {
		err    error
		prefix string
		want   bool
	}{
		{expired, "e.p.req", true},
		{expired, "e.p.req.time", true},
		{expired, "e.p.req.time.provecontrol.expired", true},
		{expired, "e.p.req.ti", false},
		{expired, "e.p.msg", false},
		{agent.Errorf("e.p.request", "x"), "e.p.req", false},
		{agent.Errorf(agent.CodeNotFound, "x"), agent.CodeNotFound, true},
		// An error that is not an *agent.Error is our own fault.
		{errors.New("disk full"), agent.CodeMe, true},
		{errors.New("disk full"), "e.p.msg", false},
	} {
		if got := agent.HasCode(tc.err, tc.prefix); got != tc.want {
			t.Errorf("HasCode(%v, %q) = %v", tc.err, tc.prefix, got)
		}
	}
}
