package agent

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestMessageTimesAsNumbersOrRFC3339(t *testing.T) {
	at := time.Date(2026, 12, 6, 9, 55, 5, 0, time.UTC).Unix()
	for _, tc := range []struct {
		name, in         string
		created, expires int64
	}{
		{"numbers", `{"id":"1","type":"t","body":{},"created_time":1796550905,"expires_time":1796554505}`, 1796550905, 1796554505},
		{"iso with millis", `{"id":"1","type":"t","body":{},"created_time":"2026-12-06T09:55:05.123Z"}`, at, 0},
		{"iso with offset", `{"id":"1","type":"t","body":{},"created_time":"2026-12-06T10:55:05+01:00","expires_time":"2026-12-06T10:55:05Z"}`, at, at + 3600},
		{"number and string", `{"id":"1","type":"t","body":{},"created_time":5,"expires_time":"2026-12-06T09:55:05Z"}`, 5, at},
		{"null", `{"id":"1","type":"t","body":{},"created_time":null}`, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMessage([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if m.CreatedTime != tc.created || m.ExpiresTime != tc.expires || m.ID != "1" || m.Type != "t" || string(m.Body) != "{}" {
				t.Fatalf("decoded %+v, want created %d expires %d", m, tc.created, tc.expires)
			}
			out, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			json.Unmarshal(out, &back)
			if tc.created != 0 && back["created_time"] != float64(tc.created) {
				t.Fatalf("marshalled created_time %v (%s), want the number %d", back["created_time"], out, tc.created)
			}
			if tc.expires != 0 && back["expires_time"] != float64(tc.expires) {
				t.Fatalf("marshalled expires_time %v (%s), want the number %d", back["expires_time"], out, tc.expires)
			}
		})
	}
}

func TestMessageTimeGarbageIsAnError(t *testing.T) {
	for in, want := range map[string]string{
		`{"id":"1","type":"t","created_time":"yesterday"}`:                               `created_time "yesterday" is neither Unix seconds nor an RFC 3339 date-time`,
		`{"id":"1","type":"t","expires_time":"2026-12-06"}`:                              `expires_time "2026-12-06" is neither`,
		`{"id":"1","type":"t","created_time":"1969-12-31T23:59:59Z"}`:                    `lies before 1970`,
		`{"id":"1","type":"t","created_time":"2026-12-06T09:55:05Z","expires_time":1.5}`: `expires_time 1.5 is not a whole number`,
		`{"id":"1","type":"t","created_time":1.5}`:                                       `cannot unmarshal number 1.5`,
		`{"id":"1","type":"t","created_time":true}`:                                      `cannot unmarshal bool`,
	} {
		_, err := ParseMessage([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", in, err, want)
		}
	}
}

// BenchmarkMessageUnmarshal measures decoding a typical plaintext (numeric
// times: the path every message takes).
func BenchmarkMessageUnmarshal(b *testing.B) {
	raw := []byte(`{"id":"1f6f2c1e-6a4e-4c1b-9f7e-0a5c2b9d8e11","typ":"application/didcomm-plain+json","type":"https://didcomm.org/trust-ping/2.0/ping","from":"did:peer:2.Ez6LSabc","to":["did:peer:2.Ez6LSdef"],"created_time":1796550905,"expires_time":1796554505,"return_route":"all","body":{"response_requested":true}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMessage(raw); err != nil {
			b.Fatal(err)
		}
	}
}
