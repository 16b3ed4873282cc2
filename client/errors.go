package client

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/apierr"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// Errors only the sidecar returns. Each also matches its shared
// counterpart with errors.Is, as the daemon's own errors do.
var (
	// ErrPolicyDenied: the daemon's policy does not allow this caller the
	// operation on the key. Also shared.ErrPermissionDenied.
	ErrPolicyDenied = apierr.ErrPolicyDenied
	// ErrTooManyCalls: this caller has as many calls in flight as the
	// daemon allows one caller. Also shared.ErrUnavailable.
	ErrTooManyCalls = apierr.ErrTooManyCalls
	// ErrDraining: the daemon is shutting down and takes no new calls. Also
	// shared.ErrUnavailable.
	ErrDraining = apierr.ErrDraining
)

// ErrClosed is the error of a call on a closed Client. It is also
// host.ErrClosed, so code written against either signer checks one
// sentinel.
var ErrClosed = fmt.Errorf("knhk client is closed: %w", host.ErrClosed)

// UnreachableError is the error of a call that did not reach the daemon,
// or lost it: nothing listens at Target, the connection was refused or
// broke. It is also shared.ErrUnavailable. A call that failed this way
// may or may not have been carried out (a rotation, a key creation):
// look before repeating one.
type UnreachableError struct {
	// Target is the address given to Dial.
	Target string
	// Err is the transport's error; it is shared.ErrUnavailable.
	Err error
}

// Error names the target and says what failed.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the knhk sidecar at %s: %v", e.Target, e.Err)
}

// Unwrap returns the transport's error, which is shared.ErrUnavailable.
func (e *UnreachableError) Unwrap() error { return e.Err }

// wrap turns an error of a gRPC call into the client's: the sentinel the
// daemon's reason names (apierr.FromStatus), or, for a transport failure
// (UNAVAILABLE that the daemon did not send), an UnreachableError.
func (c *Client) wrap(err error) error {
	if err == nil {
		return nil
	}
	if c.closed.Load() {
		return ErrClosed
	}
	gnm := gatesDetail(err)
	err = apierr.FromStatus(err)
	var ae *apierr.Error
	if errors.As(err, &ae) && ae.Code == codes.Unavailable && ae.Reason == "" {
		return &UnreachableError{Target: c.target, Err: err}
	}
	if gnm != nil {
		return &gatesError{err: err, gates: &host.GatesError{Key: gnm.GetKey(), Version: gnm.GetVersion(), Unmet: gateResults(gnm.GetUnmet())}}
	}
	return err
}

// gatesDetail is the GatesNotMet detail of a status error, nil without
// one.
func gatesDetail(err error) *sidecarv1.GatesNotMet {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if g, ok := d.(*sidecarv1.GatesNotMet); ok {
			return g
		}
	}
	return nil
}

// gatesError is a promotion the daemon refused for unmet gates: the
// daemon's error (its message, shared.ErrFailedPrecondition) and the
// gates as a *host.GatesError, for errors.As.
type gatesError struct {
	err   error
	gates *host.GatesError
}

func (e *gatesError) Error() string   { return e.err.Error() }
func (e *gatesError) Unwrap() []error { return []error{e.err, e.gates} }
