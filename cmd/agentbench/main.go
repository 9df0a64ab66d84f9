// Command agentbench is a load tool for agentd as a mediator. Against a
// running agentd (mediator.enabled) it:
//
//  1. sets up C mediation clients that register M recipient DIDs between them
//     (Coordinate Mediation 3.0, over HTTP);
//  2. queues 10,000 forwards of the given size (not timed) and reads the
//     daemon's memory (VmRSS, VmHWM from /proc/PID/status), then drains them;
//  3. runs N forwards from S concurrent senders to the M recipients over
//     HTTP (every forward anoncrypted to the routing key, packed beforehand),
//     and reports forwards/s and the latency of each POST up to its 202;
//  4. drains the queues by Pickup 3.0 (delivery-request, messages-received;
//     the clients in parallel) and reports messages/s;
//  5. with -sockets N, registers N more mediation clients, opens an idle
//     WebSocket in live mode for each and reads the daemon's memory;
//  6. opens a WebSocket per client in live mode (the idle ones staying open)
//     and sends L forwards at a steady rate, reporting the time from sending
//     each forward to its push arriving on the socket, and from its 202 to
//     the push.
//
// With -pid it reads the daemon's CPU time (/proc/PID/stat) around the
// forward and pickup runs and states the CPU per forward and per message
// picked up as a multiple of one X25519 key agreement, measured in the same
// process right before and after the run. The yardstick is crypto/ecdh's,
// as when the goal was set; the daemon runs circl's faster ladder, whose
// time is printed beside it once. -sweep runs the forward
// phase once per listed concurrency and prints a line for each.
//
// Usage:
//
//	agentbench -url http://127.0.0.1:8080 -pid $(pidof agentd) -senders 64 -recipients 100 -forwards 30000
//
// make bench-mediator starts a fresh agentd and runs it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"

	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	circl "github.com/cloudflare/circl/dh/x25519"
	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/protocols/mediation"
)

type options struct {
	url        string
	urls       []string // -url split at commas: the instances
	dbURL      string   // -database-url: PostgreSQL, for the storage per message
	boltFile   string   // -bolt-file: the bbolt file, for the storage per message
	pid        int
	senders    int
	recipients int
	clients    int
	forwards   int
	size       int
	queued     int
	live       int
	liveRate   int
	sockets    int
	sweep      []int
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of the agentd mediator; several instances on one database: their URLs separated by commas (forwards go round-robin to them; the live run's sockets are on the last, its forwards go to the first)")
	flag.StringVar(&o.dbURL, "database-url", "", "PostgreSQL database of the instances: report its growth per queued message")
	flag.StringVar(&o.boltFile, "bolt-file", "", "the instance's bbolt file (DATA_DIR/agentd.db): report its growth per queued message")
	flag.IntVar(&o.pid, "pid", 0, "process id of agentd, to read its memory from /proc (0: not reported)")
	flag.IntVar(&o.senders, "senders", 64, "concurrent senders of forwards")
	flag.IntVar(&o.recipients, "recipients", 100, "recipient DIDs the forwards go to")
	flag.IntVar(&o.clients, "clients", 10, "mediation clients the recipients are spread over")
	flag.IntVar(&o.forwards, "forwards", 30000, "forwards in the timed run")
	flag.IntVar(&o.size, "size", 2048, "size in bytes of each forwarded message")
	flag.IntVar(&o.queued, "queued", 10000, "messages queued for the memory reading (0: skip)")
	flag.IntVar(&o.live, "live", 2000, "forwards in the live-delivery run (0: skip)")
	flag.IntVar(&o.liveRate, "live-rate", 500, "forwards per second in the live-delivery run")
	flag.IntVar(&o.sockets, "sockets", 0, "idle WebSockets in live mode, each for its own mediation client, held open through the live run; the memory is read with them open")
	sweep := flag.String("sweep", "", "comma-separated sender counts: run the forward phase once at each (e.g. 16,32,64,128; empty: once at -senders)")
	flag.Parse()
	for _, f := range strings.Split(*sweep, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "agentbench: -sweep: bad sender count %q\n", f)
			os.Exit(2)
		}
		o.sweep = append(o.sweep, n)
	}
	for _, u := range strings.Split(o.url, ",") {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			o.urls = append(o.urls, u)
		}
	}
	if len(o.urls) == 0 {
		fmt.Fprintln(os.Stderr, "agentbench: -url: no URL")
		os.Exit(2)
	}
	o.url = o.urls[0]
	// The load tool keeps its garbage collection light: its CPU is taken
	// from the daemon under test.
	debug.SetGCPercent(400)
	for _, u := range o.urls {
		if err := waitHealthy(u, 30*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "agentbench:", err)
			os.Exit(1)
		}
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "agentbench:", err)
		os.Exit(1)
	}
}

