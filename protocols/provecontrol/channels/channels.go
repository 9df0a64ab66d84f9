// Package channels holds the delivery channels of the Prove Control
// verifier that reach outside DIDComm: SMS through a Twilio-style Messages
// REST API, Discord direct messages through the Discord bot REST API, DNS
// TXT lookups through a chosen DNS server, and the printable letter (PDF
// with a QR code) for postal addresses. Each implements one of the small
// interfaces of package provecontrol.
//
// Errors name the provider's status and error text, never the message
// text, which carries a one-time link, nor the credentials.
package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agentd/agentd/protocols/provecontrol"
)

// defaultClient is the HTTP client of the REST channels.
func defaultClient() *http.Client { return &http.Client{Timeout: 15 * time.Second} }

// TwilioSMS sends SMS through the Twilio Messages API, or any provider that
// speaks its shape: POST {BaseURL}/2010-04-01/Accounts/{AccountSID}/Messages.json
// with form fields To, From and Body, HTTP basic auth (account SID, auth
// token), answered 201 with a JSON message resource.
type TwilioSMS struct {
	// BaseURL is the API root; default https://api.twilio.com.
	BaseURL    string
	AccountSID string
	// AuthToken is a secret.
	AuthToken string
	// From is the sender number (E.164) or alphanumeric sender id.
	From   string
	Client *http.Client
}

var _ provecontrol.SMSSender = (*TwilioSMS)(nil)

// SendSMS sends text to the phone number to.
func (t *TwilioSMS) SendSMS(ctx context.Context, to, text string) error {
	base := strings.TrimRight(t.BaseURL, "/")
	if base == "" {
		base = "https://api.twilio.com"
	}
	u := base + "/2010-04-01/Accounts/" + url.PathEscape(t.AccountSID) + "/Messages.json"
	form := url.Values{"To": {to}, "From": {t.From}, "Body": {text}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(t.AccountSID, t.AuthToken)
	client := t.Client
	if client == nil {
		client = defaultClient()
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("SMS provider unreachable: %w", redact(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &e)
	return fmt.Errorf("SMS provider answered %s: %s (code %d)", resp.Status, safe(e.Message), e.Code)
}

// Discord sends direct messages through the Discord bot REST API: it opens
// the DM channel (POST {BaseURL}/users/@me/channels {recipient_id}) and
// posts the message in it (POST {BaseURL}/channels/{id}/messages
// {content}), authenticated as "Authorization: Bot <token>". Link previews
// are suppressed, since a preview would fetch (and use up) a one-time link.
type Discord struct {
	// BaseURL is the API root; default https://discord.com/api/v10.
	BaseURL string
	// BotToken is a secret.
	BotToken string
	Client   *http.Client
}

var _ provecontrol.DiscordSender = (*Discord)(nil)

// suppressEmbeds is the Discord message flag SUPPRESS_EMBEDS.
const suppressEmbeds = 1 << 2

// SendDM sends text to the Discord user userID.
func (d *Discord) SendDM(ctx context.Context, userID, text string) error {
	var ch struct {
		ID string `json:"id"`
	}
	if err := d.call(ctx, "/users/@me/channels", map[string]any{"recipient_id": userID}, &ch); err != nil {
		return fmt.Errorf("opening the Discord DM channel: %w", err)
	}
	if ch.ID == "" {
		return errors.New("opening the Discord DM channel: the answer has no channel id")
	}
	if err := d.call(ctx, "/channels/"+url.PathEscape(ch.ID)+"/messages", map[string]any{"content": text, "flags": suppressEmbeds}, nil); err != nil {
		return fmt.Errorf("sending the Discord message: %w", err)
	}
	return nil
}

func (d *Discord) call(ctx context.Context, path string, body, out any) error {
	base := strings.TrimRight(d.BaseURL, "/")
	if base == "" {
		base = "https://discord.com/api/v10"
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bot "+d.BotToken)
	req.Header.Set("User-Agent", "DiscordBot (https://github.com/agentd/agentd, 0.1)")
	client := d.Client
	if client == nil {
		client = defaultClient()
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("Discord unreachable: %w", redact(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Code       int     `json:"code"`
			Message    string  `json:"message"`
			RetryAfter float64 `json:"retry_after"`
		}
		_ = json.Unmarshal(data, &e)
		if resp.StatusCode == http.StatusTooManyRequests {
			return fmt.Errorf("Discord rate limit: retry after %.1fs", e.RetryAfter)
		}
		return fmt.Errorf("Discord answered %s: %s (code %d)", resp.Status, safe(e.Message), e.Code)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("Discord answered with malformed JSON")
		}
	}
	return nil
}

// NewTXTResolver returns a resolver that asks the DNS server at server
// (HOST:PORT) for TXT records, or the system resolver when server is empty.
func NewTXTResolver(server string) provecontrol.TXTResolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &txtResolver{server: server, r: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}}
}

type txtResolver struct {
	server string
	r      *net.Resolver
}

// LookupTXT asks the configured server; its errors name that server (the
// standard library's name the system resolver's address instead).
func (t *txtResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	v, err := t.r.LookupTXT(ctx, name)
	var de *net.DNSError
	if errors.As(err, &de) {
		c := *de
		c.Server = t.server
		return v, &c
	}
	return v, err
}

// redact removes the URL (which names the account) from a transport error.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// safe bounds provider text for an error message.
func safe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		s = "no error text"
	}
	return s
}
