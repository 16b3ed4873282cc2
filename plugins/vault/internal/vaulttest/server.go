package vaulttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

// Server is a running Vault dev server on 127.0.0.1 with Transit mounted at
// "transit" and AppRole enabled at "approle".
type Server struct {
	// Addr is the server's address, e.g. http://127.0.0.1:48213.
	Addr string
	// RootToken is the dev server's root token (random per server).
	RootToken string
	// CAFile is the PEM CA certificate of a StartTLS server's listener;
	// empty for plain HTTP.
	CAFile string

	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{} // closed when the process has exited
	exitErr error         // how it exited; set before done is closed
	home    string
}

// startTimeout bounds how long Start waits for the server to be healthy.
const startTimeout = 2 * time.Minute

// Start builds (when needed) and starts a Vault dev server over plain HTTP,
// waits until it is healthy, and enables Transit and AppRole. Call Stop
// when done.
func Start() (*Server, error) { return start(false) }

// StartTLS is Start with dev mode's TLS listener: a fresh CA (CAFile) and
// a certificate for 127.0.0.1.
func StartTLS() (*Server, error) { return start(true) }

func start(tls bool) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	port, err := freePortPair()
	if err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "vaulttest-home-")
	if err != nil {
		return nil, err
	}
	s := &Server{
		Addr:      "http://127.0.0.1:" + strconv.Itoa(port),
		RootToken: "root-" + randomHex(12),
		out:       &syncBuffer{},
		done:      make(chan struct{}),
		home:      home,
	}
	args := []string{"server", "-dev", "-dev-no-store-token",
		"-dev-root-token-id=" + s.RootToken,
		"-dev-listen-address=127.0.0.1:" + strconv.Itoa(port)}
	if tls {
		certs := filepath.Join(home, "certs")
		if err := os.Mkdir(certs, 0o700); err != nil {
			os.RemoveAll(home)
			return nil, err
		}
		args = append(args, "-dev-tls", "-dev-tls-cert-dir="+certs)
		s.Addr = "https://127.0.0.1:" + strconv.Itoa(port)
		s.CAFile = filepath.Join(certs, "vault-ca.pem")
	}
	s.cmd = exec.Command(bin, args...)
	// A clean environment: no VAULT_* from the caller, a private HOME.
	s.cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	dieWithParent(s.cmd)
	// The kernel's die-with-parent signal follows the thread that forked
	// the server, and a Go thread ends when a goroutine that locked it
	// returns still locked (the host's plugin spawner does, at every
	// host.Close). So the server is started, and waited for, by a
	// goroutine that locks its thread for as long as the server runs:
	// no other goroutine can run on that thread, so none can end it.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine, after the server
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.exitErr = s.cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		os.RemoveAll(home)
		return nil, fmt.Errorf("vaulttest: starting %s: %w", bin, err)
	}
	if err := s.setup(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\nVault output:\n%s", err, s.Output())
	}
	return s, nil
}

