package pluginrpc

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/knhk/knhk/internal/contract"
	"github.com/knhk/knhk/shared"
	kmsv1 "github.com/knhk/knhk/shared/proto/knhk/kms/v1"
)

// remoteError is an error that came from a plugin: its message as the plugin
// wrote it, and the sentinel its status code stands for.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// SentinelFor maps a gRPC code and reason back to the sentinel the plugin
// SDK sent it for (ResourceExhausted: shared.ErrThrottled) (shared's toStatus is the other direction), plus the
// codes a plugin written without the SDK might use. Nil for none. The
// sidecar's client uses it too, for statuses without knhk's own reason.
func SentinelFor(code codes.Code, reason string) error {
	if reason == contract.ReasonUnsupportedAlgorithm {
		return shared.ErrUnsupportedAlgorithm
	}
	switch code {
	case codes.NotFound:
		return shared.ErrKeyNotFound
	case codes.InvalidArgument, codes.OutOfRange:
		return shared.ErrInvalidArgument
	case codes.PermissionDenied, codes.Unauthenticated:
		return shared.ErrPermissionDenied
	case codes.ResourceExhausted:
		return shared.ErrThrottled // also shared.ErrUnavailable
	case codes.Unavailable, codes.Aborted:
		return shared.ErrUnavailable
	case codes.FailedPrecondition:
		return shared.ErrFailedPrecondition
	case codes.Unimplemented:
		return shared.ErrUnimplemented
	case codes.AlreadyExists:
		return shared.ErrAlreadyExists
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	case codes.Canceled:
		return context.Canceled
	}
	return nil
}

// fromStatus turns a gRPC error from a plugin back into a sentinel-wrapping
// error with the plugin's message.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	reason := ""
	for _, d := range st.Details() {
		if ed, ok := d.(*kmsv1.ErrorDetail); ok {
			reason = ed.GetReason()
		}
	}
	return itemError(st.Code(), st.Message(), reason)
}

func itemError(code codes.Code, msg, reason string) error {
	sentinel := SentinelFor(code, reason)
	if code == codes.ResourceExhausted && strings.Contains(msg, "larger than max") {
		// gRPC's own size limit: the request can never succeed as it is,
		// unlike a throttled provider.
		sentinel = shared.ErrInvalidArgument
	}
	if sentinel == nil {
		return fmt.Errorf("plugin error (%s): %s", code, msg)
	}
	return &remoteError{msg: msg, sentinel: sentinel}
}
