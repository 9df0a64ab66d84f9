package http

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/bolt"
)

type deadAdmin struct {
	AdminService
	ob agent.OutboxStore
}

func (a deadAdmin) DeadLetters(ctx context.Context, after string, limit int) ([]*agent.OutboundMessage, error) {
	return a.ob.Dead(ctx, after, limit)
}

// TestDeadLettersPaging: next is a position that stays good when the
// letter it was taken from is deleted; a bare id that is no longer a dead
// letter is a 404 with a reason, not a 500.
func TestDeadLettersPaging(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "d.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ob := db.Outbox()
	base := time.Now().Add(-time.Hour)
	for i := range 3 {
		m := &agent.OutboundMessage{ID: fmt.Sprint("d", i), To: "did:example:b", Endpoint: "https://b/x", Payload: []byte("{}"), NextAttempt: base}
		if err := ob.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
		m.DeadAt = base.Add(time.Duration(i) * time.Minute)
		if err := ob.Kill(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	h := NewHandler(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}, Features: []Feature{NewAdminAPI(deadAdmin{ob: ob})}, AdminToken: testToken})
	type page struct {
		DeadLetters []DeadLetter `json:"deadLetters"`
		Next        string       `json:"next"`
	}
	get := func(query string) (int, page, string) {
		resp, body := do(t, h, "GET", "/admin/deadletters"+query, "", testToken, "")
		var p page
		json.Unmarshal([]byte(body), &p)
		return resp.StatusCode, p, body
	}
	code, p1, body := get("?limit=2")
	if code != 200 || len(p1.DeadLetters) != 2 || p1.Next == "" {
		t.Fatalf("first page: %d %s", code, body)
	}
	if err := ob.PurgeDead(ctx, "d1"); err != nil { // the last letter of the page goes
		t.Fatal(err)
	}
	code, p2, body := get("?limit=2&after=" + p1.Next)
	if code != 200 || len(p2.DeadLetters) != 1 || p2.DeadLetters[0].ID != "d2" {
		t.Fatalf("page after a deleted letter's cursor: %d %s", code, body)
	}
	code, _, body = get("?after=d1")
	var eb ErrorBody
	if code != 404 || json.Unmarshal([]byte(body), &eb) != nil || eb.Error != agent.CodeNotFound || eb.Reason == "" {
		t.Fatalf("after a bare id that is gone: %d %s, want 404 with a reason", code, body)
	}
}
