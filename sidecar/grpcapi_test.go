package sidecar

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/internal/apierr"
	"github.com/knhk/knhk/internal/keyfmt"
	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// grpcSelf is this test process's principal on the unix socket.
func grpcSelf() string { return fmt.Sprintf("unix:uid=%d", os.Getuid()) }

// grpcAllowAll allows this process every operation on every key.
func grpcAllowAll() Policy {
	return Policy{Keys: []string{"*"}, Principals: []string{grpcSelf()}, Operations: []Op{"*"}}
}

// grpcServeConn serves a gRPC server on a unix socket with the daemon's
// peer credentials (register adds its services) and returns a connection
// to it; both stop when the test ends.
func grpcServeConn(t *testing.T, register func(*grpc.Server), opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sock")
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(unixCreds{}))
	register(gs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient("unix://"+path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return conn
}

// grpcServe serves the native API over c and returns its client.
func grpcServe(t *testing.T, c *core) sidecarv1.SignerClient {
	t.Helper()
	conn := grpcServeConn(t, func(gs *grpc.Server) { sidecarv1.RegisterSignerServer(gs, newGRPCAPI(c)) })
	return sidecarv1.NewSignerClient(conn)
}

// grpcReason is the knhk ErrorInfo reason of a status error.
func grpcReason(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == apierr.Domain {
			return info.GetReason()
		}
	}
	return ""
}

// grpcWantErr checks a call's error's code and reason.
func grpcWantErr(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	if status.Code(err) != code || grpcReason(err) != reason {
		t.Fatalf("got error %v (reason %q), want code %s reason %s", err, grpcReason(err), code, reason)
	}
}

// grpcCreate creates key with the API and returns its public key.
func grpcCreate(t *testing.T, cl sidecarv1.SignerClient, key string, kt shared.KeyType) *sidecarv1.PublicKeyResponse {
	t.Helper()
	resp, err := cl.CreateKey(context.Background(), &sidecarv1.CreateKeyRequest{Key: key, KeyType: string(kt)})
	if err != nil {
		t.Fatalf("create %s: %v", key, err)
	}
	return resp.GetPublicKey()
}

// grpcStdVerify checks sig with the standard library against a DER
// public key: over digest, or over message (hashed with alg's hash unless
// alg is EdDSA).
func grpcStdVerify(t *testing.T, der []byte, alg shared.Algorithm, digest, message, sig []byte) bool {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("public key DER: %v", err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if digest == nil {
			h := alg.Hash().New()
			h.Write(message)
			digest = h.Sum(nil)
		}
		return ecdsa.VerifyASN1(k, digest, sig)
	case ed25519.PublicKey:
		if digest != nil {
			t.Fatal("Ed25519 signs messages, not digests")
		}
		return ed25519.Verify(k, message, sig)
	}
	t.Fatalf("test verifies ECDSA and Ed25519 keys, not %T", pub)
	return false
}

