package daemon_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
)

// mutationTarget is a mediator with a registered inbox and the valid
// messages the mutations start from: an anoncrypted forward, an authcrypted
// ping, a signed ping and a plaintext ping.
type mutationTarget struct {
	handler http.Handler
	seeds   [][]byte
	types   []string
}

func newMutationTarget(t testing.TB) *mutationTarget {
	cfg := testConfig(t, t.TempDir())
	cfg.Mediator.Enabled = true
	// Every request comes from one address: this is about input handling,
	// not the client rate limit (TestClientRateLimit).
	cfg.Limits.ClientRate = 0
	r, _ := startLogged(t, cfg) // logs to a buffer: a fuzz target's t must not be written to from the daemon
	w := newGoWallet(t, r.base)
	inbox := "did:example:mutation-inbox"
	w.setup(t, inbox)
	ping := func(from bool) []byte {
		m, _ := agent.NewMessage("https://didcomm.org/trust-ping/2.0/ping", map[string]any{"response_requested": true})
		m.To, m.ReturnRoute = []string{w.mediator}, "all"
		if from {
			m.From = w.did
		}
		b, _ := json.Marshal(m)
		return b
	}
	auth, err := envelope.PackAuthcrypt(ping(true), w.secrets[0], w.medKA)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := envelope.Sign(ping(true), w.secrets[1])
	if err != nil {
		t.Fatal(err)
	}
	return &mutationTarget{
		handler: r.Handler(),
		seeds:   [][]byte{w.forward(t, inbox, "seed", 600), auth, signed, ping(false)},
		types:   []string{agent.MediaTypeEncrypted, agent.MediaTypeEncrypted, agent.MediaTypeSigned, agent.MediaTypePlain},
	}
}

// check posts body and fails on what a public endpoint must never do: a 5xx
// (our fault, for input the client chose), a refusal that is not the JSON
// error body, or a hang (the handler is called in-process, so a hang is a
// test timeout).
func (m *mutationTarget) check(t testing.TB, contentType string, body []byte) {
	req := httptest.NewRequest("POST", "/didcomm", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	m.handler.ServeHTTP(rec, req)
	code := rec.Code
	if code >= 500 {
		t.Fatalf("%d for a mutated message (%q): %s\n%q", code, contentType, rec.Body.Bytes(), body)
	}
	if code >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
			t.Fatalf("%d without a JSON error body: %q", code, rec.Body.Bytes())
		}
	}
}

// mutate changes b in one of the ways an attacker would: flip, insert,
// delete or duplicate bytes, truncate, splice JSON punctuation, or swap in
// a run of another seed.
func mutate(rng *rand.Rand, b []byte, seeds [][]byte) []byte {
	out := bytes.Clone(b)
	for range 1 + rng.IntN(3) {
		if len(out) == 0 {
			out = append(out, '{')
		}
		i := rng.IntN(len(out))
		switch rng.IntN(7) {
		case 0:
			out[i] ^= byte(1 << rng.IntN(8))
		case 1:
			out = append(out[:i], append([]byte{byte(rng.IntN(256))}, out[i:]...)...)
		case 2:
			out = append(out[:i], out[min(len(out), i+1+rng.IntN(16)):]...)
		case 3:
			out = out[:i]
		case 4:
			tok := []string{`"`, `{`, `}`, `[`, `]`, `,`, `:`, `null`, `"a":1,`, `\u0000`, `1e999`}[rng.IntN(11)]
			out = append(out[:i], append([]byte(tok), out[i:]...)...)
		case 5:
			j := min(len(out), i+rng.IntN(64))
			out = append(out[:j], append(bytes.Clone(out[i:j]), out[j:]...)...)
		case 6:
			s := seeds[rng.IntN(len(seeds))]
			k := rng.IntN(len(s))
			out = append(out[:i], append(bytes.Clone(s[k:min(len(s), k+32)]), out[i:]...)...)
		}
	}
	return out
}

// TestPublicEndpointMutations runs a bounded mutation fuzz of POST /didcomm
// on every test run: a few seconds of mutated forwards, authcrypted, signed
// and plaintext messages, each under every media type. (The open-ended run
// is FuzzPublicEndpoint: go test -fuzz FuzzPublicEndpoint ./internal/daemon/.)
func TestPublicEndpointMutations(t *testing.T) {
	m := newMutationTarget(t)
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	types := []string{agent.MediaTypeEncrypted, agent.MediaTypeSigned, agent.MediaTypePlain, "application/json"}
	deadline := time.Now().Add(3 * time.Second)
	n := 0
	for ; time.Now().Before(deadline); n++ {
		i := rng.IntN(len(m.seeds))
		ct := m.types[i]
		if rng.IntN(4) == 0 {
			ct = types[rng.IntN(len(types))]
		}
		m.check(t, ct, mutate(rng, m.seeds[i], m.seeds))
	}
	t.Logf("%d mutated messages, none answered with a 5xx", n)
	for i, s := range m.seeds { // the seeds themselves still work
		req := httptest.NewRequest("POST", "/didcomm", bytes.NewReader(s))
		req.Header.Set("Content-Type", m.types[i])
		rec := httptest.NewRecorder()
		m.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusAccepted && rec.Code != http.StatusConflict {
			t.Fatalf("seed %d answered %d: %s", i, rec.Code, rec.Body.Bytes())
		}
	}
}

// FuzzPublicEndpoint is the open-ended form of TestPublicEndpointMutations.
func FuzzPublicEndpoint(f *testing.F) {
	m := newMutationTarget(f)
	for i, s := range m.seeds {
		f.Add(uint8(i), s)
	}
	types := []string{agent.MediaTypeEncrypted, agent.MediaTypeSigned, agent.MediaTypePlain}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		m.check(t, types[int(kind)%len(types)], body)
	})
}
