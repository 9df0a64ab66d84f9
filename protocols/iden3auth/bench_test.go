package iden3auth

import (
	"context"
	"testing"
	"time"
)

// BenchmarkVerifyRecorded is one whole answer as the callback takes it:
// the recorded Polygon ID response (authV2 + credentialAtomicQueryMTPV2)
// verified against its stored request, with warm caches (verification
// keys, parsed schema, the resolver's chain answers), and the verdict
// committed. Each iteration starts from a fresh pending session (not
// timed).
//
//	go test -tags prover_disabled -run '^$' -bench VerifyRecorded -benchtime 50x ./protocols/iden3auth/
func BenchmarkVerifyRecorded(b *testing.B) {
	f := newFixture(b, vectorChain(b))
	ctx := context.Background()
	token := readFile(b, "mtpv2_token.txt")
	reset := func() {
		f.db.Records().Delete(ctx, KindSession, vecThread)
		f.db.ReplayCache().Sweep(ctx, time.Now().Add(2*replayKeep))
		f.create(b, vecThread, vecCreate())
	}
	reset()
	if _, err := f.svc.Verify(ctx, vecThread, token); err != nil { // warm the caches
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		reset()
		b.StartTimer()
		if _, err := f.svc.Verify(ctx, vecThread, token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFullVerifyParallel is the verification work alone (go-iden3-auth
// FullVerify with the service's verifier and options, warm caches) on all
// cores: responses verified per second.
//
//	go test -tags prover_disabled -run '^$' -bench FullVerifyParallel -benchtime 100x ./protocols/iden3auth/
func BenchmarkFullVerifyParallel(b *testing.B) {
	f := newFixture(b, vectorChain(b))
	s := f.create(b, vecThread, vecCreate())
	token := string(readFile(b, "mtpv2_token.txt"))
	if _, err := f.svc.verifier.FullVerify(context.Background(), token, s.Request, f.svc.opts...); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.svc.verifier.FullVerify(context.Background(), token, s.Request, f.svc.opts...); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "responses/s")
}
