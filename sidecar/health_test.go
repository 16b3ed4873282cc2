package sidecar

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/shared"
)

// TestReadiness: /readyz answers 503 with the reason while a configured
// key's plugin cannot be reached, 200 once every one answers, and 503
// again while draining; /healthz answers 200 throughout.
func TestReadiness(t *testing.T) {
	srv, err := New(hosttest.New(t), Config{Keys: map[string]string{"good": "fake:k?seed=r", "bad": "nosuch:k"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.c.ready(context.Background()); !errors.Is(err, host.ErrPluginNotFound) || !strings.Contains(err.Error(), "key bad") {
		t.Fatalf("ready with a missing plugin: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.checkReady(ctx)
	hs := httptest.NewServer(srv.healthHandler())
	defer hs.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The first check runs at once; wait for its answer.
	for {
		code, body := get("/readyz")
		if code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz with a missing plugin: %d %s", code, body)
		}
		if strings.Contains(body, "plugin not found") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}

	cfg := *srv.c.cfg()
	cfg.Keys = map[string]string{"good": "fake:k?seed=r"}
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if err := srv.c.ready(context.Background()); err != nil {
		t.Fatalf("ready with the fake only: %v", err)
	}
	srv.ready.Lock()
	srv.ready.err = nil // as the next periodic check would set it
	srv.ready.Unlock()
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz once every plugin answers: %d %s", code, body)
	}
	srv.c.startDrain()
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Fatalf("/readyz while draining: %d %s", code, body)
	}
}

// TestReadinessKeyGroup: a key group is ready while one replica can
// sign, and not once every replica is down.
func TestReadinessKeyGroup(t *testing.T) {
	groups := map[string]host.KeyGroup{
		"one-up":   {Replicas: []string{"fake:g?seed=r&fault_error=unavailable", "fake:g?seed=r"}, ProbeInterval: -1},
		"both-out": {Replicas: []string{"fake:g?seed=r&fault_error=unavailable", "fake:g?seed=r&fault_error=unavailable&region=b"}, ProbeInterval: -1},
	}
	h := hosttest.New(t, hosttest.WithConfig(host.Config{KeyGroups: groups}))
	ctx := context.Background()
	if _, err := h.CreateKey(ctx, "fake:g?seed=r", shared.ECP256); err != nil {
		t.Fatal(err)
	}
	srv, err := New(h, Config{Keys: map[string]string{"release": "one-up"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.c.ready(ctx); err != nil {
		t.Fatalf("ready with one replica up: %v", err)
	}
	cfg := *srv.c.cfg()
	cfg.Keys = map[string]string{"release": "both-out"}
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if err := srv.c.ready(ctx); !errors.Is(err, shared.ErrUnavailable) || !strings.Contains(err.Error(), "key release") {
		t.Fatalf("ready with every replica down: %v", err)
	}
}
