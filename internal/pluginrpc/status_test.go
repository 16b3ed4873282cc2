package pluginrpc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/knhk/knhk/shared"
)

// erringProvider fails every Sign with the error named by the key id.
type erringProvider struct {
	countingProvider
	errs map[string]error
}

func (p *erringProvider) Sign(_ context.Context, r shared.SignRequest) (shared.SignResponse, error) {
	return shared.SignResponse{}, p.errs[r.Key.ID]
}

// TestErrorsSurviveTheBoundary sends every sentinel through a served
// plugin and back: errors.Is holds, the message is the provider's, and no
// other sentinel matches.
func TestErrorsSurviveTheBoundary(t *testing.T) {
	sentinels := []error{
		shared.ErrKeyNotFound, shared.ErrInvalidArgument, shared.ErrUnsupportedAlgorithm, shared.ErrPermissionDenied,
		shared.ErrUnavailable, shared.ErrFailedPrecondition, shared.ErrUnimplemented, shared.ErrAlreadyExists,
		context.DeadlineExceeded, context.Canceled,
	}
	p := &erringProvider{errs: map[string]error{"plain": errors.New("boom")}}
	for _, s := range sentinels {
		p.errs[s.Error()] = fmt.Errorf("provider says: do X next: %w", s)
	}
	c := connect(t, p)
	d := sha256.Sum256([]byte("x"))
	sign := func(id string) error {
		_, err := c.Sign(context.Background(), shared.SignRequest{Key: shared.KeyRef{ID: id}, Algorithm: shared.ES256, Digest: d[:]})
		return err
	}
	for _, s := range sentinels {
		t.Run(s.Error(), func(t *testing.T) {
			back := sign(s.Error())
			if !errors.Is(back, s) {
				t.Fatalf("errors.Is(%v, %v) = false after the round trip", back, s)
			}
			if want := p.errs[s.Error()].Error(); back.Error() != want {
				t.Fatalf("message changed: %q -> %q", want, back.Error())
			}
			for _, other := range sentinels {
				if other != s && errors.Is(back, other) {
					t.Fatalf("%v also matches %v", back, other)
				}
			}
		})
	}
	t.Run("plain errors stay plain", func(t *testing.T) {
		back := sign("plain")
		if back == nil || !strings.Contains(back.Error(), "boom") {
			t.Fatalf("lost the error: %v", back)
		}
		if s := shared.SentinelOf(back); s != nil {
			t.Fatalf("unwrapped error matched %v", s)
		}
	})
}

func TestForeignCodesMapToSentinels(t *testing.T) {
	cases := map[codes.Code]error{
		codes.Unauthenticated:   shared.ErrPermissionDenied,
		codes.ResourceExhausted: shared.ErrThrottled,
		codes.NotFound:          shared.ErrKeyNotFound,
		codes.Unavailable:       shared.ErrUnavailable,
	}
	tooBig := status.Error(codes.ResourceExhausted, "grpc: trying to send message larger than max (70000000 vs. 67108864)")
	if got := fromStatus(tooBig); !errors.Is(got, shared.ErrInvalidArgument) {
		t.Errorf("an oversized message -> %v, want ErrInvalidArgument (it can never succeed)", got)
	}
	for code, want := range cases {
		if got := fromStatus(status.Error(code, "x")); !errors.Is(got, want) {
			t.Errorf("%s -> %v, want %v", code, got, want)
		}
	}
}