func TestGRPCSignVerifyAndPublicKey(t *testing.T) {
	c := testCore(t, Config{
		AllowReferences: true,
		Keys:            map[string]string{"release": "fake:release?seed=b"},
		Policies:        []Policy{grpcAllowAll()},
	})
	cl := grpcServe(t, c)
	ctx := context.Background()
	keys := []struct {
		key string
		kt  shared.KeyType
		alg shared.Algorithm
	}{
		{"fake:demo?seed=a", shared.ECP256, shared.ES256},
		{"fake:edkey?seed=a", shared.Ed25519, shared.EdDSA},
		{"release", shared.ECP256, shared.ES256},
	}
	for _, k := range keys {
		created := grpcCreate(t, cl, k.key, k.kt)
		pk, err := cl.PublicKey(ctx, &sidecarv1.PublicKeyRequest{Key: k.key})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pk.GetDer(), created.GetDer()) || pk.GetKeyType() != string(k.kt) || pk.GetVersion() != "1" {
			t.Fatalf("%s: public key %s v%s differs from the created one", k.key, pk.GetKeyType(), pk.GetVersion())
		}
		if blk, _ := pem.Decode([]byte(pk.GetPem())); blk == nil || blk.Type != "PUBLIC KEY" || !bytes.Equal(blk.Bytes, pk.GetDer()) {
			t.Fatalf("%s: PEM is not the DER key: %q", k.key, pk.GetPem())
		}
		var jwk keyfmt.JWK
		if err := json.Unmarshal([]byte(pk.GetJwk()), &jwk); err != nil {
			t.Fatalf("%s: JWK: %v", k.key, err)
		}
		jwkPub, err := jwk.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		derPub, _ := x509.ParsePKIXPublicKey(pk.GetDer())
		if eq, ok := derPub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(jwkPub) {
			t.Fatalf("%s: JWK is not the DER key", k.key)
		}
		if jwk.Kid != jwk.Thumbprint() || jwk.Alg != string(k.alg) {
			t.Fatalf("%s: JWK kid %q alg %q, want thumbprint %q alg %s", k.key, jwk.Kid, jwk.Alg, jwk.Thumbprint(), k.alg)
		}

		msg := []byte("payload for " + k.key)
		digest := sha256.Sum256(msg)
		cases := []struct {
			name            string
			digest, message []byte
		}{
			{"message", nil, msg},
			{"empty message", nil, nil},
		}
		if k.alg != shared.EdDSA {
			cases = append(cases, struct {
				name            string
				digest, message []byte
			}{"digest", digest[:], nil})
		}
		for _, tc := range cases {
			req := &sidecarv1.SignRequest{Key: k.key, Digest: tc.digest, Message: tc.message, Algorithm: string(k.alg)}
			if tc.name == "message" {
				req.Algorithm = "" // the key type's default
			}
			resp, err := cl.Sign(ctx, req)
			if err != nil {
				t.Fatalf("%s %s: %v", k.key, tc.name, err)
			}
			if resp.GetAlgorithm() != string(k.alg) || resp.GetVersion() != "1" {
				t.Fatalf("%s %s: signed with %s v%s", k.key, tc.name, resp.GetAlgorithm(), resp.GetVersion())
			}
			if !grpcStdVerify(t, pk.GetDer(), k.alg, tc.digest, tc.message, resp.GetSignature()) {
				t.Fatalf("%s %s: the signature does not verify with the standard library", k.key, tc.name)
			}
			v, err := cl.Verify(ctx, &sidecarv1.VerifyRequest{Key: k.key, Digest: tc.digest, Message: tc.message, Signature: resp.GetSignature(), Algorithm: string(k.alg)})
			if err != nil || !v.GetValid() {
				t.Fatalf("%s %s: Verify = %v, %v; want valid", k.key, tc.name, v.GetValid(), err)
			}
			bad := bytes.Clone(resp.GetSignature())
			bad[len(bad)/2] ^= 1
			v, err = cl.Verify(ctx, &sidecarv1.VerifyRequest{Key: k.key, Digest: tc.digest, Message: tc.message, Signature: bad, Algorithm: string(k.alg)})
			if err != nil || v.GetValid() {
				t.Fatalf("%s %s: Verify of a flipped signature = %v, %v; want invalid and no error", k.key, tc.name, v.GetValid(), err)
			}
		}
	}
}

