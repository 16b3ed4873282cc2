// Package contract holds what both sides of the plugin boundary agree on
// besides the generated protobuf code: the go-plugin handshake, the plugin
// name in go-plugin's plugin map, message size limits and the gRPC options
// that go with them. The plugin SDK (package shared) serves with it; the
// host side (package pluginrpc) dials with it. Nothing here imports shared,
// so both may import this package.
package contract

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	kmsv1 "github.com/knhk/knhk/shared/proto/knhk/kms/v1"
)

// ProtocolVersion is the version of the wire contract (proto package
// knhk.kms.v1). The host refuses a plugin that speaks another.
const ProtocolVersion = 1

// PluginName is the key of the provider in go-plugin's plugin map.
const PluginName = "kms"

// MaxMessageSize bounds one gRPC message in either direction (whole-message
// signing sends the message across).
const MaxMessageSize = 64 << 20

// flowWindow is the fixed HTTP/2 flow-control window of both sides: no
// bandwidth-delay probing, whose pings cost a round trip's worth of
// wake-ups on a local socket.
const flowWindow = 4 << 20

// ReasonUnsupportedAlgorithm is the ErrorDetail reason that keeps
// "unsupported algorithm" distinct from other INVALID_ARGUMENT errors.
const ReasonUnsupportedAlgorithm = "UNSUPPORTED_ALGORITHM"

// LogLevelEnv is the environment variable through which the host passes
// its log level to a plugin at launch.
const LogLevelEnv = "KNHK_LOG_LEVEL"

// Handshake is shared by host and plugins. The cookie only keeps people from
// running a plugin by hand; it is not a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "KNHK_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "4e1b7d0c6f2a4c59a8d3e0b5f7c2a9e1-knhk-kms",
}

// Plugin is the go-plugin glue. In a plugin it registers Service; on the
// host side it hands back the raw connection, which pluginrpc wraps.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Service is the service a plugin serves; nil on the host side.
	Service kmsv1.KeyProviderServer
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// GRPCServer registers the provider's service.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Service == nil {
		return errors.New("knhk: no provider to serve")
	}
	kmsv1.RegisterKeyProviderServer(s, p.Service)
	return nil
}

// GRPCClient returns the connection to the plugin.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

// Plugins is go-plugin's plugin set with the one knhk provider in it.
func Plugins(server kmsv1.KeyProviderServer) map[string]plugin.Plugin {
	return map[string]plugin.Plugin{PluginName: &Plugin{Service: server}}
}

// ServerOptions are the gRPC server options of every plugin.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageSize), grpc.MaxSendMsgSize(MaxMessageSize),
		grpc.InitialWindowSize(flowWindow), grpc.InitialConnWindowSize(flowWindow),
	}
}

// DialOptions are the gRPC dial options of the host's side.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
		grpc.WithInitialWindowSize(flowWindow), grpc.WithInitialConnWindowSize(flowWindow),
	}
}
