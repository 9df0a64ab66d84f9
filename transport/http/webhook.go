package http

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
)

// WebhookScheme prefixes the outbox endpoint of an operator's webhook:
// "webhook+https://ops.example/hook". The outbox hands such messages to a
// Webhook (registered for "webhook+https" and "webhook+http"), which posts
// the JSON payload to the URL after the prefix, signed.
const WebhookScheme = "webhook+"

// SignatureHeader carries the HMAC-SHA256 of a webhook body:
// "sha256=<hex>", keyed with the operator's secret.
const SignatureHeader = "X-Agentd-Signature"

// Webhook delivers the outbox's webhook messages to the one URL the
// operator configured, with the body's HMAC in SignatureHeader. The secret
// stays in the process: the outbox stores only the payload.
type Webhook struct {
	url    string
	tree   bool
	secret []byte
	client *http.Client
	agent  string
}

// NewWebhook returns the transport for url (the configured webhook, which
// may be on a private network: the operator chose it) signing with
// secret.
func NewWebhook(url, secret, userAgent string) *Webhook {
	return &Webhook{url: url, secret: []byte(secret), agent: userAgent,
		client: &http.Client{Timeout: 30 * time.Second}}
}

// NewWebhookTree is NewWebhook for a base URL under which the messages
// choose their path: it serves base and any URL below it
// (base/topics/aip_proof_exchange), nothing else.
func NewWebhookTree(base, secret, userAgent string) *Webhook {
	h := NewWebhook(strings.TrimRight(base, "/"), secret, userAgent)
	h.tree = true
	return h
}

// Serves reports whether the webhook delivers to the outbox endpoint.
func (h *Webhook) Serves(endpoint string) bool {
	target, ok := strings.CutPrefix(endpoint, WebhookScheme)
	if !ok {
		return false
	}
	if target == h.url {
		return true
	}
	rest, ok := strings.CutPrefix(target, h.url+"/")
	return ok && h.tree && !strings.Contains(rest, "..") && !strings.ContainsAny(rest, "?#@\\")
}

// Endpoint is the outbox endpoint of the webhook.
func (h *Webhook) Endpoint() string { return WebhookScheme + h.url }

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver posts payload to the webhook URL. Only the configured URL is
// served; 2xx is success, 4xx other than 408 and 429 is permanent, the rest
// is retried.
func (h *Webhook) Deliver(ctx context.Context, endpoint, mediaType string, payload []byte) error {
	if !h.Serves(endpoint) {
		return &agent.PermanentError{Err: errors.New("webhook endpoint is not the configured webhook URL")}
	}
	target := strings.TrimPrefix(endpoint, WebhookScheme)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		return &agent.PermanentError{Err: err}
	}
	req.Header.Set("Content-Type", mediaType)
	req.Header.Set(SignatureHeader, Sign(h.secret, payload))
	if h.agent != "" {
		req.Header.Set("User-Agent", h.agent)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("webhook answered %s", resp.Status)
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return &agent.PermanentError{Err: err}
	}
	return err
}

// Webhooks hands each webhook message of the outbox to the configured
// webhook that serves its endpoint (iden3's, the cloud-agent events'):
// register it for "webhook+https" and "webhook+http".
type Webhooks struct {
	mu    sync.RWMutex
	hooks []*Webhook
}

// Add adds a webhook.
func (ws *Webhooks) Add(h *Webhook) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.hooks = append(ws.hooks, h)
}

// Deliver implements agent.Transport.
func (ws *Webhooks) Deliver(ctx context.Context, endpoint, mediaType string, payload []byte) error {
	ws.mu.RLock()
	var hook *Webhook
	for _, h := range ws.hooks {
		if h.Serves(endpoint) {
			hook = h
			break
		}
	}
	ws.mu.RUnlock()
	if hook == nil {
		return &agent.PermanentError{Err: errors.New("no configured webhook serves this endpoint")}
	}
	return hook.Deliver(ctx, endpoint, mediaType, payload)
}
