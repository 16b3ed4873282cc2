package spire_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/internal/lockedproc"
)

// vaultVersion is the Vault release plugins/vault's tests run against;
// plugins/vault/testdeps.sh builds it into the knhk cache.
const vaultVersion = "v1.21.0"

// vaultServer is a Vault dev server on 127.0.0.1 with Transit mounted.
type vaultServer struct {
	addr, token string
}

// startVault starts the cached Vault dev server (as plugins/vault's tests
// do) and mounts Transit; the test is skipped when Vault is not built.
func startVault(t *testing.T) *vaultServer {
	t.Helper()
	bin := filepath.Join(knhkCache(t), "vault-"+vaultVersion, "vault")
	if fi, err := os.Stat(bin); err != nil || !fi.Mode().IsRegular() {
		t.Skipf("Vault %s is not built at %s: run `make testdeps` (or `bash plugins/vault/testdeps.sh`) to run SPIRE with the Vault provider", vaultVersion, bin)
	}
	port := freePortPair(t)
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	v := &vaultServer{addr: "http://127.0.0.1:" + strconv.Itoa(port), token: "root-" + hex.EncodeToString(b)}
	home := shortTempDir(t)
	var out bytes.Buffer
	cmd := exec.Command(bin, "server", "-dev", "-dev-no-store-token", "-dev-root-token-id="+v.token,
		"-dev-listen-address=127.0.0.1:"+strconv.Itoa(port))
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = &out, &out // one writer: one copying goroutine
	dieWithParent(cmd)
	exited, err := lockedproc.Start(cmd) // Pdeathsig follows the starting thread
	if err != nil {
		t.Fatalf("starting Vault: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(v.addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("Vault exited before it was healthy: %v\n%s", err, out.String()) // Wait has returned: out is complete
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("Vault at %s not healthy after 2m", v.addr)
		}
	}
	v.call(t, "POST", "/v1/sys/mounts/transit", map[string]string{"type": "transit"}, nil)
	return v
}

// call makes a Vault API call with the root token; out, when set,
// receives the JSON answer.
func (v *vaultServer) call(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx(t), method, v.addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", v.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("Vault %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("Vault %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("Vault %s %s: %v", method, path, err)
		}
	}
}

// freePortPair finds a port p with p+1 free too: a Vault dev server
// listens on p and its cluster on p+1.
func freePortPair(t *testing.T) int {
	for range 50 {
		p := freePort(t)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1)); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no two consecutive free ports on 127.0.0.1")
	return 0
}
