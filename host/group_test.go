package host_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/audit/audittest"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

// Replica behaviours a test switches at run time.
const (
	regionUp int32 = iota
	regionDown
	regionHung
	regionDenies
	regionSlow
	regionThrottled
)

// region is the fake provider served as one "region" whose behaviour a
// test switches, counting the calls it gets.
type region struct {
	shared.Provider
	mode  atomic.Int32
	slow  time.Duration
	signs atomic.Int64 // Sign calls that reached the key
}

func (r *region) fault(ctx context.Context) error {
	switch r.mode.Load() {
	case regionDown:
		return fmt.Errorf("%w: the region is down", shared.ErrUnavailable)
	case regionHung:
		<-ctx.Done()
		return ctx.Err()
	case regionDenies:
		return fmt.Errorf("%w: not allowed here", shared.ErrPermissionDenied)
	case regionThrottled:
		return fmt.Errorf("%w: rate exceeded", shared.ErrThrottled)
	case regionSlow:
		select {
		case <-time.After(r.slow):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *region) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	if err := r.fault(ctx); err != nil {
		return shared.SignResponse{}, err
	}
	r.signs.Add(1)
	return r.Provider.Sign(ctx, req)
}

func (r *region) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	if err := r.fault(ctx); err != nil {
		return shared.PublicKeyResponse{}, err
	}
	return r.Provider.PublicKey(ctx, req)
}

// groupSetup is a host with providers east and west holding the same key
// (seed s) and rogue holding another (seed other), all as "k".
type groupSetup struct {
	h                  *host.Host
	east, west, rogue  *region
	logs               *syncBuffer
	eastPK, roguePK    []byte // DER
	eastRef, westRef   string
	rogueRef           string
	audit              *audittest.Log
	releaseGroupConfig host.KeyGroup
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const (
	eastRef  = "east:k?seed=s&region=us-east-1"
	westRef  = "west:k?seed=s&region=eu-west-1"
	rogueRef = "rogue:k?seed=other"
)

// newGroupSetup makes the host with groups named in groups (replicas
// written with the names east, west, rogue) and creates the keys.
func newGroupSetup(t *testing.T, groups map[string]host.KeyGroup) *groupSetup {
	t.Helper()
	s := &groupSetup{
		east:  &region{Provider: fake.New(fake.Config{})},
		west:  &region{Provider: fake.New(fake.Config{})},
		rogue: &region{Provider: fake.New(fake.Config{})},
		logs:  &syncBuffer{},
	}
	s.audit = audittest.Open(t, audit.Options{})
	// The fake refuses parameters it does not know: region is the test's
	// way to tell replicas apart, so it is dropped before the fake sees it.
	cfg := host.Config{
		KeyGroups: groups,
		Logger:    hclog.New(&hclog.LoggerOptions{Name: "knhk", Level: hclog.Info, Output: s.logs}),
		Audit:     s.audit.Log,
	}
	s.h = hosttest.New(t, hosttest.WithConfig(cfg),
		hosttest.WithProvider("east", dropRegion{s.east}),
		hosttest.WithProvider("west", dropRegion{s.west}),
		hosttest.WithProvider("rogue", dropRegion{s.rogue}))
	ctx := context.Background()
	for _, ref := range []string{eastRef, westRef, rogueRef} {
		if _, err := s.h.CreateKey(ctx, ref, shared.ECP256); err != nil {
			t.Fatal(err)
		}
	}
	s.eastPK = publicDER(t, s.h, eastRef)
	s.roguePK = publicDER(t, s.h, rogueRef)
	if !bytes.Equal(s.eastPK, publicDER(t, s.h, westRef)) {
		t.Fatal("east and west do not hold the same key: the seed did not make them equal")
	}
	if bytes.Equal(s.eastPK, s.roguePK) {
		t.Fatal("rogue holds the same key as east")
	}
	return s
}

// dropRegion removes the region parameter, which only names the replica.
type dropRegion struct{ *region }

func strip(k shared.KeyRef) shared.KeyRef {
	if _, ok := k.Params["region"]; !ok {
		return k
	}
	p := map[string]string{}
	for n, v := range k.Params {
		if n != "region" {
			p[n] = v
		}
	}
	return shared.KeyRef{ID: k.ID, Params: p}
}

func (d dropRegion) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	req.Key = strip(req.Key)
	return d.region.Sign(ctx, req)
}