// waitHealthy waits for the daemon's /healthz to answer 200.
func waitHealthy(base string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(strings.TrimRight(base, "/") + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not healthy after %s: %v", base, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// party is a mediation client with its own did:peer:2.
type party struct {
	did        string
	secrets    []keys.PrivateKey
	recipients []string
	mc         mediation.Client
}

// PrivateKey implements envelope.SecretResolver.
func (p *party) PrivateKey(_ context.Context, kid string) (keys.PrivateKey, error) {
	for _, k := range p.secrets {
		if k.ID == kid {
			return k, nil
		}
	}
	return keys.PrivateKey{}, keys.ErrNotFound
}

func newParty() (*party, error) {
	x, err := keys.Generate(keys.X25519, "")
	if err != nil {
		return nil, err
	}
	e, err := keys.Generate(keys.Ed25519, "")
	if err != nil {
		return nil, err
	}
	id, err := did.NewPeer2([]keys.PublicKey{x.PublicKey}, []keys.PublicKey{e.PublicKey}, nil)
	if err != nil {
		return nil, err
	}
	doc, err := did.ResolvePeer2(id)
	if err != nil {
		return nil, err
	}
	ka, _ := doc.KeyAgreement()
	au, _ := doc.Authentication()
	x.ID, e.ID = ka[0].ID, au[0].ID
	return &party{did: id, secrets: []keys.PrivateKey{x, e}}, nil
}

type bench struct {
	o          options
	endpoint   string   // the first instance's
	endpoints  []string // every instance's
	mediator   string
	medKA      []keys.PublicKey
	routingKA  []keys.PublicKey
	resolver   *did.KeyResolver
	http       *http.Client
	clients    []*party
	owner      map[string]*party // recipient → client
	postmaster int               // PID of the PostgreSQL server (dbCPU), once found
}

func run(o options) error {
	b := &bench{o: o, endpoint: o.urls[0] + "/didcomm", resolver: did.NewKeyResolver(did.NewDefaultRegistry(nil, nil)),
		http:  &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}},
		owner: map[string]*party{}}
	for _, u := range o.urls {
		b.endpoints = append(b.endpoints, u+"/didcomm")
	}
	fmt.Printf("agentbench: %s, %d senders, %d recipients over %d clients, %d B messages, GOMAXPROCS %d\n",
		strings.Join(o.urls, " + "), o.senders, o.recipients, o.clients, o.size, runtime.GOMAXPROCS(0))
	if err := b.setup(); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	b.memory("after setup")

	if o.queued > 0 {
		fs := b.pack(o.queued, "q")
		size0 := b.storage()
		if _, _, err := b.send(fs, o.senders); err != nil {
			return err
		}
		time.Sleep(time.Second)
		b.memory(fmt.Sprintf("with %d messages of %d B queued", o.queued, o.size))
		if size1 := b.storage(); size0 >= 0 && size1 >= 0 {
			fmt.Printf("storage: %.0f B per queued message of %d B (the database grew by %.1f MiB for %d messages)\n",
				float64(size1-size0)/float64(o.queued), o.size, float64(size1-size0)/(1<<20), o.queued)
		}
		if _, err := b.drain(); err != nil {
			return err
		}
	}

	if len(o.sweep) > 0 {
		fmt.Printf("\nsweep: %d forwards of %d B at each concurrency (durable, 202 after commit)\n", o.forwards, o.size)
		printX25519()
		for i, c := range o.sweep {
			if i > 0 {
				if _, err := b.drain(); err != nil {
					return err
				}
			}
			fs := b.pack(o.forwards, "s"+strconv.Itoa(c)+"-")
			x0 := x25519Time()
			cpu0 := b.cpu()
			start := time.Now()
			lat, failed, err := b.send(fs, c)
			if err != nil {
				return err
			}
			el := time.Since(start)
			cpu1 := b.cpu()
			x := (x0 + x25519Time()) / 2
			line := fmt.Sprintf("  senders %4d: %6.0f forwards/s, p50 %s, p99 %s, %d refused", c, float64(len(lat))/el.Seconds(), pct(lat, 50), pct(lat, 99), failed)
			if cpu1 > 0 && len(lat) > 0 {
				per := (cpu1 - cpu0).Seconds() * 1e6 / float64(len(lat))
				line += fmt.Sprintf(", daemon CPU %.0f µs per forward = %.2f× one X25519 (%.1f µs)", per, per/x, x)
			}
			fmt.Println(line)
		}
		b.memory("after the forward runs")
	} else {
		fs := b.pack(o.forwards, "f")
		fmt.Println()
		printX25519()
		x0 := x25519Time()
		cpu0, db0 := b.cpu(), b.dbCPU()
		start := time.Now()
		lat, failed, err := b.send(fs, o.senders)
		if err != nil {
			return err
		}
		el := time.Since(start)
		cpu1, db1 := b.cpu(), b.dbCPU()
		x := (x0 + x25519Time()) / 2
		fmt.Printf("\nforwards: %d in %.2fs = %.0f forwards/s (durable, 202 after commit); %d refused\n", len(lat), el.Seconds(), float64(len(lat))/el.Seconds(), failed)
		fmt.Printf("  POST→202 latency: p50 %s, p90 %s, p99 %s, max %s\n", pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 100))
		if cpu1 > 0 {
			fmt.Printf("  daemon CPU: %.0f µs per forward (%.2f cores)\n", (cpu1-cpu0).Seconds()*1e6/float64(len(lat)), (cpu1-cpu0).Seconds()/el.Seconds())
			if len(lat) > 0 {
				per := (cpu1 - cpu0).Seconds() * 1e6 / float64(len(lat))
				fmt.Printf("  daemon CPU per forward = %.0f µs = %.2f× one X25519 (%.1f µs)\n", per, per/x, x)
			}
		}
		if db1 > 0 && len(lat) > 0 {
			fmt.Printf("  database server CPU: %.0f µs per forward (%.2f cores)\n", (db1-db0).Seconds()*1e6/float64(len(lat)), (db1-db0).Seconds()/el.Seconds())
		}
		b.memory("after the forward run")
	}

	x0 := x25519Time()
	cpu0 := b.cpu()
	start := time.Now()
	n, err := b.drain()
	if err != nil {
		return err
	}
	el := time.Since(start)
	cpu1 := b.cpu()
	x := (x0 + x25519Time()) / 2
	fmt.Printf("\npickup: %d messages in %.2fs = %.0f messages/s (delivery-request of 100 + messages-received, %d clients in parallel)\n",
		n, el.Seconds(), float64(n)/el.Seconds(), len(b.clients))
	if cpu1 > 0 && n > 0 {
		per := (cpu1 - cpu0).Seconds() * 1e6 / float64(n)
		fmt.Printf("  daemon CPU per message picked up = %.0f µs = %.2f× one X25519 (%.1f µs)\n", per, per/x, x)
	}

	var idle []*websocket.Conn
	if o.sockets > 0 {
		start := time.Now()
		idle, err = b.openIdle(o.sockets)
		defer func() {
			for _, c := range idle {
				c.CloseNow()
			}
		}()
		if err != nil {
			return fmt.Errorf("idle sockets: %w", err)
		}
		fmt.Printf("\nidle: %d WebSockets in live mode, each for its own mediation client, opened in %.1fs\n", len(idle), time.Since(start).Seconds())
		time.Sleep(2 * time.Second)
		b.memory(fmt.Sprintf("with %d idle live WebSockets", len(idle)))
	}

	if o.live > 0 {
		if err := b.liveRun(); err != nil {
			return fmt.Errorf("live run: %w", err)
		}
	}
	b.memory("at the end")
	return nil
}

