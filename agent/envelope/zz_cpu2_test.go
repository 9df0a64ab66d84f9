package envelope

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

func TestZZPack(t *testing.T) {
	which := os.Getenv("ZZP")
	if which == "" {
		t.Skip()
	}
	alice, _ := keys.Generate(keys.X25519, "did:example:alice#key-x25519-1")
	bob, _ := keys.Generate(keys.X25519, "did:example:bob#key-x25519-1")
	r := newTestResolver()
	r.add(alice.PublicKey, PurposeKeyAgreement)
	opts := UnpackOptions{Keys: r, Secrets: testSecrets{bob.ID: bob}}
	body := `{"content":"` + strings.Repeat("x", 1024-len(`{"content":""}`)) + `"}`
	plain := message("did:example:alice", body)
	rcpt := []keys.PublicKey{bob.PublicKey}
	ctx := context.Background()
	fns := map[string]func(){
		"auth": func() {
			jwe, err := PackAuthcrypt(plain, alice, rcpt)
			if err != nil {
				t.Fatal(err)
			}
			pt, _, err := Unpack(ctx, jwe, opts)
			if err != nil || !bytes.Equal(pt, plain) {
				t.Fatal(err)
			}
		},
		"anon": func() {
			jwe, err := PackAnoncrypt(plain, rcpt, XC20P)
			if err != nil {
				t.Fatal(err)
			}
			pt, _, err := Unpack(ctx, jwe, opts)
			if err != nil || !bytes.Equal(pt, plain) {
				t.Fatal(err)
			}
		},
	}
	for _, name := range strings.Split(which, ",") {
		fmt.Printf("%s %.0f ns\n", name, cpuMedian(500, 15, fns[name]))
	}
}
