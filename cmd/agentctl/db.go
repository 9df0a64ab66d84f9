package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/agentd/agentd/store/postgres"
)

const dbUsage = `  db status                   the PostgreSQL schema version: the database's and this binary's
                              (reads AGENTD_DATABASE_URL; store.driver postgres)
  db migrate                  apply the migrations the database lacks (agentd also does at start)
`

// dbStatus is what db status and db migrate print.
type dbStatus struct {
	Version int `json:"version"`
	Known   int `json:"known"`
	// Pending is the number of migrations this binary would apply.
	Pending int `json:"pending"`
	// Applied is the number of migrations db migrate applied.
	Applied *int   `json:"applied,omitempty"`
	Note    string `json:"note,omitempty"`
}

// db talks to the PostgreSQL database directly, not to a running agentd:
// the URL comes from AGENTD_DATABASE_URL only (it may hold a password, so
// never from a flag).
func db(ctx context.Context, rest []string) (any, error) {
	if len(rest) == 0 {
		return nil, errors.New("db: missing subcommand (status, migrate)")
	}
	url := os.Getenv("AGENTD_DATABASE_URL")
	if url == "" {
		return nil, errors.New("db: set AGENTD_DATABASE_URL to the database's URL (postgres://USER:PASSWORD@HOST:PORT/DB)")
	}
	var (
		st      postgres.Status
		applied int
		err     error
	)
	switch rest[0] {
	case "status":
		st, err = postgres.ReadStatus(ctx, url)
	case "migrate":
		st, applied, err = postgres.Migrate(ctx, url)
	default:
		return nil, fmt.Errorf("db: unknown subcommand %q (status, migrate)", rest[0])
	}
	if err != nil {
		return nil, fmt.Errorf("db %s: %w", rest[0], err)
	}
	out := dbStatus{Version: st.Version, Known: st.Known, Pending: max(st.Known-st.Version, 0)}
	if rest[0] == "migrate" {
		out.Applied = &applied
	}
	if st.Version > st.Known {
		out.Note = "the database was migrated by a newer agentd: upgrade this one"
	}
	return out, nil
}
