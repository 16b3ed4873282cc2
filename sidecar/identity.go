package sidecar

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/knhk/knhk/shared"
)

// Caller is who is calling, as the policy sees it.
type Caller struct {
	// Principals name the caller, most specific first: "unix:uid=N" and
	// "unix:gid=N" on the unix socket; on TCP with static certificates
	// the client certificate's SPIFFE ID ("spiffe://...") when it has
	// one, then "x509:" and its subject distinguished name (RFC 2253
	// form, as pkix.Name.String writes it: "x509:CN=web,O=Example"); on
	// a SPIFFE listener (Config.SPIFFE) only the SPIFFE ID of the
	// caller's X.509-SVID or JWT-SVID.
	Principals []string
	// PID is the calling process on the unix socket (0 on TCP).
	PID int
}

// String is the caller's first principal, for messages and limits.
func (c Caller) String() string {
	if len(c.Principals) == 0 {
		return "anonymous"
	}
	return c.Principals[0]
}

// errNoIdentity: a call came without a transport that identifies it.
var errNoIdentity = fmt.Errorf("%w: the caller could not be identified", shared.ErrPermissionDenied)

// peerCred is the AuthInfo of a unix socket connection: the peer's
// credentials from SO_PEERCRED, read when it connected.
type peerCred struct {
	credentials.CommonAuthInfo
	UID, GID uint32
	PID      int32
}

func (peerCred) AuthType() string { return "unix-peercred" }

// unixCreds is gRPC's transport credentials for the unix socket: no
// encryption (the kernel carries the bytes), the peer's identity from
// SO_PEERCRED.
type unixCreds struct{}

func (unixCreds) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, nil, errors.New("unixCreds are server-side only")
}

func (unixCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, nil, fmt.Errorf("peer credentials need a unix socket, got %T", conn)
	}
	cred, err := peerCredOf(uc)
	if err != nil {
		return nil, nil, err
	}
	return conn, cred, nil
}

func (unixCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "unix-peercred"}
}
func (unixCreds) Clone() credentials.TransportCredentials { return unixCreds{} }
func (unixCreds) OverrideServerName(string) error         { return nil }

// peerCredOf reads a unix connection's peer credentials.
func peerCredOf(uc *net.UnixConn) (peerCred, error) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return peerCred{}, err
	}
	var ucred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		ucred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peerCred{}, err
	}
	if serr != nil {
		return peerCred{}, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	// The kernel vouches for the peer: as safe as a local connection.
	return peerCred{
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
		UID:            ucred.Uid, GID: ucred.Gid, PID: ucred.Pid,
	}, nil
}

// callerOfPeer is the Caller of a unix socket peer.
func callerOfPeer(p peerCred) Caller {
	return Caller{
		Principals: []string{"unix:uid=" + strconv.FormatUint(uint64(p.UID), 10), "unix:gid=" + strconv.FormatUint(uint64(p.GID), 10)},
		PID:        int(p.PID),
	}
}

// callerFromContext is the Caller of a gRPC call.
func callerFromContext(ctx context.Context) (Caller, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Caller{}, errNoIdentity
	}
	switch ai := p.AuthInfo.(type) {
	case peerCred:
		return callerOfPeer(ai), nil
	case credentials.TLSInfo:
		return callerFromTLS(&ai.State)
	case spiffeAuthInfo:
		return callerOfSVID(ai.ID), nil
	}
	return Caller{}, errNoIdentity
}

// callerFromTLS is the Caller of a verified mutual-TLS connection: the
// leaf certificate's SPIFFE ID when it has one, else its subject.
func callerFromTLS(cs *tls.ConnectionState) (Caller, error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Caller{}, errNoIdentity
	}
	return callerOfCert(cs.VerifiedChains[0][0]), nil
}

// callerOfCert names a client certificate. A certificate whose first
// spiffe:// URI SAN is a valid SPIFFE ID is that ID (its subject follows,
// so policies may name either); an invalid one (such as a path with "..")
// names nobody.
func callerOfCert(cert *x509.Certificate) Caller {
	var c Caller
	for _, u := range cert.URIs {
		if strings.EqualFold(u.Scheme, "spiffe") {
			if id, err := spiffeid.FromURI(u); err == nil {
				c.Principals = append(c.Principals, id.String())
			}
			break
		}
	}
	c.Principals = append(c.Principals, "x509:"+cert.Subject.String())
	return c
}
