package mediation

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
)

var forwardBodies = []string{
	``,
	`{}`,
	`{"next":"did:example:bob"}`,
	` { "next" : "did:example:bob" , "other": [1, {"next": "x"}] } `,
	`{"next":"did:example:b\u00f6b"}`,
	`{"next":"did:example:bo\"b"}`,
	`{"next":"a","next":"b"}`,
	`{"Next":"did:example:bob"}`,
	`{"NEXT":"a","next":"b"}`,
	`{"next":null}`,
	`{"next":1}`,
	`{"next":["a"]}`,
	`{"next":"` + "\xff" + `"}`,
	`{"next":"a"`,
	`{"next":"a"} x`,
	`null`,
	`[]`,
	`"next"`,
	`{"nexT":"a"}`,
	`{"ne\u0078t":"a"}`,
}

// checkForwardBody holds decodeForwardBody to agent.Message.DecodeBody:
// the same body and the same error text.
func checkForwardBody(t *testing.T, raw []byte) {
	t.Helper()
	got, gotErr := decodeForwardBody(raw)
	var want ForwardBody
	var wantErr error
	if len(raw) == 0 {
		wantErr = json.Unmarshal([]byte("{}"), &want)
	} else {
		wantErr = json.Unmarshal(raw, &want)
	}
	if !reflect.DeepEqual(got, want) || (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("decodeForwardBody(%q) = %+v, %v; encoding/json: %+v, %v", raw, got, gotErr, want, wantErr)
	}
}

func TestDecodeForwardBody(t *testing.T) {
	for _, b := range forwardBodies {
		checkForwardBody(t, []byte(b))
	}
}

func FuzzDecodeForwardBody(f *testing.F) {
	for _, b := range forwardBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkForwardBody(t, raw) })
}

func BenchmarkDecodeForwardBody(b *testing.B) {
	raw := json.RawMessage(`{"next":"did:peer:2.Ez6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc.Vz6MkqRYqQiSgvZQdnBytw86Qbs2ZWUkGv22od935YF4s8M7V"}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeForwardBody(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var body ForwardBody
			if err := json.Unmarshal(raw, &body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A single-instance mediator's forward expects its registration's record
// (Work.Expect) instead of reading it: it commits at its first run, and a
// removal committed between its routing and its commit makes it conflict
// and be refused when run again.
func TestForwardExpectsRegistration(t *testing.T) {
	a := newHarness(t, Config{})
	c := a.grant(t, V3, alice, "did:example:inbox")
	if n := a.forwardAttempts(t, forward(t, "did:example:inbox", jwe("one"))); n != 1 {
		t.Fatalf("a forward took %d attempts, want 1", n)
	}

	ctx := context.Background()
	var routing agent.Handler
	for _, p := range a.protos {
		if strings.HasPrefix(ForwardType, p.PIURI+"/") {
			routing = p.Handler
		}
	}
	m := forward(t, "did:example:inbox", jwe("two"))
	st := a.st.Agent()
	in := &agent.Inbound{Message: m, Received: a.now, Work: st.New(),
		Envelope: envelope.Metadata{Encrypted: true, AnonymousSender: true}}
	in.Work.Remember(m.ID, a.now.Add(time.Hour))
	if _, err := routing.HandleMessage(ctx, in); err != nil {
		t.Fatal(err)
	}
	if len(in.Work.Reads) != 1 || in.Work.Reads[0].Kind != KindRecipient || in.Work.Reads[0].Missing {
		t.Fatalf("the forward's reads = %+v, want its registration", in.Work.Reads)
	}
	if _, err := c.UpdateRecipients(ctx, exchanger{h: a}, []Update{{RecipientDID: "did:example:inbox", Action: ActionRemove}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, in.Work); !errors.Is(err, agent.ErrConflict) {
		t.Fatalf("commit after the removal: %v, want a conflict", err)
	}
	in = &agent.Inbound{Message: m, Received: a.now, Work: st.New(), Attempt: 1,
		Envelope: envelope.Metadata{Encrypted: true, AnonymousSender: true}}
	if _, err := routing.HandleMessage(ctx, in); agent.ErrorCode(err) != CodeUnknownRecipient {
		t.Fatalf("the rerun: %v, want %s", err, CodeUnknownRecipient)
	}
	if msgs, err := a.q.List(ctx, []string{"did:example:inbox"}, a.now, 10); err != nil || len(msgs) != 0 {
		t.Fatalf("queue after the removal: %d messages, %v", len(msgs), err)
	}
}
