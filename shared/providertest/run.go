package providertest

import (
	"context"
	"crypto"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/knhk/knhk/shared"
)

// Run runs the whole kit against cfg.Provider or cfg.Binary as subtests of
// t. See the package documentation for what it checks.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	run(testingReporter{t}, cfg)
}

// kit is one run's state.
type kit struct {
	cfg      Config
	p        shared.Provider
	viaHost  bool // the provider is a plugin binary reached over gRPC
	desc     shared.Description
	keyTypes []shared.KeyType
	algs     []shared.Algorithm // tested algorithms, all key types
}

// key is a key under test, as the kit has observed it.
type key struct {
	kt      shared.KeyType
	id      string
	version string // current version
	der     []byte
	pub     crypto.PublicKey
	algs    []shared.Algorithm // tested algorithms of this key type

	signFailed map[string]bool // Sign checks (signCheck names) that failed
}

func run(r reporter, cfg Config) {
	r.Helper()
	k := &kit{cfg: cfg.withDefaults()}
	switch {
	case cfg.Provider != nil && cfg.Binary != "":
		r.Fatalf("providertest: set Config.Provider or Config.Binary, not both")
	case cfg.Provider != nil:
		k.p = shared.Validate(cfg.Provider)
	case cfg.Binary != "":
		k.p = launch(r, cfg.Binary)
		k.viaHost = true
	default:
		r.Fatalf("providertest: set Config.Provider or Config.Binary")
	}
	if !r.Run("Describe", k.checkDescribe) {
		r.Fatalf("providertest: Describe failed; nothing else can be checked")
	}
	if !r.Run("Scope", k.scope) {
		return
	}
	r.Run("UnknownKey", k.checkUnknownKey)
	for _, kt := range k.keyTypes {
		r.Run(string(kt), func(r reporter) { k.checkKeyType(r, kt) })
	}
}

// scope picks the key types and algorithms to test from Describe and Config.
func (k *kit) scope(r reporter) {
	d := k.desc
	canCreate := d.Has(shared.CapCreateKey)
	switch {
	case len(k.cfg.KeyTypes) > 0:
		k.keyTypes = k.cfg.KeyTypes
	case canCreate:
		k.keyTypes = d.KeyTypes
	default:
		for _, kt := range shared.KeyTypes {
			if _, ok := k.cfg.Keys[kt]; ok {
				k.keyTypes = append(k.keyTypes, kt)
			}
		}
	}
	for _, kt := range k.keyTypes {
		if !slices.Contains(d.KeyTypes, kt) {
			r.Errorf("Config.KeyTypes names %s, which Describe does not claim (%v)", kt, d.KeyTypes)
		}
		if _, ok := k.cfg.Keys[kt]; !ok && !canCreate {
			r.Errorf("no key for %s: the provider does not claim %s, so set Config.Keys[%q] or leave %s out of Config.KeyTypes", kt, shared.CapCreateKey, kt, kt)
		}
	}
	k.algs = d.Algorithms
	if len(k.cfg.Algorithms) > 0 {
		k.algs = k.cfg.Algorithms
		for _, a := range k.algs {
			if !slices.Contains(d.Algorithms, a) {
				r.Errorf("Config.Algorithms names %s, which Describe does not claim (%v)", a, d.Algorithms)
			}
		}
	}
	if len(k.keyTypes) == 0 {
		r.Errorf("no key types to test: Describe claims %v, Config.KeyTypes is %v, Config.Keys has %d keys", d.KeyTypes, k.cfg.KeyTypes, len(k.cfg.Keys))
	}
	for _, kt := range k.keyTypes {
		if len(k.algsFor(kt)) == 0 {
			r.Errorf("no algorithm to test for %s: tested algorithms are %v", kt, k.algs)
		}
	}
}

// algsFor lists the tested algorithms a key type can sign with.
func (k *kit) algsFor(kt shared.KeyType) []shared.Algorithm {
	var out []shared.Algorithm
	for _, a := range k.algs {
		if kt.Supports(a) {
			out = append(out, a)
		}
	}
	return out
}

