package sidecar

import (
	"context"
	"fmt"
	"net/http"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// checkReady checks the keys' plugins now and every readyEvery until ctx
// ends, and publishes the result to /readyz and grpc.health.v1.
func (s *Server) checkReady(ctx context.Context) {
	t := time.NewTicker(readyEvery)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, readyEvery)
		err := s.c.ready(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.ready.Lock()
		changed := (err == nil) != (s.ready.err == nil)
		s.ready.err = err
		s.ready.Unlock()
		if changed {
			if err != nil {
				s.c.log().Warn("not ready", "error", err)
			} else {
				s.c.log().Info("ready")
			}
		}
		s.setServing(err == nil)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setServing sets what grpc.health.v1 answers, for the whole server ("")
// and for the Signer service.
func (s *Server) setServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(sidecarv1.Signer_ServiceDesc.ServiceName, st)
}

// healthHandler serves /healthz (200 while the daemon runs), /readyz
// (200 when every configured key's plugin answered the last check, 503
// with the reason otherwise, and while draining) and, when configured,
// /metrics (Config.MetricsHandler).
func (s *Server) healthHandler() http.Handler {
	mux := http.NewServeMux()
	if h := s.c.cfg().MetricsHandler; h != nil {
		mux.Handle("GET /metrics", h)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-s.c.draining():
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		default:
		}
		s.ready.Lock()
		err := s.ready.err
		s.ready.Unlock()
		if err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}
