package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/agentd/agentd/agent"
)

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	// Error is the problem code (e.g. "e.p.msg") or a short word
	// ("unauthorized" for a missing or wrong admin token).
	Error string `json:"error"`
	// Reason is the human-readable, peer-safe reason.
	Reason string `json:"reason"`
}

// statusOf maps err to the HTTP status of the answer. It is the one place
// HTTP statuses are derived from errors; codes match by prefix
// (agent.HasCode), so e.g. e.p.req.not-found.letter is a 404.
func statusOf(err error) int {
	if isStoreMiss(err) {
		return http.StatusNotFound
	}
	switch {
	case errors.Is(err, agent.ErrUnavailable):
		return http.StatusServiceUnavailable
	case agent.HasCode(err, agent.CodeTooLarge):
		return http.StatusRequestEntityTooLarge
	case agent.HasCode(err, agent.CodeMediaType):
		return http.StatusUnsupportedMediaType
	case agent.HasCode(err, agent.CodeMeResStorage):
		return http.StatusInsufficientStorage
	case agent.HasCode(err, agent.CodeOutboxFull), agent.HasCode(err, agent.CodeBusy), agent.HasCode(err, agent.CodeUnavailable):
		return http.StatusServiceUnavailable
	case agent.HasCode(err, agent.CodeRateLimited):
		return http.StatusTooManyRequests
	case agent.HasCode(err, agent.CodeMe):
		return http.StatusInternalServerError
	case agent.HasCode(err, agent.CodeNotFound):
		return http.StatusNotFound
	case agent.HasCode(err, agent.CodeGone):
		return http.StatusGone
	case agent.HasCode(err, agent.CodeForbidden):
		return http.StatusForbidden
	case agent.HasCode(err, agent.CodeConflict), agent.HasCode(err, agent.CodeMsgReplay):
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

// isStoreMiss reports whether err is a store's agent.ErrNotFound that no
// layer explained with an *agent.Error.
func isStoreMiss(err error) bool {
	var e *agent.Error
	return !errors.As(err, &e) && errors.Is(err, agent.ErrNotFound)
}

// errorAnswer is the body answering err: the problem code and the
// peer-safe comment. A bare agent.ErrNotFound (a store miss that no layer
// explained) answers e.p.req.not-found.
func errorAnswer(err error) ErrorBody {
	if isStoreMiss(err) {
		return ErrorBody{Error: agent.CodeNotFound, Reason: "not found"}
	}
	return ErrorBody{Error: agent.ErrorCode(err), Reason: agent.ErrorComment(err)}
}

// writeError answers err as JSON with the status of statusOf. A 5xx is our
// own fault: its whole cause chain is logged with the request (method,
// path, request id), while the peer only sees the safe comment and the
// request id to quote. Request bodies and headers are never logged.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := statusOf(err)
	body := errorAnswer(err)
	if d := agent.RetryAfter(err); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
	if status >= 500 {
		id := requestID(r)
		if log == nil {
			log = slog.Default()
		}
		log.Error("http: internal error", "method", r.Method, "path", r.URL.Path, "request_id", id,
			"status", status, "code", body.Error, "err", causeChain(err))
		w.Header().Set("X-Request-Id", id)
	}
	writeJSON(w, status, body)
}

// causeChain renders err and every error it wraps, outermost first.
func causeChain(err error) string {
	s := err.Error()
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		s += " | caused by: " + fmt.Sprintf("%T: %s", e, e.Error())
	}
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		for _, e := range j.Unwrap() {
			s += " | joined: " + e.Error()
		}
	}
	return s
}

// requestID returns the request's id: the client's X-Request-Id when it
// sent a short one, a new random id otherwise.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 {
		return safeID(id)
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// safeID keeps the characters of a client-given id that are safe in logs.
func safeID(id string) string {
	out := make([]byte, 0, len(id))
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			out = append(out, c)
		}
	}
	return string(out)
}

// recoverer answers a panicking handler with 500 and logs the panic with
// its stack. http.ErrAbortHandler is passed on, as net/http expects.
func recoverer(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			id := requestID(r)
			log.Error("http: handler panicked", "method", r.Method, "path", r.URL.Path, "request_id", id,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			// If the handler wrote already, this only ends the answer.
			w.Header().Set("X-Request-Id", id)
			writeJSON(w, http.StatusInternalServerError, ErrorBody{Error: agent.CodeMe, Reason: "internal error"})
		}()
		h.ServeHTTP(w, r)
	})
}

// loggerKey carries the server's logger in a request's context, for the
// feature handlers' errors.
type loggerKey struct{}

// withLogger gives a feature's handler the server's logger (loggerOf).
func withLogger(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), loggerKey{}, log)))
	})
}

// loggerOf returns the logger of the server serving r.
func loggerOf(r *http.Request) *slog.Logger {
	if l, ok := r.Context().Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// muxErrors serves through mux and answers the mux's own answers, those
// no route wrote (an unknown path: 404; a method no route of the path
// takes: 405 with Allow; a path the mux would clean or complete with a
// slash: a 301/307 redirect), as JSON ErrorBody like every other error.
// Redirects are not followed by DIDComm senders, and an endpoint is
// posted to at its exact path, so a path that is not one is answered 404
// (the Location it would have redirected to is not given).
type muxErrors struct{ mux *http.ServeMux }

func (m muxErrors) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mux.ServeHTTP(&muxWriter{ResponseWriter: w, r: r}, r)
}

// routed marks h as a registered route: it writes its answer itself,
// through the ResponseWriter the server was given (so that a WebSocket can
// hijack it).
func routed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mw, ok := w.(*muxWriter); ok {
			w = mw.ResponseWriter
		}
		h.ServeHTTP(w, r)
	})
}

// muxWriter is what the mux's own handlers (not found, method not
// allowed, redirects) write to: their status becomes a JSON error answer,
// their text body is dropped.
type muxWriter struct {
	http.ResponseWriter
	r       *http.Request
	written bool
}

func (w *muxWriter) WriteHeader(status int) {
	if w.written {
		return
	}
	w.written = true
	h := w.Header()
	for _, k := range []string{"Content-Type", "Content-Length", "X-Content-Type-Options", "Location"} {
		h.Del(k)
	}
	what := w.r.Method + " " + w.r.URL.Path
	switch {
	case status == http.StatusMethodNotAllowed:
		writeJSON(w.ResponseWriter, status, ErrorBody{Error: "method-not-allowed",
			Reason: "the method " + w.r.Method + " is not allowed on " + w.r.URL.Path + " (allowed: " + h.Get("Allow") + ")"})
	case status >= 300 && status < 400:
		writeJSON(w.ResponseWriter, http.StatusNotFound, ErrorBody{Error: agent.CodeNotFound, Reason: "no endpoint " + what + " (paths are taken exactly as written)"})
	case status == http.StatusNotFound:
		writeJSON(w.ResponseWriter, status, ErrorBody{Error: agent.CodeNotFound, Reason: "no endpoint " + what})
	default:
		writeJSON(w.ResponseWriter, status, ErrorBody{Error: agent.CodeMsg, Reason: http.StatusText(status)})
	}
}

func (w *muxWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return len(b), nil // the mux's own text body is replaced by the JSON one
}
