package fake_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

// both runs f against the provider in-process, behind the request checks
// Serve applies on the wire (shared.Validate), and through the plugin
// binary over go-plugin gRPC.
func both(t *testing.T, f func(t *testing.T, p shared.Provider)) {
	t.Run("in-process", func(t *testing.T) { t.Parallel(); f(t, shared.Validate(fake.New(fake.Config{}))) })
	t.Run("plugin", func(t *testing.T) { t.Parallel(); f(t, launch(t).prov) })
}

func ref(id string, params ...string) shared.KeyRef {
	m := map[string]string{}
	for i := 0; i+1 < len(params); i += 2 {
		m[params[i]] = params[i+1]
	}
	return shared.KeyRef{ID: id, Params: m}
}

func mustCreate(t *testing.T, p shared.Provider, r shared.KeyRef, kt shared.KeyType) {
	t.Helper()
	resp, err := p.CreateKey(ctxT(t), shared.CreateKeyRequest{Key: r, Type: kt})
	if err != nil {
		t.Fatalf("CreateKey(%s, %s): %v", r.ID, kt, err)
	}
	if resp.KeyID != r.ID || resp.Version != "1" {
		t.Fatalf("CreateKey = %+v, want id %s version 1", resp, r.ID)
	}
}

func mustPublic(t *testing.T, p shared.Provider, r shared.KeyRef, version string) crypto.PublicKey {
	t.Helper()
	resp, err := p.PublicKey(ctxT(t), shared.PublicKeyRequest{Key: r, Version: version})
	if err != nil {
		t.Fatalf("PublicKey(%s, %q): %v", r.ID, version, err)
	}
	pub, kt, err := shared.ParsePublicKey(resp.DER)
	if err != nil {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	if kt != resp.Type {
		t.Fatalf("public key is %s, response says %s", kt, resp.Type)
	}
	return pub
}

func digestOf(t *testing.T, alg shared.Algorithm, msg []byte) []byte {
	t.Helper()
	d, err := shared.Digest(alg, msg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSignVerifyEveryKeyTypeAndAlgorithm signs digests and messages with
// every key type and every algorithm it allows, and checks each signature
// with the standard library and with the provider's Verify.
func TestSignVerifyEveryKeyTypeAndAlgorithm(t *testing.T) {
	both(t, func(t *testing.T, p shared.Provider) {
		msg := []byte("the quick brown fox")
		for _, kt := range shared.KeyTypes {
			t.Run(string(kt), func(t *testing.T) {
				r := ref("k-" + string(kt))
				mustCreate(t, p, r, kt)
				pub := mustPublic(t, p, r, "")
				for _, alg := range kt.Algorithms() {
					t.Run(string(alg), func(t *testing.T) {
						ctx := ctxT(t)
						if alg != shared.EdDSA {
							d := digestOf(t, alg, msg)
							s, err := p.Sign(ctx, shared.SignRequest{Key: r, Algorithm: alg, Digest: d})
							if err != nil {
								t.Fatalf("Sign digest: %v", err)
							}
							if s.Version != "1" {
								t.Errorf("Sign version = %q, want 1", s.Version)
							}
							if err := shared.VerifyDigest(pub, alg, d, s.Signature); err != nil {
								t.Errorf("VerifyDigest: %v", err)
							}
							if alg.IsPSS() {
								// The contract: PSS salt = hash length.
								opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}
								if err := rsa.VerifyPSS(pub.(*rsa.PublicKey), alg.Hash(), d, s.Signature, opts); err != nil {
									t.Errorf("PSS salt is not the hash length: %v", err)
								}
							}
							v, err := p.Verify(ctx, shared.VerifyRequest{Key: r, Algorithm: alg, Digest: d, Signature: s.Signature})
							if err != nil || !v.Valid || v.Version != "1" {
								t.Errorf("provider Verify digest = %+v, %v; want valid v1", v, err)
							}
						}
						s, err := p.Sign(ctx, shared.SignRequest{Key: r, Algorithm: alg, Message: msg})
						if err != nil {
							t.Fatalf("Sign message: %v", err)
						}
						if err := shared.VerifyMessage(pub, alg, msg, s.Signature); err != nil {
							t.Errorf("VerifyMessage: %v", err)
						}
						if err := shared.VerifyMessage(pub, alg, []byte("another message"), s.Signature); !errors.Is(err, shared.ErrBadSignature) {
							t.Errorf("signature verifies over another message: %v", err)
						}
						v, err := p.Verify(ctx, shared.VerifyRequest{Key: r, Algorithm: alg, Message: msg, Signature: s.Signature})
						if err != nil || !v.Valid {
							t.Errorf("provider Verify message = %+v, %v; want valid", v, err)
						}
						v, err = p.Verify(ctx, shared.VerifyRequest{Key: r, Algorithm: alg, Message: []byte("tampered"), Signature: s.Signature})
						if err != nil || v.Valid {
							t.Errorf("provider Verify of a tampered message = %+v, %v; want invalid", v, err)
						}
					})
				}
			})
		}
	})
}

// TestRotation checks versions: rotate makes a new current version, old
// versions still sign, verify and give their public key when named.
func TestRotation(t *testing.T) {
	both(t, func(t *testing.T, p shared.Provider) {
		ctx := ctxT(t)
		r := ref("rot")
		mustCreate(t, p, r, shared.ECP256)
		pub1 := mustPublic(t, p, r, "")
		d := digestOf(t, shared.ES256, []byte("hello"))
		s1, err := p.Sign(ctx, shared.SignRequest{Key: r, Algorithm: shared.ES256, Digest: d})
		if err != nil {
			t.Fatal(err)
		}

		for want := 2; want <= 3; want++ {
			rot, err := p.RotateKey(ctx, shared.RotateKeyRequest{Key: r})
			if err != nil {
				t.Fatalf("RotateKey: %v", err)
			}
			if rot.Version != string(rune('0'+want)) {
				t.Fatalf("RotateKey version = %q, want %d", rot.Version, want)
			}
		}
		pub3 := mustPublic(t, p, r, "")
		if pub3.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub1) {
			t.Fatal("rotation kept the same key")
		}
		if got := mustPublic(t, p, r, "1"); !got.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub1) {
			t.Fatal("PublicKey version 1 changed after rotation")
		}

		s3, err := p.Sign(ctx, shared.SignRequest{Key: r, Algorithm: shared.ES256, Digest: d})
		if err != nil || s3.Version != "3" {
			t.Fatalf("Sign after rotation = %q, %v; want version 3", s3.Version, err)
		}
		if err := shared.VerifyDigest(pub3, shared.ES256, d, s3.Signature); err != nil {
			t.Errorf("new version's signature: %v", err)
		}
		if err := shared.VerifyDigest(pub1, shared.ES256, d, s1.Signature); err != nil {
			t.Errorf("old signature no longer verifies: %v", err)
		}
		v, err := p.Verify(ctx, shared.VerifyRequest{Key: r, Algorithm: shared.ES256, Version: "1", Digest: d, Signature: s1.Signature})
		if err != nil || !v.Valid || v.Version != "1" {
			t.Errorf("Verify version 1 = %+v, %v", v, err)
		}
		v, err = p.Verify(ctx, shared.VerifyRequest{Key: r, Algorithm: shared.ES256, Digest: d, Signature: s1.Signature})
		if err != nil || v.Valid {
			t.Errorf("old signature verifies against the current version: %+v, %v", v, err)
		}
		old, err := p.Sign(ctx, shared.SignRequest{Key: r, Algorithm: shared.ES256, Version: "1", Digest: d})
		if err != nil || old.Version != "1" {
			t.Fatalf("Sign with version 1 = %+v, %v", old, err)
		}
		if err := shared.VerifyDigest(pub1, shared.ES256, d, old.Signature); err != nil {
			t.Errorf("explicit old version's signature: %v", err)
		}

		for _, bad := range []string{"0", "4", "01", "abc", "-1"} {
			_, err := p.Sign(ctx, shared.SignRequest{Key: r, Algorithm: shared.ES256, Version: bad, Digest: d})
			if !errors.Is(err, shared.ErrKeyNotFound) || !strings.Contains(err.Error(), "version") {
				t.Errorf("Sign version %q: %v, want ErrKeyNotFound naming the version", bad, err)
			}
		}

		md, err := p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: r})
		if err != nil {
			t.Fatal(err)
		}
		if md.KeyID != "rot" || md.Type != shared.ECP256 || md.CurrentVersion != "3" || len(md.Versions) != 3 {
			t.Fatalf("metadata = %+v", md)
		}
		for i, kv := range md.Versions {
			if kv.Version != string(rune('1'+i)) || !kv.Enabled || kv.Created.IsZero() {
				t.Errorf("version %d = %+v", i+1, kv)
			}
		}
		if len(md.Algorithms) != 1 || md.Algorithms[0] != shared.ES256 {
			t.Errorf("algorithms = %v", md.Algorithms)
		}
		if md.Attributes["storage"] != "memory" || md.Attributes["origin"] != "random" {
			t.Errorf("attributes = %v", md.Attributes)
		}
	})
}

