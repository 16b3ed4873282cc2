package spire_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/lockedproc"
	"github.com/knhk/knhk/shared/providertest"
)

// The end-to-end tests run the real SPIRE server v1.13.3, built once per
// machine by testdeps/spire.sh (make testdeps) into the knhk cache, with
// this KeyManager as its key manager, and mint SVIDs with it.
const spireVersion = "v1.13.3"

// knhkCache is ${KNHK_CACHE:-$HOME/.cache/knhk}.
func knhkCache(t *testing.T) string {
	if d := os.Getenv("KNHK_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skipf("no KNHK_CACHE and no home directory, so no SPIRE test binaries: %v", err)
	}
	return filepath.Join(home, ".cache", "knhk")
}

// spireServer is the cached spire-server binary; the test is skipped when
// it has not been built.
func spireServer(t *testing.T) string {
	bin := filepath.Join(knhkCache(t), "spire-"+spireVersion, "spire-server")
	if fi, err := os.Stat(bin); err != nil || !fi.Mode().IsRegular() {
		t.Skipf("SPIRE %s is not built at %s: run `make testdeps` (or `bash testdeps/spire.sh` in the repository root; several minutes, once per machine) to run the end-to-end test with real SPIRE", spireVersion, bin)
	}
	return bin
}

// TestSPIREWithFakeProvider runs SPIRE server with its CA key (RSA 2048)
// and JWT key (EC P-384) in the fake knhk provider, mints an X.509-SVID
// and a JWT-SVID, and checks them against the bundle and the knhk keys;
// then restarts SPIRE and checks it finds its CA again through
// GetPublicKeys and keeps issuing with it.
func TestSPIREWithFakeProvider(t *testing.T) {
	bin := spireServer(t)
	dir := shortTempDir(t)
	plugins := filepath.Join(dir, "plugins")
	km := buildKeyManager(t, dir)
	buildPlugin(t, "", "github.com/knhk/knhk/plugins/fake/cmd/knhk-plugin-fake", filepath.Join(plugins, "knhk-plugin-fake"))
	lock := filepath.Join(dir, "knhk.lock")
	if err := host.WriteLockFile(lock, host.DiscoverIn([]string{plugins})); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "knhk-keys.json")
	keyRef := "fake:spire/{id}?state=" + state
	s := startSPIRE(t, bin, dir, spireOptions{
		keyManager: km, pluginDirs: plugins, lockFile: lock, keyRef: keyRef,
		caKeyType: "rsa-2048", jwtKeyType: "ec-p384",
	})
	knhkHost := newKnhkHost(t, plugins, lock)
	caRef := strings.Replace(keyRef, "{id}", "x509-CA-A", 1)

	root := s.checkX509SVID(t, knhkHost, caRef, "spiffe://example.org/workload")
	if _, ok := root.PublicKey.(*rsa.PublicKey); !ok {
		t.Fatalf("the CA key is %T; SPIRE was configured with ca_key_type rsa-2048", root.PublicKey)
	}
	s.checkJWTSVID(t, knhkHost, strings.Replace(keyRef, "{id}", "JWT-Signer-A", 1))

	// A restart: SPIRE lists its keys (GetPublicKeys) to find its CA
	// journal, and must come back with the same CA key.
	start := time.Now()
	s.stop(t)
	s = startSPIRE(t, bin, dir, s.opts)
	t.Logf("SPIRE server restarted in %s", time.Since(start).Round(time.Millisecond))
	again := s.checkX509SVID(t, knhkHost, caRef, "spiffe://example.org/after-restart")
	if !bytes.Equal(again.Raw, root.Raw) {
		t.Fatal("after a restart SPIRE issues under another CA certificate: it did not find its knhk keys")
	}
	s.stop(t)
}

