package hosttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/internal/reattach"
	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

// FakeProvider is the provider name under which the fake is served.
const FakeProvider = "fake"

// Option changes what New and Start build.
type Option func(*options)

type options struct {
	cfg       host.Config
	providers map[string]shared.Provider
}

// WithConfig sets the host's configuration (timeouts, logger, TTL...).
// PluginDirs still work, so a test may mix in-process providers and
// plugin binaries; an in-process provider wins over a binary of the same
// name.
func WithConfig(cfg host.Config) Option {
	return func(o *options) { o.cfg = cfg }
}

// WithProvider serves p in process under provider name name, besides the
// fake (or instead of it, when name is "fake").
func WithProvider(name string, p shared.Provider) Option {
	return func(o *options) { o.providers[name] = p }
}

// serveTimeout bounds how long an in-process provider may take to listen.
const serveTimeout = 10 * time.Second

// New returns a Host whose provider "fake" is fake.New(fake.Config{}) served in this
// test process. The host is closed and the providers stopped when the test
// ends. Host logs go to t.Log unless WithConfig sets a Logger.
func New(t testing.TB, opts ...Option) *host.Host {
	t.Helper()
	var o options
	o.cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "knhk", Level: hclog.Warn, Output: testWriter{t}})
	h, stop, err := start(o, opts)
	if err != nil {
		t.Fatalf("hosttest: %v", err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("hosttest: %v", err)
		}
	})
	return h
}

// Start is New without a testing.TB, for TestMain, benchmarks and
// examples: it returns the host and a stop function that closes it and
// stops the in-process providers. Host logs go to stderr (warnings and
// errors) unless WithConfig sets a Logger.
func Start(opts ...Option) (*host.Host, func() error, error) {
	return start(options{}, opts)
}

func start(o options, opts []Option) (*host.Host, func() error, error) {
	o.providers = map[string]shared.Provider{FakeProvider: fake.New(fake.Config{})}
	logger := o.cfg.Logger
	for _, opt := range opts {
		opt(&o)
	}
	cfg := o.cfg
	if cfg.Logger == nil {
		cfg.Logger = logger
	}
	attach := map[string]*plugin.ReattachConfig{}
	var stops []func()
	stopAll := func() {
		for _, s := range stops {
			s()
		}
	}
	for name, p := range o.providers {
		rc, stop, err := serve(p)
		if err != nil {
			stopAll()
			return nil, nil, fmt.Errorf("serving provider %q: %w", name, err)
		}
		stops = append(stops, stop)
		attach[name] = rc
	}
	h, err := host.New(reattach.With(context.Background(), attach), cfg)
	if err != nil {
		stopAll()
		return nil, nil, err
	}
	var once sync.Once
	var closeErr error
	return h, func() error {
		once.Do(func() {
			closeErr = h.Close()
			stopAll()
		})
		return closeErr
	}, nil
}

// serve runs p in go-plugin's test mode until stop is called.
func serve(p shared.Provider) (*plugin.ReattachConfig, func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	served := make(chan error, 1)
	go func() {
		// go-plugin's server-side log is noise here (it reports its own
		// listener closing at shutdown); the provider logs on its own.
		err := shared.Serve(p, shared.WithLogger(hclog.NewNullLogger()), shared.WithTestConfig(&plugin.ServeTestConfig{
			Context: ctx, ReattachConfigCh: reattach, CloseCh: closed,
		}))
		if err != nil { // go-plugin never ran, so it will not close closed
			close(closed)
		}
		served <- err
	}()
	stop := func() {
		cancel()
		<-closed
	}
	t := time.NewTimer(serveTimeout)
	defer t.Stop()
	select {
	case rc := <-reattach:
		return rc, stop, nil
	case err := <-served:
		stop()
		if err == nil {
			err = errors.New("the provider stopped serving before it was ready")
		}
		return nil, nil, err
	case <-t.C:
		stop()
		return nil, nil, fmt.Errorf("the provider did not start serving within %s", serveTimeout)
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

var _ io.Writer = testWriter{}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
