package connections

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/internal/pgtest"
	"github.com/agentd/agentd/protocols/aipevents"
	"github.com/agentd/agentd/protocols/oob"
	"github.com/agentd/agentd/protocols/trustping"
	"github.com/agentd/agentd/store/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// pgInstance is one agentd instance of the inviter on a shared database.
type pgInstance struct {
	store  agent.Store
	svc    *Service
	ping   agent.Handler
	events <-chan aip.Event
}

func newPGInstance(t *testing.T, url, me string) *pgInstance {
	t.Helper()
	db, err := postgres.Open(context.Background(), postgres.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	st := agent.Store{Records: db.Records(), Committer: db}
	b := &aipevents.Broker{Buffer: 1000}
	resolve := did.ResolverFunc(func(_ context.Context, d string) (*did.Doc, error) { return &did.Doc{ID: d}, nil })
	svc, err := New(Config{Store: st, Packer: plainPacker{}, OOB: oob.New(db.Records(), quiet), Resolver: resolve,
		MyDID: func() string { return me }, Events: aipevents.New(aipevents.Config{Broker: b}), Logger: quiet,
		Label: "Alice", Endpoint: "https://alice.example/didcomm"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &pgInstance{store: st, svc: svc, ping: svc.Middleware(trustping.New(plainSender{}, nil, quiet)), events: b.Subscribe(ctx, "")}
}

// receive handles m as the router does (a unit of work, run again on a
// conflict); the first attempt's handler runs, then waits at gate for the
// other instance's before committing, so that both read before either
// commits.
func (in *pgInstance) receive(m agent.Message, gate *sync.WaitGroup) error {
	for attempt := 0; ; attempt++ {
		w := in.store.New()
		inb := &agent.Inbound{Message: m, Transport: "fake", Work: w}
		inb.Envelope.Authenticated, inb.Envelope.EncryptedFrom = true, m.From+"#key-1"
		_, herr := in.ping.HandleMessage(ctx, inb)
		if attempt == 0 {
			gate.Done()
			gate.Wait()
		}
		if herr != nil {
			return herr
		}
		err := in.store.Commit(ctx, w)
		if errors.Is(err, agent.ErrConflict) && attempt < 3 {
			continue
		}
		return err
	}
}

// TestInvitationSingleUseAcrossInstances: the inviter runs as two
// instances on one PostgreSQL database; two DIDs answer its invitation at
// once, one through each instance, both reading the invitation before
// either commits. Every time exactly one makes the connection, the other
// is refused (gone) on its second attempt, and the DONE event is published
// once.
func TestInvitationSingleUseAcrossInstances(t *testing.T) {
	url := pgtest.Start(t)
	const me = "did:example:alice"
	a1, a2 := newPGInstance(t, url, me), newPGInstance(t, url, me)
	const rounds = 10
	for r := range rounds {
		ex, err := a1.svc.CreateInvitation(ctx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		var gate sync.WaitGroup
		gate.Add(2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, in := range []*pgInstance{a1, a2} {
			m, err := agent.NewMessage(trustping.PingType, pingBody{ResponseRequested: true, Label: "peer"})
			if err != nil {
				t.Fatal(err)
			}
			m.From, m.To, m.PThID = fmt.Sprintf("did:example:peer-%d-%d", r, i), []string{me}, ex.Invitation.MessageID
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = in.receive(m, &gate)
			}()
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won < 0:
				won = i
			case err == nil:
				t.Fatalf("round %d: both answers made a connection", r)
			case !agent.HasCode(err, agent.CodeGone):
				t.Fatalf("round %d: answer %d: %v, want gone", r, i, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no answer won: %v", r, errs)
		}
		x, err := a2.svc.ConnectionExchange(ctx, ex.ID)
		if err != nil || x.State != aip.ConnExDone || x.TheirDID != fmt.Sprintf("did:example:peer-%d-%d", r, won) {
			t.Fatalf("round %d: exchange %+v %v", r, x, err)
		}
		conns, _, err := a1.svc.Connections(ctx, aip.Page{Limit: 100}, aip.ConnectionFilter{})
		if err != nil || len(conns) != r+1 {
			t.Fatalf("round %d: %d connections, want %d (%v)", r, len(conns), r+1, err)
		}
	}
	done := 0
	for _, in := range []*pgInstance{a1, a2} {
		for len(in.events) > 0 {
			if e := <-in.events; e.Record.(*aip.ConnectionExchange).State == aip.ConnExDone {
				done++
			}
		}
	}
	if done != rounds {
		t.Fatalf("%d DONE events for %d connections", done, rounds)
	}
}
