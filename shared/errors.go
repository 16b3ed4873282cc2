package shared

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

const reasonUnsupportedAlgorithm = "UNSUPPORTED_ALGORITHM"

// errorCodes maps each sentinel to its gRPC code, most specific first.
var errorCodes = []struct {
	err    error
	code   codes.Code
	reason string
}{
	{ErrUnsupportedAlgorithm, codes.InvalidArgument, reasonUnsupportedAlgorithm},
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

// remoteError is an error that came from a plugin: its message as the plugin
// wrote it, and the sentinel its status code stands for.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// sentinelFor maps a gRPC code and reason back to a sentinel.
func sentinelFor(code codes.Code, reason string) error {
	if reason == reasonUnsupportedAlgorithm {
		return ErrUnsupportedAlgorithm
	}
	switch code {
	case codes.Unauthenticated:
		return ErrPermissionDenied
	case codes.ResourceExhausted, codes.Aborted:
		return ErrUnavailable
	case codes.OutOfRange:
		return ErrInvalidArgument
	}
	for _, e := range errorCodes {
		if e.code == code && e.reason == "" {
			return e.err
		}
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
	sentinel := sentinelFor(code, reason)
	if sentinel == nil {
		return fmt.Errorf("plugin error (%s): %s", code, msg)
	}
	return &remoteError{msg: msg, sentinel: sentinel}
}
