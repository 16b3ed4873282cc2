package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/procinfo"
	"github.com/knhk/knhk/shared"
)

// sidecarCallers is row 7's concurrency.
const sidecarCallers = 64

// sidecarKey is the daemon's name for the benchmark's ES256 key.
const sidecarKey = "bench"

// Process names in measure.Use.Procs and measure.RSS (see watched).
const (
	procPlugin       = "knhk-plugin-fake"           // the fake plugin of a host in this process
	procDaemon       = "knhk-host"                  // knhk-host serve
	procDaemonPlugin = "knhk-host/knhk-plugin-fake" // the daemon's fake plugin
)

// sidecarUse is what the signing sidecar used under row 7's streaming
// load, per signature, next to this process's share (the Go client).
type sidecarUse struct {
	ClientUs       float64 `json:"client_cpu_us"`        // this process: the callers and the Go client
	DaemonUs       float64 `json:"daemon_cpu_us"`        // knhk-host serve
	DaemonPluginUs float64 `json:"daemon_plugin_cpu_us"` // the daemon's fake plugin
	ClientCS       float64 `json:"client_ctx_switches"`
	DaemonCS       float64 `json:"daemon_ctx_switches"`
	DaemonPluginCS float64 `json:"daemon_plugin_ctx_switches"`
	DaemonRSSKiB   int64   `json:"daemon_rss_kib"`        // VmRSS under load, daemon
	PluginRSSKiB   int64   `json:"daemon_plugin_rss_kib"` // VmRSS under load, its plugin
	DaemonHWMKiB   int64   `json:"daemon_hwm_kib"`        // VmHWM, daemon
	PluginHWMKiB   int64   `json:"daemon_plugin_hwm_kib"` // VmHWM, its plugin
}

// sidecarResult is row 7.
type sidecarResult struct {
	embedded, stream, unary measure
	ratio                   float64 // stream ÷ embedded, median of the rounds
	unaryRatio              float64 // unary ÷ embedded, median of the rounds
	overUnary               float64 // stream ÷ unary, median of the rounds
	use                     sidecarUse
}

// row7 is the signing sidecar: 64 callers signing ES256 through
// `knhk-host serve` on its unix socket with the Go client, alternating
// round by round with the same callers on a host embedded in this
// process (row 2's 64-caller run, verify-after-sign on in both hosts).
// The client runs twice: with its SignStream (the default), and with one
// unary Sign call per signature.
func (b *bench) row7(ctx context.Context) error {
	if b.inproc {
		return nil // the embedded side would not cross a process boundary
	}
	h, stopHost, err := b.newHost(host.Config{})
	if err != nil {
		return err
	}
	defer stopHost()
	signers, err := b.keys.signers(ctx, h)
	if err != nil {
		return err
	}
	embedded := signers[shared.ES256]

	d, err := b.startDaemon()
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = d.stop()
		}
	}()
	// The clients close before the daemon stops, so its drain has
	// nothing to wait for.
	var clients []*client.Client
	closeClients := func() {
		for _, c := range clients {
			c.Close()
		}
		clients = nil
	}
	defer closeClients()
	stream, streamSigner, err := b.sidecarSigner(ctx, d, true)
	if err != nil {
		return err
	}
	clients = append(clients, stream)
	unary, unarySigner, err := b.sidecarSigner(ctx, d, false)
	if err != nil {
		return err
	}
	clients = append(clients, unary)

	via := func(s crypto.Signer) func(int) error {
		return func(int) error { _, err := signOnce(s, shared.ES256); return err }
	}
	if b.soak > 0 {
		fmt.Fprintf(os.Stderr, "driving the sidecar (Go client, SignStream), ES256, %d callers for %s (bench pid %d, daemon pid %d, its plugins %v)\n",
			sidecarCallers, b.soak, os.Getpid(), d.pid(), procinfo.Descendants(d.pid()))
		m, err := drive(sidecarCallers, b.soak, via(streamSigner))
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%.0f signatures/s\n", m.OpsPerSec)
		return nil
	}
	runs, err := alternate(sidecarCallers, b.dur, rounds, via(embedded), via(streamSigner), via(unarySigner))
	if err != nil {
		return err
	}
	r := sidecarResult{
		embedded: mergeRounds(runs[0]), stream: mergeRounds(runs[1]), unary: mergeRounds(runs[2]),
		ratio: medianRatio(runs[1], runs[0]), unaryRatio: medianRatio(runs[2], runs[0]), overUnary: medianRatio(runs[1], runs[2]),
	}
	st := r.stream.Use
	r.use = sidecarUse{
		ClientUs: st.HostUs, DaemonUs: st.Procs[procDaemon].Us, DaemonPluginUs: st.Procs[procDaemonPlugin].Us,
		ClientCS: st.HostCS, DaemonCS: st.Procs[procDaemon].CS, DaemonPluginCS: st.Procs[procDaemonPlugin].CS,
		DaemonRSSKiB: r.stream.RSS[procDaemon], PluginRSSKiB: r.stream.RSS[procDaemonPlugin],
		DaemonHWMKiB: procinfo.VMHWM(strconv.Itoa(d.pid())),
	}
	for _, pid := range procinfo.Descendants(d.pid()) {
		r.use.PluginHWMKiB += procinfo.VMHWM(strconv.Itoa(pid))
	}
	closeClients()
	stopped = true
	if err := d.stop(); err != nil {
		return err
	}
	b.side = r
	b.sidecarRows()
	return nil
}

