package envelope

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

func TestZZParts(t *testing.T) {
	which := os.Getenv("ZZX")
	if which == "" {
		t.Skip()
	}
	alice, _ := keys.Generate(keys.X25519, "did:example:alice#key-x25519-1")
	bob, _ := keys.Generate(keys.X25519, "did:example:bob#key-x25519-1")
	body := `{"content":"` + strings.Repeat("x", 1024-len(`{"content":""}`)) + `"}`
	plain := message("did:example:alice", body)
	jwe, _ := PackAuthcrypt(plain, alice, []keys.PublicKey{bob.PublicKey})
	key := make([]byte, 64)
	iv := make([]byte, 16)
	ct, tag, _ := cbcHMACSeal(key, iv, plain, jwe[:400])
	fns := map[string]func(){
		"plain":  func() { parsePlaintext(plain) },
		"scanpt": func() { scanEnvelope(plain) },
		"scanjwe": func() { scanEnvelope(jwe) },
		"parsejwe": func() { e, _ := scanEnvelope(jwe); parseJWE(e) },
		"seal":   func() { cbcHMACSeal(key, iv, plain, jwe[:400]) },
		"open":   func() { if _, err := cbcHMACOpen(key, iv, ct, tag, jwe[:400]); err != nil { t.Fatal(err) } },
		"static": func() { staticAgreeKey(alice) },
	}
	for _, name := range strings.Split(which, ",") {
		fmt.Printf("%s %.0f ns\n", name, cpuMedian(2000, 9, fns[name]))
	}
}
