package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/pgtest"
)

// The multi-process tests run agentd instances as child processes (this
// test binary, re-executed with pgChildEnv set: see TestMain) on one
// PostgreSQL database, so that an instance can be killed with SIGKILL.

const (
	pgChildEnv   = "AGENTD_PG_CHILD"
	pgAdminToken = "multi-instance-admin-token-0123456789"
)

// pgChildConfig is the configuration of one instance: a mediator on the
// database url with the master key in keyFile, all instances with one
// public URL (one agent) and one admin token.
func pgChildConfig(dir, addr, url, keyFile string) config.Config {
	cfg := config.Default()
	cfg.DataDir, cfg.HTTP.Addr = dir, addr
	cfg.HTTP.PublicURL = "http://127.0.0.1:1/didcomm"
	cfg.Mediator.Enabled = true
	cfg.Outbox.AllowPrivate = true
	cfg.Outbox.BaseDelay = 100 * time.Millisecond
	cfg.Store.Driver = config.DriverPostgres
	cfg.Store.Postgres.URL = url
	cfg.Keys.KeyFile = keyFile
	cfg.Admin.Token = pgAdminToken
	return cfg
}

// runPGChild runs one instance until it is killed or stdin closes.
func runPGChild() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := pgChildConfig(os.Getenv(pgChildEnv), os.Getenv(pgChildEnv+"_ADDR"), os.Getenv(pgChildEnv+"_URL"), os.Getenv(pgChildEnv+"_KEY"))
	d, err := daemon.New(context.Background(), cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	if err := d.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // the parent's end closes when it exits
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.Shutdown(ctx)
	os.Exit(0)
}

// proc is one agentd instance in a child process.
type proc struct {
	cmd    *exec.Cmd
	base   string
	stderr *syncBuffer
	exited chan error
}

// startProcs starts n instances on the database at once and waits until
// each listens.
func startProcs(t *testing.T, n int, url, keyFile string) []*proc {
	t.Helper()
	procs := make([]*proc, n)
	ready := make([]chan struct{}, n)
	for i := range procs {
		addr := freePort(t)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), pgChildEnv+"="+t.TempDir(), pgChildEnv+"_ADDR="+addr, pgChildEnv+"_URL="+url, pgChildEnv+"_KEY="+keyFile)
		p := &proc{cmd: cmd, base: "http://" + addr, stderr: &syncBuffer{}, exited: make(chan error, 1)}
		cmd.Stderr = p.stderr
		stdout, _ := cmd.StdoutPipe()
		if _, err := cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.exited <- cmd.Wait() }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-p.exited
			if t.Failed() {
				t.Logf("instance %s stderr:\n%s", p.base, p.stderr.String())
			}
			p.exited <- nil
		})
		ready[i] = make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if sc.Text() == "ready" {
					close(ready[i])
				}
			}
		}()
		procs[i] = p
	}
	for i, p := range procs {
		select {
		case <-ready[i]:
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("instance %d exited: %v\n%s", i, err, p.stderr.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("instance %d did not start:\n%s", i, p.stderr.String())
		}
	}
	return procs
}

// kill9 kills the instance with SIGKILL and checks that it died of it.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err) // ErrProcessDone: killed already
	}
	err := <-p.exited
	p.exited <- err
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("instance did not die of SIGKILL: %v", err)
	}
}

// grant asks the mediator at w.base for mediation.
func (w *goWallet) grant(t testing.TB) {
	t.Helper()
	grant := w.request(t, "https://didcomm.org/coordinate-mediation/3.0/mediate-request", nil)
	var gb struct {
		RoutingDID []string `json:"routing_did"`
	}
	if err := grant.DecodeBody(&gb); err != nil || len(gb.RoutingDID) != 1 {
		t.Fatalf("grant %+v %v", grant, err)
	}
	doc, err := did.ResolvePeer2(gb.RoutingDID[0])
	if err != nil {
		t.Fatal(err)
	}
	if w.routingKA, err = doc.KeyAgreement(); err != nil {
		t.Fatal(err)
	}
}

