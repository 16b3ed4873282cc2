package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knhk/knhk/shared"
)

// TestKeyGroupConfig names a key group in the config file: two replicas
// (state files) holding the same key through one seed, a third holding
// another; signing by the group's name verifies with its public key, and
// keys health shows the odd replica quarantined with its fingerprint.
func TestKeyGroupConfig(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json"), filepath.Join(dir, "c.json")
	cfg := writeFile(t, dir, "knhk.hcl", []byte(fmt.Sprintf(`
plugin_dirs = [%q]
log_level   = "off"
key "release" {
  replicas = ["fake:k?state=%s&fault_error=unavailable&fault_ops=sign", "fake:k?state=%s&seed=other", "fake:k?state=%s"]
  params   = { seed = "s" }   # added to every replica that lacks it
  failover = "ordered"
}
`, pluginDir, a, c, b)))
	conf := func(args ...string) []string { return append([]string{"--config", cfg}, args...) }
	for _, st := range []string{a, b} {
		ok(t, nil, withPlugins("keys", "create", "--key", "fake:k?seed=s&state="+st, "--type", "ec-p256")...)
	}
	ok(t, nil, withPlugins("keys", "create", "--key", "fake:k?seed=other&state="+c, "--type", "ec-p256")...)

	pub := parsePEM(t, ok(t, nil, conf("pubkey", "--key", "release")...))
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(der)
	sig := decodeB64(t, ok(t, []byte("hello"), conf("sign", "--key", "release")...))
	digest := sha256.Sum256([]byte("hello"))
	if err := shared.VerifyDigest(pub, shared.ES256, digest[:], sig); err != nil {
		t.Fatalf("the group's signature does not verify with its public key: %v", err)
	}

	var health struct {
		Group, Failover, Fingerprint, Version string
		Replicas                              []struct {
			Replica, State, Fingerprint, Version string
			LastError                            string  `json:"last_error"`
			LatencyNS                            int64   `json:"latency_ns"`
			ErrorRate                            float64 `json:"error_rate"`
			Calls                                int
		}
	}
	decodeJSON(t, ok(t, nil, conf("-o", "json", "keys", "health", "--key", "release")...), &health)
	if health.Fingerprint != hex.EncodeToString(want[:]) {
		t.Fatalf("health fingerprint %s, want the public key's %x", health.Fingerprint, want)
	}
	if len(health.Replicas) != 3 || health.Replicas[1].State != "quarantined" || health.Replicas[1].Fingerprint == health.Fingerprint ||
		health.Replicas[2].State != "healthy" {
		t.Fatalf("replicas: %+v", health.Replicas)
	}
	text := ok(t, nil, conf("keys", "health", "--key", "release")...)
	if !strings.Contains(text, "quarantined") || !strings.Contains(text, health.Fingerprint) {
		t.Fatalf("keys health text:\n%s", text)
	}
	if r := knhk(t, nil, conf("keys", "health", "--key", "nope")...); r.code != 2 {
		t.Fatalf("keys health of an unknown group: %v", r)
	}
	bad := writeFile(t, dir, "bad.hcl", []byte(`key "x" {
  replicas = ["fake:k"]
  failover = "random"
}
`))
	if r := knhk(t, nil, "--config", bad, "keys", "health", "--key", "x"); r.code != 2 || !strings.Contains(r.stderr, "failover") {
		t.Fatalf("a bad failover mode: %v", r)
	}
}

// TestKeysCreateReplicateToRefused: a provider that does not claim the
// replicate_key capability (the fake) refuses keys create --replicate-to
// with an error naming the capability, and makes no key; and the daemon's
// API (--server) cannot replicate, which the CLI says before calling it.
func TestKeysCreateReplicateToRefused(t *testing.T) {
	st := filepath.Join(t.TempDir(), "keys.json")
	r := knhk(t, nil, withPlugins("keys", "create", "--key", "fake:mr?state="+st, "--type", "ec-p256", "--replicate-to", "eu-west-1,ap-south-1")...)
	if r.code == 0 || !strings.Contains(r.stderr, "cannot replicate") || !strings.Contains(r.stderr, string(shared.CapReplicateKey)) || !strings.Contains(r.stderr, "fake") {
		t.Fatalf("keys create --replicate-to with the fake: %v; want a refusal naming the fake and %s", r, shared.CapReplicateKey)
	}
	if r := knhk(t, nil, withPlugins("pubkey", "--key", "fake:mr?state="+st)...); r.code == 0 {
		t.Fatalf("the refused create made a key anyway: pubkey %v", r)
	}
	r = knhk(t, nil, withPlugins("--server", "unix:///nonexistent.sock", "keys", "create", "--key", "mr", "--type", "ec-p256", "--replicate-to", "eu-west-1")...)
	if r.code != 2 || !strings.Contains(r.stderr, "cannot replicate") {
		t.Fatalf("keys create --replicate-to --server: %v; want exit 2 saying the daemon cannot replicate", r)
	}
}
