package provecontrol

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
)

// SubjectOptions tune NormalizeSubject.
type SubjectOptions struct {
	// AllowPrivateIPs accepts loopback, private, link-local and other
	// non-public addresses as IP subjects. A public verifier must not: it
	// would let anyone make it POST to its own network.
	AllowPrivateIPs bool
}

// NormalizeSubject checks that subject is a valid identity of type t and
// returns its canonical form, the one challenges carry and proofs hash:
//
//   - Email: local@domain, ASCII, the domain in lowercase.
//   - Domain: a DNS name of at least two labels, lowercase, without a final dot.
//   - DID: a DID (not a DID URL).
//   - Tel: E.164, "+" and 8 to 15 digits; spaces, dots, dashes and
//     parentheses are dropped.
//   - Discord: a Discord user id (a snowflake: 17 to 20 digits).
//   - IP: an IP address with an optional port, as "1.2.3.4", "1.2.3.4:8080",
//     "2001:db8::1" or "[2001:db8::1]:8080"; only public addresses unless
//     opts allows others.
//   - Address: a postal address of at most 10 lines of printable text.
//
// The error has code CodeSubject.
func NormalizeSubject(t VerificationType, subject string, opts SubjectOptions) (string, error) {
	bad := func(format string, args ...any) (string, error) {
		return "", agent.Errorf(CodeSubject, format, args...)
	}
	subject = strings.TrimSpace(subject)
	if subject == "" {
		return bad("subject is empty")
	}
	switch t {
	case Email:
		at := strings.LastIndexByte(subject, '@')
		if at <= 0 || at > 64 || len(subject) > 254 {
			return bad("%q is not an email address (local@domain)", clip(subject, 60))
		}
		local, domain := subject[:at], subject[at+1:]
		for i := 0; i < len(local); i++ {
			if c := local[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),:;<>@[\]`, c) >= 0 {
				return bad("%q is not an email address (local@domain)", clip(subject, 60))
			}
		}
		d, ok := domainName(domain)
		if !ok {
			return bad("%q is not an email address: bad domain", clip(subject, 60))
		}
		return local + "@" + d, nil
	case Domain:
		d, ok := domainName(subject)
		if !ok {
			return bad("%q is not a domain name", clip(subject, 60))
		}
		return d, nil
	case DID:
		if _, _, err := did.ParseDID(subject); err != nil {
			return bad("subject is not a DID: %v", err)
		}
		return subject, nil
	case Tel:
		var b strings.Builder
		for i, r := range subject {
			switch {
			case r == '+' && i == 0:
				b.WriteRune(r)
			case r >= '0' && r <= '9':
				b.WriteRune(r)
			case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
			default:
				return bad("%q is not a phone number in E.164 form (+ and digits)", clip(subject, 40))
			}
		}
		n := b.String()
		if !strings.HasPrefix(n, "+") || len(n) < 9 || len(n) > 16 || n[1] == '0' {
			return bad("%q is not a phone number in E.164 form (+, country code, 8 to 15 digits)", clip(subject, 40))
		}
		return n, nil
	case Discord:
		if len(subject) < 17 || len(subject) > 20 || strings.Trim(subject, "0123456789") != "" {
			return bad("%q is not a Discord user id (17 to 20 digits)", clip(subject, 40))
		}
		return subject, nil
	case IP:
		return normalizeIP(subject, opts)
	case Address:
		lines := strings.Split(strings.ReplaceAll(subject, "\r\n", "\n"), "\n")
		var out []string
		for _, l := range lines {
			l = strings.Join(strings.Fields(l), " ")
			if l == "" {
				continue
			}
			for _, r := range l {
				if !unicode.IsPrint(r) {
					return bad("the postal address holds a character that is not printable")
				}
			}
			out = append(out, l)
		}
		if len(out) < 2 || len(out) > 10 {
			return bad("a postal address needs 2 to 10 lines (name, street, town, country)")
		}
		return strings.Join(out, "\n"), nil
	}
	return "", agent.Errorf(CodeVerificationType, "unknown verification type %q", clip(string(t), 40))
}

// domainName checks and lowercases a DNS name of at least two labels.
func domainName(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if len(s) > 253 {
		return "", false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return "", false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", false // an IPv4 address, not a name
	}
	return s, true
}

func normalizeIP(s string, opts SubjectOptions) (string, error) {
	var addr netip.Addr
	port := 0
	if a, err := netip.ParseAddr(s); err == nil {
		addr = a
	} else {
		host, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", agent.Errorf(CodeSubject, "%q is not an IP address with an optional port", clip(s, 60))
		}
		a, err := netip.ParseAddr(host)
		n, perr := strconv.Atoi(p)
		if err != nil || perr != nil || n < 1 || n > 65535 {
			return "", agent.Errorf(CodeSubject, "%q is not an IP address with an optional port", clip(s, 60))
		}
		addr, port = a, n
	}
	if addr.Zone() != "" {
		return "", agent.Errorf(CodeSubject, "an IP subject must not have a zone")
	}
	addr = addr.Unmap()
	if !opts.AllowPrivateIPs && !isPublic(addr) {
		return "", agent.Errorf(CodeSubject, "%s is not a public IP address", addr)
	}
	if port == 0 {
		return addr.String(), nil
	}
	return netip.AddrPortFrom(addr, uint16(port)).String(), nil
}

func isPublic(a netip.Addr) bool {
	return a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(a) && !netip.MustParsePrefix("192.0.0.0/24").Contains(a) &&
		!netip.MustParsePrefix("198.18.0.0/15").Contains(a) && !netip.MustParsePrefix("2001:db8::/32").Contains(a)
}

// ChallengeURL is where the IP channel POSTs a challenge for the IP subject
// (as NormalizeSubject returns it).
func ChallengeURL(ipSubject string) string {
	if a, err := netip.ParseAddr(ipSubject); err == nil && a.Is6() {
		return "http://[" + ipSubject + "]" + WellKnownPath
	}
	return "http://" + ipSubject + WellKnownPath
}

// WellKnownPath is the path on which whoever controls an IP address
// receives Prove Control challenges.
const WellKnownPath = "/.well-known/provecontrol/challenge"
