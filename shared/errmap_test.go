package shared

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestHTTPStatusError(t *testing.T) {
	for status, want := range map[int]error{
		400: ErrInvalidArgument, 405: ErrInvalidArgument, 413: ErrInvalidArgument, 422: ErrInvalidArgument,
		401: ErrPermissionDenied, 403: ErrPermissionDenied, 404: ErrKeyNotFound, 409: ErrFailedPrecondition,
		408: ErrUnavailable, 429: ErrThrottled, 500: ErrUnavailable, 503: ErrUnavailable, 302: ErrUnavailable,
	} {
		if got := HTTPStatusError(status); got != want {
			t.Errorf("HTTPStatusError(%d) = %v, want %v", status, got, want)
		}
	}
}

// TestThrottledIsUnavailable: a throttled error is also ErrUnavailable
// (code that retries outages keeps retrying it), but not the other way
// round, and it crosses the boundary as ResourceExhausted.
func TestThrottledIsUnavailable(t *testing.T) {
	err := fmt.Errorf("kms: sign: %w", ErrThrottled)
	if !errors.Is(err, ErrThrottled) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("%v: want both ErrThrottled and ErrUnavailable", err)
	}
	if errors.Is(ErrUnavailable, ErrThrottled) {
		t.Error("ErrUnavailable matches ErrThrottled")
	}
	if got := SentinelOf(err); got != ErrThrottled {
		t.Errorf("SentinelOf = %v, want ErrThrottled", got)
	}
	if got, _ := codeOf(err); got.String() != "ResourceExhausted" {
		t.Errorf("code = %v, want ResourceExhausted", got)
	}
	if red := RedactError(err); !errors.Is(red, ErrThrottled) {
		t.Errorf("RedactError lost ErrThrottled: %v", red)
	}
}

func TestContextError(t *testing.T) {
	wrapped := fmt.Errorf("sdk: request failed: %w", context.DeadlineExceeded)
	if got := ContextError(wrapped); got != context.DeadlineExceeded {
		t.Errorf("ContextError(deadline) = %v", got)
	}
	if got := ContextError(fmt.Errorf("x: %w", context.Canceled)); got != context.Canceled {
		t.Errorf("ContextError(canceled) = %v", got)
	}
	if got := ContextError(errors.New("boom")); got != nil {
		t.Errorf("ContextError(plain) = %v", got)
	}
}

func TestRedactError(t *testing.T) {
	inner := errors.New("server said: token s.abc123 is bad")
	err := RedactError(fmt.Errorf("vault: sign at http://admin:pw@vault:8200/v1/x?token=s.abc123: %w: %w", inner, ErrPermissionDenied), "s.abc123")
	if !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("sentinel lost: %v", err)
	}
	if errors.Is(err, inner) {
		t.Fatal("the unredacted cause is still reachable")
	}
	for _, secret := range []string{"s.abc123", "pw@", "admin:"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%q in %q", secret, err)
		}
	}
}

func TestRedactURLAndQuote(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@host/x":          "https://REDACTED@host/x",
		"https://host/x?sig=abc&a=1":  "https://host/x?a=1&sig=REDACTED",
		"https://host/x?region=eu":    "https://host/x?region=eu",
		"not a url with user:pw@host": "[REDACTED]@host",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Quote("a\x1b[2Jb\x00"); got != `"a\x1b[2Jb\x00"` {
		t.Errorf("Quote escapes: %s", got)
	}
	long := Quote(strings.Repeat("k", 1<<20))
	if len(long) > MaxQuoted+40 || !strings.Contains(long, "1048576 bytes") {
		t.Errorf("Quote of 1 MiB: %d bytes: %.80s…", len(long), long)
	}
}