// sidecarRows adds row 7 to the table.
func (b *bench) sidecarRows() {
	r, u := b.side, b.side.use
	const to = "embedded host, median of rounds"
	row := func(name string, m measure, ratio float64, note string) Row {
		ops, p50, p99 := fromMeasure(m)
		return Row{Row: 7, Name: name, Alg: string(shared.ES256), Callers: sidecarCallers, Verify: "on",
			OpsPerSec: ops, P50us: p50, P99us: p99, Ratio: ratio, CPU: &m.Use, Note: note}
	}
	emb := r.embedded.Use
	embTotal := emb.HostUs + emb.Procs[procPlugin].Us
	b.res.add(row("embedded host → fake plugin", r.embedded, 0,
		fmt.Sprintf("the row 2 run, alternating with the sidecar runs; CPU per signature: host process %.1f µs, plugin process %.1f µs, together %.1f core-µs",
			emb.HostUs, emb.Procs[procPlugin].Us, embTotal)))

	total := u.ClientUs + u.DaemonUs + u.DaemonPluginUs
	s := row("sidecar: Go client → SignStream → daemon", r.stream, r.ratio,
		fmt.Sprintf("knhk-host serve on its unix socket, one SignStream multiplexing the callers; CPU per signature: client (this process) %.1f µs, daemon %.1f µs, "+
			"its plugin %.1f µs, together %.1f core-µs (embedded host %.1f); context switches per signature: client %.2f, daemon %.2f, its plugin %.2f; "+
			"%.2f× one unary call per signature (median of rounds)",
			u.ClientUs, u.DaemonUs, u.DaemonPluginUs, total, embTotal, u.ClientCS, u.DaemonCS, u.DaemonPluginCS, r.overUnary))
	s.RatioTo, s.Sidecar = to, &u
	b.res.add(s)

	un := r.unary.Use
	s = row("sidecar: Go client → unary Sign per signature", r.unary, r.unaryRatio,
		fmt.Sprintf("client.WithoutStream(); CPU per signature: client (this process) %.1f µs, daemon %.1f µs, its plugin %.1f µs; "+
			"context switches per signature: client %.2f, daemon %.2f, its plugin %.2f; "+
			"the sidecar hop's own CPU (client + daemon + its plugin − embedded host + plugin): SignStream %.1f, unary %.1f core-µs per signature",
			un.HostUs, un.Procs[procDaemon].Us, un.Procs[procDaemonPlugin].Us, un.HostCS, un.Procs[procDaemon].CS, un.Procs[procDaemonPlugin].CS,
			total-embTotal, un.HostUs+un.Procs[procDaemon].Us+un.Procs[procDaemonPlugin].Us-embTotal))
	s.RatioTo = to
	b.res.add(s)

	b.res.add(Row{Row: 7, Name: "RSS: sidecar daemon + its plugin under load",
		Value: fmt.Sprintf("%.1f MiB", mib(u.DaemonRSSKiB+u.PluginRSSKiB)),
		Note: fmt.Sprintf("VmRSS at the end of the SignStream runs (highest): daemon %.1f MiB, its plugin %.1f MiB; peak (VmHWM): daemon %.1f MiB, its plugin %.1f MiB",
			mib(u.DaemonRSSKiB), mib(u.PluginRSSKiB), mib(u.DaemonHWMKiB), mib(u.PluginHWMKiB))})
}

