package pluginrpc

import (
	"fmt"
	"os/exec"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/knhk/knhk/internal/contract"
)

// ClientConfig is the go-plugin configuration the host uses to launch a
// plugin binary: knhk's handshake, gRPC only, AutoMTLS on. Callers add
// SecureConfig, StartTimeout and Logger.
func ClientConfig(cmd *exec.Cmd) *plugin.ClientConfig {
	return &plugin.ClientConfig{
		HandshakeConfig:  contract.Handshake,
		Plugins:          contract.Plugins(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  contract.DialOptions(),
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