// exchanger sends requests by HTTP POST and unpacks the answers.
type exchanger struct {
	b *bench
	p *party
}

// Exchange implements mediation.Exchanger.
func (e exchanger) Exchange(ctx context.Context, m agent.Message) (agent.Message, error) {
	packed, err := e.b.authcrypt(e.p, m)
	if err != nil {
		return agent.Message{}, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.b.endpoint, bytes.NewReader(packed))
	req.Header.Set("Content-Type", agent.MediaTypeEncrypted)
	resp, err := e.b.http.Do(req)
	if err != nil {
		return agent.Message{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return agent.Message{}, fmt.Errorf("%s: %s %s", m.Type, resp.Status, body)
	}
	return e.b.open(e.p, body)
}

func (b *bench) authcrypt(p *party, m agent.Message) ([]byte, error) {
	plain, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return envelope.PackAuthcrypt(plain, p.secrets[0], b.medKA)
}

func (b *bench) open(p *party, packed []byte) (agent.Message, error) {
	plain, _, err := envelope.Unpack(context.Background(), packed, envelope.UnpackOptions{Keys: b.resolver, Secrets: p})
	if err != nil {
		return agent.Message{}, err
	}
	var m agent.Message
	return m, json.Unmarshal(plain, &m)
}

func (b *bench) setup() error {
	resp, err := b.http.Get(strings.TrimRight(b.o.url, "/") + "/did")
	if err != nil {
		return err
	}
	var got struct {
		DID         string  `json:"did"`
		DIDDocument did.Doc `json:"didDocument"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil {
		return err
	}
	b.mediator = got.DID
	if b.medKA, err = got.DIDDocument.KeyAgreement(); err != nil {
		return err
	}
	ctx := context.Background()
	for i := range b.o.clients {
		p, err := newParty()
		if err != nil {
			return err
		}
		p.mc = mediation.Client{DID: p.did, Mediator: b.mediator}
		routing, err := p.mc.RequestMediation(ctx, exchanger{b, p}, "")
		if err != nil {
			return fmt.Errorf("mediate-request: %w", err)
		}
		if b.routingKA == nil {
			doc, err := did.ResolvePeer2(routing[0])
			if err != nil {
				return err
			}
			if b.routingKA, err = doc.KeyAgreement(); err != nil {
				return err
			}
		}
		var ups []mediation.Update
		for r := i; r < b.o.recipients; r += b.o.clients {
			rp, err := newParty()
			if err != nil {
				return err
			}
			p.recipients = append(p.recipients, rp.did)
			b.owner[rp.did] = p
			ups = append(ups, mediation.Update{RecipientDID: rp.did, Action: mediation.ActionAdd})
		}
		res, err := p.mc.UpdateRecipients(ctx, exchanger{b, p}, ups)
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Result != mediation.ResultSuccess {
				return fmt.Errorf("registering %s: %s", r.RecipientDID, r.Result)
			}
		}
		b.clients = append(b.clients, p)
	}
	return nil
}

// recipients lists every recipient DID in a fixed order.
func (b *bench) recipients() []string {
	var out []string
	for _, p := range b.clients {
		out = append(out, p.recipients...)
	}
	return out
}

// forward is one prepared forward.
type forward struct {
	tag    string
	next   string
	packed []byte
}

// pack prepares n forwards round-robin over the recipients, each carrying a
// stand-in encrypted message of the configured size marked with its tag.
func (b *bench) pack(n int, prefix string) []forward {
	rs := b.recipients()
	out := make([]forward, n)
	// Random, as ciphertext is: a store that compresses (PostgreSQL's
	// TOAST) gains nothing on real messages, and must not here.
	rnd := make([]byte, max(b.o.size-260, 0))
	rand.Read(rnd)
	pad := base64.RawURLEncoding.EncodeToString(rnd)[:len(rnd)]
	var wg sync.WaitGroup
	var idx atomic.Int64
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(idx.Add(1)) - 1
				if i >= n {
					return
				}
				next := rs[i%len(rs)]
				tag := prefix + strconv.Itoa(i)
				inner := `{"protected":"eyJ0eXAiOiJhcHBsaWNhdGlvbi9kaWRjb21tLWVuY3J5cHRlZCtqc29uIiwiYWxnIjoiRUNESC0xUFUrQTI1NktXIn0","recipients":[{"header":{"kid":"` +
					next + `#key-1"},"encrypted_key":"AAAA"}],"iv":"` + tag + `","ciphertext":"` + pad + `","tag":"AAAA"}`
				m, _ := agent.NewMessage(agent.ForwardType, map[string]string{"next": next})
				m.Attachments = []agent.Attachment{{ID: agent.NewID(), MediaType: agent.MediaTypeEncrypted, Data: agent.AttachmentData{JSON: json.RawMessage(inner)}}}
				plain, _ := json.Marshal(m)
				packed, err := envelope.PackAnoncrypt(plain, b.routingKA, envelope.XC20P)
				if err != nil {
					panic(err)
				}
				out[i] = forward{tag: tag, next: next, packed: packed}
			}
		}()
	}
	wg.Wait()
	return out
}

// post sends one forward and returns its status.
func (b *bench) post(f forward) (int, error) {
	resp, err := b.http.Post(b.endpoint, agent.MediaTypeEncrypted, bytes.NewReader(f.packed))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// rawConn is a sender's own keep-alive HTTP/1.1 connection: the load tool
// writes each request in one go and reads the status line and headers
// itself, so that it spends far less CPU per request than net/http's client
// and leaves the machine's cores to the daemon under test.
type rawConn struct {
	host string
	path string
	c    net.Conn
	r    *bufio.Reader
	hdr  []byte
}

func (b *bench) dialRaw(endpoint string) (*rawConn, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	return &rawConn{host: u.Host, path: u.Path, c: c, r: bufio.NewReaderSize(c, 4096)}, nil
}

// post sends one request and returns the status code, discarding the body.
func (rc *rawConn) post(body []byte) (int, error) {
	rc.hdr = fmt.Appendf(rc.hdr[:0], "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		rc.path, rc.host, agent.MediaTypeEncrypted, len(body))
	if _, err := (&net.Buffers{rc.hdr, body}).WriteTo(rc.c); err != nil {
		return 0, err
	}
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length := 0
	for {
		h, err := rc.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		if k, v, ok := strings.Cut(string(h), ":"); ok && strings.EqualFold(k, "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if _, err := rc.r.Discard(length); err != nil {
		return 0, err
	}
	return code, nil
}

// send posts the forwards from c concurrent senders and returns the latency
// of each accepted one.
func (b *bench) send(fs []forward, c int) ([]time.Duration, int, error) {
	lat := make([]time.Duration, 0, len(fs))
	var mu sync.Mutex
	var idx atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for k := range c {
		endpoint := b.endpoints[k%len(b.endpoints)] // senders spread over the instances
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, len(fs)/c+1)
			var rc *rawConn
			for {
				i := int(idx.Add(1)) - 1
				if i >= len(fs) {
					break
				}
				var err error
				if rc == nil {
					if rc, err = b.dialRaw(endpoint); err != nil {
						firstErr.CompareAndSwap(nil, err)
						failed.Add(1)
						continue
					}
				}
				t0 := time.Now()
				code, err := rc.post(fs[i].packed)
				if err != nil {
					rc.c.Close()
					rc = nil
					firstErr.CompareAndSwap(nil, err)
					failed.Add(1)
					continue
				}
				if code != http.StatusAccepted {
					failed.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
			if rc != nil {
				rc.c.Close()
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok && len(lat) == 0 {
		return nil, 0, e
	}
	return lat, int(failed.Load()), nil
}

// drain picks up everything queued, the clients in parallel.
func (b *bench) drain() (int, error) {
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(b.clients))
	for _, p := range b.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex := exchanger{b, p}
			for {
				got, err := p.mc.Deliver(context.Background(), ex, 100, "")
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				ids := make([]string, len(got))
				for i, d := range got {
					ids[i] = d.ID
				}
				if _, err := p.mc.Received(context.Background(), ex, ids); err != nil {
					errs <- err
					return
				}
				total.Add(int64(len(got)))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return int(total.Load()), err
	}
	return int(total.Load()), nil
}

// openIdle registers n mediation clients and opens a WebSocket in live mode
// for each, answering nothing: the sockets a mediator holds for wallets that
// are online but quiet.
func (b *bench) openIdle(n int) ([]*websocket.Conn, error) {
	ctx := context.Background()
	// With several instances, the sockets are on the last and the forwards
	// go to the first: every push crosses instances.
	wsURL := "ws" + strings.TrimPrefix(b.endpoints[len(b.endpoints)-1], "http")
	out := make([]*websocket.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				conn, err := b.idleSocket(ctx, wsURL)
				if err != nil {
					errs <- fmt.Errorf("socket %d: %w", i, err)
					return
				}
				out[i] = conn
			}
		}()
	}
	wg.Wait()
	close(errs)
	opened := slices.DeleteFunc(out, func(c *websocket.Conn) bool { return c == nil })
	if err := <-errs; err != nil {
		return opened, err
	}
	return opened, nil
}

// idleSocket makes one mediation client and opens its live-mode socket. A
// goroutine reads the socket so that pings are answered and the socket stays
// healthy; what arrives is dropped.
func (b *bench) idleSocket(ctx context.Context, wsURL string) (*websocket.Conn, error) {
	p, err := newParty()
	if err != nil {
		return nil, err
	}
	p.mc = mediation.Client{DID: p.did, Mediator: b.mediator}
	if _, err := p.mc.RequestMediation(ctx, exchanger{b, p}, ""); err != nil {
		return nil, fmt.Errorf("mediate-request: %w", err)
	}
	conn, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		return nil, err
	}
	req, _ := p.mc.Request(mediation.LiveDeliveryChangeType, mediation.LiveDeliveryChangeBody{LiveDelivery: ptr(agent.FlexBool(true))})
	packed, err := b.authcrypt(p, req)
	if err == nil {
		err = conn.Write(ctx, websocket.MessageText, packed)
	}
	if err == nil {
		_, _, err = conn.Read(ctx) // the status
	}
	if err != nil {
		conn.CloseNow()
		return nil, err
	}
	go func() {
		for {
			if _, _, err := conn.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	return conn, nil
}

// liveRun measures live delivery: a WebSocket per client in live mode, then
// forwards at a steady rate.
func (b *bench) liveRun() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// With several instances, the sockets are on the last and the forwards
	// go to the first: every push crosses instances.
	wsURL := "ws" + strings.TrimPrefix(b.endpoints[len(b.endpoints)-1], "http")
	type arrival struct {
		tag string
		at  time.Time
	}
	arrivals := make(chan arrival, b.o.live+4096) // never full: a full channel would stop the readers and delay pushes
	var socks []*websocket.Conn
	for _, p := range b.clients {
		conn, _, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			return err
		}
		conn.SetReadLimit(64 << 20)
		socks = append(socks, conn)
		req, _ := p.mc.Request(mediation.LiveDeliveryChangeType, mediation.LiveDeliveryChangeBody{LiveDelivery: ptr(agent.FlexBool(true))})
		packed, err := b.authcrypt(p, req)
		if err != nil {
			return err
		}
		if err := conn.Write(ctx, websocket.MessageText, packed); err != nil {
			return err
		}
		if _, _, err := conn.Read(ctx); err != nil { // the status
			return err
		}
		go func(p *party, conn *websocket.Conn) {
			for {
				_, data, err := conn.Read(ctx)
				if err != nil {
					return
				}
				at := time.Now()
				m, err := b.open(p, data)
				if err != nil || m.Type != mediation.DeliveryType {
					continue
				}
				ds, err := mediation.ParseDelivery(m)
				if err != nil {
					continue
				}
				ids := make([]string, 0, len(ds))
				for _, d := range ds {
					var inner struct {
						IV string `json:"iv"`
					}
					json.Unmarshal(d.Message, &inner)
					arrivals <- arrival{inner.IV, at}
					ids = append(ids, d.ID)
				}
				ack, _ := p.mc.Request(mediation.MessagesReceivedType, mediation.MessagesReceivedBody{MessageIDList: ids})
				if packed, err := b.authcrypt(p, ack); err == nil {
					conn.Write(ctx, websocket.MessageText, packed)
				}
			}
		}(p, conn)
	}
	defer func() {
		for _, c := range socks {
			c.CloseNow()
		}
	}()

	fs := b.pack(b.o.live, "l")
	sent := make(map[string]time.Time, len(fs))
	accepted := make(map[string]time.Time, len(fs))
	var mu sync.Mutex
	interval := time.Second / time.Duration(max(b.o.liveRate, 1))
	cpu0, db0 := b.cpu(), b.dbCPU()
	tick := time.NewTicker(interval)
	var wg sync.WaitGroup
	for _, f := range fs {
		<-tick.C
		wg.Add(1)
		go func(f forward) {
			defer wg.Done()
			mu.Lock()
			sent[f.tag] = time.Now()
			mu.Unlock()
			if code, err := b.post(f); err == nil && code == http.StatusAccepted {
				mu.Lock()
				accepted[f.tag] = time.Now()
				mu.Unlock()
			}
		}(f)
	}
	tick.Stop()
	wg.Wait()
	var fromSend, fromAccept []time.Duration
	timeout := time.After(30 * time.Second)
	for len(fromSend) < len(accepted) {
		select {
		case a := <-arrivals:
			mu.Lock()
			s, ok1 := sent[a.tag]
			acc, ok2 := accepted[a.tag]
			mu.Unlock()
			if ok1 && ok2 {
				fromSend = append(fromSend, a.at.Sub(s))
				fromAccept = append(fromAccept, max(a.at.Sub(acc), 0))
			}
		case <-timeout:
			return fmt.Errorf("%d of %d accepted forwards were pushed within 30s", len(fromSend), len(accepted))
		}
	}
	cpu1, db1 := b.cpu(), b.dbCPU()
	where := ""
	if len(b.endpoints) > 1 {
		where = fmt.Sprintf(" (sockets on instance %d, forwards posted to instance 1: across instances)", len(b.endpoints))
	}
	fmt.Printf("\nlive delivery: %d forwards at %d/s to %d WebSockets in live mode, all pushed%s\n", len(fromSend), b.o.liveRate, len(socks), where)
	fmt.Printf("  POST sent → push received: p50 %s, p99 %s, max %s\n", pct(fromSend, 50), pct(fromSend, 99), pct(fromSend, 100))
	fmt.Printf("  202 received → push received (0 when the push came first): p50 %s, p99 %s, max %s\n", pct(fromAccept, 50), pct(fromAccept, 99), pct(fromAccept, 100))
	if n := len(fromSend); n > 0 && cpu1 > 0 {
		fmt.Printf("  CPU per live forward (accepted, pushed, confirmed): daemon %.0f µs", (cpu1-cpu0).Seconds()*1e6/float64(n))
		if len(b.endpoints) > 1 {
			fmt.Print(" (instance 1 only)")
		}
		if db1 > 0 {
			fmt.Printf(", database server %.0f µs", (db1-db0).Seconds()*1e6/float64(n))
		}
		fmt.Println()
	}
	// The pushed messages were confirmed; what is left is in flight.
	time.Sleep(200 * time.Millisecond)
	_, err := b.drain()
	return err
}

// x25519Time measures one X25519 key agreement in this process, in µs: the
// static-key ECDH of crypto/ecdh, the yardstick of the CPU figures. The
// daemon unwraps each anoncrypted forward's content key with one X25519,
// circl's (circlX25519Time).
func x25519Time() float64 {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	peer, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	pub := peer.PublicKey()
	r := testing.Benchmark(func(tb *testing.B) {
		for tb.Loop() {
			if _, err := priv.ECDH(pub); err != nil {
				tb.Fatal(err)
			}
		}
	})
	return float64(r.T.Nanoseconds()) / float64(max(r.N, 1)) / 1e3
}

// circlX25519Time is x25519Time for the X25519 the daemon runs (package
// envelope): circl's, with the MULX/ADX instructions where the CPU has them.
func circlX25519Time() float64 {
	var priv, peer, pub, z circl.Key
	rand.Read(priv[:])
	rand.Read(peer[:])
	circl.KeyGen(&pub, &peer)
	r := testing.Benchmark(func(tb *testing.B) {
		for tb.Loop() {
			if !circl.Shared(&z, &priv, &pub) {
				tb.Fatal("low-order point")
			}
		}
	})
	return float64(r.T.Nanoseconds()) / float64(max(r.N, 1)) / 1e3
}

// printX25519 states both X25519 times once, before a forward run.
func printX25519() {
	fmt.Printf("X25519 in this process: crypto/ecdh %.1f µs (the yardstick below), circl %.1f µs (the daemon's)\n", x25519Time(), circlX25519Time())
}

func ptr[T any](v T) *T { return &v }

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i].Round(10 * time.Microsecond)
}

// cpu returns the daemon's CPU time so far (user and system), or 0.
func (b *bench) cpu() time.Duration {
	if b.o.pid == 0 {
		return 0
	}
	f := procStat(b.o.pid)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * time.Second / 100 // clock ticks (USER_HZ is 100 on Linux)
}

// dbCPU returns the CPU time (user and system) of the PostgreSQL server
// behind -database-url so far: its postmaster's, the children's it has
// reaped and its live children's (backends, WAL writer, checkpointer…).
// It is 0 without -database-url or when the server's processes cannot be
// read (another machine, another PID namespace).
func (b *bench) dbCPU() time.Duration {
	if b.o.dbURL == "" {
		return 0
	}
	if b.postmaster == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, b.o.dbURL)
		if err != nil {
			return 0
		}
		var backend int
		err = conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend)
		conn.Close(ctx)
		if err != nil {
			return 0
		}
		f := procStat(backend)
		if len(f) < 2 {
			return 0
		}
		b.postmaster, _ = strconv.Atoi(f[1])
	}
	f := procStat(b.postmaster)
	if len(f) < 15 {
		return 0
	}
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	dirs, _ := os.ReadDir("/proc")
	parent := strconv.Itoa(b.postmaster)
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if c := procStat(pid); len(c) >= 13 && c[1] == parent {
			u, _ := strconv.ParseInt(c[11], 10, 64)
			k, _ := strconv.ParseInt(c[12], 10, 64)
			ticks += u + k
		}
	}
	return time.Duration(ticks) * time.Second / 100
}

