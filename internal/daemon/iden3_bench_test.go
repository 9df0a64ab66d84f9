package daemon

import (
	"io"
	"net/http"
	"testing"

	"github.com/agentd/agentd/protocols/iden3auth/iden3test"
)

// BenchmarkIden3RequestURI is a wallet fetching a session's request by its
// request_uri, over HTTP (keep-alive) from the daemon's listener, with as
// many clients as GOMAXPROCS: requests served per second.
//
//	go test -tags prover_disabled -run '^$' -bench Iden3RequestURI -benchtime 2s ./internal/daemon/
func BenchmarkIden3RequestURI(b *testing.B) {
	chain := iden3test.Start(b)
	_, base := startIden3(b, chain, "")
	resp, body := callTB(b, "POST", base+"/admin/iden3/requests", "application/json",
		[]byte(`{"reason":"bench","scope":`+tvScope+`}`), testAdmin)
	if resp.StatusCode != 201 {
		b.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	uri := base + "/iden3/requests/" + tvThread
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := client.Get(uri)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode != 200 {
				b.Errorf("status %d", r.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}
