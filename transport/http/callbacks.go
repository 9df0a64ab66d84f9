package http

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/netguard"
)

// Headers of the exchanges' callbacks.
const (
	// CallbackSignatureHeader is "sha256=<hex>", the HMAC-SHA256 of the
	// body under the exchange's secret (as Sign makes it).
	CallbackSignatureHeader = "X-Privado-Signature"
	// CallbackDeliveryHeader is the delivery id, the same on every retry
	// of one callback: "<interaction id>.<state>".
	CallbackDeliveryHeader = "X-Privado-Delivery"
)

// CallbackTarget is where a callback goes and what signs it.
type CallbackTarget struct {
	URL        string
	Secret     []byte
	DeliveryID string
}

// Callbacks delivers the outbox's exchange callbacks (the endpoints with
// the "privado+" prefix): it posts the JSON body to the exchange's URL,
// signed with the exchange's secret, which it looks up at delivery time
// (the outbox stores only the body).
type Callbacks struct {
	resolve func(ctx context.Context, endpoint string) (CallbackTarget, error)
	client  *http.Client
	agent   string
}

// NewCallbacks returns the callback transport: resolve gives an endpoint's
// target; addresses are checked by policy when connecting; roots, when not
// nil, are the CAs trusted instead of the system's.
func NewCallbacks(userAgent string, policy netguard.Policy, roots *x509.CertPool,
	resolve func(ctx context.Context, endpoint string) (CallbackTarget, error)) *Callbacks {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = policy.DialContext(30 * time.Second)
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &Callbacks{resolve: resolve, agent: userAgent, client: &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Deliver posts payload to the endpoint's callback URL. 2xx is success;
// 4xx other than 408 and 429, a redirect, or an endpoint whose exchange is
// gone is permanent; the rest is retried.
func (c *Callbacks) Deliver(ctx context.Context, endpoint, mediaType string, payload []byte) error {
	t, err := c.resolve(ctx, endpoint)
	if err != nil {
		if agent.HasCode(err, agent.CodeNotFound) {
			return &agent.PermanentError{Err: err}
		}
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(payload))
	if err != nil {
		return &agent.PermanentError{Err: err}
	}
	req.Header.Set("Content-Type", mediaType)
	req.Header.Set(CallbackSignatureHeader, Sign(t.Secret, payload))
	req.Header.Set(CallbackDeliveryHeader, t.DeliveryID)
	if c.agent != "" {
		req.Header.Set("User-Agent", c.agent)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		if errors.Is(err, netguard.ErrPrivate) {
			return &agent.PermanentError{Err: fmt.Errorf("the callback host has a non-public address (outbox.allow_private): %w", err)}
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("the exchange's callback answered %s", resp.Status)
	if resp.StatusCode/100 == 3 || resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return &agent.PermanentError{Err: err}
	}
	return err
}
