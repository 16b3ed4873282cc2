//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/lockedproc"
	"github.com/knhk/knhk/sidecar"
)

// The SPIFFE end-to-end test runs the real SPIRE server and agent
// v1.13.3, built once per machine by testdeps/spire.sh (make testdeps)
// into the knhk cache.
const spireVersion = "v1.13.3"

// spireBinaries are the cached spire-server and spire-agent; the test is
// skipped when they have not been built.
func spireBinaries(t *testing.T) (server, agent string) {
	t.Helper()
	cache := os.Getenv("KNHK_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Skipf("no KNHK_CACHE and no home directory, so no SPIRE test binaries: %v", err)
		}
		cache = filepath.Join(home, ".cache", "knhk")
	}
	dir := filepath.Join(cache, "spire-"+spireVersion)
	for _, name := range []string{"spire-server", "spire-agent"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || !fi.Mode().IsRegular() {
			t.Skipf("SPIRE %s is not built at %s: run `make testdeps` (or `bash testdeps/spire.sh` in the repository root; several minutes, once per machine) to run the SPIFFE end-to-end test with real SPIRE", spireVersion, dir)
		}
	}
	return filepath.Join(dir, "spire-server"), filepath.Join(dir, "spire-agent")
}

// spire is a running SPIRE server and agent on 127.0.0.1 (join_token
// node attestation, the unix workload attestor with path discovery).
type spire struct {
	server, agent   string // binaries
	dir             string
	serverSock      string
	agentSock       string // the Workload API
	serverLog, aLog string
}

// workloadAPI is the agent's Workload API address.
func (s *spire) workloadAPI() string { return "unix://" + s.agentSock }

// startSPIRE starts SPIRE in dir and waits until the agent is attested.
func startSPIRE(t *testing.T, dir string) *spire {
	t.Helper()
	serverBin, agentBin := spireBinaries(t)
	s := &spire{server: serverBin, agent: agentBin, dir: dir,
		serverSock: filepath.Join(dir, "server.sock"), agentSock: filepath.Join(dir, "agent.sock"),
		serverLog: filepath.Join(dir, "spire-server.log"), aLog: filepath.Join(dir, "spire-agent.log")}
	port := freeAddr(t)[len("127.0.0.1:"):]
	serverConf := fmt.Sprintf(`server {
    bind_address = "127.0.0.1"
    bind_port = %q
    socket_path = %q
    trust_domain = "example.org"
    data_dir = %q
    log_level = "DEBUG"
}
plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = %q
        }
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
    KeyManager "memory" {
        plugin_data {}
    }
}
`, port, s.serverSock, filepath.Join(dir, "data", "server"), filepath.Join(dir, "data", "server", "datastore.sqlite3"))
	agentConf := fmt.Sprintf(`agent {
    data_dir = %q
    log_level = "DEBUG"
    server_address = "127.0.0.1"
    server_port = %q
    socket_path = %q
    trust_domain = "example.org"
    insecure_bootstrap = true
}
plugins {
    NodeAttestor "join_token" {
        plugin_data {}
    }
    KeyManager "memory" {
        plugin_data {}
    }
    WorkloadAttestor "unix" {
        plugin_data {
            discover_workload_path = true
        }
    }
}
`, filepath.Join(dir, "data", "agent"), port, s.agentSock)
	writeFile(t, dir, "server.conf", []byte(serverConf))
	writeFile(t, dir, "agent.conf", []byte(agentConf))

	s.start(t, s.server, s.serverLog, "run", "-config", filepath.Join(dir, "server.conf"))
	s.waitHealthy(t, s.server, s.serverSock, s.serverLog)
	out := s.serverCmd(t, "token", "generate", "-spiffeID", "spiffe://example.org/node")
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "Token:"))
	if token == "" || strings.ContainsAny(token, " \n") {
		t.Fatalf("spire-server token generate: %q", out)
	}
	s.start(t, s.agent, s.aLog, "run", "-config", filepath.Join(dir, "agent.conf"), "-joinToken", token)
	s.waitHealthy(t, s.agent, s.agentSock, s.aLog)
	return s
}

