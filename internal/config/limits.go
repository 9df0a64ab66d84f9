package config

import (
	"fmt"
	"time"
)

// The abuse limits of issue 9 that bound what strangers can make the daemon
// hold: connections and WebSockets on the HTTP listener, SMTP sessions, and
// did:web resolutions steered by senders (the did section's
// web_allow_private, web_timeout, negative_cache_ttl and
// max_concurrent_resolutions).

// limitOptions are the flags and environment variables of the limits.
var limitOptions = []option{
	{"http-max-connections", "AGENTD_HTTP_MAX_CONNECTIONS", "most open HTTP connections; 0: no limit (http.max_connections)", num(func(c *Config) *int { return &c.HTTP.MaxConnections })},
	{"http-max-connections-per-ip", "AGENTD_HTTP_MAX_CONNECTIONS_PER_IP", "most open HTTP connections from one client IP; 0: no limit (http.max_connections_per_ip)", num(func(c *Config) *int { return &c.HTTP.MaxConnectionsPerIP })},
	{"http-max-websockets-per-ip", "AGENTD_HTTP_MAX_WEBSOCKETS_PER_IP", "most open WebSockets from one client IP; 0: no limit (http.max_websockets_per_ip)", num(func(c *Config) *int { return &c.HTTP.MaxWebSocketsPerIP })},
	{"smtp-max-sessions", "AGENTD_SMTP_MAX_SESSIONS", "most open SMTP sessions; 0: no limit (smtp.max_sessions)", num(func(c *Config) *int { return &c.SMTP.MaxSessions })},
	{"smtp-max-sessions-per-ip", "AGENTD_SMTP_MAX_SESSIONS_PER_IP", "most open SMTP sessions from one client IP; 0: no limit (smtp.max_sessions_per_ip)", num(func(c *Config) *int { return &c.SMTP.MaxSessionsPerIP })},
	{"did-web-allow-private", "AGENTD_DID_WEB_ALLOW_PRIVATE", "resolve did:web on loopback and private addresses: true or false (did.web_allow_private)", boolean(func(c *Config) *bool { return &c.DID.WebAllowPrivate })},
}

func init() { options = append(options, limitOptions...) }

// validateLimits checks the connection caps and the resolution limits.
func (c Config) validateLimits() error {
	for _, n := range []struct {
		key string
		v   int
	}{
		{"http.max_connections", c.HTTP.MaxConnections},
		{"http.max_connections_per_ip", c.HTTP.MaxConnectionsPerIP},
		{"http.max_websockets_per_ip", c.HTTP.MaxWebSocketsPerIP},
		{"smtp.max_sessions", c.SMTP.MaxSessions},
		{"smtp.max_sessions_per_ip", c.SMTP.MaxSessionsPerIP},
	} {
		if n.v < 0 {
			return fmt.Errorf("%s: %d is negative (0: no limit)", n.key, n.v)
		}
	}
	if c.HTTP.MaxConnections > 0 && c.HTTP.MaxConnectionsPerIP > c.HTTP.MaxConnections {
		return fmt.Errorf("http.max_connections_per_ip: %d is above http.max_connections (%d)", c.HTTP.MaxConnectionsPerIP, c.HTTP.MaxConnections)
	}
	if c.SMTP.MaxSessions > 0 && c.SMTP.MaxSessionsPerIP > c.SMTP.MaxSessions {
		return fmt.Errorf("smtp.max_sessions_per_ip: %d is above smtp.max_sessions (%d)", c.SMTP.MaxSessionsPerIP, c.SMTP.MaxSessions)
	}
	d := c.DID
	switch {
	case d.WebTimeout < 100*time.Millisecond || d.WebTimeout > 5*time.Minute:
		return fmt.Errorf("did.web_timeout: %v is not between 100ms and 5m", d.WebTimeout)
	case d.NegativeCacheTTL < 0:
		return fmt.Errorf("did.negative_cache_ttl: %v is negative (0: failures are not remembered)", d.NegativeCacheTTL)
	case d.MaxConcurrentResolutions < 1:
		return fmt.Errorf("did.max_concurrent_resolutions: %d is below the minimum of 1", d.MaxConcurrentResolutions)
	}
	return nil
}
