package presentproof

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
)

// Two services over one store stand for two agentd instances sharing a
// database (store/postgres: its Leases are tested in that package).

// leaseTable is agent.Leases shared by instances: one holder per name.
type leaseTable struct {
	mu    sync.Mutex
	owner map[string]string
}

// leaseView is one instance's view of a leaseTable.
type leaseView struct {
	t  *leaseTable
	me string
}

func (v leaseView) Lead(_ context.Context, name string, _ time.Duration) (bool, error) {
	v.t.mu.Lock()
	defer v.t.mu.Unlock()
	if o, ok := v.t.owner[name]; ok && o != v.me {
		return false, nil
	}
	v.t.owner[name] = v.me
	return true, nil
}

func (v leaseView) Release(_ context.Context, name string) error {
	v.t.mu.Lock()
	defer v.t.mu.Unlock()
	if v.t.owner[name] == v.me {
		delete(v.t.owner, name)
	}
	return nil
}

// gatedSchemas holds every schema resolution (one per verification here)
// until release is closed, telling entered which instance started one;
// unknown makes it answer that the schema is unknown (NOT_VERIFIED).
type gatedSchemas struct {
	Credentials
	name    string
	entered chan string
	release chan struct{}
	unknown bool
}

func (g gatedSchemas) ResolveSchema(ctx context.Context, id string) (*anoncreds.Schema, error) {
	g.entered <- g.name
	<-g.release
	if g.unknown {
		return nil, fmt.Errorf("schema %s: %w", id, agent.ErrNotFound)
	}
	return g.Credentials.ResolveSchema(ctx, id)
}

// presented runs an exchange up to a presentation the verifier stored but
// could not verify (its schema source down), and returns the verifier, the
// prover and the verifier's exchange id.
func presented(t *testing.T) (v, p *node, id string) {
	ctx := context.Background()
	v, p, vConn, _ := pair(t, willConfirm, func(c *Config) { c.Credentials = failingSchemas{c.Credentials} })
	vx, err := v.svc.SendRequest(ctx, vConn, personRequest())
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, v, p)
	if _, err := p.svc.AcceptRequest(ctx, only(t, p, aip.ProofExProver).ID, personPresentation()); err != nil {
		t.Fatal(err)
	}
	deliver(t, p, v)
	v.svc.Close()
	if x, _ := v.svc.ProofExchange(ctx, vx.ID); x.State != aip.ProofExPresented {
		t.Fatalf("state %s, want PRESENTED", x.State)
	}
	return v, p, vx.ID
}

// instances builds two services over v's store, as two instances
// starting on one database.
func instances(t *testing.T, v *node, entered chan string, release chan struct{}, mod func(i int, c *Config)) [2]*Service {
	var out [2]*Service
	for i := range out {
		cfg := v.cfg
		cfg.Credentials = gatedSchemas{Credentials: v.creds, name: fmt.Sprint("instance", i), entered: entered, release: release}
		mod(i, &cfg)
		svc, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(svc.Close)
		out[i] = svc
	}
	return out
}

// TestResumeOnTwoInstancesVerifiesOnce: both instances resume at start;
// the presentation is verified by one of them (the other finds the
// verification's lease taken), one ack is queued, DONE is published once,
// and the lease is released after.
func TestResumeOnTwoInstancesVerifiesOnce(t *testing.T) {
	ctx := context.Background()
	v, p, id := presented(t)
	entered, release := make(chan string, 10), make(chan struct{})
	table := &leaseTable{owner: map[string]string{}}
	svcs := instances(t, v, entered, release, func(i int, c *Config) {
		c.Leases = leaseView{t: table, me: fmt.Sprint("instance", i)}
	})
	for _, s := range svcs {
		if err := s.Resume(ctx); err != nil {
			t.Fatal(err)
		}
	}
	first := <-entered
	select {
	case second := <-entered:
		t.Fatalf("%s verifies while %s does", second, first)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	for _, s := range svcs {
		s.Close()
	}
	if len(entered) != 0 {
		t.Fatalf("%d more verifications after the first", len(entered))
	}
	x := waitState(t, v, id, aip.ProofExDone)
	if x.Messages.Presentation.VerificationResult != aip.Verified {
		t.Fatalf("verdict %+v", x.Messages.Presentation)
	}
	if n := outboxLen(t, v); n != 1 {
		t.Fatalf("%d messages queued, want one ack", n)
	}
	if got := v.events.of(id, 4); len(got) != 3 || got[2] != aip.ProofExDone {
		t.Fatalf("published %v, want REQUEST PRESENTED DONE", got)
	}
	table.mu.Lock()
	left := len(table.owner)
	table.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d leases left held", left)
	}
	msgs := deliver(t, v, p)
	if len(msgs) != 1 || msgs[0].Type != TypeAck {
		t.Fatalf("delivered %+v", msgs)
	}
}

// TestTwoVerdictsCommitOne: without leases both instances verify, and
// reach different verdicts (one cannot resolve the schema); only the
// first to commit counts: the exchange is DONE with its verdict, one
// reply (ack or problem report, matching it) is queued, DONE published
// once.
func TestTwoVerdictsCommitOne(t *testing.T) {
	ctx := context.Background()
	v, p, id := presented(t)
	entered, release := make(chan string, 10), make(chan struct{})
	svcs := instances(t, v, entered, release, func(i int, c *Config) {
		g := c.Credentials.(gatedSchemas)
		g.unknown = i == 1
		c.Credentials = g
	})
	for _, s := range svcs {
		if err := s.Resume(ctx); err != nil {
			t.Fatal(err)
		}
	}
	<-entered
	<-entered // both verify at once
	close(release)
	for _, s := range svcs {
		s.Close()
	}
	x := waitState(t, v, id, aip.ProofExDone)
	if n := outboxLen(t, v); n != 1 {
		t.Fatalf("%d messages queued, want one reply", n)
	}
	if got := v.events.of(id, 4); len(got) != 3 || got[2] != aip.ProofExDone {
		t.Fatalf("published %v, want REQUEST PRESENTED DONE", got)
	}
	msgs := deliver(t, v, p)
	want := TypeAck
	if x.Messages.Presentation.VerificationResult != aip.Verified {
		want = agent.ProblemReportType
	}
	if len(msgs) != 1 || msgs[0].Type != want {
		t.Fatalf("verdict %s, delivered %+v", x.Messages.Presentation.VerificationResult, msgs)
	}
}
