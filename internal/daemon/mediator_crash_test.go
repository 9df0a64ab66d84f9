package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/store/bolt"
)

// goWallet is a mediation client written with agentd's own envelope package
// (fast enough to drive a load loop).
type goWallet struct {
	*wallet
	base      string // mediator base URL
	mediator  string
	medKA     []keys.PublicKey
	keys      *did.KeyResolver
	routingKA []keys.PublicKey
}

func newGoWallet(t testing.TB, base string) *goWallet {
	t.Helper()
	var got struct {
		DID         string  `json:"did"`
		DIDDocument did.Doc `json:"didDocument"`
	}
	if code := getJSON(t, base+"/did", "", &got); code != 200 {
		t.Fatalf("GET /did: %d", code)
	}
	ka, err := got.DIDDocument.KeyAgreement()
	if err != nil {
		t.Fatal(err)
	}
	return &goWallet{wallet: newWallet(t, ""), base: base, mediator: got.DID, medKA: ka,
		keys: did.NewKeyResolver(did.NewDefaultRegistry(nil, nil))}
}

func (w *goWallet) PrivateKey(_ context.Context, kid string) (keys.PrivateKey, error) {
	for _, k := range w.secrets {
		if k.ID == kid {
			return k, nil
		}
	}
	return keys.PrivateKey{}, keys.ErrNotFound
}

// request authcrypts a request to the mediator and unpacks its answer.
func (w *goWallet) request(t testing.TB, typ string, body any) agent.Message {
	t.Helper()
	code, _, resp := post(t, w.base+"/didcomm", agent.MediaTypeEncrypted, w.packRequest(t, typ, body))
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", typ, code, resp)
	}
	out, _, err := envelope.Unpack(context.Background(), resp, envelope.UnpackOptions{Keys: w.keys, Secrets: w})
	if err != nil {
		t.Fatal(err)
	}
	var ans agent.Message
	json.Unmarshal(out, &ans)
	return ans
}

// packRequest authcrypts a request to the mediator asking for the answer on
// the connection.
func (w *goWallet) packRequest(t testing.TB, typ string, body any) []byte {
	t.Helper()
	m, _ := agent.NewMessage(typ, body)
	m.From, m.To, m.ReturnRoute = w.did, []string{w.mediator}, "all"
	plain, _ := json.Marshal(m)
	packed, err := envelope.PackAuthcrypt(plain, w.secrets[0], w.medKA)
	if err != nil {
		t.Fatal(err)
	}
	return packed
}

// setup gets mediation and registers inbox.
func (w *goWallet) setup(t testing.TB, inbox string) {
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
	up := w.request(t, "https://didcomm.org/coordinate-mediation/3.0/recipient-update",
		map[string]any{"updates": []any{map[string]any{"recipient_did": inbox, "action": "add"}}})
	if !bytes.Contains(up.Body, []byte(`"success"`)) {
		t.Fatalf("update %s", up.Body)
	}
}

// forward builds a forward for next carrying a stand-in encrypted message
// marked with tag, anoncrypted to the routing key.
func (w *goWallet) forward(t testing.TB, next, tag string, size int) []byte {
	inner := fmt.Sprintf(`{"protected":"eyJ0eXAiOiJhcHBsaWNhdGlvbi9kaWRjb21tLWVuY3J5cHRlZCtqc29uIn0","recipients":[{"header":{"kid":"%s#key-1"},"encrypted_key":"AAAA"}],"iv":"%s","ciphertext":"%s","tag":"AAAA"}`,
		next, tag, string(bytes.Repeat([]byte("A"), max(size-200, 0))))
	m, _ := agent.NewMessage(agent.ForwardType, map[string]string{"next": next})
	m.Attachments = []agent.Attachment{{ID: agent.NewID(), MediaType: agent.MediaTypeEncrypted, Data: agent.AttachmentData{JSON: json.RawMessage(inner)}}}
	plain, _ := json.Marshal(m)
	packed, err := envelope.PackAnoncrypt(plain, w.routingKA, envelope.XC20P)
	if err != nil {
		t.Fatal(err)
	}
	return packed
}

