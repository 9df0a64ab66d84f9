package daemon

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/bolt"
)

// FaultEnv names the environment variable of the crash-test hook: with
// "POINT:KIND" or "POINT:KIND:N" the process kills itself (SIGKILL, as a
// power cut would) at commit point POINT ("before-commit" or
// "after-commit") of the Nth unit of work (default the first) that writes a
// record of KIND. It exists for the crash tests, which show that what was
// acknowledged survives; never set it in production.
const FaultEnv = "AGENTD_FAULT_CRASH"

// faultHook returns the commit hook that spec asks for, or nil for "".
func faultHook(spec string) (func(bolt.CommitPoint, *agent.Work), error) {
	if spec == "" {
		return nil, nil
	}
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("%s=%q: want POINT:KIND or POINT:KIND:N", FaultEnv, spec)
	}
	point := bolt.CommitPoint(parts[0])
	if point != bolt.BeforeCommit && point != bolt.AfterCommit {
		return nil, fmt.Errorf("%s: unknown commit point %q", FaultEnv, parts[0])
	}
	kind, n := parts[1], int64(1)
	if len(parts) == 3 {
		var err error
		if n, err = strconv.ParseInt(parts[2], 10, 64); err != nil || n < 1 {
			return nil, fmt.Errorf("%s: N must be a positive number", FaultEnv)
		}
	}
	var seen atomic.Int64
	return func(p bolt.CommitPoint, w *agent.Work) {
		if p != point || !writesKind(w, kind) {
			return
		}
		if seen.Add(1) == n {
			fmt.Fprintf(os.Stderr, "agentd: %s: killing the process %s of a write of %s\n", FaultEnv, p, kind)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never return into the commit
		}
	}, nil
}

func writesKind(w *agent.Work, kind string) bool {
	for _, wr := range w.Writes {
		if wr.Kind == kind {
			return true
		}
	}
	return false
}
