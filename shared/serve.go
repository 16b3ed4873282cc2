package shared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/knhk/knhk/internal/contract"
	"github.com/knhk/knhk/telemetry"
)

// ProtocolVersion is the version of the wire contract (proto package
// knhk.kms.v1) this SDK speaks. The host refuses a plugin that speaks
// another; Serve fills it in, so providers leave Description's field zero.
const ProtocolVersion = contract.ProtocolVersion

// MaxMessageSize bounds one request or response on the wire, in bytes: a
// whole message to sign must fit in it with room to spare.
const MaxMessageSize = contract.MaxMessageSize

// ServeOption configures Serve.
type ServeOption func(*serveConfig) error

type serveConfig struct {
	logger hclog.Logger
	test   *plugin.ServeTestConfig
}

// WithLogger sets the logger the SDK logs through (panics, serving
// errors). The default is Logger(), which is what a plugin normally wants.
func WithLogger(l hclog.Logger) ServeOption {
	return func(c *serveConfig) error {
		if l == nil {
			return errors.New("knhk: WithLogger(nil)")
		}
		c.logger = l
		return nil
	}
}

// WithTestConfig serves in go-plugin's test mode: in this process, handing
// the reattach details to the test instead of printing them. Used by
// host/hosttest and providertest.
func WithTestConfig(tc *plugin.ServeTestConfig) ServeOption {
	return func(c *serveConfig) error {
		if tc == nil {
			return errors.New("knhk: WithTestConfig(nil)")
		}
		c.test = tc
		return nil
	}
}

// Serve runs p as a knhk provider plugin: every request is checked by
// Validate before p sees it, errors wrapping the sentinels reach the host
// intact, a panic in p fails that one call, and batches are served for
// every provider. A plugin's main calls it and nothing else; it returns
// only in test mode, when the test ends, or with an error for a bad
// combination of options. Run the binary through the host, not by hand:
// stdout carries go-plugin's handshake line and nothing else may be
// written there before it. When the host stops the plugin, Serve closes p
// if it is an io.Closer (to stop token renewers, flush state). Outside
// test mode it sets the garbage collector's target to GOGC=400 unless the
// GOGC environment variable is set: a plugin's live heap is small and its
// garbage short-lived, so collecting less often saves CPU for some memory.
//
// Outside test mode Serve also sets up OpenTelemetry (telemetry.Setup)
// from the OTEL_* environment the host passes on, under service.name
// knhk-plugin-<provider> unless OTEL_SERVICE_NAME says otherwise, and
// flushes it before returning; console exporters write to stderr. When
// that environment asks for traces, every call gets a server span that
// continues the host's trace, so spans the provider starts from a call's
// context (its cloud SDK's, say) join the trace too; when it asks for
// nothing, nothing is instrumented. In test mode the process belongs to
// the test, whose global providers are used as they are.
func Serve(p Provider, opts ...ServeOption) error {
	if p == nil {
		return errors.New("knhk: Serve needs a Provider")
	}
	cfg := serveConfig{}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return err
		}
	}
	if cfg.logger == nil {
		cfg.logger = Logger()
	}
	flush := func() {}
	if cfg.test == nil {
		go exitWithParent(os.Getppid(), cfg.logger)
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(gcPercent)
		}
		flush = setupTelemetry(p, cfg.logger)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: contract.Handshake,
		Plugins:         contract.Plugins(newServer(p)),
		GRPCServer: func(o []grpc.ServerOption) *grpc.Server {
			o = append(o, contract.ServerOptions()...)
			// Long-lived goroutines serve the calls: a call's goroutine,
			// its stack grown by signing, is not made and grown again for
			// every call (when all are busy, a call gets a new one).
			o = append(o, grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))))
			o = append(o, grpc.ChainUnaryInterceptor(recoverPanics(cfg.logger)), grpc.ChainStreamInterceptor(recoverStreamPanics(cfg.logger)))
			// Spans and metrics per call, when the plugin's telemetry
			// (or, in test mode, the test's) is on; nothing when off.
			o = append(o, grpc.StatsHandler(telemetry.GRPCServerHandler()))
			return grpc.NewServer(o...)
		},
		Logger: cfg.logger,
		Test:   cfg.test,
	})
	if c, ok := p.(io.Closer); ok {
		if err := c.Close(); err != nil {
			cfg.logger.Warn("closing the provider", "error", err)
		}
	}
	flush() // after Close: the provider's last spans go too
	return nil
}

// Main is a plugin's whole main function: it serves p and, if serving
// fails, logs why and exits with status 1.
//
//	func main() { shared.Main(mykms.New(mykms.Config{})) }
func Main(p Provider) {
	if err := Serve(p); err != nil {
		Logger().Error("cannot serve the provider", "error", err)
		os.Exit(1)
	}
}

// gcPercent is the garbage collector's target (GOGC) that Serve sets in a
// plugin process when the GOGC environment variable is unset. A plugin
// keeps little live memory, a few MiB, and makes short-lived garbage with
// every request (messages, cryptographic temporaries): at Go's default of
// 100 it collects many times a second under load, and the runtime hands
// memory back to the system only to fault it in again. At 400 it collects
// a quarter as often: measured with 64 callers signing, the fake plugin
// spent about a sixth less CPU per signature, and its peak resident
// memory went from about 23 to 34 MiB. A memory limit (GOMEMLIMIT) still
// applies: the collector runs harder as the heap nears it, whatever GOGC
// says.
const gcPercent = 400

// parentPoll is how often a plugin checks that the host is still there.
const parentPoll = 500 * time.Millisecond

// exitWithParent ends the plugin when the host that started it is gone (a
// plugin must not outlive it, holding credentials and connections): its
// parent process id changes when the parent dies. On Linux the host also
// asks the kernel for a parent-death signal; this covers everywhere else.
func exitWithParent(ppid int, log hclog.Logger) {
	for range time.Tick(parentPoll) {
		if os.Getppid() != ppid {
			log.Warn("the knhk host that started this plugin is gone; exiting", "host_pid", ppid)
			os.Exit(1)
		}
	}
}

// recoverPanics keeps one bad request from killing the plugin: a panic in a
// provider method becomes an Internal error for that call.
func recoverPanics(log hclog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("provider panicked", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "provider panicked in %s: %v", info.FullMethod, r)
			}
		}()
		return h(ctx, req)
	}
}

// recoverStreamPanics is recoverPanics for streaming calls (SignBatch).
func recoverStreamPanics(log hclog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("provider panicked", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "provider panicked in %s: %v", info.FullMethod, r)
			}
		}()
		return h(srv, ss)
	}
}
