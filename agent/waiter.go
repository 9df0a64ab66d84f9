package agent

import (
	"context"
	"sync"
)

// Waiters lets a caller wait for the next inbound message of a thread, e.g. the
// ping-response to a ping it sent. Handlers call Notify for messages that may
// be awaited; a Notify with no waiter is dropped. The zero value is ready to use
// and it is safe for concurrent use.
type Waiters struct {
	mu    sync.Mutex
	m     map[string]chan *Inbound
	share *waiterShare // set by Share
}

// Expect registers interest in thread thid. Call it before sending the message
// that starts the exchange, then Wait; cancel releases it in any case.
func (w *Waiters) Expect(thid string) (wait func(ctx context.Context) (*Inbound, error), cancel func()) {
	ch := make(chan *Inbound, 1)
	w.mu.Lock()
	if w.m == nil {
		w.m = make(map[string]chan *Inbound)
	}
	w.m[thid] = ch
	w.mu.Unlock()
	cancel = func() {
		w.mu.Lock()
		if w.m[thid] == ch {
			delete(w.m, thid)
		}
		w.mu.Unlock()
	}
	wait = func(ctx context.Context) (*Inbound, error) {
		select {
		case in := <-ch:
			return in, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return wait, cancel
}

// Notify hands in to the waiter of its thread, if any, and reports whether
// there was one.
func (w *Waiters) Notify(in *Inbound) bool {
	return w.NotifyThread(in.Message.ThID, in)
}

// NotifyThread hands in to the waiter of thread thid, if any, and reports
// whether there was one. It is for messages that concern a thread other than
// their own thid: a problem report names the thread it reports on in its pthid.
// Shared waiters (Share) with no local waiter keep in for a waiter on
// another instance and report whether that worked.
func (w *Waiters) NotifyThread(thid string, in *Inbound) bool {
	if thid == "" {
		return false
	}
	if w.notifyLocal(thid, in) {
		return true
	}
	w.mu.Lock()
	sh := w.share
	w.mu.Unlock()
	if sh == nil {
		return false
	}
	return w.keep(sh, thid, in)
}

// notifyLocal hands in to the local waiter of thid, if any.
func (w *Waiters) notifyLocal(thid string, in *Inbound) bool {
	w.mu.Lock()
	ch, ok := w.m[thid]
	if ok {
		delete(w.m, thid)
	}
	w.mu.Unlock()
	if ok {
		ch <- in
	}
	return ok
}
