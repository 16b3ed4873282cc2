package sidecar

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// Version states and promotion (issue #17) through the daemon: the
// host's Key.Versions, Gates, Approve, Promote and Retire (RotatePending
// is Rotate with pending), each an operation the policy allows per caller
// (OpVersions, OpApprove, OpPromote, OpRetire; OpRotate).

// Versions lists key's versions with their states and fingerprints.
func (c *core) Versions(ctx context.Context, caller Caller, key string) (_ []host.VersionInfo, err error) {
	defer func() { c.count(ctx, caller, OpVersions, err) }()
	ctx = host.WithPrincipal(ctx, caller.String())
	k, err := c.open(ctx, caller, OpVersions, key)
	if err != nil {
		return nil, err
	}
	return k.Versions(ctx)
}

// Gates reports version's promotion gates against approvals, without
// promoting. It changes nothing, so it is allowed with OpVersions.
func (c *core) Gates(ctx context.Context, caller Caller, key, version string, approvals [][]byte) (_ []host.GateResult, err error) {
	defer func() { c.count(ctx, caller, OpVersions, err) }()
	ctx = host.WithPrincipal(ctx, caller.String())
	k, err := c.open(ctx, caller, OpVersions, key)
	if err != nil {
		return nil, err
	}
	return k.Gates(ctx, version, approvals...)
}

// Approve signs an approval of key's version with the approver key (a
// configured name or a reference) for ttl (0: the host's default). The
// caller needs OpApprove on key and OpSign on the approver key: the
// approval is a signature by that key, which the caller could make
// anyway with OpSign, and must not make without it.
func (c *core) Approve(ctx context.Context, caller Caller, key, version, approver string, ttl time.Duration) (_ []byte, err error) {
	defer func() { c.count(ctx, caller, OpApprove, err) }()
	ctx = host.WithPrincipal(ctx, caller.String())
	if approver == "" {
		return nil, fmt.Errorf("%w: name the approver's key", shared.ErrInvalidArgument)
	}
	k, err := c.open(ctx, caller, OpApprove, key)
	if err != nil {
		return nil, err
	}
	cfg := c.cfg()
	ref, name, err := c.resolve(cfg, approver)
	if err != nil {
		return nil, fmt.Errorf("approver: %w", err)
	}
	if err := c.authorize(ctx, cfg, caller, OpSign, ref, name); err != nil {
		return nil, err
	}
	signer, err := c.h.ApproverSigner(ctx, ref)
	if err != nil {
		return nil, err
	}
	return k.Approve(ctx, version, signer, ttl)
}

// Promote makes key's pending version active once its gates are met;
// unmet gates are a *host.GatesError.
func (c *core) Promote(ctx context.Context, caller Caller, key, version string, approvals [][]byte) (err error) {
	defer func() { c.count(ctx, caller, OpPromote, err) }()
	ctx = host.WithPrincipal(ctx, caller.String())
	k, err := c.open(ctx, caller, OpPromote, key)
	if err != nil {
		return err
	}
	return k.Promote(ctx, version, approvals...)
}

// Retire retires key's pending or retiring version.
func (c *core) Retire(ctx context.Context, caller Caller, key, version string) (err error) {
	defer func() { c.count(ctx, caller, OpRetire, err) }()
	ctx = host.WithPrincipal(ctx, caller.String())
	k, err := c.open(ctx, caller, OpRetire, key)
	if err != nil {
		return err
	}
	return k.Retire(ctx, version)
}

// checkApprovals refuses approvals over MaxRequestBytes in all.
func checkApprovals(cfg *Config, approvals [][]byte) error {
	n := 0
	for _, a := range approvals {
		n += len(a)
	}
	if n > cfg.MaxRequestBytes {
		return fmt.Errorf("%w: %d bytes of approvals is over the sidecar's max_request_bytes (%d)", shared.ErrInvalidArgument, n, cfg.MaxRequestBytes)
	}
	return nil
}

