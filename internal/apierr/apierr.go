package apierr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared"
)

// Domain is the ErrorInfo domain of knhk's reasons.
const Domain = "knhk.dev"

// Errors only the sidecar returns. Each wraps its shared counterpart.
var (
	// ErrPolicyDenied: the daemon's policy does not allow the caller this
	// operation on this key. Also shared.ErrPermissionDenied.
	ErrPolicyDenied = fmt.Errorf("denied by the sidecar's policy: %w", shared.ErrPermissionDenied)
	// ErrTooManyCalls: the caller has as many calls in flight as the
	// daemon allows one caller. Also shared.ErrUnavailable.
	ErrTooManyCalls = fmt.Errorf("too many concurrent calls from this caller: %w", shared.ErrUnavailable)
	// ErrDraining: the daemon is shutting down and takes no new calls.
	// Also shared.ErrUnavailable.
	ErrDraining = fmt.Errorf("the sidecar is shutting down: %w", shared.ErrUnavailable)
)

// kind is one knhk error as it crosses the API.
type kind struct {
	reason string
	code   codes.Code
	err    error   // the sentinel the client's error matches
	also   []error // what the host's error also wraps, matched too
}

// kinds is checked in order: the more specific sentinels (which wrap a
// shared one) before the shared ones.
var kinds = []kind{
	{"POLICY_DENIED", codes.PermissionDenied, ErrPolicyDenied, nil},
	{"TOO_MANY_CALLS", codes.ResourceExhausted, ErrTooManyCalls, nil},
	{"DRAINING", codes.Unavailable, ErrDraining, nil},
	{"MALFORMED_REF", codes.InvalidArgument, host.ErrMalformedRef, []error{shared.ErrInvalidArgument}},
	{"PLUGIN_NOT_FOUND", codes.FailedPrecondition, host.ErrPluginNotFound, nil},
	{"PLUGIN_REFUSED", codes.FailedPrecondition, host.ErrPluginRefused, nil},
	{"PLUGIN_HANDSHAKE", codes.Unavailable, host.ErrHandshake, nil},
	{"PLUGIN_CRASHED", codes.Unavailable, host.ErrPluginCrashed, []error{shared.ErrUnavailable}},
	{"CALL_TIMEOUT", codes.Unavailable, host.ErrCallTimeout, []error{shared.ErrUnavailable, context.DeadlineExceeded}},
	{"VERIFY_AFTER_SIGN", codes.Internal, host.ErrVerifyAfterSign, []error{shared.ErrBadSignature}},
	{"HOST_CLOSED", codes.Unavailable, host.ErrClosed, nil},
	{"AUDIT_UNAVAILABLE", codes.Unavailable, host.ErrAuditUnavailable, []error{shared.ErrUnavailable}},
	{"LOCK_FILE", codes.FailedPrecondition, host.ErrLockFile, nil},
	{"UNSUPPORTED_ALGORITHM", codes.InvalidArgument, shared.ErrUnsupportedAlgorithm, nil},
	{"BAD_SIGNATURE", codes.InvalidArgument, shared.ErrBadSignature, nil},
	{"KEY_NOT_FOUND", codes.NotFound, shared.ErrKeyNotFound, nil},
	{"ALREADY_EXISTS", codes.AlreadyExists, shared.ErrAlreadyExists, nil},
	{"INVALID_ARGUMENT", codes.InvalidArgument, shared.ErrInvalidArgument, nil},
	{"PERMISSION_DENIED", codes.PermissionDenied, shared.ErrPermissionDenied, nil},
	{"THROTTLED", codes.ResourceExhausted, shared.ErrThrottled, nil},
	{"UNAVAILABLE", codes.Unavailable, shared.ErrUnavailable, nil},
	{"FAILED_PRECONDITION", codes.FailedPrecondition, shared.ErrFailedPrecondition, nil},
	{"UNIMPLEMENTED", codes.Unimplemented, shared.ErrUnimplemented, nil},
	{"DEADLINE_EXCEEDED", codes.DeadlineExceeded, context.DeadlineExceeded, nil},
	{"CANCELED", codes.Canceled, context.Canceled, nil},
}

// Classify returns the gRPC code and reason for err: the first sentinel in
// kinds that err matches, else Internal with no reason.
func Classify(err error) (codes.Code, string) {
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.code, k.reason
		}
	}
	return codes.Internal, ""
}

// ToStatus turns an error into a gRPC status error with an ErrorInfo
// naming its reason. The message is err's text, which knhk keeps free of
// secrets. A status error passes through unchanged.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code, reason := Classify(err)
	st := status.New(code, err.Error())
	if reason != "" {
		if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: Domain}); derr == nil {
			st = withInfo
		}
	}
	return st.Err()
}

// FromStatus turns a gRPC error from the daemon back into an error that
// matches the sentinel its reason names (or, without one, the code's
// shared sentinel), with the daemon's message. Non-status errors pass
// through.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	reason := ""
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			reason = info.GetReason()
		}
	}
	return FromParts(st.Code(), st.Message(), reason)
}

// FromParts is FromStatus for a status already taken apart (a SignStream
// item's error, an HTTP error body).
func FromParts(code codes.Code, msg, reason string) error {
	for _, k := range kinds {
		if k.reason == reason {
			return &Error{Code: code, Reason: reason, msg: msg, sentinels: append([]error{k.err}, k.also...)}
		}
	}
	if code == codes.ResourceExhausted && strings.Contains(msg, "larger than max") {
		// gRPC's own size limit: the request can never succeed as it is.
		return &Error{Code: code, msg: msg, sentinels: []error{shared.ErrInvalidArgument}}
	}
	// No knhk reason (an error from gRPC itself, a daemon of another
	// version): the code's shared sentinel, as from a plugin.
	if sentinel := pluginrpc.SentinelFor(code, ""); sentinel != nil {
		return &Error{Code: code, msg: msg, sentinels: []error{sentinel}}
	}
	return &Error{Code: code, msg: msg}
}

// Error is an error the daemon returned: its message, its gRPC code and
// reason, and the sentinels it matches with errors.Is: the one its reason
// names and those the host's error wraps beside it (a call timeout is
// also shared.ErrUnavailable and context.DeadlineExceeded, as from an
// embedded host).
type Error struct {
	Code      codes.Code
	Reason    string
	msg       string
	sentinels []error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the sentinels, so errors.Is matches them and whatever
// they wrap (ErrPolicyDenied is also shared.ErrPermissionDenied).
func (e *Error) Unwrap() []error { return e.sentinels }

// HTTPStatus is the HTTP status the JSON API answers a gRPC code with.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.FailedPrecondition:
		return http.StatusPreconditionFailed
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Canceled:
		return 499 // client closed request
	}
	return http.StatusInternalServerError
}
