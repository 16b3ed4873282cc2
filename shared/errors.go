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

	// ErrThrottled: the key service refused the request for its request
	// quota (HTTP 429, ThrottlingException), or the host's own quota
	// wait (see QuotaClass) would pass the caller's deadline. It is also
	// ErrUnavailable, so code that retries ErrUnavailable later keeps
	// working; check ErrThrottled first to tell throttling from an
	// outage: a throttled service is up, and retrying at once only
	// deepens the throttling. It crosses the plugin boundary as
	// codes.ResourceExhausted.
	ErrThrottled error = throttled{}
)

// throttled is ErrThrottled's type: it matches ErrUnavailable too.
type throttled struct{}

func (throttled) Error() string { return "throttled by the request quota" }

// Is makes errors.Is(ErrThrottled, ErrUnavailable) true.
func (throttled) Is(target error) bool { return target == ErrUnavailable }

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
	{ErrThrottled, codes.ResourceExhausted, ""},
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
