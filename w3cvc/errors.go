package w3cvc

import "errors"

// Reason codes of Error.
const (
	ReasonSignature         = "signature"
	ReasonExpired           = "expired"
	ReasonRevoked           = "revoked"
	ReasonHolder            = "holder"
	ReasonChallenge         = "challenge"
	ReasonDomain            = "domain"
	ReasonSubmission        = "submission"
	ReasonMalformed         = "malformed"
	ReasonStatusUnavailable = "status-unavailable"
	ReasonIssuerUnresolved  = "issuer-unresolved"
)

// ErrSelectiveDisclosureUnsupported is returned (wrapped in an Error with
// reason "submission" by EvaluateSubmission) for definitions that require
// limit_disclosure: this package cannot produce or check selective
// disclosure.
var ErrSelectiveDisclosureUnsupported = errors.New("selective disclosure (limit_disclosure: required) is not supported")

// Error is a verification or parsing failure: Reason is one of the stable
// Reason codes, Msg says what was wrong for a human. It never holds secret
// material.
type Error struct {
	Reason string
	Msg    string
	err    error
}

// Error returns "<reason>: <message>".
func (e *Error) Error() string { return e.Reason + ": " + e.Msg }

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.err }

func newErr(reason, msg string) *Error { return &Error{Reason: reason, Msg: msg} }

func wrapErr(reason, msg string, err error) *Error {
	return &Error{Reason: reason, Msg: msg + ": " + err.Error(), err: err}
}

// ReasonOf returns the Reason of err if it is or wraps an *Error, else "".
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
