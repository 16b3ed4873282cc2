package sidecar

import (
	"errors"

	"google.golang.org/grpc/status"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/apierr"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

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

// toStatus is apierr.ToStatus with, for a promotion refused by its gates
// (*host.GatesError), a GatesNotMet detail listing the unmet gates, so a
// client gets them as data rather than parsing the message.
func toStatus(err error) error {
	st := apierr.ToStatus(err)
	gnm := gatesNotMet(err)
	if gnm == nil {
		return st
	}
	s, _ := status.FromError(st)
	if withGates, derr := s.WithDetails(gnm); derr == nil {
		return withGates.Err()
	}
	return st
}

// gatesNotMet is the GatesNotMet detail of err, nil unless err is a
// *host.GatesError.
func gatesNotMet(err error) *sidecarv1.GatesNotMet {
	var ge *host.GatesError
	if !errors.As(err, &ge) {
		return nil
	}
	out := &sidecarv1.GatesNotMet{Key: ge.Key, Version: ge.Version}
	for _, g := range ge.Unmet {
		out.Unmet = append(out.Unmet, gateResultPB(g))
	}
	return out
}

// gateResultPB is a gate's verdict in the API's message.
func gateResultPB(g host.GateResult) *sidecarv1.GateResult {
	return &sidecarv1.GateResult{Gate: g.Gate, Met: g.Met, Deferred: g.Deferred, Detail: g.Detail, Approvers: g.Approvers}
}