// sidecarSigner dials the daemon with the Go client (its SignStream, or
// one unary call per signature) and returns a Signer for the benchmark's
// key, checked to be the benchmark's key material. The streaming client
// creates the key in the daemon's plugin first (it lives in the plugin's
// memory, as row 2's does).
func (b *bench) sidecarSigner(ctx context.Context, d *daemon, useStream bool) (*client.Client, *client.Signer, error) {
	var opts []client.Option
	if !useStream {
		opts = append(opts, client.WithoutStream())
	}
	c, err := client.Dial(ctx, "unix://"+d.socket, opts...)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*client.Client, *client.Signer, error) {
		c.Close()
		return nil, nil, fmt.Errorf("sidecar: %w%s", err, d.logTail())
	}
	if useStream {
		if _, err := c.CreateKey(ctx, sidecarKey, keyTypes[shared.ES256]); err != nil {
			return fail(fmt.Errorf("creating the key in the daemon: %w", err))
		}
	}
	s, err := c.Signer(ctx, sidecarKey)
	if err != nil {
		return fail(err)
	}
	if !s.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(b.keys.public(shared.ES256)) {
		return fail(errors.New("the daemon's key is not the benchmark's key material"))
	}
	sig, err := signOnce(s, shared.ES256)
	if err != nil {
		return fail(err)
	}
	if err := check(b.keys.public(shared.ES256), shared.ES256, sig); err != nil {
		return fail(fmt.Errorf("the daemon's signature does not verify: %w", err))
	}
	return c, s, nil
}

// daemon is a running `knhk-host serve`, a child of this process.
type daemon struct {
	cmd    *exec.Cmd
	socket string
	log    string        // its stdout and stderr
	exited chan struct{} // closed when it has exited; then err is its exit
	err    error
}

// daemonStart bounds how long the daemon may take to listen.
const daemonStart = 20 * time.Second

// startDaemon writes the daemon's config (the benchmark's ES256 key in
// its fake plugin's memory; every operation allowed to this user) and
// starts `knhk-host serve`, returning once it accepts connections.
func (b *bench) startDaemon() (*daemon, error) {
	dir := filepath.Join(b.tmp, "sidecar")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "knhk.hcl")
	conf := fmt.Sprintf(`key %q {
  ref = %q
}

serve {
  socket_mode          = "0600"
  max_calls_per_caller = 1024
}

policy "bench" {
  keys       = ["*"]
  principals = [%q]
  operations = ["*"]
}
`, sidecarKey, memRef(shared.ES256), "unix:uid="+strconv.Itoa(os.Getuid()))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	d := &daemon{socket: filepath.Join(dir, "knhk.sock"), log: filepath.Join(dir, "daemon.log"), exited: make(chan struct{})}
	logf, err := os.Create(d.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	d.cmd = exec.Command(filepath.Join(b.bin, "knhk-host"), "serve", "--config", cfg, "--socket", d.socket,
		"--plugin-dir", filepath.Join(b.bin, "plugins"), "--log-level", "warn")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Should this process die, the daemon is told to stop. The signal
	// follows the thread that started it, so that thread stays locked
	// until the daemon has exited.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := d.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting knhk-host serve: %w", err)
	}
	deadline := time.Now().Add(daemonStart)
	for {
		conn, err := net.DialTimeout("unix", d.socket, time.Second)
		if err == nil {
			conn.Close()
			return d, nil
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("knhk-host serve exited before listening: %v%s", d.err, d.logTail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = d.stop()
			return nil, fmt.Errorf("knhk-host serve is not listening on its socket after %s%s", daemonStart, d.logTail())
		}
	}
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// stop sends SIGTERM and waits for the daemon to drain and exit 0; after
// a while it kills it.
func (d *daemon) stop() error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("knhk-host serve did not exit within 15s of SIGTERM%s", d.logTail())
	}
	if d.err != nil {
		return fmt.Errorf("knhk-host serve on SIGTERM: %w%s", d.err, d.logTail())
	}
	return nil
}

// logTail is the end of the daemon's log, for an error message.
func (d *daemon) logTail() string {
	b, err := os.ReadFile(d.log)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return "; its log ends: " + string(b)
}
