package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/knhk/knhk/shared"
)

// apiError turns an error from the Vault client into one that wraps a shared
// sentinel. op says what was being done ("sign with transit/release"), path
// is the Vault path, so a 403 names what was denied. The message is built
// from Vault's error strings, never from the request, and scrubbed of the
// token as a last line of defence.
func (c *conn) apiError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("vault: %s: %w", op, contextErr(err))
	}
	for _, sentinel := range sentinels {
		if errors.Is(err, sentinel) {
			return err // already typed (a failed relogin)
		}
	}
	var re *api.ResponseError
	if !errors.As(err, &re) {
		// Transport failures: connection refused, TLS, DNS.
		return c.scrub(fmt.Errorf("vault: %s: cannot talk to Vault at %s: %v: %w", op, c.addr, err, shared.ErrUnavailable))
	}
	detail := strings.Join(re.Errors, "; ")
	if detail == "" {
		detail = http.StatusText(re.StatusCode)
	}
	var sentinel error
	switch {
	case re.StatusCode == http.StatusForbidden:
		return c.scrub(fmt.Errorf("vault: %s: permission denied on %s %s at %s (the token's policy does not allow it): %w",
			op, re.HTTPMethod, path, c.addr, shared.ErrPermissionDenied))
	case re.StatusCode == http.StatusNotFound, notFound(detail):
		sentinel = shared.ErrKeyNotFound
	case re.StatusCode == http.StatusServiceUnavailable && strings.Contains(detail, "sealed"):
		return c.scrub(fmt.Errorf("vault: %s: Vault at %s is sealed; unseal it and retry: %w", op, c.addr, shared.ErrUnavailable))
	case re.StatusCode == http.StatusTooManyRequests, re.StatusCode >= 500, standby(detail):
		sentinel = shared.ErrUnavailable
	case re.StatusCode == http.StatusBadRequest:
		sentinel = shared.ErrInvalidArgument
	case re.StatusCode == http.StatusUnauthorized:
		sentinel = shared.ErrPermissionDenied
	default:
		sentinel = shared.ErrUnavailable
	}
	return c.scrub(fmt.Errorf("vault: %s: %s returned %d: %s: %w", op, path, re.StatusCode, detail, sentinel))
}

// contextErr keeps the context's own sentinel so callers can errors.Is it.
func contextErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

// notFound recognises Transit's 400 answers for a missing key or version.
func notFound(detail string) bool {
	d := strings.ToLower(detail)
	return strings.Contains(d, "key not found") ||
		strings.Contains(d, "requested version for signing is higher") ||
		strings.Contains(d, "invalid key version") ||
		strings.Contains(d, "version is higher than the latest")
}

// standby recognises a standby node that cannot serve the request.
func standby(detail string) bool {
	d := strings.ToLower(detail)
	return strings.Contains(d, "standby") || strings.Contains(d, "not active")
}

// scrub removes the connection's current token from an error message. The
// messages above are built without it; this guards against a Vault or
// transport message that quotes it.
func (c *conn) scrub(err error) error {
	return c.scrubWith(c.client.Token(), err)
}

// scrubOut replaces tok in err's message, keeping only err's sentinel.
func scrubOut(err error, tok string) error {
	s := &scrubbed{msg: strings.ReplaceAll(err.Error(), tok, "[token]")}
	for _, sentinel := range sentinels {
		if errors.Is(err, sentinel) {
			s.sentinel = sentinel
			break
		}
	}
	return s
}

var sentinels = []error{
	shared.ErrKeyNotFound, shared.ErrInvalidArgument, shared.ErrUnsupportedAlgorithm,
	shared.ErrPermissionDenied, shared.ErrUnavailable, shared.ErrFailedPrecondition,
	shared.ErrAlreadyExists, context.DeadlineExceeded, context.Canceled,
}

// scrubbed is an error whose message had the token removed. It unwraps to
// the sentinel only, so nothing below it can leak the original message.
type scrubbed struct {
	msg      string
	sentinel error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.sentinel }

var errClosed = fmt.Errorf("vault: provider is closed: %w", shared.ErrUnavailable)