// procStat returns the fields of /proc/PID/stat after the command name
// (state is [0], ppid [1], utime [11]), or nil.
func procStat(pid int) []string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return nil
	}
	return strings.Fields(s[i+2:])
}

// storage returns the size of the database in bytes (-database-url:
// pg_database_size; -bolt-file: the file's size), or -1.
func (b *bench) storage() int64 {
	switch {
	case b.o.dbURL != "":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, b.o.dbURL)
		if err != nil {
			fmt.Println("storage:", err)
			return -1
		}
		defer conn.Close(ctx)
		// Tables and indexes, as soon as written; not the WAL.
		var n int64
		if err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n); err != nil {
			fmt.Println("storage:", err)
			return -1
		}
		return n
	case b.o.boltFile != "":
		st, err := os.Stat(b.o.boltFile)
		if err != nil {
			fmt.Println("storage:", err)
			return -1
		}
		return st.Size()
	}
	return -1
}

// memory prints the daemon's resident memory now and at its peak.
func (b *bench) memory(when string) {
	if b.o.pid == 0 {
		return
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", b.o.pid))
	if err != nil {
		fmt.Println("memory:", err)
		return
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && (k == "VmRSS" || k == "VmHWM" || k == "RssAnon" || k == "RssFile") {
			vals[k] = strings.TrimSpace(v)
		}
	}
	fmt.Printf("daemon memory %s: VmRSS %s (anonymous %s, file-backed %s: the database's memory map), VmHWM (peak) %s\n",
		when, mib(vals["VmRSS"]), mib(vals["RssAnon"]), mib(vals["RssFile"]), mib(vals["VmHWM"]))
}

func mib(kb string) string {
	n, err := strconv.Atoi(strings.TrimSuffix(kb, " kB"))
	if err != nil {
		return kb
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/1024)
}
