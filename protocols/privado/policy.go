package privado

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/netguard"
)

// ParseChallenge reads the exchange's challenge: a JSON integer (or a
// decimal string) from 1 to 4294967295, which becomes the iden3 scope id
// and the request's message.
func ParseChallenge(raw json.RawMessage) (uint32, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, agent.Errorf(agent.CodeMsg, "challenge: required, an integer from 1 to 4294967295")
	}
	if s[0] == '"' {
		var str string
		if err := json.Unmarshal([]byte(s), &str); err != nil {
			return 0, agent.Errorf(agent.CodeMsg, "challenge: must be an integer from 1 to 4294967295")
		}
		s = str
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, agent.Errorf(agent.CodeMsg, "challenge: must be an integer from 1 to 4294967295 (no sign, fraction or exponent)")
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > math.MaxUint32 {
		return 0, agent.Errorf(agent.CodeMsg, "challenge: must be from 1 to 4294967295 (it becomes the proof's 32-bit request id)")
	}
	return uint32(n), nil
}

// SigScopeID is the id of the signature-proof scope of challenge c: c+1,
// or 1 for 4294967295 (never 0, never c).
func SigScopeID(c uint32) uint32 {
	if c == math.MaxUint32 {
		return 1
	}
	return c + 1
}

// CallbackPolicy decides which callback URLs an exchange may give.
type CallbackPolicy struct {
	// AllowHTTP allows plain http callbacks to any host; without it, http
	// is allowed only to a loopback host (and only with AllowPrivate).
	AllowHTTP bool
	// AllowPrivate allows hosts on loopback, private and link-local
	// addresses.
	AllowPrivate bool
	// Lookup resolves a host name (net.DefaultResolver.LookupNetIP by
	// default).
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// MaxCallbackLen bounds a callback URL.
const MaxCallbackLen = 2000

// Check refuses a callback that is not an absolute http(s) URL allowed by
// the policy and by the exchange's allow-list. The delivery checks the
// address again when it connects (the outbox's dialer), so a name that
// later resolves to a private address is refused then.
func (p CallbackPolicy) Check(ctx context.Context, raw string, allow []string) (string, error) {
	if raw == "" {
		return "", agent.Errorf(agent.CodeMsg, "callback: required, an https URL")
	}
	if len(raw) > MaxCallbackLen {
		return "", agent.Errorf(agent.CodeMsg, "callback: longer than %d characters", MaxCallbackLen)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", agent.Errorf(agent.CodeMsg, "callback: not an absolute URL")
	}
	if u.User != nil {
		return "", agent.Errorf(agent.CodeMsg, "callback: must not hold a user name or password")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", agent.Errorf(agent.CodeMsg, "callback: must not have a fragment")
	}
	host := u.Hostname()
	loopback := host == "localhost"
	addr, ipErr := netip.ParseAddr(strings.Trim(host, "[]"))
	if ipErr == nil {
		loopback = addr.IsLoopback()
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !p.AllowHTTP && !loopback {
			return "", agent.Errorf(agent.CodeMsg, "callback: must be https (plain http only to a loopback host)")
		}
	default:
		return "", agent.Errorf(agent.CodeMsg, "callback: must be https")
	}
	if !allowed(u, allow) {
		return "", agent.Errorf(agent.CodeForbidden, "callback: %s is not in the exchange's callback allow-list", u.Scheme+"://"+u.Host)
	}
	if p.AllowPrivate {
		return u.String(), nil
	}
	var addrs []netip.Addr
	if ipErr == nil {
		addrs = []netip.Addr{addr}
	} else {
		lookup := p.Lookup
		if lookup == nil {
			lookup = func(ctx context.Context, h string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", h)
			}
		}
		if addrs, err = lookup(ctx, host); err != nil || len(addrs) == 0 {
			return "", agent.Errorf(agent.CodeMsg, "callback: the host %s does not resolve", host)
		}
	}
	for _, a := range addrs {
		if !netguard.IsPublic(a.Unmap()) {
			return "", agent.Errorf(agent.CodeForbidden, "callback: the host %s has a non-public address, which is not allowed", host)
		}
	}
	return u.String(), nil
}

// allowed reports whether u matches an allow-list entry: an origin or URL
// prefix ("https://cb.exchange.example/hooks/"), a host name
// ("cb.exchange.example", any port) or a subdomain pattern
// ("*.exchange.example").
func allowed(u *url.URL, allow []string) bool {
	host := strings.ToLower(u.Hostname())
	full := strings.ToLower(u.Scheme + "://" + u.Host + u.EscapedPath())
	for _, e := range allow {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
		case strings.Contains(e, "://"):
			if full == e || strings.HasPrefix(full, e) && (strings.HasSuffix(e, "/") || len(full) > len(e) && full[len(e)] == '/') {
				return true
			}
		case strings.HasPrefix(e, "*."):
			if strings.HasSuffix(host, e[1:]) {
				return true
			}
		case host == e:
			return true
		}
	}
	return false
}

// CheckAllowList checks an exchange's allow-list entries.
func CheckAllowList(list []string) ([]string, error) {
	if len(list) == 0 {
		return nil, agent.Errorf(agent.CodeMsg, "callback_allow_list: at least one entry (a host, *.domain or an https:// URL prefix)")
	}
	if len(list) > 50 {
		return nil, agent.Errorf(agent.CodeMsg, "callback_allow_list: at most 50 entries")
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		e = strings.TrimSpace(e)
		if e == "" || len(e) > 300 || strings.ContainsAny(e, " \t\r\n#?@") {
			return nil, agent.Errorf(agent.CodeMsg, "callback_allow_list[%d]: not a host, *.domain or URL prefix", i)
		}
		if strings.Contains(e, "://") {
			u, err := url.Parse(e)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return nil, agent.Errorf(agent.CodeMsg, "callback_allow_list[%d]: a URL prefix must be an http(s) URL", i)
			}
		} else if h := strings.TrimPrefix(e, "*."); h == "" || strings.ContainsAny(h, "/*:") {
			return nil, agent.Errorf(agent.CodeMsg, "callback_allow_list[%d]: not a host or *.domain", i)
		}
		out = append(out, e)
	}
	return out, nil
}