func (o pbOps) versions(ctx context.Context, caller Caller, req *sidecarv1.VersionsRequest) (*sidecarv1.VersionsResponse, error) {
	vs, err := o.c.Versions(ctx, caller, req.GetKey())
	if err != nil {
		return nil, err
	}
	resp := &sidecarv1.VersionsResponse{}
	for _, v := range vs {
		vi := &sidecarv1.VersionInfo{
			Version: v.Version, State: string(v.State), Enabled: v.Enabled,
			Current: v.Current, SpkiSha256: v.SPKISHA256,
		}
		if !v.Created.IsZero() {
			vi.Created = timestamppb.New(v.Created)
		}
		resp.Versions = append(resp.Versions, vi)
	}
	return resp, nil
}

func (o pbOps) gates(ctx context.Context, caller Caller, req *sidecarv1.GatesRequest) (*sidecarv1.GatesResponse, error) {
	if err := checkApprovals(o.c.cfg(), req.GetApprovals()); err != nil {
		return nil, err
	}
	res, err := o.c.Gates(ctx, caller, req.GetKey(), req.GetVersion(), req.GetApprovals())
	if err != nil {
		return nil, err
	}
	resp := &sidecarv1.GatesResponse{}
	for _, g := range res {
		resp.Results = append(resp.Results, gateResultPB(g))
	}
	return resp, nil
}

func (o pbOps) approve(ctx context.Context, caller Caller, req *sidecarv1.ApproveRequest) (*sidecarv1.ApproveResponse, error) {
	var ttl time.Duration
	if d := req.GetTtl(); d != nil {
		if err := d.CheckValid(); err != nil {
			return nil, fmt.Errorf("%w: ttl: %w", shared.ErrInvalidArgument, err)
		}
		ttl = d.AsDuration()
	}
	signed, err := o.c.Approve(ctx, caller, req.GetKey(), req.GetVersion(), req.GetApprover(), ttl)
	if err != nil {
		return nil, err
	}
	return &sidecarv1.ApproveResponse{Approval: signed}, nil
}

func (o pbOps) promote(ctx context.Context, caller Caller, req *sidecarv1.PromoteRequest) (*sidecarv1.PromoteResponse, error) {
	if err := checkApprovals(o.c.cfg(), req.GetApprovals()); err != nil {
		return nil, err
	}
	if err := o.c.Promote(ctx, caller, req.GetKey(), req.GetVersion(), req.GetApprovals()); err != nil {
		return nil, err
	}
	return &sidecarv1.PromoteResponse{}, nil
}

func (o pbOps) retire(ctx context.Context, caller Caller, req *sidecarv1.RetireRequest) (*sidecarv1.RetireResponse, error) {
	if err := o.c.Retire(ctx, caller, req.GetKey(), req.GetVersion()); err != nil {
		return nil, err
	}
	return &sidecarv1.RetireResponse{}, nil
}

// Versions implements sidecarv1.SignerServer.
func (g *grpcAPI) Versions(ctx context.Context, req *sidecarv1.VersionsRequest) (*sidecarv1.VersionsResponse, error) {
	return grpcUnary(ctx, g.ops.c, OpVersions, req, g.ops.versions)
}

// Gates implements sidecarv1.SignerServer.
func (g *grpcAPI) Gates(ctx context.Context, req *sidecarv1.GatesRequest) (*sidecarv1.GatesResponse, error) {
	return grpcUnary(ctx, g.ops.c, OpVersions, req, g.ops.gates)
}

// Approve implements sidecarv1.SignerServer.
func (g *grpcAPI) Approve(ctx context.Context, req *sidecarv1.ApproveRequest) (*sidecarv1.ApproveResponse, error) {
	return grpcUnary(ctx, g.ops.c, OpApprove, req, g.ops.approve)
}

// Promote implements sidecarv1.SignerServer.
func (g *grpcAPI) Promote(ctx context.Context, req *sidecarv1.PromoteRequest) (*sidecarv1.PromoteResponse, error) {
	return grpcUnary(ctx, g.ops.c, OpPromote, req, g.ops.promote)
}

// Retire implements sidecarv1.SignerServer.
func (g *grpcAPI) Retire(ctx context.Context, req *sidecarv1.RetireRequest) (*sidecarv1.RetireResponse, error) {
	return grpcUnary(ctx, g.ops.c, OpRetire, req, g.ops.retire)
}
