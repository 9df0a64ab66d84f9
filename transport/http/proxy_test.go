package http

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTrustedProxies(t *testing.T) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseTrustedProxies([]string{"not an address"}); err == nil {
		t.Fatal("a bad entry parsed")
	}
	var seen string
	h := tp.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = clientIP(r) }))
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"127.0.0.1:5000", []string{"203.0.113.7"}, "203.0.113.7"},                         // through the proxy
		{"127.0.0.1:5000", []string{"198.51.100.1, 203.0.113.7, 10.1.2.3"}, "203.0.113.7"}, // the first untrusted hop from the end
		{"127.0.0.1:5000", []string{"198.51.100.1", "203.0.113.7"}, "203.0.113.7"},         // two headers
		{"127.0.0.1:5000", nil, "127.0.0.1"},                                               // a proxy's own request
		{"127.0.0.1:5000", []string{"garbage"}, "127.0.0.1"},                               // unreadable: the connection
		{"198.51.100.9:5000", []string{"203.0.113.7"}, "198.51.100.9"},                     // not a proxy: the header is ignored
		{"[::ffff:10.9.9.9]:5000", []string{"203.0.113.8"}, "203.0.113.8"},                 // mapped IPv4 proxy
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if seen != tc.want {
			t.Errorf("%s %v: client %s, want %s", tc.remote, tc.xff, seen, tc.want)
		}
	}
}