func (d dropRegion) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	req.Key = strip(req.Key)
	return d.region.PublicKey(ctx, req)
}

func (d dropRegion) CreateKey(ctx context.Context, req shared.CreateKeyRequest) (shared.CreateKeyResponse, error) {
	req.Key = strip(req.Key)
	return d.region.Provider.CreateKey(ctx, req)
}

func (d dropRegion) KeyMetadata(ctx context.Context, req shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	req.Key = strip(req.Key)
	return d.region.Provider.KeyMetadata(ctx, req)
}

func publicDER(t *testing.T, h *host.Host, ref string) []byte {
	t.Helper()
	k, err := h.Key(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := k.PublicKey(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return pk.DER
}

// signAndCheck signs msg through s and verifies the signature with the
// standard library against want (the group's key, DER).
func signAndCheck(t *testing.T, s crypto.Signer, want []byte, msg string) error {
	t.Helper()
	digest := sha256.Sum256([]byte(msg))
	sig, err := s.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return err
	}
	pub, err := x509.ParsePKIXPublicKey(want)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatalf("signature over %q does not verify with the group's public key", msg)
	}
	return nil
}

func TestKeyGroupSignsWithTheGroupsKey(t *testing.T) {
	s := newGroupSetup(t, map[string]host.KeyGroup{"release": {Replicas: []string{eastRef, westRef}}})
	ctx := context.Background()
	signer, err := s.h.Signer(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(der, s.eastPK) {
		t.Fatal("the group's Public() is not its replicas' key")
	}
	for i := range 20 {
		if err := signAndCheck(t, signer, s.eastPK, fmt.Sprint("m", i)); err != nil {
			t.Fatal(err)
		}
	}
	if e, w := s.east.signs.Load(), s.west.signs.Load(); e != 20 || w != 0 {
		t.Fatalf("ordered group: east signed %d and west %d; want 20 and 0 (the preferred replica takes every call)", e, w)
	}
	k, err := s.h.Key(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	if k.Group() != "release" {
		t.Fatalf("Group() = %q", k.Group())
	}
	digest := sha256.Sum256([]byte("via key"))
	sig, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.VerifyDigest(ctx, digest[:], sig.Signature, host.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Rotate(ctx); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("Rotate on a group: %v, want ErrFailedPrecondition", err)
	}
	if _, err := s.h.CreateKey(ctx, "release", shared.ECP256); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("CreateKey on a group: %v, want ErrFailedPrecondition", err)
	}
	md, err := k.Metadata(ctx)
	if err != nil || md.CurrentVersion != "1" {
		t.Fatalf("Metadata: %+v, %v", md, err)
	}
}

func TestKeyGroupFailoverAndFailback(t *testing.T) {
	s := newGroupSetup(t, map[string]host.KeyGroup{"release": {
		Replicas: []string{eastRef, westRef}, BreakerTimeout: 300 * time.Millisecond, ProbeInterval: -1,
	}})
	ctx := context.Background()
	signer, err := s.h.Signer(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	s.east.mode.Store(regionDown)
	for i := range 10 {
		if err := signAndCheck(t, signer, s.eastPK, fmt.Sprint("down", i)); err != nil {
			t.Fatalf("signature %d with east down: %v", i, err)
		}
	}
	if w := s.west.signs.Load(); w != 10 {
		t.Fatalf("west signed %d of 10 while east was down", w)
	}
	health, err := s.h.KeyHealth(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	if st := health.Replicas[0].State; st != host.ReplicaDown {
		t.Fatalf("east is %s after failing; want down (breaker open): %+v", st, health.Replicas[0])
	}
	if st := health.Replicas[1].State; st != host.ReplicaHealthy {
		t.Fatalf("west is %s; want healthy", st)
	}
	// Failback: once east answers again and its breaker lets a trial
	// call through, it takes the calls again.
	s.east.mode.Store(regionUp)
	time.Sleep(400 * time.Millisecond)
	for i := range 5 {
		if err := signAndCheck(t, signer, s.eastPK, fmt.Sprint("up", i)); err != nil {
			t.Fatal(err)
		}
	}
	if e := s.east.signs.Load(); e != 5 {
		t.Fatalf("east signed %d of 5 after recovering; want all: no failback", e)
	}
	health, err = s.h.KeyHealth(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	if st := health.Replicas[0].State; st == host.ReplicaDown || st == host.ReplicaQuarantined {
		t.Fatalf("east is %s after recovering", st)
	}
}

func TestKeyGroupBadRequestDoesNotFailOver(t *testing.T) {
	s := newGroupSetup(t, map[string]host.KeyGroup{"release": {Replicas: []string{eastRef, westRef}, ProbeInterval: -1}})
	ctx := context.Background()
	signer, err := s.h.Signer(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	s.east.mode.Store(regionDenies)
	for range 5 {
		if err := signAndCheck(t, signer, s.eastPK, "denied"); !errors.Is(err, shared.ErrPermissionDenied) {
			t.Fatalf("sign with east denying: %v, want ErrPermissionDenied", err)
		}
	}
	if w := s.west.signs.Load(); w != 0 {
		t.Fatalf("a refused request went to west %d times; a bad request must not fail over", w)
	}
	// A wrong digest length is refused before any replica is asked.
	if _, err := signer.Sign(nil, []byte("short"), crypto.SHA256); !errors.Is(err, shared.ErrInvalidArgument) {
		t.Fatalf("short digest: %v", err)
	}
	h, _ := s.h.KeyHealth(ctx, "release")
	if h.Replicas[0].State == host.ReplicaDown {
		t.Fatal("permission denied tripped east's breaker")
	}
}

func TestKeyGroupThrottlingMovesOnWithoutTrippingTheBreaker(t *testing.T) {
	s := newGroupSetup(t, map[string]host.KeyGroup{"release": {Replicas: []string{eastRef, westRef}, ProbeInterval: -1}})
	ctx := context.Background()
	signer, err := s.h.Signer(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	s.east.mode.Store(regionThrottled)
	for i := range 10 {
		if err := signAndCheck(t, signer, s.eastPK, fmt.Sprint("t", i)); err != nil {
			t.Fatal(err)
		}
	}
	if w := s.west.signs.Load(); w != 10 {
		t.Fatalf("west signed %d of 10 while east throttled", w)
	}
	s.east.mode.Store(regionUp)
	if err := signAndCheck(t, signer, s.eastPK, "after"); err != nil {
		t.Fatal(err)
	}
	if e := s.east.signs.Load(); e != 1 {
		t.Fatalf("east signed %d after its throttling ended; its breaker must not have opened", e)
	}
}

func TestKeyGroupQuarantinesAReplicaWithAnotherKey(t *testing.T) {
	s := newGroupSetup(t, map[string]host.KeyGroup{"release": {Replicas: []string{eastRef, rogueRef, westRef}, ProbeInterval: -1}})
	ctx := context.Background()
	signer, err := s.h.Signer(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	s.east.mode.Store(regionDown) // so the next in line would be rogue
	for i := range 10 {
		if err := signAndCheck(t, signer, s.eastPK, fmt.Sprint("q", i)); err != nil {
			t.Fatal(err)
		}
	}
	if r := s.rogue.signs.Load(); r != 0 {
		t.Fatalf("the quarantined replica signed %d times", r)
	}
	if w := s.west.signs.Load(); w != 10 {
		t.Fatalf("west signed %d of 10", w)
	}
	health, err := s.h.KeyHealth(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	groupFP, rogueFP := hexSHA256(s.eastPK), hexSHA256(s.roguePK)
	if health.Fingerprint != groupFP {
		t.Fatalf("group fingerprint %s, want %s", health.Fingerprint, groupFP)
	}
	r := health.Replicas[1]
	if r.State != host.ReplicaQuarantined || r.Fingerprint != rogueFP {
		t.Fatalf("rogue: %+v; want quarantined with fingerprint %s", r, rogueFP)
	}
	if !strings.Contains(r.Replica, "rogue:k") || strings.Contains(r.Replica, "other") {
		t.Fatalf("replica shown as %q: want its name without the seed's value", r.Replica)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, groupFP) || !strings.Contains(logs, rogueFP) || !strings.Contains(logs, "quarantined") {
		t.Fatalf("the quarantine log lacks both fingerprints:\n%s", logs)
	}
	var found bool
	for _, rec := range audittest.Records(t, s.audit.Path) {
		if rec.Operation == "key_group_check" && rec.Key == "rogue:k" && rec.ExpectedSPKISHA256 == groupFP && rec.SPKISHA256 == rogueFP && rec.ErrorType == "replica_key_mismatch" {
			found = true
		}
	}
	if !found {
		t.Fatal("no audit record of the quarantine with both fingerprints")
	}
}

func TestKeyGroupRespectsTheCallersDeadline(t *testing.T) {
	s := newGroupSetup(t, map[string]host.KeyGroup{"release": {Replicas: []string{eastRef, westRef}, ProbeInterval: -1}})
	ctx := context.Background()
	if _, err := s.h.Signer(ctx, "release"); err != nil {
		t.Fatal(err)
	}
	s.east.mode.Store(regionHung)
	// The hung replica gets half of the caller's 4s: west answers within it.
	dctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	k, err := s.h.Key(dctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("deadline"))
	sig, err := k.SignDigest(dctx, digest[:], host.SignOptions{})
	if err != nil {
		t.Fatalf("sign with east hung: %v", err)
	}
	if dctx.Err() != nil {
		t.Fatal("the signature came after the caller's deadline")
	}
	pub, _ := x509.ParsePKIXPublicKey(s.eastPK)
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig.Signature) {
		t.Fatal("signature does not verify")
	}
	// Both hung: the caller gets its deadline, not a hang.
	s.west.mode.Store(regionHung)
	start := time.Now()
	sctx, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	_, err = k.SignDigest(sctx, digest[:], host.SignOptions{})
	if err == nil {
		t.Fatal("every replica hung, yet the signature succeeded")
	}
	if left := time.Until(start.Add(500 * time.Millisecond)); left < -time.Second {
		t.Fatalf("the call returned %s after the caller's deadline", -left)
	}
}

func TestKeyGroupHedged(t *testing.T) {
	s := newGroupSetup(t, map[string]host.KeyGroup{"release": {
		Replicas: []string{eastRef, westRef}, Failover: host.FailoverHedged, HedgeDelay: 20 * time.Millisecond, ProbeInterval: -1,
	}})
	ctx := context.Background()
	signer, err := s.h.Signer(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	// East answers, but slowly: west is asked after 20ms and wins.
	s.east.slow = 2 * time.Second
	s.east.mode.Store(regionSlow)
	for i := range 5 {
		if err := signAndCheck(t, signer, s.eastPK, fmt.Sprint("h", i)); err != nil {
			t.Fatal(err)
		}
	}
	if w := s.west.signs.Load(); w != 5 {
		t.Fatalf("west signed %d of 5 while east was slow", w)
	}
	if e := s.east.signs.Load(); e != 0 {
		t.Fatalf("east signed %d times: its slow attempts should have been cancelled", e)
	}
	// East fast again: it wins and west is not asked.
	s.east.mode.Store(regionUp)
	for i := range 5 {
		if err := signAndCheck(t, signer, s.eastPK, fmt.Sprint("f", i)); err != nil {
			t.Fatal(err)
		}
	}
	if e := s.east.signs.Load(); e != 5 {
		t.Fatalf("east signed %d of 5 once fast", e)
	}
}

func TestKeyGroupKeyMissingEverywhere(t *testing.T) {
	s := newGroupSetup(t, map[string]host.KeyGroup{"nokey": {Replicas: []string{"east:missing?seed=s", "west:missing?seed=s"}, ProbeInterval: -1}})
	if _, err := s.h.Signer(context.Background(), "nokey"); !errors.Is(err, shared.ErrKeyNotFound) {
		t.Fatalf("a group whose key no replica holds: %v, want ErrKeyNotFound", err)
	}
}

func TestKeyGroupConfigChecks(t *testing.T) {
	for _, g := range []map[string]host.KeyGroup{
		{"a:b": {Replicas: []string{eastRef}}},
		{"a": {}},
		{"a": {Replicas: []string{"nocolon"}}},
		{"a": {Replicas: []string{eastRef, eastRef}}},
		{"a": {Replicas: []string{eastRef}, Failover: "random"}},
	} {
		if _, err := host.New(context.Background(), host.Config{KeyGroups: g}); err == nil {
			t.Errorf("New accepted key groups %v", g)
		}
	}
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("%x", s)
}
