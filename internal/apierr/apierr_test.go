package apierr

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// TestRoundTrip: every knhk error keeps its sentinel (and what that wraps)
// across ToStatus and FromStatus, with its message.
func TestRoundTrip(t *testing.T) {
	for _, k := range kinds {
		err := fmt.Errorf("sign key x: %w", k.err)
		back := FromStatus(ToStatus(err))
		if !errors.Is(back, k.err) || back.Error() != err.Error() {
			t.Errorf("%s: got %v, want an error matching %v", k.reason, back, k.err)
		}
	}
	if back := FromStatus(ToStatus(ErrPolicyDenied)); !errors.Is(back, shared.ErrPermissionDenied) {
		t.Errorf("policy denial is not also permission denied: %v", back)
	}
	if back := FromStatus(ToStatus(fmt.Errorf("w: %w", host.ErrCallTimeout))); !errors.Is(back, shared.ErrUnavailable) {
		t.Errorf("call timeout is not also unavailable: %v", back)
	}
}

// TestBareCodes: a status without knhk's reason (from gRPC itself) maps by
// its code.
func TestBareCodes(t *testing.T) {
	for code, want := range map[codes.Code]error{
		codes.NotFound:          shared.ErrKeyNotFound,
		codes.Unavailable:       shared.ErrUnavailable,
		codes.Unauthenticated:   shared.ErrPermissionDenied,
		codes.ResourceExhausted: shared.ErrUnavailable,
		codes.DeadlineExceeded:  context.DeadlineExceeded,
	} {
		if got := FromStatus(status.Error(code, "x")); !errors.Is(got, want) {
			t.Errorf("%s: got %v, want %v", code, got, want)
		}
	}
	if got := FromStatus(status.Error(codes.ResourceExhausted, "grpc: received message larger than max")); !errors.Is(got, shared.ErrInvalidArgument) {
		t.Errorf("gRPC's size limit: got %v, want invalid argument", got)
	}
}
