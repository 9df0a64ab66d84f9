package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Iden3Observer registers the iden3 verifier's collectors and returns the
// function that counts each answer by result (verified, refused,
// chain-unavailable, busy, not-answerable) and observes how long its
// verification took. Call it once, when the verifier is enabled.
func (m *Metrics) Iden3Observer() func(result string, elapsed time.Duration) {
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "agentd", Name: "iden3_answers_total",
		Help: "Wallet answers to iden3 authorization requests by result (verified, refused, chain-unavailable, busy, not-answerable).",
	}, []string{"result"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "agentd", Name: "iden3_verification_seconds",
		Help:    "Time to verify and record a wallet's answer, by result.",
		Buckets: []float64{.005, .01, .02, .03, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"result"})
	m.reg.MustRegister(answers, latency)
	return func(result string, elapsed time.Duration) {
		answers.WithLabelValues(result).Inc()
		latency.WithLabelValues(result).Observe(elapsed.Seconds())
	}
}