func TestListKeys(t *testing.T) {
	both(t, func(t *testing.T, p shared.Provider) {
		ctx := ctxT(t)
		mustCreate(t, p, ref("b"), shared.Ed25519)
		mustCreate(t, p, ref("a"), shared.ECP384)
		if _, err := p.RotateKey(ctx, shared.RotateKeyRequest{Key: ref("a")}); err != nil {
			t.Fatal(err)
		}
		keys, err := p.ListKeys(ctx, shared.ListKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		want := []shared.KeySummary{
			{KeyID: "a", Type: shared.ECP384, CurrentVersion: "2"},
			{KeyID: "b", Type: shared.Ed25519, CurrentVersion: "1"},
		}
		if len(keys) != len(want) {
			t.Fatalf("ListKeys = %+v, want %+v", keys, want)
		}
		for i := range want {
			if keys[i].KeyID != want[i].KeyID || keys[i].Type != want[i].Type || keys[i].CurrentVersion != want[i].CurrentVersion {
				t.Errorf("key %d = %+v, want %+v", i, keys[i], want[i])
			}
		}
	})
}

func TestDescribe(t *testing.T) {
	both(t, func(t *testing.T, p shared.Provider) {
		d, err := p.Describe(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if d.Name != "fake" || len(d.KeyTypes) != 7 || len(d.Algorithms) != 10 {
			t.Errorf("Describe = %+v", d)
		}
		for _, c := range []shared.Capability{shared.CapCreateKey, shared.CapListKeys, shared.CapRotateKey, shared.CapVerify, shared.CapSignMessage} {
			if !d.Has(c) {
				t.Errorf("Describe lacks %s", c)
			}
		}
	})
}

// TestBadInput sends bad requests: each gets the right typed error (across
// the gRPC boundary too), none panics.
func TestBadInput(t *testing.T) {
	both(t, func(t *testing.T, p shared.Provider) {
		ctx := ctxT(t)
		mustCreate(t, p, ref("ec"), shared.ECP256)
		mustCreate(t, p, ref("ed"), shared.Ed25519)
		d256 := sha256.Sum256([]byte("x"))
		cases := []struct {
			name    string
			call    func() error
			want    error
			mention string
		}{
			{"unknown parameter", func() error {
				_, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref("ec", "regoin", "x")})
				return err
			}, shared.ErrInvalidArgument, `"regoin"; known: fault_`},
			{"unknown parameter on list", func() error {
				_, err := p.ListKeys(ctx, shared.ListKeysRequest{Params: map[string]string{"bogus": "1"}})
				return err
			}, shared.ErrInvalidArgument, "seed, state"},
			{"empty seed", func() error {
				_, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref("s", "seed", ""), Type: shared.Ed25519})
				return err
			}, shared.ErrInvalidArgument, "seed"},
			{"oversized seed", func() error {
				_, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref("s", "seed", strings.Repeat("x", 2000)), Type: shared.Ed25519})
				return err
			}, shared.ErrInvalidArgument, "seed"},
			{"empty state path", func() error {
				_, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref("s", "state", ""), Type: shared.Ed25519})
				return err
			}, shared.ErrInvalidArgument, "state"},
			{"unknown key type", func() error {
				_, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref("n"), Type: "rsa-1024"})
				return err
			}, shared.ErrInvalidArgument, "rsa-1024"},
			{"bad key name", func() error {
				_, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref("../etc"), Type: shared.Ed25519})
				return err
			}, shared.ErrInvalidArgument, "not a valid name"},
			{"existing key", func() error {
				_, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref("ec"), Type: shared.Ed25519})
				return err
			}, shared.ErrAlreadyExists, `"ec"`},
			{"unknown key: public key", func() error {
				_, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref("nope")})
				return err
			}, shared.ErrKeyNotFound, `"nope"`},
			{"unknown key: sign", func() error {
				_, err := p.Sign(ctx, shared.SignRequest{Key: ref("nope"), Algorithm: shared.ES256, Digest: d256[:]})
				return err
			}, shared.ErrKeyNotFound, `"nope"`},
			{"unknown key: verify", func() error {
				_, err := p.Verify(ctx, shared.VerifyRequest{Key: ref("nope"), Algorithm: shared.ES256, Digest: d256[:], Signature: []byte{1}})
				return err
			}, shared.ErrKeyNotFound, `"nope"`},
			{"unknown key: rotate", func() error {
				_, err := p.RotateKey(ctx, shared.RotateKeyRequest{Key: ref("nope")})
				return err
			}, shared.ErrKeyNotFound, `"nope"`},
			{"unknown key: metadata", func() error {
				_, err := p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: ref("nope")})
				return err
			}, shared.ErrKeyNotFound, `"nope"`},
			{"algorithm for another key type", func() error {
				_, err := p.Sign(ctx, shared.SignRequest{Key: ref("ec"), Algorithm: shared.RS256, Digest: d256[:]})
				return err
			}, shared.ErrUnsupportedAlgorithm, "RS256"},
			{"unknown algorithm", func() error {
				_, err := p.Sign(ctx, shared.SignRequest{Key: ref("ec"), Algorithm: "HS256", Digest: d256[:]})
				return err
			}, shared.ErrUnsupportedAlgorithm, "HS256"},
			{"wrong digest length", func() error {
				_, err := p.Sign(ctx, shared.SignRequest{Key: ref("ec"), Algorithm: shared.ES256, Digest: d256[:20]})
				return err
			}, shared.ErrInvalidArgument, "32-byte"},
			{"digest for EdDSA", func() error {
				_, err := p.Sign(ctx, shared.SignRequest{Key: ref("ed"), Algorithm: shared.EdDSA, Digest: d256[:]})
				return err
			}, shared.ErrInvalidArgument, "message"},
			{"bad fault value", func() error {
				_, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref("ec", "fault_every", "zero", "fault_error", "unavailable")})
				return err
			}, shared.ErrInvalidArgument, "fault_every"},
			{"unknown fault error", func() error {
				_, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref("ec", "fault_error", "oops")})
				return err
			}, shared.ErrInvalidArgument, "unavailable"},
			{"fault_every without an action", func() error {
				_, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref("ec", "fault_every", "2")})
				return err
			}, shared.ErrInvalidArgument, "fault_error"},
			{"unknown fault op", func() error {
				_, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref("ec", "fault_ops", "sing", "fault_error", "unavailable")})
				return err
			}, shared.ErrInvalidArgument, "fault_ops"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				err := c.call()
				if !errors.Is(err, c.want) {
					t.Fatalf("err = %v, want %v", err, c.want)
				}
				if !strings.Contains(err.Error(), c.mention) {
					t.Errorf("error %q does not mention %q", err, c.mention)
				}
			})
		}
		// The seed's value never shows in an error.
		_, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref("s", "seed", "s3cr3t-seed", "bogus", "1"), Type: shared.Ed25519})
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("err = %v; want an error without the seed", err)
		}
	})
}

