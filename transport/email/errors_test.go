package email

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/agentd/agentd/agent"
)

func TestSMTPStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		ec   smtp.EnhancedCode
	}{
		{agent.Errorf(agent.CodeTooLarge, "x"), 552, smtp.EnhancedCode{5, 3, 4}},
		{agent.Errorf(agent.CodeMeResStorage, "x"), 552, smtp.EnhancedCode{5, 3, 4}},
		{agent.Errorf(agent.CodeMe, "x"), 451, smtp.EnhancedCode{4, 3, 0}},
		{errors.New("unexplained"), 451, smtp.EnhancedCode{4, 3, 0}},
		{agent.Errorf(agent.CodeTrustCrypto, "x"), 554, smtp.EnhancedCode{5, 7, 0}},
		{agent.Errorf("e.p.trust.provecontrol.unsigned", "x"), 554, smtp.EnhancedCode{5, 7, 0}},
		{fmt.Errorf("wrapped: %w", agent.Errorf(agent.CodeNotForUs, "x")), 554, smtp.EnhancedCode{5, 7, 0}},
		{agent.Errorf(agent.CodeMsg, "x"), 554, smtp.EnhancedCode{5, 6, 0}},
		{agent.Errorf("e.p.trustee", "x"), 554, smtp.EnhancedCode{5, 6, 0}},
	} {
		code, ec := smtpStatus(tc.err)
		if code != tc.code || ec != tc.ec {
			t.Errorf("%v: %d %v, want %d %v", tc.err, code, ec, tc.code, tc.ec)
		}
	}
}

// panickingRouter panics on every message it checks.
type panickingRouter struct{ *fakeRouter }

func (panickingRouter) Check(context.Context, string, []byte) (*agent.Message, error) {
	panic("router kaboom")
}

// lockedBuffer is a log sink the server's goroutines can write concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestSessionPanicIsRecovered(t *testing.T) {
	var logs lockedBuffer
	ts := startServer(t, "", false, func(c *ServerConfig) {
		c.Receiver = panickingRouter{newFakeRouter()}
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	c := dial(t, ts.addr)
	c.expect(250, "EHLO client.test")
	code, msg := c.send("alice@example.org", "agent@agent.test", encryptedMail(`{"ciphertext":"x"}`))
	if code != 451 || !strings.Contains(msg, "4.3.0") || strings.Contains(msg, "kaboom") {
		t.Fatalf("panicking handler: %d %s, want 451 4.3.0 without details", code, msg)
	}
	if l := logs.String(); !strings.Contains(l, "session handler panicked") || !strings.Contains(l, "router kaboom") ||
		!strings.Contains(l, "runtime/debug.Stack") {
		t.Fatalf("the log lacks the panic and its stack:\n%s", l)
	}
	// The session goes on.
	c.expect(250, "RSET")
}