// start runs bin with args in the background, its output in logPath,
// killed when the test ends (or this process dies).
func (s *spire) start(t *testing.T, bin, logPath string, args ...string) {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir, "TMPDIR=" + os.TempDir()}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited, err := lockedproc.Start(cmd) // Pdeathsig follows the starting thread
	if err != nil {
		t.Fatalf("start %s: %v", filepath.Base(bin), err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
}

// waitHealthy waits until `bin healthcheck` answers on sock.
func (s *spire) waitHealthy(t *testing.T, bin, sock, logPath string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := exec.Command(bin, "healthcheck", "-socketPath", sock).CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s not healthy after 2m: %s\nits log:\n%s", filepath.Base(bin), out, log)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// serverCmd runs a spire-server CLI command against the server.
func (s *spire) serverCmd(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(s.server, append(args, "-socketPath", s.serverSock)...).CombinedOutput()
	if err != nil {
		t.Fatalf("spire-server %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// register creates a registration entry for id under the agent's node.
func (s *spire) register(t *testing.T, id, selector string, extra ...string) {
	t.Helper()
	s.serverCmd(t, append([]string{"entry", "create", "-parentID", "spiffe://example.org/node", "-spiffeID", id, "-selector", selector}, extra...)...)
}

// TestSpiffeWithSPIRE runs knhk-host serve with its identity from a real
// SPIRE agent's Workload API (TLS and HTTP listeners with no certificate
// files) and shows:
//   - callers are their SPIFFE IDs: the test process (by its binary's
//     path) and CLI children under uids 65534 and 65533 (by uid) are
//     allowed or denied per key, a denial being ErrPolicyDenied naming the
//     SPIFFE ID;
//   - the daemon's serving SVID (30 s TTL) rotates while a client keeps
//     signing, without a failed call, and the serving certificate's serial
//     changes without a restart;
//   - a JWT-SVID from the agent is accepted on HTTP with the configured
//     audience and refused with another.
//
// Every signature is checked with the standard library.
func TestSpiffeWithSPIRE(t *testing.T) {
	spireBinaries(t) // skips before anything when SPIRE is not built
	if os.Getuid() != 0 {
		t.Skip("needs root to run CLI callers under other uids (uids 65534 and 65533 get their own SPIFFE IDs)")
	}
	dir := sharedDir(t)
	s := startSPIRE(t, dir)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const (
		daemonID = "spiffe://example.org/knhk"
		testerID = "spiffe://example.org/ns/ci/tester"
		webID    = "spiffe://example.org/ns/prod/web"
		toolID   = "spiffe://example.org/ns/dev/tool"
	)
	s.register(t, daemonID, "unix:path:"+knhkHost, "-x509SVIDTTL", "30")
	s.register(t, testerID, "unix:path:"+self)
	s.register(t, webID, "unix:uid:65534")
	s.register(t, toolID, "unix:uid:65533")

	// Keys "release" and "prod" (fake ec-p256 in a state file).
	state := filepath.Join(dir, "keys.json")
	createRelease(t, state)
	ok(t, nil, withPlugins("keys", "create", "--key", "fake:prod?state="+state, "--type", "ec-p256")...)
	tlsAddr, httpAddr := freeAddr(t), freeAddr(t)
	config := fmt.Sprintf(`
key "release" {
  ref    = "fake:release"
  params = { state = %s }
}
key "prod" {
  ref    = "fake:prod"
  params = { state = %s }
}
serve {
  spiffe {
    workload_api  = %s
    trust_domains = ["example.org"]
    jwt_audience  = "knhk"
    fetch_timeout = "90s"
  }
  tls  { address = %s }
  http { address = %s }
}
policy "ci" {
  keys       = ["release"]
  principals = ["spiffe://example.org/ns/ci/*", %s]
  operations = ["sign"]
}
policy "prod" {
  keys       = ["prod"]
  principals = [%s]
  operations = ["sign"]
}
policy "read" {
  keys       = ["*"]
  principals = ["spiffe://example.org/*"]
  operations = ["public_key"]
}
`, hcl(state), hcl(state), hcl(s.workloadAPI()), hcl(tlsAddr), hcl(httpAddr), hcl(webID), hcl(webID))
	start := time.Now()
	d := startDaemon(t, dir, config, "--log-level", "debug")
	d.waitLog(t, "SPIFFE identity from the Workload API")
	if !strings.Contains(d.stderr.String(), daemonID) {
		t.Fatalf("the daemon did not log its SPIFFE ID %s:\n%s", daemonID, d.stderr.String())
	}
	t.Logf("daemon serving with its SVID %s after %s", daemonID, time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(ctxT(t), 4*time.Minute)
	defer cancel()
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(s.workloadAPI())))
	if err != nil {
		t.Fatalf("the test process's SVID: %v", err)
	}
	defer src.Close()
	if svid, _ := src.GetX509SVID(); svid == nil || svid.ID.String() != testerID {
		t.Fatalf("the test process got SVID %v, want %s", svid, testerID)
	}
	knhkID := tlsconfig.AuthorizeID(spiffeid.RequireFromString(daemonID))

	// (a) Callers by SPIFFE ID.
	c, err := client.Dial(ctx, tlsAddr, client.WithSPIFFE(src, knhkID))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	release, err := c.Key(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	releasePub, err := release.PublicKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	signOnce := func(k *client.Key, msg string) error {
		digest := sha256.Sum256([]byte(msg))
		sig, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
		if err != nil {
			return err
		}
		checkSig(t, releasePub.Key, digest[:], sig.Signature)
		return nil
	}
	if err := signOnce(release, "ci signs release"); err != nil {
		t.Fatalf("%s signing release: %v", testerID, err)
	}
	prod, err := c.Key(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	prodPub, err := prod.PublicKey(ctx, "")
	if err != nil {
		t.Fatalf("%s reading prod's public key (spiffe://example.org/*): %v", testerID, err)
	}
	_, err = prod.SignDigest(ctx, make([]byte, 32), host.SignOptions{})
	if !errors.Is(err, client.ErrPolicyDenied) || !errors.Is(err, sidecar.ErrPolicyDenied) || !strings.Contains(err.Error(), testerID) {
		t.Fatalf("%s signing prod: %v, want ErrPolicyDenied naming %s", testerID, err, testerID)
	}

	// CLI callers under other uids, each its own SPIFFE ID from the agent.
	bin := filepath.Join(dir, "knhk-host")
	copyExec(t, knhkHost, bin)
	as := func(uid uint32, stdin string, args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--server", tlsAddr, "--spiffe-socket", s.workloadAPI()}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return result{code: exitCode(t, args, err), stdout: out.String(), stderr: errb.String()}
	}
	r := as(65534, "from prod web", "--server-spiffe-id", daemonID, "sign", "--key", "prod")
	if r.code != 0 {
		t.Fatalf("%s (uid 65534) signing prod: %v", webID, r)
	}
	sum := sha256.Sum256([]byte("from prod web"))
	checkSig(t, prodPub.Key, sum[:], decodeB64(t, r.stdout))
	r = as(65534, "web and release", "sign", "--key", "release")
	if r.code != 0 {
		t.Fatalf("%s (uid 65534) signing release: %v", webID, r)
	}
	sum = sha256.Sum256([]byte("web and release"))
	checkSig(t, releasePub.Key, sum[:], decodeB64(t, r.stdout))
	r = as(65533, "dev tool", "sign", "--key", "prod")
	if r.code != 3 || !strings.Contains(r.stderr, toolID) || !strings.Contains(r.stderr, "sign") {
		t.Fatalf("%s (uid 65533) signing prod: %v, want exit 3 naming %s", toolID, r, toolID)
	}
	r = as(65534, "pinned", "--server-spiffe-id", "spiffe://example.org/not-knhk", "sign", "--key", "prod")
	if r.code == 0 || r.stdout != "" {
		t.Fatalf("CLI expecting another daemon ID: %v, want a failure", r)
	}

	// (b) The daemon's SVID rotates under its 30 s TTL while a client keeps
	// signing over one connection, and new connections get the new one.
	servingCert := func() (*x509.Certificate, error) {
		conn, err := tls.Dial("tcp", tlsAddr, tlsconfig.MTLSClientConfig(src, src, knhkID))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0], nil
	}
	first, err := servingCert()
	if err != nil {
		t.Fatal(err)
	}
	if life := first.NotAfter.Sub(first.NotBefore); life > 2*time.Minute {
		t.Fatalf("the daemon's SVID lives %s; the entry asked for 30s", life)
	}
	var signed, failed atomic.Int64
	stopSigning := make(chan struct{})
	signingDone := make(chan struct{})
	go func() {
		defer close(signingDone)
		for i := 0; ; i++ {
			select {
			case <-stopSigning:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if err := signOnce(release, fmt.Sprintf("across rotation %d", i)); err != nil {
				failed.Add(1)
				t.Errorf("signature %d during rotation: %v", i, err)
				continue
			}
			signed.Add(1)
		}
	}()
	var rotated *x509.Certificate
	deadline := time.Now().Add(2 * time.Minute)
	for rotated == nil && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		cert, err := servingCert()
		if err != nil {
			t.Fatalf("handshake while rotating: %v", err)
		}
		if cert.SerialNumber.Cmp(first.SerialNumber) != 0 {
			rotated = cert
		}
	}
	if rotated == nil {
		t.Fatalf("the serving certificate (serial %v, expiring %s) did not change in 2 minutes", first.SerialNumber, first.NotAfter)
	}
	// Keep signing a little past the rotation, then a new connection.
	time.Sleep(2 * time.Second)
	close(stopSigning)
	<-signingDone
	if failed.Load() != 0 || signed.Load() < 10 {
		t.Fatalf("across the rotation: %d signatures, %d failed", signed.Load(), failed.Load())
	}
	if id, err := spiffeIDOf(rotated); err != nil || id != daemonID || !rotated.NotAfter.After(first.NotAfter) {
		t.Fatalf("rotated serving certificate: %s (%v), expires %s (was %s)", id, err, rotated.NotAfter, first.NotAfter)
	}
	fresh, err := client.Dial(ctx, tlsAddr, client.WithSPIFFE(src, knhkID), client.WithoutStream())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	freshKey, _ := fresh.Key(ctx, "release")
	if err := signOnce(freshKey, "after rotation"); err != nil {
		t.Fatalf("a new connection after the rotation: %v", err)
	}
	t.Logf("serving serial %v -> %v; %d signatures across the rotation, none failed", first.SerialNumber, rotated.SerialNumber, signed.Load())
	d.waitLog(t, "SPIFFE X.509-SVID or bundle updated")

	// (c) JWT-SVIDs on HTTP, no client certificate.
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsconfig.TLSClientConfig(src, knhkID)}}
	defer httpc.CloseIdleConnections()
	digest := sha256.Sum256([]byte("by JWT-SVID"))
	signHTTP := func(audience string) (int, []byte) {
		t.Helper()
		svid, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: audience}, workloadapi.WithAddr(s.workloadAPI()))
		if err != nil {
			t.Fatalf("JWT-SVID for audience %s: %v", audience, err)
		}
		if svid.ID.String() != testerID {
			t.Fatalf("JWT-SVID for %s, want %s", svid.ID, testerID)
		}
		body := fmt.Sprintf(`{"digest":%q}`, base64.StdEncoding.EncodeToString(digest[:]))
		req, err := http.NewRequestWithContext(ctx, "POST", "https://"+httpAddr+"/v1/keys/release/sign", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+svid.Marshal())
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	status, body := signHTTP("knhk")
	var signedJSON struct {
		Signature []byte `json:"signature"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &signedJSON) != nil {
		t.Fatalf("JWT-SVID with audience knhk: %d %s", status, body)
	}
	checkSig(t, releasePub.Key, digest[:], signedJSON.Signature)
	status, body = signHTTP("not-knhk")
	if status != http.StatusUnauthorized || !bytes.Contains(body, []byte("audience")) {
		t.Fatalf("JWT-SVID with audience not-knhk: %d %s, want 401 about the audience", status, body)
	}
	if strings.Contains(d.stderr.String(), "BEGIN") {
		t.Fatal("the daemon's log holds key material")
	}
}

// spiffeIDOf is the SPIFFE ID of an X.509-SVID.
func spiffeIDOf(cert *x509.Certificate) (string, error) {
	if len(cert.URIs) != 1 {
		return "", fmt.Errorf("%d URI SANs", len(cert.URIs))
	}
	id, err := spiffeid.FromURI(cert.URIs[0])
	return id.String(), err
}
