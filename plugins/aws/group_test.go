package aws_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/plugins/aws/internal/localkms"
)

// mrkID is a multi-Region key id: AWS gives a multi-Region key and all
// its replicas this one id, each in its own Region.
const mrkID = "mrk-1234abcd12ab34cd56ef1234567890ab"

// seedYAML writes one ECC key under mrkID in local-kms's seed file format.
func seedYAML(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemText := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	return fmt.Appendf(nil, `Keys:
  Asymmetric:
    Ecc:
      - Metadata:
          KeyId: %s
          KeyUsage: SIGN_VERIFY
          Description: knhk key group test
        PrivateKeyPem: |
          %s
`, mrkID, strings.ReplaceAll(strings.TrimSpace(string(pemText)), "\n", "\n          "))
}

// region starts an emulator standing for one Region, seeded with key
// under mrkID.
func region(t *testing.T, key *ecdsa.PrivateKey) *localkms.Server {
	t.Helper()
	srv := localkms.Start(t)
	if err := srv.Seed(seedYAML(t, key)); err != nil {
		t.Fatal(err)
	}
	return srv
}

// fingerprint is the hex SHA-256 of a public key's SubjectPublicKeyInfo,
// as the host reports it.
func fingerprint(t *testing.T, pub *ecdsa.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// TestKeyGroupAcrossRegions is the key group end to end on real parts:
// the built knhk-plugin-aws against three local-kms emulators standing
// for three Regions, each seeded (local-kms's seed format) under the same
// multi-Region key id. us-east-1 and eu-west-1 hold the same ECC P-256
// private key, as a multi-Region key's replicas do; ap-south-1 holds
// another key under that id. The group lists them in the order us-east-1,
// ap-south-1, eu-west-1, so the quarantined replica sits where failover
// would go first.
//
// 16 callers sign through the group; after 150 signatures us-east-1 is
// stopped mid-load (its connections cut, new ones refused), and signing
// goes on until 300 more have been made. The test checks that no call
// failed other than by its deadline, that every signature verifies with
// the standard library against the key seeded in us-east-1 and eu-west-1
// (so ap-south-1 never signed), that the group's public key is that key,
// and that Host.KeyHealth shows ap-south-1 quarantined with both
// fingerprints, us-east-1 no longer healthy and eu-west-1 healthy.
//
// The three emulators run in this process. local-kms keeps its Region and
// account in process-wide variables, so all three write ARNs with the
// same Region (localkms.Region); the region parameter of each reference
// still picks the SDK's signing Region and the plugin's client and the
// host's quota bucket, which is all a Region is to knhk. The plugin
// reduces the ARNs KMS answers with to key ids, so the shared Region in
// them does not show.
func TestKeyGroupAcrossRegions(t *testing.T) {
	same, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	useast, apsouth, euwest := region(t, same), region(t, other), region(t, same)
	ref := func(srv *localkms.Server, r string) string {
		return "aws:" + mrkID + "?region=" + r + "&endpoint=" + url.QueryEscape(srv.URL)
	}
	h, err := host.New(context.Background(), host.Config{
		PluginDirs: []string{filepath.Dir(pluginBin)},
		KeyGroups: map[string]host.KeyGroup{"release": {
			Replicas: []string{ref(useast, "us-east-1"), ref(apsouth, "ap-south-1"), ref(euwest, "eu-west-1")},
			// A dead Region's attempt gives up after a second (the SDK
			// retries refused connections inside it), and two failures in
			// a row open its breaker.
			AttemptTimeout: time.Second,
			TripAfter:      2,
			BreakerTimeout: time.Minute,
			ProbeInterval:  -1,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ctx := ctxT(t)

	s, err := h.Signer(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := s.Public().(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&same.PublicKey) {
		t.Fatalf("the group's public key is %T %v, want the key seeded in us-east-1 and eu-west-1", s.Public(), s.Public())
	}
	k, err := h.Key(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}

	const (
		callers     = 16
		beforeStop  = 150 // signatures before us-east-1 stops
		afterStop   = 300 // signatures after
		callTimeout = 10 * time.Second
	)
	var (
		signed, deadlines atomic.Int64
		stopped           atomic.Bool
		afterStopped      atomic.Int64
		stopOnce          sync.Once
		errMu             sync.Mutex
		errs              []error
		bad               atomic.Int64 // signatures that do not verify
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				default:
				}
				msg := fmt.Appendf(nil, "release artefact %d/%d", c, i)
				cctx, cancel := context.WithTimeout(ctx, callTimeout)
				sig, err := k.SignMessage(cctx, msg, host.SignOptions{})
				cancel()
				switch {
				case errors.Is(err, context.DeadlineExceeded):
					deadlines.Add(1)
					continue
				case err != nil:
					errMu.Lock()
					errs = append(errs, err)
					errMu.Unlock()
					continue
				}
				d := sha256.Sum256(msg)
				if !ecdsa.VerifyASN1(&same.PublicKey, d[:], sig.Signature) {
					bad.Add(1)
				}
				if n := signed.Add(1); n == beforeStop {
					stopOnce.Do(func() { useast.Stop(); stopped.Store(true) })
				}
				if stopped.Load() && afterStopped.Add(1) == afterStop {
					close(done)
				}
			}
		}()
	}
	wg.Wait()

	t.Logf("%d signatures (%d after us-east-1 stopped), %d calls past their %v deadline, %d other errors",
		signed.Load(), afterStopped.Load(), deadlines.Load(), callTimeout, len(errs))
	if len(errs) > 0 {
		t.Fatalf("%d signing calls failed other than by their deadline; first: %v", len(errs), errs[0])
	}
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d of %d signatures do not verify with the group's key", n, signed.Load())
	}

	gh, err := h.KeyHealth(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	wantFP, otherFP := fingerprint(t, &same.PublicKey), fingerprint(t, &other.PublicKey)
	if gh.Fingerprint != wantFP {
		t.Fatalf("group fingerprint %s, want %s (the shared key's)", gh.Fingerprint, wantFP)
	}
	if len(gh.Replicas) != 3 {
		t.Fatalf("KeyHealth lists %d replicas, want 3: %+v", len(gh.Replicas), gh)
	}
	for i, r := range gh.Replicas {
		t.Logf("replica %d: %s state=%s fingerprint=%s calls=%d error_rate=%.2f last_error=%q", i+1, r.Replica, r.State, r.Fingerprint, r.Calls, r.ErrorRate, r.LastError)
	}
	us, ap, eu := gh.Replicas[0], gh.Replicas[1], gh.Replicas[2]
	if ap.State != host.ReplicaQuarantined || ap.Fingerprint != otherFP {
		t.Errorf("ap-south-1 (another key under the id): state %s, fingerprint %s; want quarantined with %s (group: %s)", ap.State, ap.Fingerprint, otherFP, gh.Fingerprint)
	}
	if us.State == host.ReplicaHealthy || us.State == host.ReplicaQuarantined {
		t.Errorf("us-east-1 (stopped): state %s, want down or degraded", us.State)
	}
	if eu.State != host.ReplicaHealthy || eu.Fingerprint != wantFP {
		t.Errorf("eu-west-1: state %s, fingerprint %s; want healthy with %s", eu.State, eu.Fingerprint, wantFP)
	}
}