// register registers inbox with the mediator at w.base.
func (w *goWallet) register(t testing.TB, inbox string) {
	t.Helper()
	up := w.request(t, "https://didcomm.org/coordinate-mediation/3.0/recipient-update",
		map[string]any{"updates": []any{map[string]any{"recipient_did": inbox, "action": "add"}}})
	if !bytes.Contains(up.Body, []byte(`"success"`)) {
		t.Fatalf("update %s", up.Body)
	}
}

// unpack opens a message the mediator sent the wallet.
func (w *goWallet) unpack(t testing.TB, raw []byte) agent.Message {
	t.Helper()
	out, _, err := envelope.Unpack(context.Background(), raw, envelope.UnpackOptions{Keys: w.keys, Secrets: w})
	if err != nil {
		t.Fatal(err)
	}
	var m agent.Message
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// tagsOf returns the tags (the stand-in messages' iv) of a delivery's
// attachments, by attachment id.
func tagsOf(d agent.Message) map[string]string {
	out := map[string]string{}
	for _, a := range d.Attachments {
		raw := []byte(a.Data.JSON)
		if len(raw) == 0 {
			var err error
			if raw, err = base64.RawURLEncoding.DecodeString(a.Data.Base64); err != nil {
				raw, _ = base64.StdEncoding.DecodeString(a.Data.Base64)
			}
		}
		var inner struct {
			IV string `json:"iv"`
		}
		json.Unmarshal(raw, &inner)
		out[a.ID] = inner.IV
	}
	return out
}

// drain picks up and acknowledges everything queued for the wallet
// through the mediator at w.base, and returns how often each tag came.
func (w *goWallet) drain(t testing.TB, inbox string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for {
		d := w.request(t, "https://didcomm.org/messagepickup/3.0/delivery-request", map[string]any{"limit": 100, "recipient_did": inbox})
		if d.Type != "https://didcomm.org/messagepickup/3.0/delivery" {
			return got
		}
		var ids []string
		for id, tag := range tagsOf(d) {
			got[tag]++
			ids = append(ids, id)
		}
		w.request(t, "https://didcomm.org/messagepickup/3.0/messages-received", map[string]any{"message_id_list": ids})
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// Two agentd processes on one database: a wallet gets mediation from A and
// registers its inbox through B (A has not heard of either when the first
// forward comes); a forward for it posted to A is accepted at once and
// pushed within moments to the wallet's live WebSocket on B, forward after
// forward; what the wallet acknowledges on B is gone from the queue A sees.
func TestPostgresProcessesLiveDeliveryAcrossInstances(t *testing.T) {
	url, key := pgtest.Start(t), sharedKeyFile(t)
	procs := startProcs(t, 2, url, key)
	a, b := procs[0], procs[1]
	w := newGoWallet(t, a.base)
	w.grant(t)
	inbox := newWallet(t, "").did
	w.base = b.base
	w.register(t, inbox) // through B, right after the grant through A

	// A routes it at once (a read-through, or B's signal).
	if code, _, body := post(t, a.base+"/didcomm", agent.MediaTypeEncrypted, w.forward(t, inbox, "before-live", 256)); code != http.StatusAccepted {
		t.Fatalf("forward through A for an inbox registered through B: %d %s", code, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.base, "http")+config.EndpointPath, &websocket.DialOptions{Subprotocols: []string{"didcomm/v2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageText, w.packRequest(t, "https://didcomm.org/messagepickup/3.0/live-delivery-change", map[string]any{"live_delivery": true})); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{} // attachment id → tag
	for {
		_, raw, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := w.unpack(t, raw)
		if m.Type == "https://didcomm.org/messagepickup/3.0/delivery" { // what was queued may come first
			maps.Copy(ids, tagsOf(m))
			continue
		}
		if m.Type != "https://didcomm.org/messagepickup/3.0/status" || !bytes.Contains(m.Body, []byte(`"live_delivery":true`)) {
			t.Fatalf("answer to live-delivery-change: %s %s", m.Type, m.Body)
		}
		break
	}

	const n = 30
	var lat []time.Duration
	for i := range n {
		tag := fmt.Sprintf("live-%02d", i)
		fwd := w.forward(t, inbox, tag, 512)
		code, _, body := post(t, a.base+"/didcomm", agent.MediaTypeEncrypted, fwd)
		acked := time.Now()
		if code != http.StatusAccepted {
			t.Fatalf("forward %d through A: %d %s", i, code, body)
		}
		for found := false; !found; {
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			_, raw, err := conn.Read(rctx)
			rcancel()
			if err != nil {
				req, _ := http.NewRequest("GET", b.base+"/metrics", nil)
				req.Header.Set("Authorization", "Bearer "+pgAdminToken)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					m, _ := io.ReadAll(resp.Body)
					for _, l := range strings.Split(string(m), "\n") {
						if strings.Contains(l, "signal") || strings.Contains(l, "live") || strings.Contains(l, "push") || strings.Contains(l, "read_through") {
							t.Log(l)
						}
					}
				}
				t.Fatalf("%s not pushed on B within 5s of A's 202: %v", tag, err)
			}
			d := w.unpack(t, raw)
			if d.Type != "https://didcomm.org/messagepickup/3.0/delivery" {
				continue
			}
			for id, got := range tagsOf(d) {
				ids[id] = got
				found = found || got == tag
			}
		}
		lat = append(lat, time.Since(acked))
	}
	t.Logf("push on B after A's 202: p50 %s, p99 %s, max %s", percentile(lat, .5), percentile(lat, .99), percentile(lat, 1))
	if p99 := percentile(lat, .99); p99 > time.Second {
		t.Errorf("cross-instance push p99 %s", p99)
	}

	// Acknowledged on B, gone for A.
	var list []string
	for id, tag := range ids {
		if tag != "before-live" {
			list = append(list, id)
		}
	}
	if len(list) != n {
		t.Fatalf("%d distinct live messages pushed, want %d: %v", len(list), n, ids)
	}
	if err := conn.Write(ctx, websocket.MessageText, w.packRequest(t, "https://didcomm.org/messagepickup/3.0/messages-received", map[string]any{"message_id_list": list})); err != nil {
		t.Fatal(err)
	}
	w.base = a.base
	waitFor(t, 10*time.Second, "the acknowledged messages to be removed", func() bool {
		st := w.request(t, "https://didcomm.org/messagepickup/3.0/status-request", map[string]any{"recipient_did": inbox})
		var sb struct {
			MessageCount int `json:"message_count"`
		}
		st.DecodeBody(&sb)
		return sb.MessageCount == 1 // before-live, unless pushed and acknowledged above
	})
	if got := w.drain(t, inbox); got["before-live"] != 1 || len(got) != 1 {
		t.Fatalf("left for A after B's acknowledgment: %v", got)
	}
}

// Two processes on one database: one forward posted to both at once is
// queued once; under a load of forwards to A, A is killed with SIGKILL, and
// every forward A acknowledged is delivered through B; an outbound message
// whose first delivery attempt fails is delivered once though both
// instances run their outbox, and the trust ping it carries is answered
// through B to the waiter on A.
func TestPostgresProcessesKillOnceAndOutbox(t *testing.T) {
	url, key := pgtest.Start(t), sharedKeyFile(t)
	procs := startProcs(t, 2, url, key)
	a, b := procs[0], procs[1]

	// The outbox, and a waiter across instances: A pings a peer whose
	// endpoint refuses each message's first delivery; the peer answers
	// through B.
	var peer *goWallet
	var (
		mu       sync.Mutex
		attempts = map[string]int{}
		okays    = map[string]int{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		ping := peer.unpack(t, raw)
		mu.Lock()
		attempts[ping.ID]++
		first := attempts[ping.ID] == 1
		if !first {
			okays[ping.ID]++
		}
		mu.Unlock()
		if first {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rw.WriteHeader(http.StatusAccepted)
		go func() {
			m, _ := agent.NewMessage("https://didcomm.org/trust-ping/2.0/ping-response", map[string]any{})
			m.ThID, m.From, m.To = ping.ID, peer.did, []string{peer.mediator}
			plain, _ := json.Marshal(m)
			packed, err := envelope.PackAuthcrypt(plain, peer.secrets[0], peer.medKA)
			if err != nil {
				t.Error(err)
				return
			}
			http.Post(b.base+"/didcomm", agent.MediaTypeEncrypted, bytes.NewReader(packed))
		}()
	}))
	defer srv.Close()
	peer = newGoWallet(t, a.base)
	peer.wallet = newWallet(t, srv.URL)
	const pings = 6
	var wg sync.WaitGroup
	pingErrs := make([]error, pings)
	for i := range pings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(map[string]string{"to": peer.did})
			req, _ := http.NewRequest("POST", a.base+"/admin/ping", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+pgAdminToken)
			req.Header.Set("Content-Type", "application/json")
			c := &http.Client{Timeout: 20 * time.Second}
			resp, err := c.Do(req)
			if err != nil {
				pingErrs[i] = err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				pingErrs[i] = fmt.Errorf("ping through A: %d %s", resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	if len(attempts) != pings {
		t.Errorf("%d pings reached the peer, want %d", len(attempts), pings)
	}
	for id, n := range okays {
		if n != 1 {
			t.Errorf("ping %s delivered %d times", id, n)
		}
	}
	for i, err := range pingErrs {
		if err != nil {
			t.Errorf("ping %d through A, answered through B: %v", i, err)
		}
	}
	t.Logf("%d pings sent, %d delivered once after a failed attempt, answered on A through B", len(attempts), len(okays))
	mu.Unlock()

	// One forward posted to A and B at once is queued once.
	w := newGoWallet(t, a.base)
	inbox := newWallet(t, "").did
	w.setup(t, inbox)
	same := w.forward(t, inbox, "same", 256)
	codes := make([]int, 2)
	var fw sync.WaitGroup
	for i, p := range procs {
		fw.Add(1)
		go func() { defer fw.Done(); codes[i], _, _ = post(t, p.base+"/didcomm", agent.MediaTypeEncrypted, same) }()
	}
	fw.Wait()
	if codes[0] != http.StatusAccepted || codes[1] != http.StatusAccepted {
		t.Fatalf("the same forward posted to A and B: %v", codes)
	}

	// Forward load on A; SIGKILL after 150 acknowledgments.
	const senders, total, killAt = 8, 3000, 150
	var (
		amu    sync.Mutex
		acked  = map[string]bool{}
		next   atomic.Int64
		killed atomic.Bool
		lg     sync.WaitGroup
		client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	)
	forwards := make([][]byte, total)
	for i := range forwards {
		forwards[i] = w.forward(t, inbox, fmt.Sprintf("m%05d", i), 512)
	}
	for range senders {
		lg.Add(1)
		go func() {
			defer lg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total || killed.Load() {
					return
				}
				resp, err := client.Post(a.base+"/didcomm", agent.MediaTypeEncrypted, bytes.NewReader(forwards[i]))
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					continue
				}
				amu.Lock()
				acked[fmt.Sprintf("m%05d", i)] = true
				n := len(acked)
				amu.Unlock()
				if n == killAt && killed.CompareAndSwap(false, true) {
					a.cmd.Process.Signal(syscall.SIGKILL)
				}
			}
		}()
	}
	lg.Wait()
	if !killed.Load() {
		t.Fatalf("A not killed after %d acknowledgments", len(acked))
	}
	a.kill9(t)

	w.base = b.base
	got := w.drain(t, inbox)
	if got["same"] != 1 {
		t.Errorf("the forward posted to both instances was delivered %d times", got["same"])
	}
	var lost []string
	for tag := range acked {
		if got[tag] != 1 {
			lost = append(lost, tag)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d forwards acknowledged by A are not delivered once through B: %v", len(lost), len(acked), lost)
	}
	t.Logf("%d forwards acknowledged by A before SIGKILL; %d delivered through B", len(acked), len(got)-1)

}

// PostgreSQL stopped and started again under a load of forwards to two
// processes: while it is down the forwards are refused with 503 and a
// problem code saying the store is unavailable (never acknowledged, no
// crash); afterwards both instances recover by themselves (forwards are
// acknowledged again, /healthz is ok, the signal listener reconnected)
// and every acknowledged forward is delivered once.
func TestPostgresProcessesDatabaseRestart(t *testing.T) {
	srv := pgtest.NewServer(t)
	key := sharedKeyFile(t)
	procs := startProcs(t, 2, srv.URL(), key)
	a, b := procs[0], procs[1]
	w := newGoWallet(t, a.base)
	inbox := newWallet(t, "").did
	w.setup(t, inbox)

	var (
		mu      sync.Mutex
		acked   = map[string]bool{}
		refused = map[int]int{}
		bodies  []string
		next    atomic.Int64
		stop    atomic.Bool
		lg      sync.WaitGroup
		client  = &http.Client{Timeout: 10 * time.Second}
	)
	ackCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	for s := range 4 {
		lg.Add(1)
		go func() {
			defer lg.Done()
			for !stop.Load() {
				i := int(next.Add(1))
				tag := fmt.Sprintf("r%05d", i)
				base := procs[(s+i)%2].base
				resp, err := client.Post(base+"/didcomm", agent.MediaTypeEncrypted, bytes.NewReader(w.forward(t, inbox, tag, 256)))
				if err != nil {
					t.Errorf("forward %s: %v (an instance died?)", tag, err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode == http.StatusAccepted {
					acked[tag] = true
				} else {
					refused[resp.StatusCode]++
					if len(bodies) < 3 {
						bodies = append(bodies, string(body))
					}
				}
				mu.Unlock()
				if resp.StatusCode != http.StatusAccepted {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	waitFor(t, 10*time.Second, "100 acknowledged forwards", func() bool { return ackCount() >= 100 })
	srv.Stop()
	before := ackCount()
	waitFor(t, 10*time.Second, "forwards refused with 503", func() bool { mu.Lock(); defer mu.Unlock(); return refused[503] >= 20 })
	mu.Lock()
	during := len(acked) - before
	mu.Unlock()
	srv.Restart()
	waitFor(t, 20*time.Second, "forwards acknowledged again", func() bool { return ackCount() >= before+during+100 })
	stop.Store(true)
	lg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for code := range refused {
		if code != http.StatusServiceUnavailable {
			t.Errorf("forwards refused with %d while the database was down: %v %q", code, refused, bodies)
		}
	}
	if len(bodies) == 0 {
		t.Error("no answer kept")
	}
	for _, b := range bodies {
		if !strings.Contains(b, agent.CodeUnavailable) {
			t.Errorf("a 503 answer without %s: %q", agent.CodeUnavailable, b)
		}
	}
	if during > 8 { // those in flight when it stopped may have committed
		t.Errorf("%d forwards acknowledged while the database was down", during)
	}
	for _, p := range procs {
		var health map[string]string
		waitFor(t, 10*time.Second, "/healthz ok", func() bool {
			return getJSON(t, p.base+"/healthz", "", &health) == 200 && health["status"] == "ok"
		})
	}
	var reconnects float64
	waitFor(t, 10*time.Second, "the signal listener's reconnection", func() bool {
		reconnects = metricValue(t, b.base, "agentd_db_signal_reconnects_total")
		return reconnects >= 1 && metricValue(t, b.base, "agentd_db_signal_connected") == 1
	})
	w.base = b.base
	got := w.drain(t, inbox)
	var lost []string
	for tag := range acked {
		if got[tag] != 1 {
			lost = append(lost, tag)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged forwards not delivered once: %v", len(lost), len(acked), lost)
	}
	t.Logf("%d acknowledged, refused while down: %v; %d delivered", len(acked), refused, len(got))
}

// metricValue reads one unlabelled metric of the instance at base.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+pgAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}
