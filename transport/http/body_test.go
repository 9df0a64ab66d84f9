package http

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
)

// TestReadBody: the body is read whole whatever the declared length says,
// in small reads too, and read errors come through.
func TestReadBody(t *testing.T) {
	body := strings.Repeat("0123456789", 300)
	for _, declared := range []int64{-1, 0, 1, 100, int64(len(body)) - 1, int64(len(body)), int64(len(body)) + 1, 10 * int64(len(body))} {
		for name, rd := range map[string]io.Reader{
			"whole": strings.NewReader(body),
			"bytes": iotest.OneByteReader(strings.NewReader(body)),
			"half":  iotest.HalfReader(strings.NewReader(body)),
		} {
			got, err := readBody(rd, declared)
			if err != nil || string(got) != body {
				t.Errorf("declared %d, %s reader: %d bytes, %v", declared, name, len(got), err)
			}
		}
	}
	boom := errors.New("boom")
	if _, err := readBody(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)), 10); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
}

// TestEndpointChunkedOverLimit: a body without a declared length is held to
// the limit as one with it is.
func TestEndpointChunkedOverLimit(t *testing.T) {
	rcv := &fakeReceiver{}
	h := NewHandler(Config{Receiver: rcv, Public: fakePublic{}, MaxBodyBytes: 2048})
	for _, n := range []int{100, 3000} {
		body := `{"x":"` + strings.Repeat("a", n) + `"}`
		req := httptest.NewRequest("POST", "/didcomm", io.MultiReader(strings.NewReader(body))) // no length
		req.ContentLength = -1
		req.Header.Set("Content-Type", agent.MediaTypePlain)
		rec := httptest.NewRecorder()
		rcv.got = nil
		h.ServeHTTP(rec, req)
		switch {
		case n < 2048 && (rec.Code != http.StatusAccepted || !bytes.Equal(rcv.got, []byte(body))):
			t.Errorf("%d bytes: %d, receiver got %d bytes", n, rec.Code, len(rcv.got))
		case n > 2048 && (rec.Code != http.StatusRequestEntityTooLarge || rcv.got != nil):
			t.Errorf("%d bytes: %d, receiver got %d bytes", n, rec.Code, len(rcv.got))
		}
	}
}

// BenchmarkEndpointForward: the HTTP endpoint's own cost for a 2 KiB
// message (the receiver does nothing).
func BenchmarkEndpointForward(b *testing.B) {
	h := NewHandler(Config{Receiver: nopReceiver{}, Public: fakePublic{}, MaxBodyBytes: 1 << 20})
	body := `{"protected":"eyJ","recipients":[],"iv":"a","ciphertext":"` + strings.Repeat("a", 2048) + `","tag":"t"}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/didcomm", strings.NewReader(body))
		req.Header.Set("Content-Type", agent.MediaTypeEncrypted)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatal(rec.Code)
		}
	}
}

// nopReceiver accepts every message and keeps nothing.
type nopReceiver struct{}

func (nopReceiver) ReceiveDuplex(context.Context, string, []byte, agent.Session) (*agent.Reply, error) {
	return nil, nil
}

func (nopReceiver) ReceiveDeclared(context.Context, string, []byte, envelope.Form) (*agent.Reply, error) {
	return nil, nil
}

// TestEndpointReusesBodyBuffer: bodies read into pooled buffers reach the
// receiver whole and unmixed, larger and smaller ones in turn, and the
// media type is taken with parameters and in upper case as before.
func TestEndpointReusesBodyBuffer(t *testing.T) {
	rcv := &fakeReceiver{}
	h := NewHandler(Config{Receiver: rcv, Public: fakePublic{}, MaxBodyBytes: 1 << 20})
	for i, n := range []int{3000, 10, 3000, 200, 70000, 5, 1} {
		body := `{"x":"` + strings.Repeat(string(rune('a'+i)), n) + `"}`
		req := httptest.NewRequest("POST", "/didcomm", strings.NewReader(body))
		ct := agent.MediaTypePlain
		switch i % 3 {
		case 1:
			ct += "; charset=utf-8"
		case 2:
			ct = strings.ToUpper(ct)
		}
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		rcv.got = nil
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted || !bytes.Equal(rcv.got, []byte(body)) {
			t.Errorf("%d: %d bytes, content type %q: %d, receiver got %d bytes", i, len(body), ct, rec.Code, len(rcv.got))
		}
	}
}
