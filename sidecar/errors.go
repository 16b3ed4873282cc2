package sidecar

import "github.com/knhk/knhk/internal/apierr"

// Errors the daemon returns besides the host's. Its clients get the same
// sentinels back (package client), so errors.Is works on either side.
var (
	// ErrPolicyDenied: no policy allows the caller the operation on the
	// key. Also shared.ErrPermissionDenied.
	ErrPolicyDenied = apierr.ErrPolicyDenied
	// ErrTooManyCalls: the caller has MaxCallsPerCaller calls in flight.
	// Also shared.ErrUnavailable.
	ErrTooManyCalls = apierr.ErrTooManyCalls
	// ErrDraining: the daemon is shutting down. Also shared.ErrUnavailable.
	ErrDraining = apierr.ErrDraining
)
