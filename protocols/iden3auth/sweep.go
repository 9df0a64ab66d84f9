package iden3auth

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/agentd/agentd/agent"
)

// SweepResult counts what a sweep did.
type SweepResult struct {
	// Expired are the pending sessions past their expiry, now recorded
	// as expired (with their webhook).
	Expired int
	// Deleted are the final sessions older than the retention.
	Deleted int
}

// Sweep records the expiry of pending sessions past it (each in its own
// unit of work, with its webhook) and deletes final sessions whose last
// change is older than Config.Retention.
func (s *Service) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	now := s.cfg.Now()
	after := ""
	for {
		recs, err := s.cfg.Store.Records.List(ctx, KindSession, after, 256)
		if err != nil {
			return res, err
		}
		for _, r := range recs {
			var sess Session
			if err := json.Unmarshal(r.Value, &sess); err != nil {
				continue // a corrupt record is left for the operator
			}
			switch {
			case sess.State == StatePending && !now.Before(sess.Expires):
				err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
					var cur Session
					if err := getIn(ctx, w, r.ID, &cur); err != nil {
						return err
					}
					if cur.State != StatePending {
						return errSkip
					}
					if err := cur.moveTo(StateExpired, now, "expired before an answer came"); err != nil {
						return err
					}
					if err := w.PutJSON(KindSession, r.ID, &cur); err != nil {
						return err
					}
					return s.notify(ctx, w, &cur, now)
				})
				if err == nil {
					res.Expired++
				} else if !errors.Is(err, errSkip) {
					return res, err
				}
			case sess.State.Final() && s.cfg.Retention > 0 && now.Sub(sess.Updated) > s.cfg.Retention:
				err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
					var cur Session
					if err := getIn(ctx, w, r.ID, &cur); err != nil {
						return err
					}
					w.Delete(KindSession, r.ID)
					return nil
				})
				if err != nil && !agent.HasCode(err, agent.CodeNotFound) {
					return res, err
				}
				res.Deleted++
			}
		}
		if len(recs) < 256 {
			return res, nil
		}
		after = recs[len(recs)-1].ID
	}
}

var errSkip = errors.New("skip")

// Run sweeps every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if res, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("iden3: sweep failed", "err", err)
		} else if res.Expired+res.Deleted > 0 {
			s.cfg.Logger.Info("iden3: sweep", "expired", res.Expired, "deleted", res.Deleted)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