// TestMediatorCrashDurability runs the mediator in a child process, forwards
// to it from 16 concurrent senders, kills it with SIGKILL after 300
// acknowledged (202) forwards, and checks that every acknowledged forward is
// in the queue of the reopened database, and then in a restarted mediator,
// which drops each of them posted again as a replay.
func TestMediatorCrashDurability(t *testing.T) {
	if dir := os.Getenv("AGENTD_MEDIATOR_CRASH_CHILD"); dir != "" {
		crashMediatorChild(dir, os.Getenv("AGENTD_MEDIATOR_CRASH_ADDR"))
		return
	}
	dir := t.TempDir()
	addr := freePort(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMediatorCrashDurability$", "-test.v=false")
	cmd.Env = append(os.Environ(), "AGENTD_MEDIATOR_CRASH_CHILD="+dir, "AGENTD_MEDIATOR_CRASH_ADDR="+addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("child did not start:\n%s", stderr.String())
	}
	base := "http://" + addr
	w := newGoWallet(t, base)
	inbox := newWallet(t, "").did
	w.setup(t, inbox)

	const senders, total, killAt = 16, 4000, 300
	forwards := make([][]byte, total)
	for i := range forwards {
		forwards[i] = w.forward(t, inbox, fmt.Sprintf("m%05d", i), 1024)
	}
	var (
		mu      sync.Mutex
		acked   = map[string]bool{}
		next    atomic.Int64
		killed  atomic.Bool
		wg      sync.WaitGroup
		client  = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
		killErr error
	)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total || killed.Load() {
					return
				}
				resp, err := client.Post(base+"/didcomm", agent.MediaTypeEncrypted, bytes.NewReader(forwards[i]))
				if err != nil {
					continue // the child is gone, or going
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					continue
				}
				mu.Lock()
				acked[fmt.Sprintf("m%05d", i)] = true
				n := len(acked)
				mu.Unlock()
				if n == killAt && killed.CompareAndSwap(false, true) {
					killErr = cmd.Process.Signal(syscall.SIGKILL)
				}
			}
		}()
	}
	wg.Wait()
	if killErr != nil || !killed.Load() {
		t.Fatalf("child not killed (%v) after %d acks:\n%s", killErr, len(acked), stderr.String())
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}

	// Every acknowledged forward is in the reopened database.
	db, err := bolt.Open(filepath.Join(dir, "agentd.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := db.Queue().List(context.Background(), []string{inbox}, time.Now(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, m := range stored {
		var inner struct {
			IV string `json:"iv"`
		}
		json.Unmarshal(m.Payload, &inner)
		have[inner.IV] = true
	}
	var lost []string
	for id := range acked {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	if tt, _ := db.Queue().Totals(context.Background()); tt.Messages != len(stored) {
		t.Errorf("counters say %d messages, %d stored", tt.Messages, len(stored))
	}
	db.Close()
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged forwards lost after SIGKILL: %v", len(lost), len(acked), lost)
	}
	t.Logf("%d forwards acknowledged before SIGKILL (of %d sent), %d in the queue after it", len(acked), next.Load(), len(stored))

	// A mediator restarted on the directory serves them.
	cfg := crashConfig(dir, freePort(t))
	cfg.Limits.ClientRate = 0 // the stored forwards are posted again below
	m := start(t, cfg)
	w.base = m.base
	st := w.request(t, "https://didcomm.org/messagepickup/3.0/status-request", nil)
	var sb struct {
		MessageCount int `json:"message_count"`
	}
	st.DecodeBody(&sb)
	if sb.MessageCount != len(stored) {
		t.Fatalf("restarted mediator reports %d messages, %d stored", sb.MessageCount, len(stored))
	}

	// Their replay keys survived too, those migrated into the database
	// file before the kill and those recovered from the journal: each
	// stored forward posted again is dropped as a replay, not queued twice.
	replayed := 0
	for i, f := range forwards {
		if !have[fmt.Sprintf("m%05d", i)] {
			continue
		}
		if code, _, body := post(t, m.base+"/didcomm", agent.MediaTypeEncrypted, f); code != http.StatusAccepted {
			t.Fatalf("forward m%05d posted again: %d %s", i, code, body)
		}
		replayed++
	}
	st = w.request(t, "https://didcomm.org/messagepickup/3.0/status-request", nil)
	st.DecodeBody(&sb)
	if sb.MessageCount != len(stored) {
		t.Fatalf("%d stored forwards posted again after the restart: the mediator now reports %d messages, %d before", replayed, sb.MessageCount, len(stored))
	}
}

func crashConfig(dir, addr string) config.Config {
	cfg := config.Default()
	cfg.DataDir, cfg.HTTP.Addr = dir, addr
	cfg.HTTP.PublicURL = "http://127.0.0.1:1/didcomm" // one endpoint across restarts: the same DIDs
	cfg.Mediator.Enabled = true
	cfg.Outbox.AllowPrivate = true // the test agents talk on 127.0.0.1
	return cfg
}

// crashMediatorChild runs the mediator until it is killed.
func crashMediatorChild(dir, addr string) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := daemon.New(context.Background(), crashConfig(dir, addr), log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	if err := d.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	select {}
}
