package http

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies are the reverse proxies (load balancers, TLS terminators)
// whose X-Forwarded-For header is believed. Behind them every connection
// comes from a proxy's address, so without this all clients would share
// one rate-limit budget and the logs would name only the proxy.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies reads addresses and CIDR prefixes ("10.0.0.0/8",
// "127.0.0.1", "::1").
func ParseTrustedProxies(list []string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (t TrustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address of the client behind the proxies: walking
// X-Forwarded-For from its end (the entry the nearest proxy added), the
// first address that is not a trusted proxy. A header that cannot be read
// leaves the connection's address.
func (t TrustedProxies) clientAddr(remote netip.Addr, xff []string) netip.Addr {
	var hops []string
	for _, h := range xff {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := remote
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return remote
		}
		client = a.Unmap()
		if !t.trusts(client) {
			return client
		}
	}
	return client
}

// Wrap gives h requests whose RemoteAddr is the client's when they come
// through a trusted proxy (its port is then 0), so that rate limits, the
// sign-up budgets and the logs see the client. Requests from anyone else
// keep their RemoteAddr, whatever headers they send.
func (t TrustedProxies) Wrap(h http.Handler) http.Handler {
	if len(t) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err == nil && t.trusts(ap.Addr()) {
			if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
				if c := t.clientAddr(ap.Addr(), xff); c != ap.Addr().Unmap() {
					r2 := r.Clone(r.Context())
					r2.RemoteAddr = net.JoinHostPort(c.String(), "0")
					r = r2
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}
