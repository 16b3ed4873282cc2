package shared

import (
	"context"
	"fmt"
	"os/exec"

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

// flowWindow is the fixed HTTP/2 flow-control window of both sides.
const flowWindow = 4 << 20

// Handshake is shared by host and plugins. The cookie only keeps people from
// running a plugin by hand; it is not a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "KNHK_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "4e1b7d0c6f2a4c59a8d3e0b5f7c2a9e1-knhk-kms",
}

// PluginMap is the go-plugin plugin set for the host side.
func PluginMap() map[string]plugin.Plugin {
	return map[string]plugin.Plugin{PluginName: &GRPCPlugin{}}
}

// GRPCPlugin is the go-plugin glue: it serves a Provider in the plugin and
// hands the host a *Client.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the provider served; nil on the host side.
	Impl Provider
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the provider's service.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return fmt.Errorf("knhk: no provider to serve")
	}
	kmsv1.RegisterKeyProviderServer(s, newServer(p.Impl))
	return nil
}

// GRPCClient returns a *Client over the plugin's connection.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return NewClient(c), nil
}

// ClientConfig is the go-plugin configuration the host uses to launch a
// plugin binary: knhk's handshake, gRPC only, AutoMTLS on. Callers add
// SecureConfig, StartTimeout and Logger.
func ClientConfig(cmd *exec.Cmd) *plugin.ClientConfig {
	return &plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          PluginMap(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
			// Fixed flow-control windows: no bandwidth-delay probing, whose
			// pings cost a round trip's worth of wake-ups on a local socket.
			grpc.WithInitialWindowSize(flowWindow), grpc.WithInitialConnWindowSize(flowWindow)},
	}
}

// Dispense connects to a started go-plugin client and returns the provider.
func Dispense(c plugin.ClientProtocol) (*Client, error) {
	raw, err := c.Dispense(PluginName)
	if err != nil {
		return nil, err
	}
	cl, ok := raw.(*Client)
	if !ok {
		return nil, fmt.Errorf("knhk: plugin dispensed %T, not a knhk provider", raw)
	}
	return cl, nil
}
