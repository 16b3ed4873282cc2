package shared

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ServeOption configures Serve.
type ServeOption func(*serveConfig) error

type serveConfig struct {
	logger hclog.Logger
	test   *plugin.ServeTestConfig
}

// WithLogger sets the logger the plugin writes through; the host shows its
// lines under the plugin's name. The default writes JSON to stderr, which is
// what go-plugin forwards to the host.
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

// Serve runs p as a knhk provider plugin. A plugin's main calls it and
// nothing else; it returns only in test mode, when the test ends, or with
// an error for a bad combination of options. Run the binary through the
// host, not by hand.
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
		cfg.logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, JSONFormat: true})
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         map[string]plugin.Plugin{PluginName: &GRPCPlugin{Impl: p}},
		GRPCServer: func(o []grpc.ServerOption) *grpc.Server {
			o = append(o,
				grpc.MaxRecvMsgSize(MaxMessageSize), grpc.MaxSendMsgSize(MaxMessageSize),
				grpc.InitialWindowSize(flowWindow), grpc.InitialConnWindowSize(flowWindow),
				grpc.ChainUnaryInterceptor(recoverPanics(cfg.logger)))
			return grpc.NewServer(o...)
		},
		Logger: cfg.logger,
		Test:   cfg.test,
	})
	return nil
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
