package sidecar

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/knhk/knhk/shared"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// The HTTP/JSON version calls (see newHTTPHandler): the gRPC API's
// Versions, Gates, Approve, Promote and Retire.

type (
	httpVersions struct {
		Versions []httpVersion `json:"versions"`
	}
	httpVersion struct {
		Version    string `json:"version"`
		State      string `json:"state"` // "" for a key without version states
		Created    string `json:"created,omitempty"`
		Enabled    bool   `json:"enabled"`
		Current    bool   `json:"current"`
		SPKISHA256 string `json:"spki_sha256"`
	}
	httpApprovals struct {
		Approvals [][]byte `json:"approvals"`
	}
	httpGateList struct {
		Gates []httpGate `json:"gates"`
	}
	httpGate struct {
		Gate      string   `json:"gate"`
		Met       bool     `json:"met"`
		Deferred  bool     `json:"deferred"`
		Detail    string   `json:"detail"`
		Approvers []string `json:"approvers"`
	}
	httpApproveRequest struct {
		Approver string `json:"approver"`
		TTL      string `json:"ttl"` // a Go duration; "": the default
	}
	httpApproval struct {
		Approval []byte `json:"approval"`
	}
)

// httpGates is gate results as JSON objects (lists never null).
func httpGates(gs []*sidecarv1.GateResult) []httpGate {
	out := make([]httpGate, 0, len(gs))
	for _, g := range gs {
		out = append(out, httpGate{
			Gate: g.GetGate(), Met: g.GetMet(), Deferred: g.GetDeferred(), Detail: g.GetDetail(),
			Approvers: append([]string{}, g.GetApprovers()...),
		})
	}
	return out
}

func (h httpAPI) versions(w http.ResponseWriter, r *http.Request) {
	h.call(w, r, OpVersions, nil, false, func(ctx context.Context, caller Caller) (any, error) {
		resp, err := h.ops.versions(ctx, caller, &sidecarv1.VersionsRequest{Key: r.PathValue("key")})
		if err != nil {
			return nil, err
		}
		out := httpVersions{Versions: []httpVersion{}}
		for _, v := range resp.GetVersions() {
			hv := httpVersion{
				Version: v.GetVersion(), State: v.GetState(), Enabled: v.GetEnabled(),
				Current: v.GetCurrent(), SPKISHA256: v.GetSpkiSha256(),
			}
			if v.GetCreated() != nil {
				hv.Created = v.GetCreated().AsTime().Format(time.RFC3339Nano)
			}
			out.Versions = append(out.Versions, hv)
		}
		return out, nil
	})
}

func (h httpAPI) gates(w http.ResponseWriter, r *http.Request) {
	var body httpApprovals
	h.call(w, r, OpVersions, &body, true, func(ctx context.Context, caller Caller) (any, error) {
		resp, err := h.ops.gates(ctx, caller, &sidecarv1.GatesRequest{
			Key: r.PathValue("key"), Version: r.PathValue("version"), Approvals: body.Approvals,
		})
		if err != nil {
			return nil, err
		}
		return httpGateList{Gates: httpGates(resp.GetResults())}, nil
	})
}

func (h httpAPI) approve(w http.ResponseWriter, r *http.Request) {
	var body httpApproveRequest
	h.call(w, r, OpApprove, &body, false, func(ctx context.Context, caller Caller) (any, error) {
		req := &sidecarv1.ApproveRequest{Key: r.PathValue("key"), Version: r.PathValue("version"), Approver: body.Approver}
		if body.TTL != "" {
			d, err := time.ParseDuration(body.TTL)
			if err != nil {
				return nil, fmt.Errorf("%w: ttl: %w", shared.ErrInvalidArgument, err)
			}
			req.Ttl = durationpb.New(d)
		}
		resp, err := h.ops.approve(ctx, caller, req)
		if err != nil {
			return nil, err
		}
		return httpApproval{Approval: resp.GetApproval()}, nil
	})
}

func (h httpAPI) promote(w http.ResponseWriter, r *http.Request) {
	var body httpApprovals
	h.call(w, r, OpPromote, &body, true, func(ctx context.Context, caller Caller) (any, error) {
		_, err := h.ops.promote(ctx, caller, &sidecarv1.PromoteRequest{
			Key: r.PathValue("key"), Version: r.PathValue("version"), Approvals: body.Approvals,
		})
		return struct{}{}, err
	})
}

func (h httpAPI) retire(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	h.call(w, r, OpRetire, &body, true, func(ctx context.Context, caller Caller) (any, error) {
		_, err := h.ops.retire(ctx, caller, &sidecarv1.RetireRequest{Key: r.PathValue("key"), Version: r.PathValue("version")})
		return struct{}{}, err
	})
}
