package daemon_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestTrustedProxyNamesTheClient: behind a trusted proxy, each client named
// by X-Forwarded-For has its own rate-limit budget on the DIDComm endpoint;
// the header of a sender that is not a trusted proxy changes nothing.
func TestTrustedProxyNamesTheClient(t *testing.T) {
	post := func(base, xff string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/didcomm", strings.NewReader(`{"not":"didcomm"}`))
		req.Header.Set("Content-Type", "application/didcomm-plain+json")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, trusted := range []bool{true, false} {
		cfg := testConfig(t, t.TempDir())
		cfg.Limits.ClientRate, cfg.Limits.ClientBurst = 1, 1
		if trusted {
			cfg.HTTP.TrustedProxies = []string{"127.0.0.1"}
		}
		d := start(t, cfg)
		if code := post(d.base, "203.0.113.1"); code == http.StatusTooManyRequests {
			t.Fatalf("trusted %v: the first message was refused", trusted)
		}
		second := post(d.base, "203.0.113.2") // another client behind the proxy
		if trusted && second == http.StatusTooManyRequests {
			t.Fatal("a second client behind a trusted proxy shares the first one's budget")
		}
		if !trusted && second != http.StatusTooManyRequests {
			t.Fatalf("an untrusted X-Forwarded-For bought a fresh budget: %d", second)
		}
		if code := post(d.base, "203.0.113.1"); code != http.StatusTooManyRequests {
			t.Fatalf("trusted %v: the first client over its budget: %d", trusted, code)
		}
	}
}
