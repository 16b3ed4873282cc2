package providertest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/knhk/knhk/shared"
)

// wantError returns nil when err wraps one of targets. Its message names
// the errors as Go identifiers, as a plugin author writes them.
func wantError(err error, targets ...error) error {
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = errName(t)
	}
	want := strings.Join(names, " or ")
	if err == nil {
		return fmt.Errorf("succeeded, want an error wrapping %s", want)
	}
	for _, t := range targets {
		if errors.Is(err, t) {
			return nil
		}
	}
	got := "no sentinel"
	if s := shared.SentinelOf(err); s != nil {
		got = errName(s)
	}
	return fmt.Errorf("got %q, which wraps %s; want an error wrapping %s", err, got, want)
}

// errNames are the Go names of the errors a provider may wrap.
var errNames = map[error]string{
	shared.ErrKeyNotFound:          "shared.ErrKeyNotFound",
	shared.ErrInvalidArgument:      "shared.ErrInvalidArgument",
	shared.ErrUnsupportedAlgorithm: "shared.ErrUnsupportedAlgorithm",
	shared.ErrPermissionDenied:     "shared.ErrPermissionDenied",
	shared.ErrUnavailable:          "shared.ErrUnavailable",
	shared.ErrFailedPrecondition:   "shared.ErrFailedPrecondition",
	shared.ErrUnimplemented:        "shared.ErrUnimplemented",
	shared.ErrAlreadyExists:        "shared.ErrAlreadyExists",
	context.Canceled:               "context.Canceled",
	context.DeadlineExceeded:       "context.DeadlineExceeded",
}

// errName names a sentinel as Go code does ("shared.ErrKeyNotFound").
func errName(err error) string {
	if n, ok := errNames[err]; ok {
		return n
	}
	return strconv.Quote(err.Error())
}

// checkUnknownKey checks that every operation on a key that does not exist
// fails with ErrKeyNotFound.
func (k *kit) checkUnknownKey(r reporter) {
	id := k.cfg.MissingKeyID
	ref := k.ref(id)
	a := k.algsFor(k.keyTypes[0])[0]
	in := newInput(a, "unknown key")
	sreq := k.signRequest(&key{id: id}, a, in, false, "")
	ops := []struct {
		name string
		call func() error
		skip bool
	}{
		{"PublicKey", func() error { _, err := k.publicKey(shared.PublicKeyRequest{Key: ref}); return err }, false},
		{"Sign", func() error { _, err := k.sign(sreq); return err }, false},
		{"KeyMetadata", func() error { _, err := k.metadata(id); return err }, false},
		{"Verify", func() error {
			_, err := k.verify(verifyRequest(sreq, []byte("not a signature")))
			return err
		}, !k.desc.Has(shared.CapVerify)},
		{"RotateKey", func() error { _, err := k.rotate(id); return err }, !k.desc.Has(shared.CapRotateKey)},
	}
	for _, op := range ops {
		if op.skip {
			continue
		}
		r.Run(op.name, func(r reporter) {
			if err := wantError(op.call(), shared.ErrKeyNotFound); err != nil {
				r.Errorf("%s(%q), a key that does not exist: %v", op.name, id, err)
			}
		})
	}
}

// checkWrongDigest checks that a digest of the wrong length, or a digest
// for EdDSA (which signs messages), fails with ErrInvalidArgument.
func (k *kit) checkWrongDigest(r reporter, ky *key) {
	for _, a := range ky.algs {
		var digests [][]byte
		if a == shared.EdDSA {
			digests = [][]byte{make([]byte, 32)}
		} else {
			n := a.Hash().Size()
			digests = [][]byte{make([]byte, n-1), make([]byte, n+1)}
		}
		for _, d := range digests {
			_, err := k.sign(shared.SignRequest{Key: k.ref(ky.id), Algorithm: a, Digest: d})
			if err := wantError(err, shared.ErrInvalidArgument); err != nil {
				r.Errorf("Sign(%q, %s) with a %d-byte digest: %v", ky.id, a, len(d), err)
			}
			if !k.desc.Has(shared.CapVerify) {
				continue
			}
			_, err = k.verify(shared.VerifyRequest{Key: k.ref(ky.id), Algorithm: a, Digest: d, Signature: []byte{1}})
			if err := wantError(err, shared.ErrInvalidArgument); err != nil {
				r.Errorf("Verify(%q, %s) with a %d-byte digest: %v", ky.id, a, len(d), err)
			}
		}
	}
}

// checkMismatchedAlgorithm checks that signing with every algorithm the key
// type cannot use fails with ErrUnsupportedAlgorithm or ErrInvalidArgument.
// The input fits the algorithm, so only the key can be wrong.
func (k *kit) checkMismatchedAlgorithm(r reporter, ky *key) {
	for _, a := range shared.Algorithms {
		if ky.kt.Supports(a) {
			continue
		}
		req := k.signRequest(ky, a, newInput(a, "mismatched algorithm"), false, "")
		_, err := k.sign(req)
		if err := wantError(err, shared.ErrUnsupportedAlgorithm, shared.ErrInvalidArgument); err != nil {
			r.Errorf("Sign(%q) of a %s key with %s: %v", ky.id, ky.kt, a, err)
		}
	}
}
