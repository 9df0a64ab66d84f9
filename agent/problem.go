package agent

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Problem codes of Report Problem 2.0 used by the agent. A code is
// sorter "." scope "." descriptor: e = error, w = warning; p = protocol scope,
// m = message scope.
const (
	CodeMsg            = "e.p.msg"                // the message is malformed or can't be processed
	CodeMsgUnsupported = "e.p.msg.unsupported"    // unknown message type or protocol
	CodeMsgExpired     = "e.p.msg.expired"        // expires_time has passed
	CodeMsgReplay      = "e.p.msg.replay"         // the message id was seen before
	CodeTrust          = "e.p.trust"              // the sender is not trusted
	CodeTrustCrypto    = "e.p.trust.crypto"       // decryption or signature check failed
	CodeXfer           = "e.p.xfer"               // transport problem, e.g. an endpoint that can't be reached
	CodeReqTime        = "e.p.req.time"           // a time limit of the protocol was exceeded
	CodeMe             = "e.p.me"                 // our own fault: an internal error
	CodeMeResStorage   = "e.p.me.res.storage"     // a storage limit or quota was hit
	CodeDIDUnsupported = "e.p.did.unsupported"    // a DID method the agent can't resolve
	CodeDIDUnresolved  = "e.p.did"                // a DID or key could not be resolved
	CodeTooLarge       = "e.p.xfer.too-large"     // the message exceeds the size limit
	CodeMediaType      = "e.p.xfer.media-type"    // the transport got a media type it does not take
	CodeNotForUs       = "e.p.msg.not-for-us"     // the message is addressed to someone else
	CodeForbidden      = "e.p.req.not-allowed"    // the request is not permitted by policy
	CodeNotFound       = "e.p.req.not-found"      // the thing asked for does not exist
	CodeGone           = "e.p.req.gone"           // the thing asked for existed but is used up or expired
	CodeConflict       = "e.p.req.conflict"       // the request conflicts with the current state
	CodeRateLimited    = "e.p.req.rate-limited"   // the client or sender is over its rate limit: try again later
	CodeOutboxFull     = "e.p.me.res.outbox-full" // the outbox holds as many messages as it may: try again later
	CodeBusy           = "e.p.xfer.busy"          // the agent is at a capacity limit (connections, resolutions): try again later
	CodeUnavailable    = "e.p.me.res.unavailable" // the agent's store is unreachable now: try again later
)

// Error is the agent's one error type. Code is a Report Problem 2.0 code;
// Comment is a short, human-readable reason that is safe to show to the peer
// (never include secrets); Err is the underlying cause, kept for logs only.
type Error struct {
	Code    string
	Comment string
	Err     error
	// RetryAfter, when positive, is how long the peer should wait before
	// sending again (a rate limit, a full outbox); transports pass it on
	// (HTTP Retry-After).
	RetryAfter time.Duration
}

// Errorf returns an *Error with the given code and a formatted comment.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Comment: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the code and comment, keeping err as the cause.
func Wrap(code string, err error, comment string) *Error {
	return &Error{Code: code, Comment: comment, Err: err}
}

func (e *Error) Error() string {
	if e.Comment == "" {
		return e.Code
	}
	return e.Code + ": " + e.Comment
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the problem code of err: the code of the *Error in its
// chain, or e.p.me for any other error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeMe
}

// ErrorComment returns the peer-safe comment of err: the *Error's comment, or
// a generic text for errors that are not *Error (their text may hold details
// that must not leave the process).
func ErrorComment(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Comment != "" {
			return e.Comment
		}
		return e.Code
	}
	return "internal error"
}

// HasCode reports whether the problem code of err (see ErrorCode) is
// prefix or lies under it: codes are dot-separated paths, so
// HasCode(err, "e.p.req") holds for e.p.req.time.provecontrol.expired but
// not for e.p.request. Transports map errors to their statuses with it.
func HasCode(err error, prefix string) bool {
	code := ErrorCode(err)
	return code == prefix || strings.HasPrefix(code, prefix+".")
}

// RetryAfter returns the RetryAfter of the *Error in err's chain, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ProblemReportType is the message type of Report Problem 2.0.
const ProblemReportType = "https://didcomm.org/report-problem/2.0/problem-report"

// ProblemReportBody is the body of a problem-report message.
type ProblemReportBody struct {
	Code       string   `json:"code"`
	Comment    string   `json:"comment,omitempty"`
	Args       []string `json:"args,omitempty"`
	EscalateTo string   `json:"escalate_to,omitempty"`
}

// ProblemReport builds the problem-report answering msg for err. Its pthid is
// msg's thread, as Report Problem 2.0 asks; only the peer-safe comment of err is
// included.
func ProblemReport(msg Message, err error) Message {
	r, _ := NewMessage(ProblemReportType, ProblemReportBody{Code: ErrorCode(err), Comment: ErrorComment(err)})
	if msg.From != "" {
		r.To = []string{msg.From}
	}
	r.PThID = msg.Thread()
	// A problem report is its own thread (thid = id); acks of it refer to it.
	return r
}
