package daemon_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// newCapture serves an endpoint that hands each POSTed body to got.
func newCapture(t *testing.T, got chan<- []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case got <- b:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
