package client

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// Version states and promotion gates through the daemon: the methods of
// *host.Key of the same names (see host.Key.Promote), each allowed or
// denied by the daemon's policy (operations "versions", "rotate",
// "approve", "promote", "retire").

// Versions lists the key's versions, oldest first, with their states
// (for a key whose provider keeps version states) and public key
// fingerprints. Policy operation "versions".
func (k *Key) Versions(ctx context.Context) ([]host.VersionInfo, error) {
	resp, err := k.c.api.Versions(ctx, &sidecarv1.VersionsRequest{Key: k.name})
	if err != nil {
		return nil, k.c.wrap(err)
	}
	out := make([]host.VersionInfo, 0, len(resp.GetVersions()))
	for _, v := range resp.GetVersions() {
		info := host.VersionInfo{
			Version: v.GetVersion(), State: shared.VersionState(v.GetState()), Enabled: v.GetEnabled(),
			Current: v.GetCurrent(), SPKISHA256: v.GetSpkiSha256(),
		}
		if v.GetCreated() != nil {
			info.Created = v.GetCreated().AsTime()
		}
		out = append(out, info)
	}
	return out, nil
}

// RotatePending makes a new key version in the pending state: published
// (PublicKey by version, the daemon's FetchKeys) but not signing until
// Promote. shared.ErrUnimplemented for a provider without version
// states. Policy operation "rotate". Never retried: after an
// UnreachableError, look at Versions before rotating again.
func (k *Key) RotatePending(ctx context.Context) (string, error) {
	resp, err := k.c.api.Rotate(ctx, &sidecarv1.RotateRequest{Key: k.name, Pending: true})
	if err != nil {
		return "", k.c.wrap(err)
	}
	return resp.GetVersion(), nil
}

// Gates reports the key's promotion gates for version against approvals,
// without promoting; the canary is Deferred (it signs). The first result
// is the state gate. Policy operation "versions".
func (k *Key) Gates(ctx context.Context, version string, approvals ...[]byte) ([]host.GateResult, error) {
	resp, err := k.c.api.Gates(ctx, &sidecarv1.GatesRequest{Key: k.name, Version: version, Approvals: approvals})
	if err != nil {
		return nil, k.c.wrap(err)
	}
	return gateResults(resp.GetResults()), nil
}

// Approve has the daemon sign an approval of version (which must be
// pending) with approver, a key the daemon holds (a key name from its
// config, or a reference; Ed25519 or ECDSA P-256), valid for ttl (0: 24
// hours; at most 30 days). It returns the signed note to give to Promote.
// The approver's signed-note name is its PROVIDER:KEYID, which the key's
// approvals gate must list among its approvers. Policy: operation
// "approve" on the key and "sign" on the approver's key.
//
// host.Key.Approve takes a note.Signer instead: an approver holding its
// own key file (audit.LoadKeyFile) signs with an embedded host, and its
// approval counts the same when given to this Promote.
func (k *Key) Approve(ctx context.Context, version, approver string, ttl time.Duration) ([]byte, error) {
	req := &sidecarv1.ApproveRequest{Key: k.name, Version: version, Approver: approver}
	if ttl != 0 {
		req.Ttl = durationpb.New(ttl)
	}
	resp, err := k.c.api.Approve(ctx, req)
	if err != nil {
		return nil, k.c.wrap(err)
	}
	return resp.GetApproval(), nil
}

// Promote makes a pending version active once the key's gates are met
// (approvals are signed notes from Approve): it signs from then on and
// the version active before is retiring. Unmet gates give an error that
// errors.As finds a *host.GatesError in (listing them) and that is
// shared.ErrFailedPrecondition. Promoting the active version is a no-op.
// Policy operation "promote".
func (k *Key) Promote(ctx context.Context, version string, approvals ...[]byte) error {
	_, err := k.c.api.Promote(ctx, &sidecarv1.PromoteRequest{Key: k.name, Version: version, Approvals: approvals})
	return k.c.wrap(err)
}

// Retire retires a retiring or pending version: it neither signs nor
// verifies any more, and the daemon stops publishing it. The active
// version cannot be retired: promote another first. Policy operation
// "retire".
func (k *Key) Retire(ctx context.Context, version string) error {
	_, err := k.c.api.Retire(ctx, &sidecarv1.RetireRequest{Key: k.name, Version: version})
	return k.c.wrap(err)
}

// gateResults are the API's gate verdicts as the host's.
func gateResults(gs []*sidecarv1.GateResult) []host.GateResult {
	out := make([]host.GateResult, 0, len(gs))
	for _, g := range gs {
		out = append(out, host.GateResult{
			Gate: g.GetGate(), Met: g.GetMet(), Deferred: g.GetDeferred(), Detail: g.GetDetail(), Approvers: g.GetApprovers(),
		})
	}
	return out
}
