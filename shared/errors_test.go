package shared

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestErrorsSurviveTheBoundary(t *testing.T) {
	sentinels := []error{
		ErrKeyNotFound, ErrInvalidArgument, ErrUnsupportedAlgorithm, ErrPermissionDenied,
		ErrUnavailable, ErrFailedPrecondition, ErrUnimplemented, ErrAlreadyExists,
		context.DeadlineExceeded, context.Canceled,
	}
	for _, s := range sentinels {
		t.Run(s.Error(), func(t *testing.T) {
			orig := fmt.Errorf("provider says: do X next: %w", s)
			back := fromStatus(toStatus(orig))
			if !errors.Is(back, s) {
				t.Fatalf("errors.Is(%v, %v) = false after the round trip", back, s)
			}
			if back.Error() != orig.Error() {
				t.Fatalf("message changed: %q -> %q", orig.Error(), back.Error())
			}
			for _, other := range sentinels {
				if other != s && errors.Is(back, other) {
					t.Fatalf("%v also matches %v", back, other)
				}
			}
		})
	}
}

func TestPlainErrorsStayPlain(t *testing.T) {
	back := fromStatus(toStatus(errors.New("boom")))
	if back == nil || back.Error() == "" {
		t.Fatal("lost the error")
	}
	for _, s := range []error{ErrKeyNotFound, ErrInvalidArgument, ErrUnavailable} {
		if errors.Is(back, s) {
			t.Fatalf("unwrapped error matched %v", s)
		}
	}
}

func TestForeignCodesMapToSentinels(t *testing.T) {
	cases := map[codes.Code]error{
		codes.Unauthenticated:   ErrPermissionDenied,
		codes.ResourceExhausted: ErrUnavailable,
		codes.NotFound:          ErrKeyNotFound,
		codes.Unavailable:       ErrUnavailable,
	}
	for code, want := range cases {
		if got := fromStatus(status.Error(code, "x")); !errors.Is(got, want) {
			t.Errorf("%s -> %v, want %v", code, got, want)
		}
	}
}
