package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/agentd/agentd/agent"
)

// health is the check behind GET /healthz: unhealthy while the database's
// commits fail (a full disk, an I/O error) and when it cannot be read. The
// reason names the failure without the file's path (the endpoint is public).
func health(db backend) func(context.Context) error {
	return func(ctx context.Context) error {
		if err, since := db.WriteFailure(); err != nil {
			return agent.Wrap(agent.CodeMe, err, fmt.Sprintf("database writes are failing since %s: %s",
				since.UTC().Format(time.RFC3339), storageCause(err)))
		}
		if _, _, err := db.Outbox().Depth(ctx); err != nil {
			return agent.Wrap(agent.CodeMe, err, "database unavailable")
		}
		return nil
	}
}

// storageCause is the system's word for a storage failure ("no space left
// on device"), or a generic one.
func storageCause(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return "write error"
}

// probeInterval is how often watchStorage tries a write while writes fail.
const probeInterval = 2 * time.Second

// watchStorage logs when the database's writes start failing (at error
// level, with the cause) and when they work again, and while they fail
// probes with a small write, so that /healthz turns healthy once the
// operator made room, even if nothing else writes.
func watchStorage(ctx context.Context, db backend, log *slog.Logger) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err, since := db.WriteFailure()
		if err != nil {
			if !failing {
				log.Error("database writes are failing: messages are refused until they work again",
					"since", since, "cause", storageCause(err), "err", err, "failures", db.WriteFailures())
				failing = true
			}
			_ = db.Probe(ctx)
			err, _ = db.WriteFailure()
		}
		if err == nil && failing {
			log.Info("database writes work again", "failures", db.WriteFailures())
			failing = false
		}
	}
}
