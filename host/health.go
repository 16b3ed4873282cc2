package host

import (
	"context"
	"fmt"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/knhk/knhk/shared"
)

// Ping reports whether provider's plugin can take calls: it launches the
// plugin when none runs (so a plugin that cannot start, or is refused,
// fails here) and asks the running one for its health over its
// connection, within the call timeout and ctx. A daemon's readiness check
// uses it.
func (h *Host) Ping(ctx context.Context, provider string) error {
	m, err := h.plugin(provider)
	if err != nil {
		return err
	}
	inst, err := m.acquire(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, min(h.cfg.CallTimeout, 5*time.Second))
	defer cancel()
	if _, err := healthpb.NewHealthClient(inst.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: goplugin.GRPCServiceName}); err != nil {
		return fmt.Errorf("%w: plugin %s does not answer its health check: %v", shared.ErrUnavailable, provider, err)
	}
	return nil
}
