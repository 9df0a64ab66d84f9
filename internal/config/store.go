package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Store selects where agentd keeps its state.
type Store struct {
	// Driver is "bolt" (the default: one bbolt file in data_dir, one
	// process) or "postgres" (a PostgreSQL database that several agentd
	// instances may share).
	Driver   string        `yaml:"driver"`
	Postgres PostgresStore `yaml:"postgres"`
}

// PostgresStore configures the PostgreSQL store (store.driver: postgres).
type PostgresStore struct {
	// URL is the database's connection string,
	// postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=..., or libpq's
	// keyword=value form. The environment variable AGENTD_DATABASE_URL
	// sets it too (never a flag, which would show in process listings).
	// It is never logged or put in an error with its password.
	URL string `yaml:"url"`
	// MaxConns is the size of the connection pool.
	MaxConns int `yaml:"max_conns"`
	// ClaimLease is how long an instance's claim on an outbound message
	// lasts: another instance delivers it only after the lease expires
	// (after a crash). It must exceed outbox.timeout.
	ClaimLease time.Duration `yaml:"claim_lease"`
}

// Store drivers.
const (
	DriverBolt     = "bolt"
	DriverPostgres = "postgres"
)

func defaultStore() Store {
	return Store{Driver: DriverBolt, Postgres: PostgresStore{MaxConns: 10, ClaimLease: 5 * time.Minute}}
}

// validateStore checks the store section. Its errors never quote the
// database URL, which may hold a password.
func (c Config) validateStore() error {
	s := c.Store
	switch s.Driver {
	case DriverBolt:
		return nil
	case DriverPostgres:
	default:
		return fmt.Errorf("store.driver: %q is not bolt or postgres", s.Driver)
	}
	p := s.Postgres
	if p.URL == "" {
		return errors.New("store.postgres.url: required with store.driver postgres (or set AGENTD_DATABASE_URL)")
	}
	if strings.HasPrefix(p.URL, "postgres://") || strings.HasPrefix(p.URL, "postgresql://") {
		u, err := url.Parse(p.URL)
		if err != nil || u.Host == "" {
			return errors.New("store.postgres.url: not a valid postgres:// URL (its text is not shown: it may hold a password)")
		}
	} else if !strings.Contains(p.URL, "=") {
		return errors.New("store.postgres.url: neither a postgres:// URL nor keyword=value settings (its text is not shown: it may hold a password)")
	}
	if p.MaxConns < 1 {
		return errors.New("store.postgres.max_conns: must be at least 1")
	}
	if p.ClaimLease <= c.Outbox.Timeout {
		return fmt.Errorf("store.postgres.claim_lease: %s must exceed outbox.timeout (%s), or a slow delivery's message would be handed to another instance", p.ClaimLease, c.Outbox.Timeout)
	}
	return nil
}
