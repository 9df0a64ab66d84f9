package agent

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/agentd/agentd/agent/envelope"
)

// KindWaiterAnswer is the record kind under which an instance on a shared
// store keeps, by thread id, a message no local waiter wanted, for the
// instance that waits for it (see Waiters.Share).
const KindWaiterAnswer = "agent-waiter-answer"

// SignalWaiter is the signal topic of waiter answers; the payload is the
// thread id.
const SignalWaiter = "waiter"

// waiterAnswerTTL is how long an unclaimed answer record is kept
// (SweepShared removes it after).
const waiterAnswerTTL = 10 * time.Minute

// waiterShare is the shared-store setup of Waiters.
type waiterShare struct {
	store   Store
	signals Signals
	inWork  bool // answers are kept in the notifying handler's unit of work
}

// waiterAnswer is a message kept for the waiter of another instance.
type waiterAnswer struct {
	Message   Message           `json:"message"`
	Envelope  envelope.Metadata `json:"envelope"`
	Transport string            `json:"transport"`
	Received  time.Time         `json:"received"`
	User      string            `json:"user,omitempty"`
	Kept      time.Time         `json:"kept"`
}

// recordWatcher is implemented by Signals whose commits can signal record
// writes of chosen kinds (store/postgres).
type recordWatcher interface {
	Watch(kinds ...string)
}

// Share makes the waiters span the instances sharing store: a message for
// a thread nobody waits for here is kept as a record (KindWaiterAnswer,
// under the thread id) and the others are signalled the thread id; the
// instance waiting for it reads the record, deletes it and hands the
// message to its waiter. When signals can watch record kinds, the record
// is written in the unit of work of the handler that notifies (Inbound.Work,
// while it is not committed) and signalled by its commit: the answer is
// kept if and only if the handler's work commits. Call it once, before use.
func (w *Waiters) Share(store Store, signals Signals) {
	sh := &waiterShare{store: store, signals: signals}
	if rw, ok := signals.(recordWatcher); ok {
		rw.Watch(KindWaiterAnswer)
		sh.inWork = true
	}
	w.mu.Lock()
	w.share = sh
	w.mu.Unlock()
	wake := func(thid string) {
		w.mu.Lock()
		_, waiting := w.m[thid]
		w.mu.Unlock()
		if waiting {
			go w.fetch(thid)
		}
	}
	signals.Subscribe(SignalWaiter, wake)
	signals.Subscribe(SignalRecord, func(p string) {
		if kind, thid, ok := RecordSignal(p); ok && kind == KindWaiterAnswer {
			wake(thid)
		}
	})
}

// keep stores in for the waiter of thid on another instance and signals
// them: in the handler's unit of work when it can (see Share), or else in
// a unit of work of its own followed by a signal. It reports whether that
// worked (was staged).
func (w *Waiters) keep(sh *waiterShare, thid string, in *Inbound) bool {
	a := waiterAnswer{Message: in.Message, Envelope: in.Envelope, Transport: in.Transport, Received: in.Received,
		User: in.User, Kept: time.Now().UTC()}
	if sh.inWork && in.Work != nil && !in.Work.committed {
		return in.Work.PutJSON(KindWaiterAnswer, thid, a) == nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sh.store.Update(ctx, func(wk *Work) error { return wk.PutJSON(KindWaiterAnswer, thid, a) }); err != nil {
		return false
	}
	return sh.signals.Signal(ctx, SignalWaiter, thid) == nil
}

// fetch takes the kept answer of thid and hands it to the local waiter.
func (w *Waiters) fetch(thid string) {
	w.mu.Lock()
	sh := w.share
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var a waiterAnswer
	err := sh.store.Update(ctx, func(wk *Work) error {
		b, err := wk.Get(ctx, KindWaiterAnswer, thid)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		wk.Delete(KindWaiterAnswer, thid)
		return nil
	})
	if err != nil {
		return // taken by another waiter of the thread, or unreadable
	}
	w.notifyLocal(thid, &Inbound{Message: a.Message, Envelope: a.Envelope, Transport: a.Transport, Received: a.Received, User: a.User})
}

// SweepShared removes the answers kept for other instances' waiters that
// none claimed within ten minutes. It does nothing without Share.
func (w *Waiters) SweepShared(ctx context.Context) (int, error) {
	w.mu.Lock()
	sh := w.share
	w.mu.Unlock()
	if sh == nil {
		return 0, nil
	}
	cutoff := time.Now().Add(-waiterAnswerTTL)
	n, after := 0, ""
	for {
		page, err := sh.store.Records.List(ctx, KindWaiterAnswer, after, 500)
		if err != nil {
			return n, err
		}
		for _, r := range page {
			var a waiterAnswer
			if json.Unmarshal(r.Value, &a) == nil && a.Kept.After(cutoff) {
				continue
			}
			if err := sh.store.Records.Delete(ctx, KindWaiterAnswer, r.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return n, err
			}
			n++
		}
		if len(page) < 500 {
			return n, nil
		}
		after = page[len(page)-1].ID
	}
}