// setup waits for health and enables the engines the tests use.
func (s *Server) setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for s.CAFile != "" { // the server writes its CA on start
		if fi, err := os.Stat(s.CAFile); err == nil && fi.Size() > 0 {
			break
		}
		select {
		case <-s.done:
			return fmt.Errorf("vaulttest: Vault exited before writing its CA: %v", s.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("vaulttest: Vault wrote no CA at %s in %s", s.CAFile, startTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
	c, err := s.Client()
	if err != nil {
		return err
	}
	for {
		h, err := c.Sys().HealthWithContext(ctx)
		if err == nil && h.Initialized && !h.Sealed {
			break
		}
		select {
		case <-s.done:
			return fmt.Errorf("vaulttest: Vault exited before it was healthy: %v", s.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("vaulttest: Vault at %s not healthy after %s: %v", s.Addr, startTimeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := c.Sys().MountWithContext(ctx, "transit", &api.MountInput{Type: "transit"}); err != nil {
		return fmt.Errorf("vaulttest: enabling transit: %w", err)
	}
	if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		return fmt.Errorf("vaulttest: enabling approle: %w", err)
	}
	return nil
}

// Client returns a Vault client logged in with the root token.
func (s *Server) Client() (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	if s.CAFile != "" {
		if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: s.CAFile}); err != nil {
			return nil, fmt.Errorf("vaulttest: TLS client: %w", err)
		}
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vaulttest: client: %w", err)
	}
	c.SetToken(s.RootToken)
	c.ClearNamespace()
	return c, nil
}

// Output is everything the server printed so far, with the root token and
// the unseal key that dev mode prints blanked out.
func (s *Server) Output() string {
	lines := strings.Split(s.out.String(), "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "Unseal Key:") {
			lines[i] = "Unseal Key: <redacted>"
		}
	}
	return strings.ReplaceAll(strings.Join(lines, "\n"), s.RootToken, "<root token>")
}

// Stop stops the server (SIGTERM, then SIGKILL after ten seconds) and
// removes its private home directory. Safe to call twice.
func (s *Server) Stop() {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.home)
}

// Exited is closed once the server process has exited, stopped or not.
func (s *Server) Exited() <-chan struct{} { return s.done }

// ExitErr says how the server exited ("signal: killed", "exit status
// 1"; nil for a clean exit). Valid once Exited is closed.
func (s *Server) ExitErr() error {
	<-s.done
	return s.exitErr
}

// Seal seals the server.
func (s *Server) Seal() error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	return c.Sys().Seal()
}

// Token creates a token as the root token, with the policies, TTL and
// renewability req asks for, and returns it.
func (s *Server) Token(req *api.TokenCreateRequest) (string, error) {
	c, err := s.Client()
	if err != nil {
		return "", err
	}
	sec, err := c.Auth().Token().Create(req)
	if err != nil {
		return "", fmt.Errorf("vaulttest: creating token: %w", err)
	}
	return sec.Auth.ClientToken, nil
}

// Policy writes an ACL policy.
func (s *Server) Policy(name, rules string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	if err := c.Sys().PutPolicy(name, rules); err != nil {
		return fmt.Errorf("vaulttest: writing policy %s: %w", name, err)
	}
	return nil
}

// AppRole creates an AppRole role with the given policies and token TTL
// and returns its role id and a fresh secret id.
func (s *Server) AppRole(role string, policies []string, tokenTTL string) (roleID, secretID string, err error) {
	c, err := s.Client()
	if err != nil {
		return "", "", err
	}
	if _, err := c.Logical().Write("auth/approle/role/"+role, map[string]any{
		"token_policies": strings.Join(policies, ","), "token_ttl": tokenTTL,
	}); err != nil {
		return "", "", fmt.Errorf("vaulttest: writing approle role: %w", err)
	}
	r, err := c.Logical().Read("auth/approle/role/" + role + "/role-id")
	if err != nil || r == nil {
		return "", "", fmt.Errorf("vaulttest: reading role id: %v", err)
	}
	sid, err := c.Logical().Write("auth/approle/role/"+role+"/secret-id", nil)
	if err != nil || sid == nil {
		return "", "", fmt.Errorf("vaulttest: creating secret id: %v", err)
	}
	return fmt.Sprint(r.Data["role_id"]), fmt.Sprint(sid.Data["secret_id"]), nil
}

// freePortPair finds a port p on 127.0.0.1 such that p and p+1 are both
// free: dev mode also opens a cluster listener on p+1.
func freePortPair() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("vaulttest: no free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p, nil
		}
	}
	return 0, errors.New("vaulttest: no free pair of adjacent ports on 127.0.0.1")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// What a server's output buffer keeps: its start (the banner and
// configuration) and its latest output, so that a long run does not
// grow it without bound.
const (
	outputHead = 16 << 10
	outputTail = 256 << 10
)

// syncBuffer keeps the server's two output streams, bounded: the first
// outputHead bytes and the last outputTail.
type syncBuffer struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte
	dropped int // bytes between head and tail no longer kept
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	if room := outputHead - len(s.head); room > 0 {
		k := min(room, len(p))
		s.head, p = append(s.head, p[:k]...), p[k:]
	}
	s.tail = append(s.tail, p...)
	if over := len(s.tail) - outputTail; over > 0 {
		s.dropped += over
		s.tail = append(s.tail[:0], s.tail[over:]...)
	}
	return n, nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped == 0 {
		return string(s.head) + string(s.tail)
	}
	return fmt.Sprintf("%s\n[... %d bytes not kept ...]\n%s", s.head, s.dropped, s.tail)
}
