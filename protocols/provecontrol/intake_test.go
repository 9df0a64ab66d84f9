package provecontrol

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent"
)

// fakeInbound stands in for the router: Check parses the JSON, Receive
// counts.
type fakeInbound struct {
	transports []string
	received   int
}

func (f *fakeInbound) Check(_ context.Context, transport string, raw []byte) (*agent.Message, error) {
	f.transports = append(f.transports, transport)
	var m agent.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "not a message")
	}
	return &m, nil
}

func (f *fakeInbound) Receive(context.Context, string, []byte) (*agent.Reply, error) {
	f.received++
	return nil, nil
}

// Only verificationchallenges are taken, whatever way they came.
func TestIntakeRefusesOtherMessages(t *testing.T) {
	ctx := context.Background()
	in := &fakeInbound{}
	mails := 0
	intake := NewIntake(IntakeConfig{Inbound: in, ExtractMail: func(mail []byte) ([][]byte, error) {
		mails++
		if strings.Contains(string(mail), "no didcomm") {
			return nil, agent.Errorf(agent.CodeMsg, "no DIDComm message in the mail")
		}
		return [][]byte{[]byte(`{"id":"1","type":"https://didcomm.org/trust-ping/2.0/ping"}`)}, nil
	}})
	ping := []byte(`  {"id":"1","type":"https://didcomm.org/trust-ping/2.0/ping"}`)
	if _, err := intake.Import(ctx, ping); agent.ErrorCode(err) != agent.CodeMsg || in.received != 0 || mails != 0 {
		t.Fatalf("pasted ping: %v, received %d, mails %d", err, in.received, mails)
	}
	if _, err := intake.Import(ctx, []byte("Subject: x\r\n\r\nhello")); agent.ErrorCode(err) != agent.CodeMsg || mails != 1 || in.received != 0 {
		t.Fatalf("mailed ping: %v", err)
	}
	if _, err := intake.Import(ctx, []byte("Subject: x\r\n\r\nno didcomm")); agent.ErrorCode(err) != agent.CodeMsg {
		t.Fatalf("mail without DIDComm: %v", err)
	}
	if _, err := intake.Receive(ctx, "ip", ping); agent.ErrorCode(err) != agent.CodeMsg {
		t.Fatalf("posted ping: %v", err)
	}
	if got := strings.Join(in.transports, ","); got != "import,import,ip" {
		t.Fatalf("transports %s", got)
	}
}

// Fetch asks for the encrypted media type and maps the link's answers to
// errors the operator understands.
func TestIntakeFetchErrors(t *testing.T) {
	ctx := context.Background()
	var accept, ua string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept, ua = r.Header.Get("Accept"), r.Header.Get("User-Agent")
		switch r.URL.Path {
		case "/c/unknown":
			http.NotFound(w, r)
		case "/c/gone":
			w.WriteHeader(http.StatusGone)
		case "/c/broken":
			w.WriteHeader(http.StatusInternalServerError)
		case "/c/big":
			w.Write([]byte(strings.Repeat("x", maxLinkBody+1)))
		default:
			w.Write([]byte(`{"id":"1","type":"https://didcomm.org/trust-ping/2.0/ping"}`))
		}
	}))
	defer srv.Close()
	in := &fakeInbound{}
	intake := NewIntake(IntakeConfig{Inbound: in, HTTP: srv.Client(), UserAgent: "agentd/test"})
	for path, code := range map[string]string{
		"/c/unknown": agent.CodeMsg, "/c/gone": agent.CodeMsg, "/c/broken": agent.CodeXfer,
		"/c/big": agent.CodeTooLarge, "/c/ping": agent.CodeMsg,
	} {
		if _, err := intake.Fetch(ctx, srv.URL+path); agent.ErrorCode(err) != code {
			t.Errorf("%s: error %v, want %s", path, err, code)
		}
	}
	if accept != agent.MediaTypeEncrypted || ua != "agentd/test" {
		t.Errorf("Accept %q, User-Agent %q", accept, ua)
	}
	if in.received != 0 || len(in.transports) != 1 || in.transports[0] != "link" {
		t.Errorf("received %d, transports %v", in.received, in.transports)
	}
	for _, link := range []string{"ftp://x/y", "/c/relative", "http://"} {
		if _, err := intake.Fetch(ctx, link); agent.ErrorCode(err) != agent.CodeMsg {
			t.Errorf("%s: %v", link, err)
		}
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if _, err := intake.Fetch(ctx, closed.URL+"/c/x"); agent.ErrorCode(err) != agent.CodeXfer || errors.Is(err, context.Canceled) {
		t.Errorf("unreachable: %v", err)
	}
}
