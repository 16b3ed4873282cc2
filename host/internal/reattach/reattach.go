// Package reattach carries go-plugin reattach configurations from
// host/hosttest to host.New: the host then attaches to plugins already
// served (in the test process) instead of launching binaries. It is
// internal so that the host's public API has no test hook.
package reattach

import (
	"context"

	"github.com/hashicorp/go-plugin"
)

type key struct{}

// With returns ctx carrying the plugins to attach to, keyed by provider
// name; host.New reads it.
func With(ctx context.Context, plugins map[string]*plugin.ReattachConfig) context.Context {
	return context.WithValue(ctx, key{}, plugins)
}

// From returns what With put in ctx (nil if nothing).
func From(ctx context.Context) map[string]*plugin.ReattachConfig {
	m, _ := ctx.Value(key{}).(map[string]*plugin.ReattachConfig)
	return m
}
