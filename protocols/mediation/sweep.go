package mediation

import (
	"context"
	"time"
)

// RunSweep removes expired messages from the queue every interval until ctx
// ends, logging what it did.
func (m *Mediator) RunSweep(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := m.Sweep(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("mediator queue sweep failed", "err", err)
		} else if n > 0 {
			m.log.Info("expired messages removed from the mediator queue", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
