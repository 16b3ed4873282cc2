package promotiontest_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/host/promotiontest"
	"github.com/knhk/knhk/shared"
)

// TestFake runs the workflow against the fake provider, its states in a
// state file that every host's fake shares.
func TestFake(t *testing.T) {
	ref := "fake:release?state=" + filepath.Join(t.TempDir(), "keys.json")
	newHost := func(t *testing.T, cfg host.Config) *host.Host {
		return hosttest.New(t, hosttest.WithConfig(cfg))
	}
	if _, err := newHost(t, host.Config{}).CreateKey(context.Background(), ref, shared.ECP256); err != nil {
		t.Fatal(err)
	}
	promotiontest.Run(t, newHost, ref)
}
