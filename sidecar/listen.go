package sidecar

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"google.golang.org/grpc/credentials"
)

// listenUnix listens on the unix socket at path with the given file mode.
// A socket file left by a daemon that died is replaced; one a live daemon
// answers on is an error, and so is any other kind of file. The socket is
// made under a temporary name, given its mode, then renamed into place,
// so no caller ever sees it with looser permissions.
func listenUnix(path string, mode os.FileMode) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it or choose another --socket", path)
		}
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("another daemon is serving on %s", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("check the existing socket %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove the stale socket %s: %w", path, err)
		}
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	_ = os.Remove(tmp)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false) // the file is renamed; Server removes it
	if err := os.Chmod(tmp, mode); err != nil {
		l.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("socket mode: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		os.Remove(tmp)
		return nil, err
	}
	return l, nil
}

// serverTLS is the TLS configuration of a mutual-TLS listener with
// static files: TLS 1.3, client certificates required and verified
// against the client CAs (with optionalCert, verified when given: an
// HTTP caller may bring a JWT-SVID instead).
func serverTLS(t *TLSConfig, optionalCert bool) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: server certificate: %w", ErrConfig, t.Address, err)
	}
	pem, err := os.ReadFile(t.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: client CA: %w", ErrConfig, t.Address, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: %s: client_ca_file %s holds no PEM certificate", ErrConfig, t.Address, t.ClientCAFile)
	}
	auth := tls.RequireAndVerifyClientCert
	if optionalCert {
		auth = tls.VerifyClientCertIfGiven
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   auth,
	}, nil
}

// listeners are the daemon's open listeners; nil when not configured.
type listeners struct {
	unix      *net.UnixListener
	grpcTLS   net.Listener // TCP; gRPC's credentials do the TLS
	grpcCreds credentials.TransportCredentials
	http      net.Listener // TLS already
	httpID    httpIdentity
	health    net.Listener
}

// openListeners opens every listener cfg asks for, or none: on an error
// those already open are closed again (and the socket file removed).
// Listeners without certificate files take theirs from sp.
func openListeners(cfg *Config, sp *spiffeSources) (*listeners, error) {
	ul, err := listenUnix(cfg.Socket.Path, cfg.Socket.Mode)
	if err != nil {
		return nil, err
	}
	ls := &listeners{unix: ul}
	opened := []net.Listener{ul}
	fail := func(err error) (*listeners, error) {
		for _, l := range opened {
			l.Close()
		}
		os.Remove(cfg.Socket.Path)
		return nil, err
	}
	if t := cfg.TLS; t != nil {
		l, tc, err := listenTLS("tls", t, sp, false)
		if err != nil {
			return fail(err)
		}
		opened = append(opened, l)
		ls.grpcTLS, ls.grpcCreds = l, credentials.NewTLS(tc)
		if t.usesSPIFFE() {
			ls.grpcCreds = spiffeCreds{ls.grpcCreds}
		}
	}
	if t := cfg.HTTP; t != nil {
		jwt := sp != nil && sp.jwt != nil
		l, tc, err := listenTLS("http", t, sp, jwt)
		if err != nil {
			return fail(err)
		}
		opened = append(opened, l)
		ls.http = tls.NewListener(l, tc)
		ls.httpID = httpIdentity{spiffe: t.usesSPIFFE()}
		if jwt {
			ls.httpID.jwt = sp
		}
	}
	if cfg.HealthAddress != "" {
		if ls.health, err = net.Listen("tcp", cfg.HealthAddress); err != nil {
			return fail(fmt.Errorf("health listener: %w", err))
		}
	}
	return ls, nil
}

// listenTLS listens on t's TCP address and makes its TLS configuration:
// from t's files, or from sp when t names none.
func listenTLS(what string, t *TLSConfig, sp *spiffeSources, optionalCert bool) (net.Listener, *tls.Config, error) {
	var tc *tls.Config
	if t.usesSPIFFE() {
		if sp == nil {
			return nil, nil, fmt.Errorf("%w: %s listener on %s has no certificate files and the daemon no SPIFFE identity", ErrConfig, what, t.Address)
		}
		tc = sp.serverTLS(optionalCert)
	} else {
		var err error
		if tc, err = serverTLS(t, optionalCert); err != nil {
			return nil, nil, err
		}
	}
	l, err := net.Listen("tcp", t.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("%s listener: %w", what, err)
	}
	return l, tc, nil
}
