package sidecar

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/contract"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
	"github.com/knhk/knhk/telemetry"
)

// minGRPCMessage is the least size of gRPC message the daemon takes: twice
// what package client puts in one SignStream message, so a stream never
// ends because many small requests shared a message.
const minGRPCMessage = 2 << 20

// readyEvery is how often the daemon checks that its keys' plugins answer
// (what /readyz and grpc.health.v1 report).
const readyEvery = 10 * time.Second

// Server is the signing daemon: one host.Host behind a unix socket and,
// when configured, a mutual-TLS gRPC listener, a mutual-TLS HTTP/JSON
// listener and a plain health endpoint.
type Server struct {
	c         *core
	health    *health.Server
	listening chan struct{} // closed once Serve listens
	ready     struct {
		sync.Mutex
		err error // nil: ready
	}
}

// New checks cfg and returns a daemon over h. Nothing listens until
// Serve. The daemon does not close h.
func New(h *host.Host, cfg Config) (*Server, error) {
	cfg, err := cfg.checked(h.KeyGroups())
	if err != nil {
		return nil, err
	}
	s := &Server{c: newCore(h, cfg), health: health.NewServer(), listening: make(chan struct{})}
	s.ready.err = errors.New("not checked yet")
	s.setServing(false)
	return s, nil
}

// Listening is closed once Serve has opened every listener: callers may
// connect from then on.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// SocketPath is the unix socket the daemon listens on.
func (s *Server) SocketPath() string { return s.c.cfg().Socket.Path }

// Reload swaps in a new configuration (keys, policy, limits, the JWT
// signer) for every call that starts afterwards, all at once. Listener
// settings (socket, TLS and HTTP addresses and files, SPIFFE, health
// address) and the metrics handler take effect only at the next start; a change to
// the listener settings is logged. An invalid cfg changes nothing.
func (s *Server) Reload(cfg Config) error {
	cfg, err := cfg.checked(s.c.h.KeyGroups())
	if err != nil {
		return err
	}
	old := s.c.cfg()
	if old.Socket != cfg.Socket || !reflect.DeepEqual(old.TLS, cfg.TLS) || !reflect.DeepEqual(old.HTTP, cfg.HTTP) || old.HealthAddress != cfg.HealthAddress || !reflect.DeepEqual(old.SPIFFE, cfg.SPIFFE) {
		cfg.Logger.Warn("listener settings changed: they take effect when the daemon restarts")
		cfg.Socket, cfg.TLS, cfg.HTTP, cfg.HealthAddress, cfg.SPIFFE = old.Socket, old.TLS, old.HTTP, old.HealthAddress, old.SPIFFE
	}
	// Handlers do not compare; the one served is the one Serve started with.
	cfg.MetricsHandler = old.MetricsHandler
	s.c.setConfig(cfg)
	cfg.Logger.Info("configuration reloaded", "keys", len(cfg.Keys), "policies", len(cfg.Policies))
	return nil
}

// Serve listens and serves until ctx ends, then drains: new calls get
// ErrDraining (gRPC UNAVAILABLE), calls in flight finish within
// DrainTimeout (those still running then are cancelled), listeners close
// and the socket file is removed. It returns nil after a drain, or the
// error that kept it from listening.
func (s *Server) Serve(ctx context.Context) error {
	cfg := s.c.cfg()
	var sp *spiffeSources
	if cfg.SPIFFE != nil {
		var err error
		if sp, err = openSPIFFE(ctx, cfg.SPIFFE, cfg.Logger); err != nil {
			return err
		}
		defer sp.close()
	}
	ls, err := openListeners(cfg, sp)
	if err != nil {
		return err
	}
	defer os.Remove(cfg.Socket.Path)
	var (
		grpcs []*grpc.Server
		https []*http.Server
		errc  = make(chan error, 4)
	)
	serveGRPC := func(creds credentials.TransportCredentials, l net.Listener) {
		gs := s.newGRPC(creds)
		grpcs = append(grpcs, gs)
		go func() {
			if err := gs.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- err
			}
		}()
	}
	serveHTTP := func(h http.Handler, l net.Listener) {
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		https = append(https, hs)
		go func() {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	serveGRPC(unixCreds{}, ls.unix)
	if ls.grpcTLS != nil {
		serveGRPC(ls.grpcCreds, ls.grpcTLS)
	}
	if ls.http != nil {
		serveHTTP(newHTTPHandler(s.c, ls.httpID), ls.http)
	}
	if ls.health != nil {
		serveHTTP(s.healthHandler(), ls.health)
	}
	cfg.Logger.Info("serving", "socket", cfg.Socket.Path)
	close(s.listening)

	checks, stopChecks := context.WithCancel(context.Background())
	defer stopChecks()
	go s.checkReady(checks)

	select {
	case <-ctx.Done():
	case err := <-errc:
		s.stop(grpcs, https, 0)
		return err
	}
	cfg = s.c.cfg()
	cfg.Logger.Info("draining", "timeout", cfg.DrainTimeout)
	stopChecks()
	s.setServing(false)
	s.health.Shutdown()
	s.stop(grpcs, https, cfg.DrainTimeout)
	cfg.Logger.Info("stopped")
	return nil
}

// newGRPC is a gRPC server with every service the daemon speaks.
func (s *Server) newGRPC(creds credentials.TransportCredentials) *grpc.Server {
	max := max(s.c.cfg().MaxRequestBytes, minGRPCMessage)
	gs := grpc.NewServer(
		grpc.Creds(creds),
		grpc.MaxRecvMsgSize(max),
		grpc.MaxSendMsgSize(contract.MaxMessageSize),
		// Calls run on goroutines that live on, whose stacks a signature
		// has grown already, not on a new goroutine per call.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		// A server span per call, continuing the caller's trace context;
		// the host's spans below it (grpc.health.v1 is not traced).
		grpc.StatsHandler(telemetry.GRPCServerHandler()),
	)
	sidecarv1.RegisterSignerServer(gs, newGRPCAPI(s.c))
	registerJWT(gs, s.c)
	healthpb.RegisterHealthServer(gs, s.health)
	return gs
}

// stop drains: new calls are refused, calls in flight get up to timeout,
// then everything closes.
func (s *Server) stop(grpcs []*grpc.Server, https []*http.Server, timeout time.Duration) {
	s.c.startDrain()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, gs := range grpcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { gs.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				gs.Stop()
			}
		}()
	}
	for _, hs := range https {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if hs.Shutdown(ctx) != nil {
				hs.Close()
			}
		}()
	}
	wg.Wait()
}