// checkKeyType runs every per-key check for one key type. The key's setup
// comes first; without a key there is nothing more to check. The Sign
// checks come before the checks that need good signatures, which are
// skipped when signing failed.
func (k *kit) checkKeyType(r reporter, kt shared.KeyType) {
	ky := &key{kt: kt, algs: k.algsFor(kt), signFailed: map[string]bool{}}
	if !r.Run("Key", func(r reporter) { k.setupKey(r, ky) }) {
		return
	}
	if !r.Run("PublicKey", func(r reporter) { k.checkPublicKey(r, ky) }) {
		return
	}
	r.Run("Metadata", func(r reporter) { k.checkMetadata(r, ky, []string{ky.version}) })
	if k.desc.Has(shared.CapListKeys) {
		r.Run("ListKeys", func(r reporter) { k.checkListKeys(r, ky) })
	}
	digestChecks := make([]string, len(ky.algs)) // the Sign checks of the default mode
	for i, a := range ky.algs {
		digestChecks[i] = signCheck(a, false)
	}
	for _, a := range ky.algs {
		deps := []string{signCheck(a, false)}
		if a != shared.EdDSA {
			name := signCheck(a, false)
			ky.signFailed[name] = !r.Run(name, func(r reporter) { k.checkSign(r, ky, a, false) })
		}
		if a == shared.EdDSA || k.desc.Has(shared.CapSignMessage) {
			name := signCheck(a, true)
			ky.signFailed[name] = !r.Run(name, func(r reporter) { k.checkSign(r, ky, a, true) })
			deps = append(deps, name)
		}
		if k.desc.Has(shared.CapVerify) {
			r.Run("Verify/"+string(a), func(r reporter) { ky.needSigning(r, deps...); k.checkVerify(r, ky, a) })
		}
	}
	r.Run("WrongDigestLength", func(r reporter) { k.checkWrongDigest(r, ky) })
	r.Run("MismatchedAlgorithm", func(r reporter) { k.checkMismatchedAlgorithm(r, ky) })
	if _, ok := k.p.(shared.BatchSigner); ok {
		r.Run("SignBatch", func(r reporter) { ky.needSigning(r, digestChecks...); k.checkSignBatch(r, ky) })
	}
	r.Run("Concurrent", func(r reporter) { ky.needSigning(r, digestChecks...); k.checkConcurrent(r, ky) })
	r.Run("Cancelled", func(r reporter) { k.checkCancelled(r, ky) })
	r.Run("DeadlineExceeded", func(r reporter) { k.checkDeadline(r, ky) })
	if k.desc.Has(shared.CapRotateKey) {
		r.Run("Rotation", func(r reporter) { ky.needSigning(r, digestChecks[0]); k.checkRotation(r, ky) })
	}
}

// signCheck names the Sign check of an algorithm in digest or message
// mode; EdDSA always signs the message.
func signCheck(a shared.Algorithm, message bool) string {
	if message || a == shared.EdDSA {
		return "Sign/" + string(a) + "/message"
	}
	return "Sign/" + string(a) + "/digest"
}

// needSigning skips a check that needs good signatures from the provider
// when a Sign check it depends on failed: its own failure would only
// repeat that one.
func (ky *key) needSigning(r reporter, signChecks ...string) {
	for _, c := range signChecks {
		if ky.signFailed[c] {
			r.Skipf("skipped: signing failed (see %s)", c)
		}
	}
}

// call runs one operation bounded by Config.Timeout. It waits in its own
// goroutine so that an in-process provider that ignores its context fails
// the check instead of hanging the test.
func call[T any](k *kit, f func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), k.cfg.Timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("providertest: no answer within Config.Timeout (%s): %w", k.cfg.Timeout, ctx.Err())
	}
}

func (k *kit) ref(id string) shared.KeyRef { return shared.KeyRef{ID: id, Params: k.cfg.Params} }

func (k *kit) sign(req shared.SignRequest) (shared.SignResponse, error) {
	return call(k, func(ctx context.Context) (shared.SignResponse, error) { return k.p.Sign(ctx, req) })
}

func (k *kit) verify(req shared.VerifyRequest) (shared.VerifyResponse, error) {
	return call(k, func(ctx context.Context) (shared.VerifyResponse, error) { return k.p.Verify(ctx, req) })
}

func (k *kit) publicKey(req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	return call(k, func(ctx context.Context) (shared.PublicKeyResponse, error) { return k.p.PublicKey(ctx, req) })
}

func (k *kit) metadata(id string) (shared.KeyMetadata, error) {
	return call(k, func(ctx context.Context) (shared.KeyMetadata, error) {
		return k.p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: k.ref(id)})
	})
}

func (k *kit) rotate(id string) (shared.RotateKeyResponse, error) {
	return call(k, func(ctx context.Context) (shared.RotateKeyResponse, error) {
		return k.p.RotateKey(ctx, shared.RotateKeyRequest{Key: k.ref(id)})
	})
}

// input is what a check signs: a message, and its digest for algorithms
// that sign digests.
type input struct {
	message []byte
	digest  []byte
}

func newInput(a shared.Algorithm, text string) input {
	in := input{message: []byte("knhk conformance kit: " + text + " " + time.Now().Format(time.RFC3339Nano))}
	if a != shared.EdDSA {
		in.digest, _ = shared.Digest(a, in.message) // only fails for EdDSA
	}
	return in
}

// signRequest builds a sign request in digest mode, or message mode when
// message is set or the algorithm is EdDSA.
func (k *kit) signRequest(ky *key, a shared.Algorithm, in input, message bool, version string) shared.SignRequest {
	req := shared.SignRequest{Key: k.ref(ky.id), Algorithm: a, Version: version}
	if message || a == shared.EdDSA {
		req.Message = in.message
	} else {
		req.Digest = in.digest
	}
	return req
}

// verifyLocal checks a signature with the standard library, over the
// digest or the message as the request carried it.
func verifyLocal(pub crypto.PublicKey, req shared.SignRequest, sig []byte) error {
	if req.Message != nil {
		return shared.VerifyMessage(pub, req.Algorithm, req.Message, sig)
	}
	return shared.VerifyDigest(pub, req.Algorithm, req.Digest, sig)
}