func TestGRPCMetadataRotateList(t *testing.T) {
	c := testCore(t, Config{AllowReferences: true, Policies: []Policy{grpcAllowAll()}})
	cl := grpcServe(t, c)
	ctx := context.Background()
	const key = "fake:demo?seed=a"
	v1 := grpcCreate(t, cl, key, shared.ECP256)

	md, err := cl.Metadata(ctx, &sidecarv1.MetadataRequest{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if md.GetKeyId() != "demo" || md.GetKeyType() != "ec-p256" || md.GetCurrentVersion() != "1" ||
		len(md.GetVersions()) != 1 || md.GetVersions()[0].GetVersion() != "1" || !md.GetVersions()[0].GetEnabled() ||
		md.GetVersions()[0].GetCreated() == nil || strings.Join(md.GetAlgorithms(), ",") != "ES256" {
		t.Fatalf("metadata: %v", md)
	}

	rot, err := cl.Rotate(ctx, &sidecarv1.RotateRequest{Key: key})
	if err != nil || rot.GetVersion() != "2" {
		t.Fatalf("rotate = %v, %v; want version 2", rot, err)
	}
	v2, err := cl.PublicKey(ctx, &sidecarv1.PublicKeyRequest{Key: key, Version: "2"})
	if err != nil || v2.GetVersion() != "2" || bytes.Equal(v2.GetDer(), v1.GetDer()) {
		t.Fatalf("public key v2 = %v, %v; want a new key", v2, err)
	}
	msg := []byte("after rotation")
	for _, tc := range []struct {
		version, want string
		der           []byte
	}{{"", "2", v2.GetDer()}, {"1", "1", v1.GetDer()}} {
		sig, err := cl.Sign(ctx, &sidecarv1.SignRequest{Key: key, Message: msg, Version: tc.version})
		if err != nil || sig.GetVersion() != tc.want {
			t.Fatalf("sign version %q = %v, %v; want version %s", tc.version, sig, err, tc.want)
		}
		if !grpcStdVerify(t, tc.der, shared.ES256, nil, msg, sig.GetSignature()) {
			t.Fatalf("signature of version %s does not verify with its public key", tc.want)
		}
	}

	grpcCreate(t, cl, "fake:second?seed=a", shared.Ed25519)
	list, err := cl.ListKeys(ctx, &sidecarv1.ListKeysRequest{Provider: "fake", Params: map[string]string{"seed": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, k := range list.GetKeys() {
		got[k.GetKeyId()] = k.GetKeyType() + "/" + k.GetCurrentVersion()
	}
	if got["demo"] != "ec-p256/2" || got["second"] != "ed25519/1" {
		t.Fatalf("list: %v", got)
	}
}

func TestGRPCErrors(t *testing.T) {
	c := testCore(t, Config{
		AllowReferences: true,
		Keys:            map[string]string{"release": "fake:release?seed=secretseed"},
		Policies: []Policy{{
			Keys: []string{"*"}, Principals: []string{grpcSelf()},
			Operations: []Op{OpCreate, OpPublicKey, OpVerify},
		}, {
			Keys: []string{"fake:*"}, Principals: []string{grpcSelf()}, Operations: []Op{OpSign},
		}},
	})
	cl := grpcServe(t, c)
	ctx := context.Background()
	pk := grpcCreate(t, cl, "release", shared.ECP256)
	grpcCreate(t, cl, "fake:demo?seed=a", shared.ECP256)

	_, err := cl.Sign(ctx, &sidecarv1.SignRequest{Key: "release", Message: []byte("x")})
	grpcWantErr(t, err, codes.PermissionDenied, "POLICY_DENIED")
	msg := status.Convert(err).Message()
	if !strings.Contains(msg, grpcSelf()) || !strings.Contains(msg, "sign") {
		t.Fatalf("denial %q does not name the principal and the operation", msg)
	}
	derB64 := base64.StdEncoding.EncodeToString(pk.GetDer())
	if strings.Contains(msg, "secretseed") || strings.Contains(msg, derB64[len(derB64)-20:]) || strings.Contains(msg, "PUBLIC KEY") {
		t.Fatalf("denial %q shows the key's reference or material", msg)
	}

	_, err = cl.Metadata(ctx, &sidecarv1.MetadataRequest{Key: "fake:demo?seed=a"})
	grpcWantErr(t, err, codes.PermissionDenied, "POLICY_DENIED")

	_, err = cl.PublicKey(ctx, &sidecarv1.PublicKeyRequest{Key: "nosuchname"})
	grpcWantErr(t, err, codes.NotFound, "KEY_NOT_FOUND")
	_, err = cl.PublicKey(ctx, &sidecarv1.PublicKeyRequest{Key: "fake:missing?seed=a"})
	grpcWantErr(t, err, codes.NotFound, "KEY_NOT_FOUND")

	_, err = cl.Sign(ctx, &sidecarv1.SignRequest{Key: "fake:demo?seed=a", Message: []byte("x"), Algorithm: "XX999"})
	grpcWantErr(t, err, codes.InvalidArgument, "UNSUPPORTED_ALGORITHM")
	_, err = cl.Sign(ctx, &sidecarv1.SignRequest{Key: "fake:demo?seed=a", Message: []byte("x"), Algorithm: "EdDSA"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("EdDSA with an EC key: %v, want InvalidArgument", err)
	}
	d := sha256.Sum256([]byte("x"))
	_, err = cl.Sign(ctx, &sidecarv1.SignRequest{Key: "fake:demo?seed=a", Digest: d[:], Message: []byte("x")})
	grpcWantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	_, err = cl.Verify(ctx, &sidecarv1.VerifyRequest{Key: "fake:demo?seed=a", Message: []byte("x"), Signature: []byte("sig"), Algorithm: "nope"})
	grpcWantErr(t, err, codes.InvalidArgument, "UNSUPPORTED_ALGORITHM")

	_, err = cl.CreateKey(ctx, &sidecarv1.CreateKeyRequest{Key: "fake:other?seed=a", KeyType: "ec-p999"})
	grpcWantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	_, err = cl.CreateKey(ctx, &sidecarv1.CreateKeyRequest{Key: "fake:other?seed=a"})
	grpcWantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	_, err = cl.CreateKey(ctx, &sidecarv1.CreateKeyRequest{Key: "fake:demo?seed=a", KeyType: "ec-p256"})
	grpcWantErr(t, err, codes.AlreadyExists, "ALREADY_EXISTS")
}

// grpcStreamItem is an item sent on a stream and what its result must be.
type grpcStreamItem struct {
	key             string
	der             []byte
	alg             shared.Algorithm
	digest, message []byte
}

func (it grpcStreamItem) request() *sidecarv1.SignRequest {
	return &sidecarv1.SignRequest{Key: it.key, Digest: it.digest, Message: it.message, Algorithm: string(it.alg)}
}

// grpcCheckResult checks a successful stream result against its item.
func grpcCheckResult(t *testing.T, r *sidecarv1.SignResult, it grpcStreamItem) {
	t.Helper()
	resp := r.GetResponse()
	if r.GetError() != nil || resp == nil {
		t.Fatalf("item %d failed: %v", r.GetId(), r.GetError())
	}
	if resp.GetAlgorithm() != string(it.alg) || !grpcStdVerify(t, it.der, it.alg, it.digest, it.message, resp.GetSignature()) {
		t.Fatalf("item %d: signature (%s) does not verify as %s over its own input", r.GetId(), resp.GetAlgorithm(), it.alg)
	}
}

// grpcRecvResults receives results until n have come.
func grpcRecvResults(t *testing.T, st sidecarv1.Signer_SignStreamClient, n int) map[uint64][]*sidecarv1.SignResult {
	t.Helper()
	got := map[uint64][]*sidecarv1.SignResult{}
	for count := 0; count < n; {
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("recv after %d of %d results: %v", count, n, err)
		}
		for _, r := range resp.GetResults() {
			got[r.GetId()] = append(got[r.GetId()], r)
			count++
		}
	}
	return got
}

func TestGRPCSignStream(t *testing.T) {
	c := testCore(t, Config{
		AllowReferences: true,
		Policies: []Policy{{
			Keys: []string{"fake:demo?*", "fake:ed?*"}, Principals: []string{grpcSelf()}, Operations: []Op{"*"},
		}, {
			Keys: []string{"*"}, Principals: []string{grpcSelf()}, Operations: []Op{OpCreate},
		}},
	})
	cl := grpcServe(t, c)
	ecDER := grpcCreate(t, cl, "fake:demo?seed=a", shared.ECP256).GetDer()
	edDER := grpcCreate(t, cl, "fake:ed?seed=a", shared.Ed25519).GetDer()
	grpcCreate(t, cl, "fake:other?seed=a", shared.ECP256)

	const senders, perSender = 4, 50
	items := map[uint64]grpcStreamItem{}
	for id := uint64(1); id <= senders*perSender; id++ {
		msg := []byte(fmt.Sprintf("stream item %d", id))
		switch id % 3 {
		case 0:
			d := sha256.Sum256(msg)
			items[id] = grpcStreamItem{key: "fake:demo?seed=a", der: ecDER, alg: shared.ES256, digest: d[:]}
		case 1:
			items[id] = grpcStreamItem{key: "fake:demo?seed=a", der: ecDER, alg: shared.ES256, message: msg}
		default:
			items[id] = grpcStreamItem{key: "fake:ed?seed=a", der: edDER, alg: shared.EdDSA, message: msg}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := cl.SignStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// gRPC allows one sender at a time on a stream.
	var sendMu sync.Mutex
	send := func(its ...*sidecarv1.SignItem) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return st.Send(&sidecarv1.SignStreamRequest{Items: its})
	}
	var wg sync.WaitGroup
	sendErrs := make(chan error, senders)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Messages of one to three items.
			for i := 0; i < perSender; {
				var batch []*sidecarv1.SignItem
				for n := 0; n < 1+i%3 && i < perSender; n++ {
					id := uint64(g*perSender + i + 1)
					batch = append(batch, &sidecarv1.SignItem{Id: id, Request: items[id].request()})
					i++
				}
				if err := send(batch...); err != nil {
					sendErrs <- err
					return
				}
			}
		}()
	}
	got := grpcRecvResults(t, st, len(items))
	wg.Wait()
	close(sendErrs)
	for err := range sendErrs {
		t.Fatalf("send: %v", err)
	}
	for id, it := range items {
		if len(got[id]) != 1 {
			t.Fatalf("item %d has %d results", id, len(got[id]))
		}
		grpcCheckResult(t, got[id][0], it)
	}

	// A denied item and a duplicate id fail alone: their neighbours in the
	// same message are signed.
	okItem := items[1]
	if err := send(
		&sidecarv1.SignItem{Id: 9001, Request: &sidecarv1.SignRequest{Key: "fake:other?seed=a", Message: []byte("x")}},
		&sidecarv1.SignItem{Id: 9002, Request: okItem.request()},
		&sidecarv1.SignItem{Id: 9003, Request: okItem.request()},
		&sidecarv1.SignItem{Id: 9003, Request: okItem.request()},
		&sidecarv1.SignItem{Id: 9004},
	); err != nil {
		t.Fatal(err)
	}
	got = grpcRecvResults(t, st, 5)
	if e := got[9001][0].GetError(); len(got[9001]) != 1 || codes.Code(e.GetCode()) != codes.PermissionDenied ||
		e.GetReason() != "POLICY_DENIED" || !strings.Contains(e.GetMessage(), grpcSelf()) {
		t.Fatalf("denied item: %v", got[9001])
	}
	grpcCheckResult(t, got[9002][0], okItem)
	if len(got[9003]) != 2 {
		t.Fatalf("duplicate id: %d results, want 2", len(got[9003]))
	}
	var dupErr *sidecarv1.Error
	for _, r := range got[9003] {
		if r.GetError() != nil {
			dupErr = r.GetError()
		} else {
			grpcCheckResult(t, r, okItem)
		}
	}
	if codes.Code(dupErr.GetCode()) != codes.InvalidArgument || dupErr.GetReason() != "INVALID_ARGUMENT" {
		t.Fatalf("duplicate id: error %v, want INVALID_ARGUMENT", dupErr)
	}
	if e := got[9004][0].GetError(); codes.Code(e.GetCode()) != codes.InvalidArgument {
		t.Fatalf("item without a request: %v", got[9004])
	}
	// The items' errors travel back as the client's sentinels.
	if err := apierr.FromParts(codes.Code(got[9001][0].GetError().GetCode()), "", got[9001][0].GetError().GetReason()); !errors.Is(err, ErrPolicyDenied) {
		t.Fatalf("item error %v is not ErrPolicyDenied", err)
	}

	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if resp, err := st.Recv(); err != io.EOF {
		t.Fatalf("after CloseSend: %v, %v; want io.EOF", resp, err)
	}
}

// grpcGate is the fake provider whose signatures with key id "held" wait
// until released (or their context ends), so that tests hold items in
// flight without timing.
type grpcGate struct {
	shared.Provider
	entered chan struct{} // one per held signature that started waiting
	release chan struct{} // closed: held signatures proceed
}

func (g *grpcGate) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	if req.Key.ID == "held" {
		g.entered <- struct{}{}
		select {
		case <-g.release:
		case <-ctx.Done():
			return shared.SignResponse{}, ctx.Err()
		}
	}
	return g.Provider.Sign(ctx, req)
}

// grpcGatedCore is testCore with the gate served as provider "gate".
func grpcGatedCore(t *testing.T, cfg Config) (*core, *grpcGate) {
	t.Helper()
	g := &grpcGate{Provider: fake.New(fake.Config{}), entered: make(chan struct{}, 64), release: make(chan struct{})}
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return newCore(hosttest.New(t, hosttest.WithProvider("gate", g)), cfg), g
}

func TestGRPCSignStreamLimitAndDrain(t *testing.T) {
	c, gate := grpcGatedCore(t, Config{AllowReferences: true, MaxCallsPerCaller: 1, Policies: []Policy{grpcAllowAll()}})
	cl := grpcServe(t, c)
	heldDER := grpcCreate(t, cl, "gate:held?seed=a", shared.ECP256).GetDer()
	grpcCreate(t, cl, "gate:free?seed=a", shared.ECP256)

	st, err := cl.SignStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	held := grpcStreamItem{key: "gate:held?seed=a", der: heldDER, alg: shared.ES256, message: []byte("held")}
	free := &sidecarv1.SignRequest{Key: "gate:free?seed=a", Message: []byte("free")}
	if err := st.Send(&sidecarv1.SignStreamRequest{Items: []*sidecarv1.SignItem{{Id: 1, Request: held.request()}}}); err != nil {
		t.Fatal(err)
	}
	<-gate.entered

	// The caller's one call is in flight: a second item is refused alone.
	if err := st.Send(&sidecarv1.SignStreamRequest{Items: []*sidecarv1.SignItem{{Id: 2, Request: free}}}); err != nil {
		t.Fatal(err)
	}
	got := grpcRecvResults(t, st, 1)
	if e := got[2][0].GetError(); codes.Code(e.GetCode()) != codes.ResourceExhausted || e.GetReason() != "TOO_MANY_CALLS" {
		t.Fatalf("item over the limit: %v", got)
	}

	// Draining: new items are refused, the one in flight finishes, and
	// then the stream ends although the client never closed its side.
	c.startDrain()
	if err := st.Send(&sidecarv1.SignStreamRequest{Items: []*sidecarv1.SignItem{{Id: 3, Request: free}}}); err != nil {
		t.Fatal(err)
	}
	got = grpcRecvResults(t, st, 1)
	if e := got[3][0].GetError(); codes.Code(e.GetCode()) != codes.Unavailable || e.GetReason() != "DRAINING" {
		t.Fatalf("item after drain: %v", got)
	}
	close(gate.release)
	got = grpcRecvResults(t, st, 1)
	grpcCheckResult(t, got[1][0], held)
	if resp, err := st.Recv(); err != io.EOF {
		t.Fatalf("stream after drain: %v, %v; want io.EOF", resp, err)
	}

	_, err = cl.Sign(context.Background(), &sidecarv1.SignRequest{Key: "gate:free?seed=a", Message: []byte("x")})
	grpcWantErr(t, err, codes.Unavailable, "DRAINING")
}

func TestGRPCSignStreamDrainIdle(t *testing.T) {
	c := testCore(t, Config{AllowReferences: true, Policies: []Policy{grpcAllowAll()}})
	cl := grpcServe(t, c)
	der := grpcCreate(t, cl, "fake:demo?seed=a", shared.ECP256).GetDer()
	st, err := cl.SignStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	it := grpcStreamItem{key: "fake:demo?seed=a", der: der, alg: shared.ES256, message: []byte("m")}
	if err := st.Send(&sidecarv1.SignStreamRequest{Items: []*sidecarv1.SignItem{{Id: 1, Request: it.request()}}}); err != nil {
		t.Fatal(err)
	}
	grpcCheckResult(t, grpcRecvResults(t, st, 1)[1][0], it)

	c.startDrain()
	if resp, err := st.Recv(); err != io.EOF {
		t.Fatalf("idle stream after drain: %v, %v; want io.EOF", resp, err)
	}
}

func TestGRPCSignStreamNoLeak(t *testing.T) {
	c, gate := grpcGatedCore(t, Config{AllowReferences: true, Policies: []Policy{grpcAllowAll()}})
	cl := grpcServe(t, c)
	grpcCreate(t, cl, "gate:held?seed=a", shared.ECP256)
	free := grpcCreate(t, cl, "gate:free?seed=a", shared.ECP256)

	// Warm up everything a stream starts lazily, and end that stream.
	warm, err := cl.SignStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	it := grpcStreamItem{key: "gate:free?seed=a", der: free.GetDer(), alg: shared.ES256, message: []byte("warm")}
	if err := warm.Send(&sidecarv1.SignStreamRequest{Items: []*sidecarv1.SignItem{{Id: 1, Request: it.request()}}}); err != nil {
		t.Fatal(err)
	}
	grpcCheckResult(t, grpcRecvResults(t, warm, 1)[1][0], it)
	if err := warm.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := warm.Recv(); err != io.EOF {
		t.Fatalf("warm-up stream: %v", err)
	}
	before := grpcSettledGoroutines(t, -1)

	ctx, cancel := context.WithCancel(context.Background())
	st, err := cl.SignStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var batch []*sidecarv1.SignItem
	for id := range uint64(5) {
		batch = append(batch, &sidecarv1.SignItem{Id: id, Request: &sidecarv1.SignRequest{Key: "gate:held?seed=a", Message: []byte("m")}})
	}
	if err := st.Send(&sidecarv1.SignStreamRequest{Items: batch}); err != nil {
		t.Fatal(err)
	}
	<-gate.entered
	cancel()
	if _, err := st.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("canceled stream: %v", err)
	}
	grpcSettledGoroutines(t, before)
}

// grpcSettledGoroutines waits until the number of goroutines is at most
// want (any number when want < 0) and stops changing, and returns it.
func grpcSettledGoroutines(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a backstop, not a measure
	last, stable := -1, 0
	for {
		n := runtime.NumGoroutine()
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
		if stable >= 10 && (want < 0 || n <= want) {
			return n
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", n, want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
