// Package config loads agentd's configuration: built-in defaults, then a YAML
// file, then AGENTD_* environment variables, then command-line flags, each
// overriding the one before; the result is validated with messages that name
// the offending key.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is agentd's whole configuration. The yaml tags are the keys of the
// configuration file; configs/agentd.example.yaml documents each.
type Config struct {
	DataDir string `yaml:"data_dir"`
	// Store is in store.go.
	Store  Store      `yaml:"store"`
	HTTP   HTTP       `yaml:"http"`
	Admin  Admin      `yaml:"admin"`
	Keys   Keys       `yaml:"keys"`
	Outbox Outbox     `yaml:"outbox"`
	Limits Limits     `yaml:"limits"`
	DID    DIDConfig  `yaml:"did"`
	Log    Log        `yaml:"log"`
	Replay ReplayConf `yaml:"replay"`
	SMTP   SMTP       `yaml:"smtp"`
	Email  Email      `yaml:"email"`
	// Mediator and MediationClient are in mediator.go.
	Mediator        Mediator        `yaml:"mediator"`
	MediationClient MediationClient `yaml:"mediation_client"`
	// ProveControl is in provecontrol.go.
	ProveControl ProveControl `yaml:"provecontrol"`
	// Iden3 is in iden3.go.
	Iden3 Iden3 `yaml:"iden3"`
	// Users is in users.go.
	Users Users `yaml:"users"`
	// Privado is in privado.go.
	Privado Privado `yaml:"privado"`
	// AIP is in aip.go.
	AIP AIP `yaml:"aip"`
}

