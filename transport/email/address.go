package email

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
)

// ParseAddress checks that s is one bare mail address (local@domain, ASCII,
// no display name, no angle brackets) and returns it with the domain in lower
// case.
func ParseAddress(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty mail address")
	}
	for _, r := range s {
		if r <= 0x20 || r >= 0x7f {
			return "", fmt.Errorf("mail address %q: only printable ASCII without spaces is supported", safeText(s, 80))
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", fmt.Errorf("%q is not a plain mail address (local@domain)", safeText(s, 80))
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", fmt.Errorf("%q is not a plain mail address (local@domain)", safeText(s, 80))
	}
	domain := strings.ToLower(s[at+1:])
	if err := CheckDomain(domain); err != nil {
		return "", fmt.Errorf("mail address %q: %w", safeText(s, 80), err)
	}
	return s[:at] + "@" + domain, nil
}

// CheckDomain checks that d is a host name usable as a mail domain: dot
// separated labels of letters, digits and hyphens (a trailing dot is not
// allowed).
func CheckDomain(d string) error {
	if d == "" || len(d) > 253 {
		return fmt.Errorf("%q is not a domain name", safeText(d, 80))
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a domain name", safeText(d, 80))
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q is not a domain name", safeText(d, 80))
			}
		}
	}
	return nil
}

// ParseMailto returns the mail address of a mailto: URI (RFC 6068) with one
// address, such as the uri of a DIDComm service endpoint
// "mailto:agent@example.org". Header fields after '?' are ignored.
func ParseMailto(uri string) (string, error) {
	if len(uri) < 7 || !strings.EqualFold(uri[:7], "mailto:") {
		return "", fmt.Errorf("%q is not a mailto: URI", safeText(uri, 80))
	}
	to := uri[7:]
	if i := strings.IndexByte(to, '?'); i >= 0 {
		to = to[:i]
	}
	to, err := url.PathUnescape(to)
	if err != nil {
		return "", fmt.Errorf("%q: bad percent-encoding", safeText(uri, 80))
	}
	if strings.Contains(to, ",") {
		return "", fmt.Errorf("%q names more than one address", safeText(uri, 80))
	}
	return ParseAddress(to)
}

// domainOf returns the (lower-case) domain of a parsed address.
func domainOf(addr string) string {
	return strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
}

// acceptList decides which recipients the server takes mail for: any address
// in one of its domains, and the listed addresses.
type acceptList struct {
	domains   map[string]bool
	addresses map[string]bool
}

func newAcceptList(domains, addresses []string) (*acceptList, error) {
	a := &acceptList{domains: map[string]bool{}, addresses: map[string]bool{}}
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSpace(d))
		if err := CheckDomain(d); err != nil {
			return nil, err
		}
		a.domains[d] = true
	}
	for _, s := range addresses {
		addr, err := ParseAddress(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		a.addresses[strings.ToLower(addr)] = true
	}
	if len(a.domains) == 0 && len(a.addresses) == 0 {
		return nil, errors.New("no domain or address to accept mail for")
	}
	return a, nil
}

// accepts reports whether mail for rcpt is taken. Local parts are compared
// without regard to case, as every common mail system does.
func (a *acceptList) accepts(rcpt string) bool {
	addr, err := ParseAddress(rcpt)
	if err != nil {
		return false
	}
	return a.domains[domainOf(addr)] || a.addresses[strings.ToLower(addr)]
}

// describe names what the server accepts mail for, for refusals.
func (a *acceptList) describe() string {
	var names []string
	for d := range a.domains {
		names = append(names, d)
	}
	for addr := range a.addresses {
		names = append(names, addr)
	}
	slices.Sort(names)
	if len(names) > 4 {
		names = append(names[:4], "...")
	}
	return strings.Join(names, ", ")
}
