package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
)

// validateMail checks the smtp and email sections.
func (c Config) validateMail() error {
	s, e := c.SMTP, c.Email
	if e.Address != "" {
		if err := checkAddress(e.Address); err != nil {
			return fmt.Errorf("email.address: %w", err)
		}
	}
	if s.Hostname != "" && !isDomain(s.Hostname) {
		return fmt.Errorf("smtp.hostname: %q is not a host name", s.Hostname)
	}
	for _, d := range s.Domains {
		if !isDomain(d) {
			return fmt.Errorf("smtp.domains: %q is not a domain name", d)
		}
	}
	for _, a := range s.Addresses {
		if err := checkAddress(a); err != nil {
			return fmt.Errorf("smtp.addresses: %w", err)
		}
	}
	if s.Addr != "" {
		if _, _, err := net.SplitHostPort(s.Addr); err != nil {
			return fmt.Errorf("smtp.addr: %q is not HOST:PORT", s.Addr)
		}
		if len(s.Domains) == 0 && len(s.Addresses) == 0 && e.Address == "" {
			return errors.New("smtp.domains: the SMTP listener (smtp.addr) needs a domain in smtp.domains, an address in smtp.addresses, or email.address to take mail for")
		}
	}
	if s.MaxMessageBytes < 1024 {
		return fmt.Errorf("smtp.max_message_bytes: %d is below the minimum of 1024", s.MaxMessageBytes)
	}
	if s.MaxRecipients < 1 {
		return errors.New("smtp.max_recipients: must be at least 1")
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		return errors.New("smtp: set both tls_cert_file and tls_key_file, or neither")
	}
	if s.RequireTLS && s.TLSCertFile == "" {
		return errors.New("smtp.require_tls: needs a certificate (smtp.tls_cert_file and smtp.tls_key_file)")
	}
	a := s.Auth
	switch {
	case a.Password != "" && a.PasswordFile != "":
		return errors.New("smtp.auth: set password or password_file, not both")
	case a.Username == "" && (a.Password != "" || a.PasswordFile != ""):
		return errors.New("smtp.auth.username: a password is set but no user name")
	case a.Username != "" && a.Password == "" && a.PasswordFile == "":
		return errors.New("smtp.auth: set a password for the user name (env AGENTD_SMTP_AUTH_PASSWORD, smtp.auth.password_file or smtp.auth.password)")
	case a.Required && a.Username == "":
		return errors.New("smtp.auth.required: needs smtp.auth.username and a password")
	case a.Username != "" && s.TLSCertFile == "" && !a.AllowInsecure:
		return errors.New("smtp.auth: AUTH PLAIN would send passwords in the clear: configure smtp.tls_cert_file and smtp.tls_key_file (STARTTLS), or set smtp.auth.allow_insecure on a trusted network")
	}
	if s.RateLimit < 0 {
		return errors.New("smtp.rate_limit: must not be negative (0 turns the limit off)")
	}
	if s.RateLimit > 0 && s.RateBurst < 1 {
		return errors.New("smtp.rate_burst: must be at least 1")
	}
	if s.Timeout <= 0 {
		return errors.New("smtp.timeout: must be positive")
	}
	r := e.Relay
	if r.Addr != "" {
		if _, _, err := net.SplitHostPort(r.Addr); err != nil {
			return fmt.Errorf("email.relay.addr: %q is not HOST:PORT", r.Addr)
		}
		if e.Address == "" {
			return errors.New("email.relay.addr: outbound mail needs email.address (the sender address)")
		}
	}
	switch r.StartTLS {
	case "required", "opportunistic", "off":
	default:
		return fmt.Errorf("email.relay.starttls: %q is not required, opportunistic or off", r.StartTLS)
	}
	switch {
	case r.Password != "" && r.PasswordFile != "":
		return errors.New("email.relay: set password or password_file, not both")
	case r.Username == "" && (r.Password != "" || r.PasswordFile != ""):
		return errors.New("email.relay.username: a password is set but no user name")
	case r.Username != "" && r.Password == "" && r.PasswordFile == "":
		return errors.New("email.relay: set a password for the user name (env AGENTD_SMTP_RELAY_PASSWORD, email.relay.password_file or email.relay.password)")
	case r.Username != "" && r.Addr == "":
		return errors.New("email.relay.username: credentials need a relay (email.relay.addr)")
	}
	return nil
}

// checkAddress accepts one bare ASCII mail address, local@domain.
func checkAddress(s string) error {
	for _, r := range s {
		if r <= 0x20 || r >= 0x7f {
			return fmt.Errorf("%q is not a mail address (local@domain, printable ASCII)", s)
		}
	}
	a, err := mail.ParseAddress(s)
	at := strings.LastIndexByte(s, '@')
	if err != nil || a.Name != "" || a.Address != s || at <= 0 || !isDomain(s[at+1:]) {
		return fmt.Errorf("%q is not a mail address (local@domain)", s)
	}
	return nil
}

// isDomain accepts host names: dot-separated labels of letters, digits and hyphens.
func isDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
