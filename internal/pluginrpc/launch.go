package pluginrpc

import (
	"fmt"
	"os/exec"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/knhk/knhk/internal/contract"
	"github.com/knhk/knhk/telemetry"
)

// ClientConfig is the go-plugin configuration the host uses to launch a
// plugin binary: knhk's handshake, gRPC only, AutoMTLS on, and the
// connection instrumented by telemetry.GRPCClientHandler (the global
// OpenTelemetry providers). Callers add SecureConfig, StartTimeout and
// Logger.
func ClientConfig(cmd *exec.Cmd) *plugin.ClientConfig {
	return ClientConfigWith(cmd, telemetry.GRPCClientHandler())
}

// ClientConfigWith is ClientConfig with the connection's OpenTelemetry
// instrumentation given: the host's, made from the providers in its
// configuration. A nil handler leaves the connection uninstrumented.
func ClientConfigWith(cmd *exec.Cmd, h stats.Handler) *plugin.ClientConfig {
	dial := contract.DialOptions()
	if h != nil {
		dial = append(dial, grpc.WithStatsHandler(h))
	}
	return &plugin.ClientConfig{
		HandshakeConfig:  contract.Handshake,
		Plugins:          contract.Plugins(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  dial,
	}
}

// Dispense connects to a started go-plugin client and returns the provider.
func Dispense(c plugin.ClientProtocol) (*Client, error) {
	raw, err := c.Dispense(contract.PluginName)
	if err != nil {
		return nil, err
	}
	conn, ok := raw.(*grpc.ClientConn)
	if !ok {
		return nil, fmt.Errorf("knhk: plugin dispensed %T, not a gRPC connection", raw)
	}
	return NewClient(conn), nil
}