// HTTP configures the HTTP listener and the DIDComm endpoint.
type HTTP struct {
	Addr            string        `yaml:"addr"`
	PublicURL       string        `yaml:"public_url"`
	MaxBodyBytes    int64         `yaml:"max_body_bytes"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Connection caps (limits.go): 0 means no limit.
	MaxConnections      int `yaml:"max_connections"`
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	MaxWebSocketsPerIP  int `yaml:"max_websockets_per_ip"`
	// TrustedProxies are the reverse proxies (addresses or CIDR prefixes)
	// whose X-Forwarded-For names the client: for rate limits and logs.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// PublishWebSocketService adds a second DIDCommMessaging service to the
	// agent's DID and the mediator's routing DID: the endpoint's ws(s) URL
	// (WebSocketEndpoint), for clients that take the WebSocket address
	// from the DID document (the Identus wallets).
	PublishWebSocketService bool `yaml:"publish_websocket_service"`
}

// Admin configures the operators' API.
type Admin struct {
	Token         string `yaml:"token"`
	TokenFile     string `yaml:"token_file"`
	MetricsPublic bool   `yaml:"metrics_public"`
	// PprofAddr, when set, serves Go's runtime profiles (net/http/pprof) on
	// a listener of its own at this address, without authentication: bind
	// it to loopback. Empty (the default): no profiling listener.
	PprofAddr string `yaml:"pprof_addr"`
}

// Keys configures how private keys are encrypted at rest.
type Keys struct {
	Passphrase     string `yaml:"passphrase"`
	PassphraseFile string `yaml:"passphrase_file"`
	KeyFile        string `yaml:"key_file"`
}

// Outbox configures outbound delivery.
type Outbox struct {
	MaxAttempts int           `yaml:"max_attempts"`
	BaseDelay   time.Duration `yaml:"base_delay"`
	MaxDelay    time.Duration `yaml:"max_delay"`
	Workers     int           `yaml:"workers"`
	Timeout     time.Duration `yaml:"timeout"`
	// AllowPrivate lets deliveries go to loopback, private and link-local
	// addresses (HTTP endpoints, MX hosts); off, they are dead-lettered at
	// once.
	AllowPrivate bool `yaml:"allow_private"`
	// MaxPending and MaxPendingPerDestination cap the pending messages, in
	// total and per endpoint URI; 0 means no cap.
	MaxPending               int `yaml:"max_pending"`
	MaxPendingPerDestination int `yaml:"max_pending_per_destination"`
	// DeadRetention is how long dead letters are kept; 0 keeps them.
	DeadRetention time.Duration `yaml:"dead_retention"`
}

// Limits configures the rate limits on what makes the agent send.
type Limits struct {
	// ClientRate is the messages a minute one client IP address may post to
	// the DIDComm endpoint (HTTP and WebSocket), with bursts of
	// ClientBurst; 0 disables the limit.
	ClientRate  int `yaml:"client_rate"`
	ClientBurst int `yaml:"client_burst"`
	// SenderRate is the messages a minute one authenticated sender DID may
	// send that make the agent queue outbound messages, with bursts of
	// SenderBurst; 0 disables the limit.
	SenderRate  int `yaml:"sender_rate"`
	SenderBurst int `yaml:"sender_burst"`
	// MaxKeys is the number of addresses and DIDs each limit remembers.
	MaxKeys int `yaml:"max_keys"`
}

// DIDConfig configures DID resolution.
type DIDConfig struct {
	CacheTTL     time.Duration `yaml:"cache_ttl"`
	CacheSize    int           `yaml:"cache_size"`
	WebResolve   bool          `yaml:"web_resolve"`
	WebTimeout   time.Duration `yaml:"web_timeout"`
	KeyAgreement []string      `yaml:"key_agreement"`
	// Abuse limits of resolution (limits.go).
	WebAllowPrivate          bool          `yaml:"web_allow_private"`
	NegativeCacheTTL         time.Duration `yaml:"negative_cache_ttl"`
	MaxConcurrentResolutions int           `yaml:"max_concurrent_resolutions"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// ReplayConf configures replay protection.
type ReplayConf struct {
	Window time.Duration `yaml:"window"`
}

// SMTP configures the inbound mail listener (transport/email).
type SMTP struct {
	// Addr is the listen address; empty: no SMTP listener.
	Addr string `yaml:"addr"`
	// Hostname is the name in the greeting and in outbound EHLO; empty: the
	// domain of email.address, else the first of Domains, else "localhost".
	Hostname string `yaml:"hostname"`
	// Domains and Addresses are what the listener takes mail for;
	// email.address is always included.
	Domains         []string      `yaml:"domains"`
	Addresses       []string      `yaml:"addresses"`
	MaxMessageBytes int64         `yaml:"max_message_bytes"`
	MaxRecipients   int           `yaml:"max_recipients"`
	TLSCertFile     string        `yaml:"tls_cert_file"`
	TLSKeyFile      string        `yaml:"tls_key_file"`
	RequireTLS      bool          `yaml:"require_tls"`
	Auth            SMTPAuth      `yaml:"auth"`
	RateLimit       float64       `yaml:"rate_limit"`
	RateBurst       int           `yaml:"rate_burst"`
	Timeout         time.Duration `yaml:"timeout"`
	// Session caps (limits.go): 0 means no limit.
	MaxSessions      int `yaml:"max_sessions"`
	MaxSessionsPerIP int `yaml:"max_sessions_per_ip"`
}

// SMTPAuth configures AUTH PLAIN on the inbound listener (for submission).
type SMTPAuth struct {
	Username      string `yaml:"username"`
	Password      string `yaml:"password"`
	PasswordFile  string `yaml:"password_file"`
	Required      bool   `yaml:"required"`
	AllowInsecure bool   `yaml:"allow_insecure"`
}

// Email configures the agent's own mail address and outbound mail.
type Email struct {
	// Address is the agent's mail address: advertised as a mailto: DIDComm
	// service in its DID and used as the sender of outbound mail. Empty: no
	// outbound mail and no mailto: service.
	Address string `yaml:"address"`
	Relay   Relay  `yaml:"relay"`
}

// Relay configures the smarthost outbound mail goes through.
type Relay struct {
	// Addr is HOST:PORT; empty: delivery to the recipient domain's MX hosts.
	Addr         string `yaml:"addr"`
	StartTLS     string `yaml:"starttls"`
	CAFile       string `yaml:"ca_file"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// Default returns the embedded default configuration.
func Default() Config {
	return Config{
		DataDir: "./data",
		Store:   defaultStore(),
		HTTP: HTTP{Addr: "127.0.0.1:8080", MaxBodyBytes: 1 << 20, ShutdownTimeout: 15 * time.Second, MaxConnections: 1024, MaxConnectionsPerIP: 64, MaxWebSocketsPerIP: 16,
			PublishWebSocketService: true},
		Outbox: Outbox{MaxAttempts: 30, BaseDelay: 2 * time.Second, MaxDelay: time.Hour, Workers: 8, Timeout: 30 * time.Second,
			MaxPending: 10000, MaxPendingPerDestination: 1000, DeadRetention: 7 * 24 * time.Hour},
		Limits:       Limits{ClientRate: 600, ClientBurst: 300, SenderRate: 120, SenderBurst: 60, MaxKeys: 100000},
		DID:          DIDConfig{CacheTTL: 5 * time.Minute, CacheSize: 10000, WebResolve: true, WebTimeout: 5 * time.Second, KeyAgreement: []string{"X25519"}, NegativeCacheTTL: time.Minute, MaxConcurrentResolutions: 32},
		Log:          Log{Level: "info", Format: "text"},
		Replay:       ReplayConf{Window: 7 * 24 * time.Hour},
		SMTP:         SMTP{MaxMessageBytes: 2 << 20, MaxRecipients: 100, RateLimit: 60, RateBurst: 20, Timeout: 2 * time.Minute, MaxSessions: 100, MaxSessionsPerIP: 10},
		Email:        Email{Relay: Relay{StartTLS: "opportunistic"}},
		ProveControl: defaultProveControl(),
		Iden3:        defaultIden3(),
		Users:        defaultUsers(),
		Privado:      defaultPrivado(),
		AIP:          defaultAIP(),

		Mediator:        defaultMediator(),
		MediationClient: defaultMediationClient(),
	}
}

// EndpointPath is the path of the DIDComm endpoint on the HTTP listener.
const EndpointPath = "/didcomm"

// Endpoint returns the public DIDComm endpoint URL: public_url, or one derived
// from the listen address.
func (c Config) Endpoint() string {
	if c.HTTP.PublicURL != "" {
		return c.HTTP.PublicURL
	}
	host, port, err := net.SplitHostPort(c.HTTP.Addr)
	if err != nil {
		return "http://" + c.HTTP.Addr + EndpointPath
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + EndpointPath
}

// WebSocketEndpoint returns the WebSocket URL of the DIDComm endpoint that
// the agent's DIDs publish beside Endpoint: Endpoint with http turned into
// ws and https into wss (the same listener takes WebSocket upgrades on the
// same path). It is empty when http.publish_websocket_service is off.
func (c Config) WebSocketEndpoint() string {
	if !c.HTTP.PublishWebSocketService {
		return ""
	}
	e := c.Endpoint()
	if rest, ok := strings.CutPrefix(e, "https://"); ok {
		return "wss://" + rest
	}
	if rest, ok := strings.CutPrefix(e, "http://"); ok {
		return "ws://" + rest
	}
	return "" // Validate allows only http(s) URLs
}

// option binds one setting to its flag and environment variable.
type option struct {
	flag, env, help string
	set             func(c *Config, v string) error
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func dur(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration (e.g. 30s, 5m): %q", v)
		}
		*p(c) = d
		return nil
	}
}

func num(p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not a number: %q", v)
		}
		*p(c) = n
		return nil
	}
}

func list(p func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		*p(c) = out
		return nil
	}
}

var options = []option{
	{"data-dir", "AGENTD_DATA_DIR", "data directory (config key data_dir)", str(func(c *Config) *string { return &c.DataDir })},
	{"store-driver", "AGENTD_STORE_DRIVER", "where state is kept: bolt (a file in the data directory) or postgres (store.driver)", str(func(c *Config) *string { return &c.Store.Driver })},
	{"store-postgres-max-conns", "AGENTD_STORE_POSTGRES_MAX_CONNS", "PostgreSQL connection pool size (store.postgres.max_conns)", num(func(c *Config) *int { return &c.Store.Postgres.MaxConns })},
	{"http-addr", "AGENTD_HTTP_ADDR", "HTTP listen address HOST:PORT (http.addr)", str(func(c *Config) *string { return &c.HTTP.Addr })},
	{"public-url", "AGENTD_PUBLIC_URL", "public DIDComm endpoint URL published in the agent's DID (http.public_url)", str(func(c *Config) *string { return &c.HTTP.PublicURL })},
	{"publish-websocket-service", "AGENTD_PUBLISH_WEBSOCKET_SERVICE", "publish the endpoint's ws(s) URL as a second DIDComm service in the agent's DIDs: true or false (http.publish_websocket_service)", boolean(func(c *Config) *bool { return &c.HTTP.PublishWebSocketService })},
	{"max-body-bytes", "AGENTD_MAX_BODY_BYTES", "largest inbound message in bytes (http.max_body_bytes)", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", v)
		}
		c.HTTP.MaxBodyBytes = n
		return nil
	}},
	{"admin-token-file", "AGENTD_ADMIN_TOKEN_FILE", "file holding the admin API bearer token (admin.token_file)", str(func(c *Config) *string { return &c.Admin.TokenFile })},
	{"key-file", "AGENTD_KEY_FILE", "file holding the key that encrypts private keys at rest (keys.key_file)", str(func(c *Config) *string { return &c.Keys.KeyFile })},
	{"passphrase-file", "AGENTD_PASSPHRASE_FILE", "file holding a passphrase to derive the key-encryption key from (keys.passphrase_file)", str(func(c *Config) *string { return &c.Keys.PassphraseFile })},
	{"outbox-max-attempts", "AGENTD_OUTBOX_MAX_ATTEMPTS", "delivery attempts before a message is dead-lettered (outbox.max_attempts)", num(func(c *Config) *int { return &c.Outbox.MaxAttempts })},
	{"outbox-base-delay", "AGENTD_OUTBOX_BASE_DELAY", "first retry delay (outbox.base_delay)", dur(func(c *Config) *time.Duration { return &c.Outbox.BaseDelay })},
	{"outbox-allow-private", "AGENTD_OUTBOX_ALLOW_PRIVATE", "allow deliveries to loopback, private and link-local addresses: true or false (outbox.allow_private)", boolean(func(c *Config) *bool { return &c.Outbox.AllowPrivate })},
	{"outbox-max-pending", "AGENTD_OUTBOX_MAX_PENDING", "most pending outbound messages; 0: no cap (outbox.max_pending)", num(func(c *Config) *int { return &c.Outbox.MaxPending })},
	{"outbox-dead-retention", "AGENTD_OUTBOX_DEAD_RETENTION", "how long dead letters are kept; 0: forever (outbox.dead_retention)", dur(func(c *Config) *time.Duration { return &c.Outbox.DeadRetention })},
	{"client-rate", "AGENTD_CLIENT_RATE", "messages a minute per client IP on the DIDComm endpoint; 0: no limit (limits.client_rate)", num(func(c *Config) *int { return &c.Limits.ClientRate })},
	{"sender-rate", "AGENTD_SENDER_RATE", "messages a minute per sender DID that make the agent send; 0: no limit (limits.sender_rate)", num(func(c *Config) *int { return &c.Limits.SenderRate })},
	{"smtp-addr", "AGENTD_SMTP_ADDR", "SMTP listen address HOST:PORT; empty: no SMTP listener (smtp.addr)", str(func(c *Config) *string { return &c.SMTP.Addr })},
	{"smtp-domains", "AGENTD_SMTP_DOMAINS", "comma-separated mail domains the SMTP listener takes mail for (smtp.domains)", list(func(c *Config) *[]string { return &c.SMTP.Domains })},
	{"email-address", "AGENTD_EMAIL_ADDRESS", "the agent's mail address, advertised as a mailto: DIDComm service (email.address)", str(func(c *Config) *string { return &c.Email.Address })},
	{"smtp-relay", "AGENTD_SMTP_RELAY", "smarthost HOST:PORT for outbound mail; empty: MX lookup (email.relay.addr)", str(func(c *Config) *string { return &c.Email.Relay.Addr })},
	{"pprof-addr", "AGENTD_PPROF_ADDR", "serve runtime profiles (/debug/pprof/) on this loopback HOST:PORT; empty: off (admin.pprof_addr)", str(func(c *Config) *string { return &c.Admin.PprofAddr })},
	{"log-level", "AGENTD_LOG_LEVEL", "debug, info, warn or error (log.level)", str(func(c *Config) *string { return &c.Log.Level })},
	{"log-format", "AGENTD_LOG_FORMAT", "text or json (log.format)", str(func(c *Config) *string { return &c.Log.Format })},
}

// secretEnv are settings only taken from the environment (never flags, which
// show in process listings).
var secretEnv = []option{
	{"", "AGENTD_DATABASE_URL", "PostgreSQL connection URL, which may hold a password (store.postgres.url)", str(func(c *Config) *string { return &c.Store.Postgres.URL })},
	{"", "AGENTD_ADMIN_TOKEN", "admin API bearer token (admin.token)", str(func(c *Config) *string { return &c.Admin.Token })},
	{"", "AGENTD_KEY_PASSPHRASE", "passphrase for keys at rest (keys.passphrase)", str(func(c *Config) *string { return &c.Keys.Passphrase })},
	{"", "AGENTD_SMTP_AUTH_PASSWORD", "password SMTP clients log in with (smtp.auth.password)", str(func(c *Config) *string { return &c.SMTP.Auth.Password })},
	{"", "AGENTD_SMTP_RELAY_PASSWORD", "password for the outbound relay (email.relay.password)", str(func(c *Config) *string { return &c.Email.Relay.Password })},
}

// Load builds the configuration from args (without the program name), the
// environment getenv, and the file named by --config or AGENTD_CONFIG.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("agentd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", getenv("AGENTD_CONFIG"), "YAML configuration file (env AGENTD_CONFIG)")
	values := make([]*string, len(options))
	for i, o := range options {
		values[i] = fs.String(o.flag, "", o.help+" (env "+o.env+")")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: agentd [flags]\n\nRuns the agentd DIDComm v2 agent. Settings come from defaults, the config file, AGENTD_* environment variables and flags, later ones winning.\nSecrets are read from the environment or files only: AGENTD_DATABASE_URL, AGENTD_ADMIN_TOKEN, AGENTD_KEY_PASSPHRASE, AGENTD_SMTP_AUTH_PASSWORD, AGENTD_SMTP_RELAY_PASSWORD.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c := Default()
	if *configFile != "" {
		if err := c.loadFile(*configFile); err != nil {
			return Config{}, err
		}
	}
	for _, o := range append(append([]option(nil), options...), secretEnv...) {
		if v := getenv(o.env); v != "" {
			if err := o.set(&c, v); err != nil {
				return Config{}, fmt.Errorf("environment variable %s: %w", o.env, err)
			}
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for i, o := range options {
		if set[o.flag] {
			if err := o.set(&c, *values[i]); err != nil {
				return Config{}, fmt.Errorf("flag --%s: %w", o.flag, err)
			}
		}
	}
	return c, c.Validate()
}

func (c *Config) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// Validate checks the configuration and explains the first problem found.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data_dir: must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		return fmt.Errorf("http.addr: %q is not HOST:PORT", c.HTTP.Addr)
	}
	if c.HTTP.PublicURL != "" {
		u, err := url.Parse(c.HTTP.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("http.public_url: %q is not an absolute http(s) URL", c.HTTP.PublicURL)
		}
	}
	for _, p := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return fmt.Errorf("http.trusted_proxies: %q is not an address or a CIDR prefix", p)
			}
		}
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		return fmt.Errorf("http.max_body_bytes: %d is below the minimum of 1024", c.HTTP.MaxBodyBytes)
	}
	if c.Keys.Passphrase != "" && c.Keys.PassphraseFile != "" {
		return errors.New("keys: set passphrase or passphrase_file, not both")
	}
	if (c.Keys.Passphrase != "" || c.Keys.PassphraseFile != "") && c.Keys.KeyFile != "" {
		return errors.New("keys: set a passphrase or a key_file, not both")
	}
	if err := validatePprofAddr(c.Admin.PprofAddr); err != nil {
		return err
	}
	if c.Admin.Token != "" && len(c.Admin.Token) < 16 {
		return errors.New("admin.token: must be at least 16 characters")
	}
	if c.Outbox.MaxAttempts < 1 {
		return errors.New("outbox.max_attempts: must be at least 1")
	}
	if c.Outbox.BaseDelay <= 0 || c.Outbox.MaxDelay < c.Outbox.BaseDelay {
		return errors.New("outbox: base_delay must be positive and max_delay at least base_delay")
	}
	if c.Outbox.Workers < 1 {
		return errors.New("outbox.workers: must be at least 1")
	}
	if c.Outbox.MaxPending < 0 || c.Outbox.MaxPendingPerDestination < 0 || c.Outbox.DeadRetention < 0 {
		return errors.New("outbox: max_pending, max_pending_per_destination and dead_retention must not be negative (0: no limit)")
	}
	l := c.Limits
	if l.ClientRate < 0 || l.SenderRate < 0 || l.MaxKeys < 0 {
		return errors.New("limits: client_rate, sender_rate and max_keys must not be negative (0: no limit)")
	}
	if (l.ClientRate > 0 && l.ClientBurst < 1) || (l.SenderRate > 0 && l.SenderBurst < 1) {
		return errors.New("limits: client_burst and sender_burst must be at least 1 when their rate is set")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format: %q is not text or json", c.Log.Format)
	}
	if len(c.DID.KeyAgreement) == 0 {
		return errors.New("did.key_agreement: name at least one curve (X25519, P-256, P-384)")
	}
	for _, k := range c.DID.KeyAgreement {
		switch k {
		case "X25519", "P-256", "P-384", "P-521":
		default:
			return fmt.Errorf("did.key_agreement: unsupported curve %q (use X25519, P-256, P-384 or P-521)", k)
		}
	}
	if err := c.validateStore(); err != nil {
		return err
	}
	if err := c.validateMediator(); err != nil {
		return err
	}
	if err := c.validateLimits(); err != nil {
		return err
	}
	if err := c.validateProveControl(); err != nil {
		return err
	}
	if err := c.validateIden3(); err != nil {
		return err
	}
	if err := c.validateUsers(); err != nil {
		return err
	}
	if err := c.validatePrivado(); err != nil {
		return err
	}
	if err := c.validateAIP(); err != nil {
		return err
	}
	return c.validateMail()
}

// validatePprofAddr accepts an empty address (no profiling listener) or a
// loopback HOST:PORT: profiles are served without authentication.
func validatePprofAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin.pprof_addr: %q is not HOST:PORT", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("admin.pprof_addr: %q is not a loopback address; profiles are served without authentication", addr)
	}
	return nil
}
