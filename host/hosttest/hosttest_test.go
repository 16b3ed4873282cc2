package hosttest_test

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/internal/procinfo"
	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/shared/providertest"
)

// TestConformanceThroughHosttest runs the conformance kit through a host
// attached to the in-process fake.
func TestConformanceThroughHosttest(t *testing.T) {
	h := hosttest.New(t)
	p, err := h.Provider(context.Background(), hosttest.FakeProvider)
	if err != nil {
		t.Fatal(err)
	}
	// The fake runs in this (race-instrumented) process, where big RSA keys
	// are slow to make; the host package runs every key type against the
	// plugin binary.
	providertest.Run(t, providertest.Config{
		Provider:    p,
		Concurrency: 16,
		KeyTypes:    []shared.KeyType{shared.RSA2048, shared.ECP256, shared.Ed25519},
	})
}

// digestOnly is the fake without whole-message signing, to show that the
// host then hashes messages itself.
type digestOnly struct{ *fake.Provider }

func (d digestOnly) Describe(ctx context.Context) (shared.Description, error) {
	desc, err := d.Provider.Describe(ctx)
	caps := desc.Capabilities[:0:0]
	for _, c := range desc.Capabilities {
		if c != shared.CapSignMessage {
			caps = append(caps, c)
		}
	}
	desc.Name, desc.Capabilities = "digest-only", caps
	return desc, err
}

func (d digestOnly) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	if req.Message != nil && req.Algorithm != shared.EdDSA {
		return shared.SignResponse{}, errors.New("digest-only provider got a message")
	}
	return d.Provider.Sign(ctx, req)
}

func TestWithProviderAndLocalHashing(t *testing.T) {
	h := hosttest.New(t, hosttest.WithProvider("digestonly", digestOnly{fake.New(fake.Config{})}))
	ctx := context.Background()
	if _, err := h.CreateKey(ctx, "digestonly:k", shared.RSA2048); err != nil {
		t.Fatal(err)
	}
	s, err := h.Signer(ctx, "digestonly:k")
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("a message the provider never sees")
	sig, err := s.SignMessage(nil, msg, crypto.SHA384)
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.VerifyMessage(s.Public(), shared.RS384, msg, sig); err != nil {
		t.Fatal(err)
	}
	infos := h.Plugins()
	if len(infos) != 2 || infos[0].Name != "digestonly" || infos[1].Name != "fake" || infos[0].Err != nil {
		t.Fatalf("Plugins() = %+v", infos)
	}
	// The fake is still there, separately.
	if _, err := h.ListKeys(ctx, hosttest.FakeProvider, nil); err != nil {
		t.Fatal(err)
	}
}

// TestStartStopLeavesNoGoroutines: Start then stop leaves nothing behind.
func TestStartStopLeavesNoGoroutines(t *testing.T) {
	before := procinfo.Goroutines()
	h, stop, err := hosttest.Start(hosttest.WithConfig(host.Config{CallTimeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k, err := h.CreateKey(ctx, "fake:leak", shared.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.SignMessage(ctx, []byte("m"), host.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var leaked []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		leaked = leaked[:0]
		for id, g := range procinfo.Goroutines() {
			if _, ok := before[id]; !ok {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(leaked) > 0 {
		t.Fatalf("%d goroutines left after stop:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
	}
	if _, err := k.SignMessage(ctx, []byte("m"), host.SignOptions{}); !errors.Is(err, host.ErrClosed) {
		t.Fatalf("sign after stop: %v", err)
	}
}
