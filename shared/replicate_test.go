package shared

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// replicaProvider records the CreateKey requests Validate lets through.
type replicaProvider struct {
	UnimplementedProvider
	caps []Capability
	got  []CreateKeyRequest
}

func (p *replicaProvider) Describe(context.Context) (Description, error) {
	return Description{Name: "replica-test", Capabilities: p.caps, KeyTypes: []KeyType{ECP256}}, nil
}

func (p *replicaProvider) CreateKey(_ context.Context, req CreateKeyRequest) (CreateKeyResponse, error) {
	p.got = append(p.got, req)
	return CreateKeyResponse{KeyID: "k", Version: "1"}, nil
}

func (p *replicaProvider) PublicKey(context.Context, PublicKeyRequest) (PublicKeyResponse, error) {
	return PublicKeyResponse{}, ErrUnimplemented
}

func (p *replicaProvider) Sign(context.Context, SignRequest) (SignResponse, error) {
	return SignResponse{}, ErrUnimplemented
}

// TestValidateReplicateTo checks CreateKey's ReplicateTo at the boundary:
// refused with ErrUnimplemented (naming the capability) by a provider that
// does not claim CapReplicateKey; checked (empty, spaces, duplicates, too
// many) and passed through for one that does; and no request reaches a
// provider unless it is valid.
func TestValidateReplicateTo(t *testing.T) {
	ctx := context.Background()
	req := func(regions ...string) CreateKeyRequest {
		return CreateKeyRequest{Type: ECP256, ReplicateTo: regions}
	}

	without := &replicaProvider{caps: []Capability{CapCreateKey}}
	_, err := Validate(without).CreateKey(ctx, req("eu-west-1"))
	if !errors.Is(err, ErrUnimplemented) || !strings.Contains(err.Error(), string(CapReplicateKey)) || !strings.Contains(err.Error(), "replica-test") {
		t.Fatalf("ReplicateTo to a provider without %s: %v; want ErrUnimplemented naming the provider and the capability", CapReplicateKey, err)
	}
	if _, err := Validate(without).CreateKey(ctx, req()); err != nil || len(without.got) != 1 {
		t.Fatalf("CreateKey without ReplicateTo: %v, %d requests through; want 1", err, len(without.got))
	}

	with := &replicaProvider{caps: []Capability{CapCreateKey, CapReplicateKey}}
	many := make([]string, MaxReplicas+1)
	for i := range many {
		many[i] = "region-" + strings.Repeat("x", i)
	}
	for _, bad := range [][]string{{""}, {"eu west 1"}, {"eu-west-1", "eu-west-1"}, {strings.Repeat("r", MaxRegionLen+1)}, many} {
		if _, err := Validate(with).CreateKey(ctx, req(bad...)); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ReplicateTo %q: %v; want ErrInvalidArgument", bad, err)
		}
	}
	if len(with.got) != 0 {
		t.Fatalf("%d invalid requests reached the provider", len(with.got))
	}
	if _, err := Validate(with).CreateKey(ctx, req("eu-west-1", "ap-south-1")); err != nil {
		t.Fatal(err)
	}
	if len(with.got) != 1 || !slices.Equal(with.got[0].ReplicateTo, []string{"eu-west-1", "ap-south-1"}) {
		t.Fatalf("requests through: %+v; want one with ReplicateTo [eu-west-1 ap-south-1]", with.got)
	}
}

func (p *replicaProvider) KeyMetadata(context.Context, KeyMetadataRequest) (KeyMetadata, error) {
	return KeyMetadata{}, ErrUnimplemented
}
