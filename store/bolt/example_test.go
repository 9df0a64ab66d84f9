package bolt_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/store/bolt"
	"github.com/agentd/agentd/store/seal"
)

// Open a database whose private keys are sealed under a key file, creating
// the key file on first start.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "agentd")
	defer os.RemoveAll(dir)

	keyFile := filepath.Join(dir, "master.key")
	if _, err := seal.GenerateKeyFile(keyFile); err != nil { // no-op if it exists
		log.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "agentd.db"), bolt.Options{
		MasterKey: bolt.KeyFile(keyFile), // or bolt.Passphrase(os.Getenv("AGENTD_PASSPHRASE"))
	})
	if err != nil {
		log.Fatal(err) // errors.Is(err, bolt.ErrLocked), bolt.ErrWrongMasterKey
	}
	defer db.Close()

	ctx := context.Background()
	ks, err := db.Keys()
	if err != nil {
		log.Fatal(err)
	}
	k, _ := keys.Generate(keys.Ed25519, "did:example:alice#key-1")
	if err := ks.Put(ctx, k); err != nil {
		log.Fatal(err)
	}

	var outbox agent.OutboxStore = db.Outbox()
	if err := outbox.Enqueue(ctx, &agent.OutboundMessage{ID: "m1", Endpoint: "https://bob.example/didcomm", NextAttempt: time.Now()}); err != nil {
		log.Fatal(err)
	}
	pending, dead, _ := outbox.Depth(ctx)
	fmt.Println(pending, dead)
	// Output: 1 0
}