// TestInProcessOnlyChecks: an in-process caller behind shared.Validate
// gets the checks the SDK makes on the wire (both a digest and a message,
// an empty key id), and the provider ends calls whose context has ended.
func TestInProcessOnlyChecks(t *testing.T) {
	p := shared.Validate(fake.New(fake.Config{}))
	ctx := ctxT(t)
	mustCreate(t, p, ref("ec"), shared.ECP256)
	d := sha256.Sum256([]byte("x"))
	_, err := p.Sign(ctx, shared.SignRequest{Key: ref("ec"), Algorithm: shared.ES256, Digest: d[:], Message: []byte("x")})
	if !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("digest and message: %v", err)
	}
	_, err = p.Sign(ctx, shared.SignRequest{Key: ref(""), Algorithm: shared.ES256, Digest: d[:]})
	if !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("empty key id: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Sign(cctx, shared.SignRequest{Key: ref("ec"), Algorithm: shared.ES256, Digest: d[:]}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if _, err := p.CreateKey(cctx, shared.CreateKeyRequest{Key: ref("new"), Type: shared.RSA4096}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled create: %v", err)
	}
}

// TestConcurrentInProcess signs, rotates and creates at once under -race.
func TestConcurrentInProcess(t *testing.T) {
	p := fake.New(fake.Config{})
	ctx := ctxT(t)
	mustCreate(t, p, ref("c"), shared.Ed25519)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := []byte{byte(i)}
			s, err := p.Sign(ctx, shared.SignRequest{Key: ref("c"), Algorithm: shared.EdDSA, Message: msg})
			if err != nil {
				errs <- err
				return
			}
			pk, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref("c"), Version: s.Version})
			if err != nil {
				errs <- err
				return
			}
			pub, _, _ := shared.ParsePublicKey(pk.DER)
			if err := shared.VerifyMessage(pub, shared.EdDSA, msg, s.Signature); err != nil {
				errs <- err
			}
			if i%8 == 0 {
				if _, err := p.RotateKey(ctx, shared.RotateKeyRequest{Key: ref("c")}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	md, err := p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: ref("c")})
	if err != nil || md.CurrentVersion != "9" {
		t.Errorf("after 8 rotations: %+v, %v", md.CurrentVersion, err)
	}
}

// equalBytes is bytes.Equal with a name that reads well in tests.
var equalBytes = bytes.Equal
