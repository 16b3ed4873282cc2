package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// serveConfig is a daemon config with key "release" (an ec-p256 fake key
// in state) and the given serve-block lines and policies.
func serveConfig(state, serve, policies string) string {
	return fmt.Sprintf(`
key "release" {
  ref    = "fake:release"
  params = { state = %s }
}
serve {
%s
}
%s
`, hcl(state), serve, policies)
}

// allowRoot lets this test process (uid 0 as the tests run, or whoever
// runs them) do everything to every key.
func allowRoot() string {
	return fmt.Sprintf(`policy "tests" {
  keys       = ["*"]
  principals = ["unix:uid=%d"]
  operations = ["*"]
}`, os.Getuid())
}

// createRelease creates the ec-p256 key "release" in state, locally.
func createRelease(t *testing.T, state string) {
	t.Helper()
	ok(t, nil, withPlugins("keys", "create", "--key", "fake:release?state="+state, "--type", "ec-p256")...)
}

// checkSig verifies an ES256 signature over digest with the stdlib.
func checkSig(t *testing.T, pub any, digest, sig []byte) {
	t.Helper()
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || !ecdsa.VerifyASN1(ec, digest, sig) {
		t.Fatalf("signature does not verify against %T", pub)
	}
}

// TestServeEndToEnd runs the daemon as its own process and calls it from
// this one over the unix socket (Go client and CLI --server), over gRPC
// with mutual TLS and over HTTP/JSON with mutual TLS, with identities
// from SO_PEERCRED and from SPIFFE client certificates.
func TestServeEndToEnd(t *testing.T) {
	dir := sharedDir(t)
	state := filepath.Join(dir, "keys.json")
	createRelease(t, state)
	ca := newPKI(t, dir)
	srvCert, srvKey, _ := ca.issue(t, "server", true, "knhk", "")
	_, _, web := ca.issue(t, "web", false, "web", "spiffe://example.org/ns/prod/sa/web")
	_, _, other := ca.issue(t, "other", false, "other", "spiffe://example.org/ns/dev/sa/other")
	grpcAddr, httpAddr, healthAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	listener := func(addr string) string {
		return fmt.Sprintf("address = %s\n cert_file = %s\n key_file = %s\n client_ca_file = %s", hcl(addr), hcl(srvCert), hcl(srvKey), hcl(ca.CAFile))
	}
	cfg := serveConfig(state, fmt.Sprintf("health_address = %s\n tls {\n%s\n}\n http {\n%s\n}", hcl(healthAddr), listener(grpcAddr), listener(httpAddr)),
		allowRoot()+`
policy "prod-signers" {
  keys       = ["release"]
  principals = ["spiffe://example.org/ns/prod/*"]
  operations = ["sign", "public_key"]
}`)
	d := startDaemon(t, dir, cfg)
	ctx := ctxT(t)
	digest := sha256.Sum256([]byte("end to end"))

	// Unix socket, Go client.
	c, err := client.Dial(ctx, "unix://"+d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k, err := c.Key(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	pk, err := k.PublicKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkSig(t, pk.Key, digest[:], sig.Signature)
	byRef, err := c.Key(ctx, "fake:release?state="+state)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := byRef.SignDigest(ctx, digest[:], host.SignOptions{}); !errors.Is(err, shared.ErrInvalidArgument) {
		t.Fatalf("a reference with allow_references off: got %v, want ErrInvalidArgument", err)
	}

	// Unix socket, the CLI in another process.
	msg := writeFile(t, t.TempDir(), "msg", []byte("hello sidecar"))
	out := ok(t, nil, "--server", "unix://"+d.socket, "sign", "--key", "release", "--in", msg)
	sum := sha256.Sum256([]byte("hello sidecar"))
	checkSig(t, pk.Key, sum[:], decodeB64(t, out))
	sigFile := writeFile(t, t.TempDir(), "sig", []byte(out))
	ok(t, nil, "--server", "unix://"+d.socket, "verify", "--key", "release", "--in", msg, "--sig", sigFile)

	// gRPC over mutual TLS, SPIFFE identities.
	tc, err := client.Dial(ctx, grpcAddr, client.WithTLS(ca.clientTLS(web)))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tk, _ := tc.Key(ctx, "release")
	sig, err = tk.SignDigest(ctx, digest[:], host.SignOptions{})
	if err != nil {
		t.Fatalf("spiffe://example.org/ns/prod/sa/web over TLS: %v", err)
	}
	checkSig(t, pk.Key, digest[:], sig.Signature)
	if _, err := tk.Rotate(ctx); !errors.Is(err, client.ErrPolicyDenied) || !strings.Contains(err.Error(), "spiffe://example.org/ns/prod/sa/web") || !strings.Contains(err.Error(), "rotate") {
		t.Fatalf("rotate by a signer: got %v, want a policy denial naming the principal and operation", err)
	}
	oc, err := client.Dial(ctx, grpcAddr, client.WithTLS(ca.clientTLS(other)))
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	ok2, _ := oc.Key(ctx, "release")
	if _, err := ok2.SignDigest(ctx, digest[:], host.SignOptions{}); !errors.Is(err, shared.ErrPermissionDenied) {
		t.Fatalf("spiffe://example.org/ns/dev/...: got %v, want permission denied", err)
	}

	// HTTP/JSON over mutual TLS.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.clientTLS(web)}}
	body, _ := json.Marshal(map[string]any{"digest": digest[:]})
	resp, err := hc.Post("https://"+httpAddr+"/v1/keys/release/sign", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var signed struct {
		Signature []byte `json:"signature"`
		Algorithm string `json:"algorithm"`
		Version   string `json:"version"`
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("HTTP sign: %s %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&signed); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	checkSig(t, pk.Key, digest[:], signed.Signature)
	if signed.Algorithm != "ES256" {
		t.Fatalf("HTTP sign algorithm %q", signed.Algorithm)
	}
	resp, err = hc.Post("https://"+httpAddr+"/v1/keys/release/rotate", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "POLICY_DENIED") {
		t.Fatalf("HTTP rotate by a signer: %s %s", resp.Status, b)
	}
	// A TCP listener never takes a client without a certificate.
	pool := ca.clientTLS(web)
	pool.Certificates = nil
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: pool}}
	if resp, err := anon.Post("https://"+httpAddr+"/v1/keys/release/sign", "application/json", bytes.NewReader(body)); err == nil {
		resp.Body.Close()
		t.Fatalf("HTTP without a client certificate: %s, want a TLS failure", resp.Status)
	}

	// grpc.health.v1 on the socket: serving once the plugin check passed.
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for {
		res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "knhk.sidecar.v1.Signer"})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Health and readiness, plain HTTP.
	for _, path := range []string{"/healthz", "/readyz"} {
		for {
			resp, err := http.Get("http://" + healthAddr + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
			time.Sleep(50 * time.Millisecond) // readiness comes with the first plugin check
		}
	}
}

// TestServeCallerIdentity runs the CLI as other users (the tests run as
// root) against a daemon whose policy names uids: the kernel's SO_PEERCRED
// answer is the identity, allowed and denied accordingly.
func TestServeCallerIdentity(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another uid")
	}
	dir := sharedDir(t)
	state := filepath.Join(dir, "keys.json")
	createRelease(t, state)
	d := startDaemon(t, dir, serveConfig(state, `socket_mode = "0666"`, allowRoot()+`
policy "nobody-signs" {
  keys       = ["release"]
  principals = ["unix:uid=65534"]
  operations = ["sign", "public_key"]
}`), "--log-level", "debug")
	// The CLI binary must be reachable by the other users.
	bin := filepath.Join(dir, "knhk-host")
	copyExec(t, knhkHost, bin)
	as := func(uid uint32, args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--server", "unix://" + d.socket}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		cmd.Stdin = strings.NewReader("from another uid")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return result{code: exitCode(t, args, err), stdout: out.String(), stderr: errb.String()}
	}
	pub := parsePEM(t, ok(t, nil, "--server", "unix://"+d.socket, "pubkey", "--key", "release"))

	r := as(65534, "sign", "--key", "release")
	if r.code != 0 {
		t.Fatalf("uid 65534 sign: %v", r)
	}
	sum := sha256.Sum256([]byte("from another uid"))
	checkSig(t, pub, sum[:], decodeB64(t, r.stdout))

	r = as(65534, "rotate", "--key", "release")
	if r.code != 3 || !strings.Contains(r.stderr, "unix:uid=65534") || !strings.Contains(r.stderr, "rotate") {
		t.Fatalf("uid 65534 rotate: %v, want exit 3 naming the principal and operation", r)
	}
	r = as(65533, "sign", "--key", "release")
	if r.code != 3 || !strings.Contains(r.stderr, "unix:uid=65533") {
		t.Fatalf("uid 65533 sign: %v, want exit 3 (denied)", r)
	}
	d.waitLog(t, "deny")
	if strings.Contains(d.stderr.String(), "BEGIN") {
		t.Fatal("the daemon's log holds key material")
	}
}

// TestServeDrainUnderLoad sends SIGTERM while 64 callers sign: every call
// either returns a signature that verifies or fails cleanly as
// unavailable; none hangs; the daemon exits 0 and removes its socket.
func TestServeDrainUnderLoad(t *testing.T) {
	dir := sharedDir(t)
	state := filepath.Join(dir, "keys.json")
	createRelease(t, state)
	d := startDaemon(t, dir, serveConfig(state, `drain_timeout = "20s"`, allowRoot()))
	ctx := ctxT(t)
	c, err := client.Dial(ctx, "unix://"+d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k, _ := c.Key(ctx, "release")
	pk, err := k.PublicKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var signed, refused atomic.Int64
	var bad sync.Map
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				digest := sha256.Sum256([]byte(fmt.Sprintf("%d/%d", i, n)))
				sig, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
				switch {
				case err == nil:
					if !ecdsa.VerifyASN1(pk.Key.(*ecdsa.PublicKey), digest[:], sig.Signature) {
						bad.Store(fmt.Sprintf("%d/%d", i, n), "signature does not verify")
					}
					signed.Add(1)
				case errors.Is(err, shared.ErrUnavailable):
					refused.Add(1)
					return
				default:
					bad.Store(fmt.Sprintf("%d/%d", i, n), err.Error())
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	for signed.Load() < 2000 {
		time.Sleep(10 * time.Millisecond)
	}
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("knhk-host serve exited %d after SIGTERM, want 0\n%s", code, d.stderr.String())
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		close(stop)
		t.Fatal("callers still waiting a minute after the daemon exited")
	}
	bad.Range(func(k, v any) bool { t.Errorf("call %v: %v", k, v); return true })
	if refused.Load() != 64 {
		t.Errorf("%d callers ended with unavailable, want all 64 (each loops until refused)", refused.Load())
	}
	if _, err := os.Stat(d.socket); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
	t.Logf("%d signatures before and during the drain, %d callers refused cleanly", signed.Load(), refused.Load())
}

// TestServeReload: SIGHUP with a broken file keeps the running config;
// with a good one, the new policy applies.
func TestServeReload(t *testing.T) {
	dir := sharedDir(t)
	state := filepath.Join(dir, "keys.json")
	createRelease(t, state)
	d := startDaemon(t, dir, serveConfig(state, "", allowRoot()))
	ctx := ctxT(t)
	c, err := client.Dial(ctx, "unix://"+d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k, _ := c.Key(ctx, "release")
	digest := sha256.Sum256([]byte("reload"))
	sign := func() error { _, err := k.SignDigest(ctx, digest[:], host.SignOptions{}); return err }
	if err := sign(); err != nil {
		t.Fatal(err)
	}

	os.WriteFile(d.config, []byte("serve { socket = \n"), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "reload failed")
	if err := sign(); err != nil {
		t.Fatalf("after a broken reload: %v", err)
	}

	// Only metadata now.
	os.WriteFile(d.config, []byte(serveConfig(state, "", strings.Replace(allowRoot(), `["*"]`+"\n}", `["metadata"]`+"\n}", 1))), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "configuration reloaded")
	if err := sign(); !errors.Is(err, client.ErrPolicyDenied) {
		t.Fatalf("after reloading a metadata-only policy, sign: %v, want denied", err)
	}
	if _, err := k.Metadata(ctx); err != nil {
		t.Fatalf("metadata after reload: %v", err)
	}
}

// TestServeSocket: a stale socket from a killed daemon is replaced; a
// live one is not taken over; a TCP listener without client CAs is
// refused at load.
func TestServeSocket(t *testing.T) {
	dir := sharedDir(t)
	state := filepath.Join(dir, "keys.json")
	createRelease(t, state)
	cfg := serveConfig(state, "", allowRoot())
	d := startDaemon(t, dir, cfg)

	second := knhk(t, nil, "serve", "--config", d.config, "--plugin-dir", pluginDir, "--socket", d.socket)
	if second.code == 0 || !strings.Contains(second.stderr, "another daemon") {
		t.Fatalf("a second daemon on a live socket: %v", second)
	}
	d.cmd.Process.Kill()
	<-d.exited
	if _, err := os.Stat(d.socket); err != nil {
		t.Fatalf("the killed daemon's socket should be left behind for this test: %v", err)
	}
	d2 := startDaemon(t, dir, cfg)
	fi, err := os.Stat(d2.socket)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode: %v %v, want 0660", fi.Mode(), err)
	}

	ca := newPKI(t, dir)
	cert, key, _ := ca.issue(t, "server", true, "knhk", "")
	bad := serveConfig(state, fmt.Sprintf("tls {\n address = %s\n cert_file = %s\n key_file = %s\n}", hcl(freeAddr(t)), hcl(cert), hcl(key)), allowRoot())
	path := writeFile(t, t.TempDir(), "bad.hcl", []byte(bad))
	r := knhk(t, nil, "serve", "--config", path, "--plugin-dir", pluginDir, "--socket", filepath.Join(dir, "other.sock"))
	if r.code != 2 || !strings.Contains(r.stderr, "client_ca_file") {
		t.Fatalf("TLS listener without client CA: %v, want exit 2 naming client_ca_file", r)
	}
}
