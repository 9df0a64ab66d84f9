package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestStoreDefaultsToBolt(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Driver != DriverBolt || c.Store.Postgres.MaxConns != 10 || c.Store.Postgres.ClaimLease != 5*time.Minute {
		t.Fatalf("store defaults: %+v", c.Store)
	}
}

func TestStorePostgresFromEnvironment(t *testing.T) {
	const url = "postgres://agentd:pw-s3cret@db.example:5432/agentd?sslmode=verify-full"
	c, err := Load([]string{"--store-driver", "postgres", "--store-postgres-max-conns", "20"},
		env(map[string]string{"AGENTD_DATABASE_URL": url}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Driver != DriverPostgres || c.Store.Postgres.URL != url || c.Store.Postgres.MaxConns != 20 {
		t.Fatalf("store: driver %q, max_conns %d, url set %v", c.Store.Driver, c.Store.Postgres.MaxConns, c.Store.Postgres.URL == url)
	}
	// The URL is a secret: no flag sets it.
	if _, err := Load([]string{"--database-url", url}, env(nil), io.Discard); err == nil {
		t.Fatal("a --database-url flag was accepted")
	}
}

func TestStoreValidation(t *testing.T) {
	const secret = "pw-s3cret"
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AGENTD_STORE_DRIVER": "mysql"}, `store.driver: "mysql" is not bolt or postgres`},
		{map[string]string{"AGENTD_STORE_DRIVER": "postgres"}, "store.postgres.url: required"},
		{map[string]string{"AGENTD_STORE_DRIVER": "postgres", "AGENTD_DATABASE_URL": "postgres://u:" + secret + "@[::1"}, "store.postgres.url: not a valid postgres:// URL"},
		{map[string]string{"AGENTD_STORE_DRIVER": "postgres", "AGENTD_DATABASE_URL": "mysql-ish " + secret}, "store.postgres.url: neither"},
		{map[string]string{"AGENTD_STORE_DRIVER": "postgres", "AGENTD_DATABASE_URL": "postgres://u:" + secret + "@h/db", "AGENTD_STORE_POSTGRES_MAX_CONNS": "0"}, "store.postgres.max_conns"},
	} {
		_, err := Load(nil, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.env, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	c := Default()
	c.Store = Store{Driver: DriverPostgres, Postgres: PostgresStore{URL: "host=db dbname=agentd", MaxConns: 1, ClaimLease: c.Outbox.Timeout}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "claim_lease") {
		t.Errorf("a claim lease not above outbox.timeout: %v", err)
	}
	c.Store.Postgres.ClaimLease = 2 * c.Outbox.Timeout
	if err := c.Validate(); err != nil {
		t.Errorf("keyword=value URL: %v", err)
	}
}
