package host

import (
	"context"
	"fmt"
	"net"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/knhk/knhk/internal/pluginrpc"
)

// attach connects to a plugin served elsewhere (go-plugin reattach/test
// mode, set up by host/hosttest). Reattached plugins get no file checks,
// no lock-file check and no AutoMTLS. The host never kills that process;
// dropping the instance closes the connection only, and the next call
// reattaches.
func (m *managed) attach(rc *goplugin.ReattachConfig) (*instance, error) {
	done := make(chan struct{})
	r := *rc
	r.Test = true
	r.ReattachFunc = func() (runner.AttachedRunner, error) { return &attached{addr: rc.Addr, done: done}, nil }
	cfg := pluginrpc.ClientConfigWith(nil, m.h.tel.grpc)
	cfg.Cmd, cfg.Reattach, cfg.AutoMTLS = nil, &r, false
	cfg.Logger = m.log
	client := goplugin.NewClient(cfg)
	proto, err := client.Client()
	if err == nil {
		var inst *instance
		if inst, err = newInstance(client, proto, nil, done, m.log); err == nil {
			return inst, nil
		}
	}
	close(done)
	client.Kill()
	return nil, fmt.Errorf("%w: reattaching plugin %s at %v: %v", ErrHandshake, m.name, rc.Addr, err)
}

// attached is the go-plugin runner for a reattached plugin: it never
// signals the process (which may be the test process itself) and its Wait
// ends when the host drops the instance.
type attached struct {
	addr net.Addr
	done chan struct{}
}

func (a *attached) Wait(context.Context) error { <-a.done; return nil }
func (a *attached) Kill(context.Context) error { return nil }
func (a *attached) ID() string                 { return "reattach:" + a.addr.String() }
func (a *attached) PluginToHost(n, addr string) (string, string, error) {
	return n, addr, nil
}
func (a *attached) HostToPlugin(n, addr string) (string, string, error) {
	return n, addr, nil
}