// TestSPIREWithVaultProvider is the same run with SPIRE's keys (EC P-256)
// in a real Vault's Transit engine, through knhk's vault provider plugin.
// It needs the Vault test server that plugins/vault/testdeps.sh builds.
func TestSPIREWithVaultProvider(t *testing.T) {
	bin := spireServer(t)
	vault := startVault(t)
	dir := shortTempDir(t)
	plugins := filepath.Join(dir, "plugins")
	km := buildKeyManager(t, dir)
	buildPlugin(t, filepath.Join("..", "vault"), "./cmd/knhk-plugin-vault", filepath.Join(plugins, "knhk-plugin-vault"))
	tokenFile := filepath.Join(dir, "vault-token")
	if err := os.WriteFile(tokenFile, []byte(vault.token), 0o600); err != nil {
		t.Fatal(err)
	}
	keyRef := "vault:transit/spire-{id}?addr=" + url.QueryEscape(vault.addr) + "&token_file=" + url.QueryEscape(tokenFile)
	s := startSPIRE(t, bin, dir, spireOptions{keyManager: km, pluginDirs: plugins, keyRef: keyRef})
	knhkHost := newKnhkHost(t, plugins, "")
	root := s.checkX509SVID(t, knhkHost, strings.Replace(keyRef, "{id}", "x509-CA-A", 1), "spiffe://example.org/workload")
	if _, ok := root.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Fatalf("the CA key is %T; want SPIRE's default EC P-256", root.PublicKey)
	}
	// The key is Vault's: Transit has it, non-exportable, under the name
	// the template gives.
	var key struct {
		Data struct {
			Type       string `json:"type"`
			Exportable bool   `json:"exportable"`
		} `json:"data"`
	}
	vault.call(t, "GET", "/v1/transit/keys/spire-x509-CA-A", nil, &key)
	if key.Data.Type != "ecdsa-p256" || key.Data.Exportable {
		t.Fatalf("Transit key spire-x509-CA-A: %+v; want a non-exportable ecdsa-p256 key", key.Data)
	}
	s.stop(t)
}

// spireOptions configure one SPIRE server run.
type spireOptions struct {
	keyManager            string // the knhk-spire-keymanager binary
	pluginDirs, lockFile  string
	keyRef                string
	caKeyType, jwtKeyType string // empty: SPIRE's default (ec-p256)
}

// spireRun is a running SPIRE server.
type spireRun struct {
	bin, dir, socket string
	opts             spireOptions
	cmd              *exec.Cmd
	log              string
	exited           chan error
}

// startSPIRE writes a server configuration in dir (sqlite datastore,
// join_token node attestation, the knhk KeyManager, 127.0.0.1 and a free
// port) and starts spire-server run, waiting until it is healthy.
func startSPIRE(t *testing.T, bin, dir string, o spireOptions) *spireRun {
	t.Helper()
	sum, err := fileSHA256(o.keyManager)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	s := &spireRun{bin: bin, dir: dir, socket: filepath.Join(dir, "server.sock"), opts: o, log: filepath.Join(dir, "spire-server.log"), exited: make(chan error, 1)}
	var keyTypes string
	if o.caKeyType != "" {
		keyTypes += fmt.Sprintf("    ca_key_type = %q\n", o.caKeyType)
	}
	if o.jwtKeyType != "" {
		keyTypes += fmt.Sprintf("    jwt_key_type = %q\n", o.jwtKeyType)
	}
	var lock string
	if o.lockFile != "" {
		lock = fmt.Sprintf("            lock_file = %q\n", o.lockFile)
	}
	conf := fmt.Sprintf(`server {
    bind_address = "127.0.0.1"
    bind_port = "%d"
    socket_path = %q
    trust_domain = "example.org"
    data_dir = %q
    log_level = "DEBUG"
%s}
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
    KeyManager "knhk" {
        plugin_cmd = %q
        plugin_checksum = %q
        plugin_data {
            plugin_dirs = [%q]
%s            key_ref = %q
            call_timeout = "20s"
        }
    }
}
`, freePort(t), s.socket, data, keyTypes, filepath.Join(data, "datastore.sqlite3"), o.keyManager, sum, o.pluginDirs, lock, o.keyRef)
	confPath := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	s.cmd = exec.Command(bin, "run", "-config", confPath)
	s.cmd.Dir = dir
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir()}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	dieWithParent(s.cmd)
	started := time.Now()
	exited, err := lockedproc.Start(s.cmd) // Pdeathsig follows the starting thread
	if err != nil {
		t.Fatalf("starting spire-server: %v", err)
	}
	go func() { s.exited <- <-exited }()
	t.Cleanup(func() { s.kill() })
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := exec.Command(bin, "healthcheck", "-socketPath", s.socket).CombinedOutput()
		if err == nil {
			break
		}
		select {
		case werr := <-s.exited:
			s.exited <- werr
			t.Fatalf("spire-server exited before it was healthy (%v); its log:\n%s", werr, s.tail())
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("spire-server not healthy after 3m: %s\nits log:\n%s", out, s.tail())
		}
	}
	t.Logf("SPIRE server %s healthy with the knhk KeyManager in %s", spireVersion, time.Since(started).Round(time.Millisecond))
	return s
}

