package http

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/agentd/agentd/agent"
)

// Sender delivers packed messages to http(s) DIDComm endpoints for the outbox.
type Sender struct {
	Client *http.Client
	// UserAgent is sent with every request.
	UserAgent string
}

// NewSender returns a Sender with sane timeouts and connection reuse.
func NewSender(userAgent string) *Sender {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
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
