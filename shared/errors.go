package shared

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/knhk/knhk/internal/contract"
	kmsv1 "github.com/knhk/knhk/shared/proto/knhk/kms/v1"
)

// Sentinel errors. Providers wrap them (fmt.Errorf("...: %w", ErrKeyNotFound));
// they cross the plugin boundary as gRPC status codes and come back as the
// same sentinels, so errors.Is works in the host. The message survives too:
// write it for the person who has to act on it, and never put a token, a
// credential or key material in it.
var (
	ErrKeyNotFound          = errors.New("key not found")
	ErrInvalidArgument      = errors.New("invalid argument")
	ErrUnsupportedAlgorithm = errors.New("unsupported algorithm")
	ErrPermissionDenied     = errors.New("permission denied")
	ErrUnavailable          = errors.New("provider unavailable")
	ErrFailedPrecondition   = errors.New("failed precondition")
	ErrUnimplemented        = errors.New("not implemented by this provider")
	ErrAlreadyExists        = errors.New("key already exists")
)

// errorCodes maps each sentinel to its gRPC code, most specific first.
var errorCodes = []struct {
	err    error
	code   codes.Code
	reason string
}{
	{ErrUnsupportedAlgorithm, codes.InvalidArgument, contract.ReasonUnsupportedAlgorithm},
	{ErrKeyNotFound, codes.NotFound, ""},
	{ErrInvalidArgument, codes.InvalidArgument, ""},
	{ErrPermissionDenied, codes.PermissionDenied, ""},
	{ErrUnavailable, codes.Unavailable, ""},
	{ErrFailedPrecondition, codes.FailedPrecondition, ""},
	{ErrUnimplemented, codes.Unimplemented, ""},
	{ErrAlreadyExists, codes.AlreadyExists, ""},
	{context.DeadlineExceeded, codes.DeadlineExceeded, ""},
	{context.Canceled, codes.Canceled, ""},
}

// toStatus turns a provider error into the gRPC status sent to the host.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code, reason := codeOf(err)
	st := status.New(code, err.Error())
	if reason != "" {
		if withDetail, derr := st.WithDetails(&kmsv1.ErrorDetail{Reason: reason}); derr == nil {
			st = withDetail
		}
	}
	return st.Err()
}

// codeOf finds the gRPC code and reason for an error; Unknown when it wraps
// no sentinel.
func codeOf(err error) (codes.Code, string) {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code, e.reason
		}
	}
	return codes.Unknown, ""
}
