package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// value maps the label values (in label name order, joined with commas) of
// the family name to the counter's value or the histogram's sample count.
func value(t *testing.T, m *Metrics, name string) map[string]float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			v := mt.GetCounter().GetValue()
			if h := mt.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			out[strings.Join(labels, ",")] = v
		}
	}
	return out
}

// TestMessageInAndInstrument: the cached children count into the same
// series as the vectors' own.
func TestMessageInAndInstrument(t *testing.T) {
	m := New()
	for range 3 {
		m.MessageIn("https://didcomm.org/routing/2.0/forward", "ok", time.Millisecond)
	}
	m.MessageIn("", "rejected", time.Millisecond)
	m.MessageIn(strings.Repeat("x", 200), "ok", time.Millisecond)
	in := value(t, m, "agentd_messages_in_total")
	if len(in) != 3 || in["ok,https://didcomm.org/routing/2.0/forward"] != 3 || in["rejected,unknown"] != 1 || in["ok,other"] != 1 {
		t.Errorf("messages in: %v", in)
	}
	if lat := value(t, m, "agentd_message_processing_seconds"); len(lat) != 2 || lat["ok"] != 4 || lat["rejected"] != 1 {
		t.Errorf("latency: %v", lat)
	}
	h := m.Instrument("didcomm", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	for _, p := range []string{"/", "/", "/bad", "/"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", p, nil))
	}
	if hl := value(t, m, "agentd_http_request_seconds"); len(hl) != 2 || hl["202,didcomm"] != 3 || hl["400,didcomm"] != 1 {
		t.Errorf("http latency: %v", hl)
	}
}

// BenchmarkMessageInInstrument: the metrics a forward costs (MessageIn
// and the endpoint's request histogram).
func BenchmarkMessageInInstrument(b *testing.B) {
	m := New()
	h := m.Instrument("didcomm", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	w, r := httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		m.MessageIn("https://didcomm.org/routing/2.0/forward", "ok", time.Millisecond)
		h.ServeHTTP(w, r)
	}
}