// run runs a spire-server CLI command against the server's socket.
func (s *spireRun) run(t *testing.T, args ...string) []byte {
	t.Helper()
	args = append(args, "-socketPath", s.socket)
	out, err := exec.Command(s.bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("spire-server %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, s.tail())
	}
	return out
}

// checkX509SVID mints an X.509-SVID for id and checks that its chain
// verifies against the trust bundle, that the bundle's CA key is the knhk
// key caRef names (fetched through knhk), and that the SVID's signature
// verifies with that knhk key. It returns the CA certificate.
func (s *spireRun) checkX509SVID(t *testing.T, h *host.Host, caRef, id string) *x509.Certificate {
	t.Helper()
	out := filepath.Join(s.dir, "mint-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.run(t, "x509", "mint", "-spiffeID", id, "-ttl", "10m", "-write", out)
	t.Logf("minted an X.509-SVID for %s in %s", id, time.Since(start).Round(time.Millisecond))
	chain := readCerts(t, filepath.Join(out, "svid.pem"))
	roots := parseCerts(t, s.run(t, "bundle", "show"))
	if len(chain) == 0 || len(roots) != 1 {
		t.Fatalf("SVID chain of %d certificates, bundle of %d; want at least 1 and exactly 1", len(chain), len(roots))
	}
	leaf, root := chain[0], roots[0]
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id {
		t.Fatalf("SVID URI SANs %v; want %s", leaf.URIs, id)
	}
	pool, inter := x509.NewCertPool(), x509.NewCertPool()
	pool.AddCert(root)
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("the X.509-SVID does not verify against the trust bundle: %v", err)
	}
	// The CA's public key is the knhk key's.
	knhkDER := knhkPublicKeyDER(t, h, caRef)
	rootDER, err := x509.MarshalPKIXPublicKey(root.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(knhkDER, rootDER) {
		t.Fatalf("the bundle's CA public key differs from the knhk key %s", strings.SplitN(caRef, "?", 2)[0])
	}
	// And so the SVID's signature checks out with the knhk key alone
	// (SPIRE's CA signs directly: no upstream authority).
	pub, _ := x509.ParsePKIXPublicKey(knhkDER)
	if err := (&x509.Certificate{PublicKey: pub}).CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Fatalf("the SVID's signature does not verify with the knhk key: %v", err)
	}
	tampered := bytes.Clone(leaf.RawTBSCertificate)
	tampered[len(tampered)-1] ^= 1
	if (&x509.Certificate{PublicKey: pub}).CheckSignature(leaf.SignatureAlgorithm, tampered, leaf.Signature) == nil {
		t.Fatal("the SVID's signature verifies over altered contents too: the check proves nothing")
	}
	return root
}

// checkJWTSVID mints a JWT-SVID and checks its ES384 signature with the
// public key of the knhk key jwtRef names.
func (s *spireRun) checkJWTSVID(t *testing.T, h *host.Host, jwtRef string) {
	t.Helper()
	file := filepath.Join(s.dir, "jwt-svid")
	s.run(t, "jwt", "mint", "-spiffeID", "spiffe://example.org/jwt-workload", "-audience", "knhk-test", "-ttl", "5m", "-write", file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("jwt mint printed %q; want a compact JWS", token)
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(raw, &hdr) != nil || hdr.Alg != "ES384" || hdr.Kid == "" {
		t.Fatalf("JWT header %q (%v); want ES384 with a kid (jwt_key_type ec-p384)", raw, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 96 {
		t.Fatalf("JWT signature of %d bytes (%v); want 96 (P-384 r||s)", len(sig), err)
	}
	pub, err := x509.ParsePKIXPublicKey(knhkPublicKeyDER(t, h, jwtRef))
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("the knhk JWT key is %T", pub)
	}
	digest := sha512.Sum384([]byte(parts[0] + "." + parts[1]))
	r, sv := new(big.Int).SetBytes(sig[:48]), new(big.Int).SetBytes(sig[48:])
	if !ecdsa.Verify(ec, digest[:], r, sv) {
		t.Fatal("the JWT-SVID's signature does not verify with the knhk JWT key")
	}
	other := sha512.Sum384([]byte(parts[0] + ".e30"))
	if ecdsa.Verify(ec, other[:], r, sv) {
		t.Fatal("the JWT-SVID's signature verifies for another payload too")
	}
	t.Logf("JWT-SVID (kid %s) verified with knhk key %s", hdr.Kid, strings.SplitN(jwtRef, "?", 2)[0])
}

// stop ends SPIRE server with SIGTERM, as an operator would (it unloads
// the KeyManager, which stops its knhk host and provider plugins), and
// checks that no process of this run is left: none runs a binary from
// the run's directory, except this test's own knhk host's plugins.
func (s *spireRun) stop(t *testing.T) {
	t.Helper()
	linux := runtime.GOOS == "linux"
	if before := strings.Join(processesUnder(s.dir), "\n"); linux && (!strings.Contains(before, "knhk-spire-keymanager") || !strings.Contains(before, "knhk-plugin-")) {
		t.Fatalf("SPIRE's KeyManager and its knhk provider plugin should be running, but the processes of this run are:\n%s", before)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		s.exited <- err
	case <-time.After(30 * time.Second):
		s.kill()
		t.Fatalf("spire-server did not stop within 30s of SIGTERM; its log:\n%s", s.tail())
	}
	if !linux {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := processesUnder(s.dir)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of this SPIRE run are still alive 10s after it stopped: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill stops the server for good (test cleanup).
func (s *spireRun) kill() {
	select {
	case err := <-s.exited:
		s.exited <- err
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	err := <-s.exited
	s.exited <- err
}

// tail is the end of the server's log, for failure messages.
func (s *spireRun) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// processesUnder lists the live processes, other than this test's
// children, whose executable or command line names a path under dir (the
// KeyManager and the provider plugins of a run live there; the knhk host
// executes plugins through /proc/self/fd, so their command line may not
// name them, but /proc/PID/exe does).
func processesUnder(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// After "(comm)": state, ppid, ...
		i := bytes.LastIndexByte(stat, ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || fields[0] == "Z" || fields[1] == strconv.Itoa(os.Getpid()) {
			continue // a zombie, or one of this test's own children
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.HasPrefix(exe, dir+"/") || bytes.Contains(cmdline, []byte(dir+"/")) {
			out = append(out, fmt.Sprintf("pid %d %s (%s)", pid, exe, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))))
		}
	}
	return out
}

// newKnhkHost is a knhk host of this test's own, on the same plugins and
// lock file as SPIRE's KeyManager, to read the keys independently.
func newKnhkHost(t *testing.T, pluginDir, lock string) *host.Host {
	t.Helper()
	h, err := host.New(context.Background(), host.Config{PluginDirs: []string{pluginDir}, OnlyPluginDirs: true, LockFile: lock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func knhkPublicKeyDER(t *testing.T, h *host.Host, ref string) []byte {
	t.Helper()
	k, err := h.Key(ctx(t), ref)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := k.PublicKey(ctx(t), "")
	if err != nil {
		t.Fatalf("knhk public key of %s: %v", strings.SplitN(ref, "?", 2)[0], err)
	}
	der, err := x509.MarshalPKIXPublicKey(pk.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// buildKeyManager builds knhk-spire-keymanager into dir (with -race when
// the test runs with it, so SPIRE runs a race-checked plugin).
func buildKeyManager(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "knhk-spire-keymanager")
	start := time.Now()
	if err := providertest.Build("./cmd/knhk-spire-keymanager", bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built knhk-spire-keymanager in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

// buildPlugin builds a knhk provider plugin pkg, in module directory
// modDir ("" for this one), into out (mode 0755 in a 0700 directory, as
// the knhk host requires).
func buildPlugin(t *testing.T, modDir, pkg, out string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = modDir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	if err := os.Chmod(out, 0o755); err != nil {
		t.Fatal(err)
	}
}

// shortTempDir is a private temporary directory with a short path, since
// unix socket paths are limited to about 100 bytes.
func shortTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "knhk-spire-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func readCerts(t *testing.T, path string) []*x509.Certificate {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseCerts(t, b)
}

func parseCerts(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return certs
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
}
