package vault

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/knhk/knhk/shared"
)

// mapError turns an error from the Vault client into one that wraps a
// shared sentinel. op says what was being done ("sign with
// transit/release"), path is the Vault path, so a 403 names what was
// denied. The message is built from Vault's error strings, never from the
// request, and has the token redacted as a last line of defence.
func (c *client) mapError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := shared.ContextError(err); ctxErr != nil {
		return fmt.Errorf("vault: %s: %w", op, ctxErr)
	}
	if shared.SentinelOf(err) != nil {
		return err // already typed (a failed relogin)
	}
	var re *api.ResponseError
	if !errors.As(err, &re) {
		// Transport failures: connection refused, TLS, DNS.
		return c.redact(fmt.Errorf("vault: %s: cannot talk to Vault at %s: %v: %w", op, c.addr, err, shared.ErrUnavailable))
	}
	detail := strings.Join(re.Errors, "; ")
	if detail == "" {
		detail = http.StatusText(re.StatusCode)
	}
	var sentinel error
	switch {
	case re.StatusCode == http.StatusForbidden:
		return c.redact(fmt.Errorf("vault: %s: permission denied on %s %s at %s (the token's policy does not allow it): %w",
			op, re.HTTPMethod, path, c.addr, shared.ErrPermissionDenied))
	case re.StatusCode == http.StatusServiceUnavailable && strings.Contains(detail, "sealed"):
		return c.redact(fmt.Errorf("vault: %s: Vault at %s is sealed; unseal it and retry: %w", op, c.addr, shared.ErrUnavailable))
	case notFound(detail):
		sentinel = shared.ErrKeyNotFound // Transit answers 400 for a missing key or version
	case standby(detail):
		sentinel = shared.ErrUnavailable
	default:
		sentinel = shared.HTTPStatusError(re.StatusCode)
	}
	return c.redact(fmt.Errorf("vault: %s: %s returned %d: %s: %w", op, path, re.StatusCode, detail, sentinel))
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

// malformedSignature recognises Transit's 400 for a signature it cannot
// parse (bad ASN.1, trailing data): Verify reports such a signature
// invalid, not an error.
func malformedSignature(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	d := strings.ToLower(strings.Join(re.Errors, " "))
	return strings.Contains(d, "supplied signature") || strings.Contains(d, "invalid base64 signature")
}

// redact removes the client's current token, and any other given secret,
// from err's message. The messages above are built without them; this
// guards against a Vault or transport message that quotes one.
func (c *client) redact(err error, secrets ...string) error {
	return shared.RedactError(err, append(secrets, c.api.Token())...)
}
