package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/netguard"
)

// Sender delivers packed messages to http(s) DIDComm endpoints for the outbox.
type Sender struct {
	Client *http.Client
	// UserAgent is sent with every request.
	UserAgent string
}

// NewSender returns a Sender with sane timeouts and connection reuse whose
// connections go only where policy allows: by default not to loopback,
// private or link-local addresses, which a peer could otherwise name as its
// endpoint to reach the operator's own networks. The check runs on the
// address dialled (after name resolution, and for redirects too); a
// delivery it refuses is a PermanentError, dead-lettered at once. (A proxy
// from the environment, HTTPS_PROXY, is dialled instead of the endpoint
// and must apply its own policy.)
func NewSender(userAgent string, policy netguard.Policy) *Sender {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	tr.DialContext = policy.DialContext(30 * time.Second)
	return &Sender{Client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, UserAgent: userAgent}
}

// Deliver POSTs payload to endpoint. 2xx is success; 4xx other than 408 and
// 429 is a permanent failure (the peer refused the message itself); anything
// else is retried.
func (s *Sender) Deliver(ctx context.Context, endpoint, mediaType string, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return &agent.PermanentError{Err: err}
	}
	req.Header.Set("Content-Type", mediaType)
	if s.UserAgent != "" {
		req.Header.Set("User-Agent", s.UserAgent)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		if errors.Is(err, netguard.ErrPrivate) {
			return &agent.PermanentError{Err: fmt.Errorf("%s has a non-public address, which the outbox refuses (outbox.allow_private): %w", endpoint, err)}
		}
		return err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("%s answered %s: %s", endpoint, resp.Status, bytes.TrimSpace(snippet))
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return &agent.PermanentError{Err: err}
	}
	return err
}
