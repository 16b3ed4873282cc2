package shared

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// sentinels lists every sentinel a provider error may wrap, in the order
// SentinelOf tries them (most specific first).
var sentinels = []error{
	ErrUnsupportedAlgorithm, ErrKeyNotFound, ErrInvalidArgument, ErrPermissionDenied,
	ErrThrottled, ErrUnavailable, ErrFailedPrecondition, ErrUnimplemented, ErrAlreadyExists,
	context.DeadlineExceeded, context.Canceled,
}

// SentinelOf returns the sentinel err wraps (one of this package's Err…
// values, context.DeadlineExceeded or context.Canceled), or nil.
func SentinelOf(err error) error {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}

// HTTPStatusError maps an HTTP status code from a key service to the
// sentinel a provider should wrap: 401 and 403 ErrPermissionDenied, 404
// ErrKeyNotFound, 409 ErrFailedPrecondition, 429 ErrThrottled (the
// service's request quota; also ErrUnavailable), 408 and 5xx
// ErrUnavailable (worth retrying), any other 4xx ErrInvalidArgument (the
// request can never succeed as it is), anything else ErrUnavailable. A
// service whose statuses mean something else for some errors (a 403 for a
// disabled key, a 400 for a missing key) checks those first and calls this
// for the rest.
func HTTPStatusError(status int) error {
	switch {
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return ErrPermissionDenied
	case status == http.StatusNotFound:
		return ErrKeyNotFound
	case status == http.StatusConflict:
		return ErrFailedPrecondition
	case status == http.StatusTooManyRequests:
		return ErrThrottled
	case status == http.StatusRequestTimeout:
		return ErrUnavailable
	case status >= 400 && status < 500:
		return ErrInvalidArgument
	}
	return ErrUnavailable
}

// ContextError returns context.DeadlineExceeded or context.Canceled when
// err is or wraps one of them, and nil otherwise. SDKs often wrap the
// context's error in their own; wrapping what this returns keeps
// errors.Is(err, context.DeadlineExceeded) true across the plugin boundary,
// where the host tells a timeout from a failure by it.
func ContextError(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return context.Canceled
	}
	return nil
}

// RedactError returns err with every occurrence of each secret (a token, a
// password) in its message replaced by [REDACTED]. The result unwraps to
// err's sentinel only, so nothing below it can leak the original message
// through errors.As or a later %+v. Use it as the last step of a
// provider's error mapping, for messages that quote what a service sent.
func RedactError(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	return &redacted{msg: Redact(err.Error(), secrets...), sentinel: SentinelOf(err)}
}

type redacted struct {
	msg      string
	sentinel error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.sentinel }

// Redact replaces every occurrence of each non-empty secret in s with
// [REDACTED], then redacts URLs in s with RedactURL's rules.
func Redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return redactURLs(s)
}
