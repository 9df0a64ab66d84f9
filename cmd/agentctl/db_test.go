package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/pgtest"
	"github.com/agentd/agentd/store/postgres"
)

// TestMain runs the private PostgreSQL server of the db tests.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestDBStatusAndMigrate(t *testing.T) {
	const secret = "pw-s3cret-db"
	url := strings.Replace(pgtest.Start(t), "postgres@", "postgres:"+secret+"@", 1)
	t.Setenv("AGENTD_DATABASE_URL", url)
	runDB := func(sub string) dbStatus {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run([]string{"db", sub}, &out, &errOut); err != nil {
			t.Fatalf("db %s: %v", sub, err)
		}
		var st dbStatus
		if err := json.Unmarshal(out.Bytes(), &st); err != nil {
			t.Fatalf("db %s printed %q: %v", sub, out.String(), err)
		}
		return st
	}
	known := postgres.SchemaVersion()
	if st := runDB("status"); st.Version != 0 || st.Known != known || st.Pending != known {
		t.Fatalf("status of an empty database: %+v", st)
	}
	if st := runDB("migrate"); st.Version != known || st.Applied == nil || *st.Applied != known || st.Pending != 0 {
		t.Fatalf("migrate: %+v", st)
	}
	if st := runDB("migrate"); st.Applied == nil || *st.Applied != 0 {
		t.Fatalf("second migrate: %+v", st)
	}
	if st := runDB("status"); st.Version != known || st.Pending != 0 {
		t.Fatalf("status after migrate: %+v", st)
	}
	// Errors name the database without its password.
	t.Setenv("AGENTD_DATABASE_URL", strings.Replace(url, "/t_", "/missing_", 1))
	var out, errOut bytes.Buffer
	err := run([]string{"db", "status"}, &out, &errOut)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("db status of a missing database: %v", err)
	}
	t.Setenv("AGENTD_DATABASE_URL", "")
	if err := run([]string{"db", "status"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "AGENTD_DATABASE_URL") {
		t.Fatalf("db status without a URL: %v", err)
	}
}
