package client

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// Key is a handle on one of the daemon's keys, from Client.Key or
// Client.CreateKey. Its methods are those of *host.Key, with the same
// types and errors, so code written for one runs with the other. It is
// safe for concurrent use and holds nothing but its name.
type Key struct {
	c    *Client
	name string
}

// Name is the key name or reference the handle was made with, as the
// daemon is given it.
func (k *Key) Name() string { return k.name }

// SignDigest signs a digest made with the algorithm's hash (so not with
// EdDSA, which signs messages: use SignMessage). The daemon has verified
// the signature against the key's public key.
func (k *Key) SignDigest(ctx context.Context, digest []byte, opts host.SignOptions) (host.Signature, error) {
	return k.sign(ctx, &sidecarv1.SignRequest{Key: k.name, Digest: digest, Algorithm: string(opts.Algorithm), Version: opts.Version})
}

// SignMessage signs a whole message. A message over host.MaxWholeMessage
// cannot cross whole, so it is hashed here and its digest signed (the
// signature is the same), except with EdDSA, which refuses it. A daemon
// may take less than that in one request (its max_request_bytes, 4 MiB by
// default); SignDigest works whatever the message's size.
func (k *Key) SignMessage(ctx context.Context, message []byte, opts host.SignOptions) (host.Signature, error) {
	if len(message) > host.MaxWholeMessage {
		digest, o, err := k.hashLarge(ctx, message, opts)
		if err != nil {
			return host.Signature{}, err
		}
		return k.SignDigest(ctx, digest, o)
	}
	if message == nil {
		message = []byte{}
	}
	return k.sign(ctx, &sidecarv1.SignRequest{Key: k.name, Message: message, Algorithm: string(opts.Algorithm), Version: opts.Version})
}

// sign sends one signature request: over the shared stream unless the
// Client has none or the request is large, else as a unary call.
func (k *Key) sign(ctx context.Context, req *sidecarv1.SignRequest) (host.Signature, error) {
	if m := k.c.mux; m != nil && len(req.Digest)+len(req.Message) <= maxStreamItem {
		return m.sign(ctx, req)
	}
	resp, err := k.c.api.Sign(ctx, req)
	if err != nil {
		return host.Signature{}, k.c.wrap(err)
	}
	return signature(resp), nil
}

func signature(r *sidecarv1.SignResponse) host.Signature {
	return host.Signature{Signature: r.GetSignature(), Algorithm: shared.Algorithm(r.GetAlgorithm()), Version: r.GetVersion()}
}

// hashLarge hashes a message too large to send whole, with the
// algorithm's hash (the key type's default when opts has none), and
// returns the options naming that algorithm.
func (k *Key) hashLarge(ctx context.Context, message []byte, opts host.SignOptions) ([]byte, host.SignOptions, error) {
	if opts.Algorithm == "" {
		pk, err := k.PublicKey(ctx, opts.Version)
		if err != nil {
			return nil, opts, err
		}
		opts.Algorithm = pk.Type.DefaultAlgorithm()
	}
	if opts.Algorithm == shared.EdDSA {
		return nil, opts, fmt.Errorf("%w: EdDSA signs the whole message, and %d bytes is over the %d one call carries", shared.ErrInvalidArgument, len(message), host.MaxWholeMessage)
	}
	digest, err := shared.Digest(opts.Algorithm, message)
	return digest, opts, err
}

// VerifyDigest asks the daemon whether sig is a valid signature over
// digest with the key version opts.Version (empty: current). It returns
// nil, or an error wrapping shared.ErrBadSignature when the signature does
// not verify, or the call's error.
func (k *Key) VerifyDigest(ctx context.Context, digest, sig []byte, opts host.SignOptions) error {
	return k.verify(ctx, &sidecarv1.VerifyRequest{Key: k.name, Digest: digest, Signature: sig, Algorithm: string(opts.Algorithm), Version: opts.Version})
}

// VerifyMessage is VerifyDigest over a whole message; one over
// host.MaxWholeMessage is hashed here, as SignMessage does.
func (k *Key) VerifyMessage(ctx context.Context, message, sig []byte, opts host.SignOptions) error {
	if len(message) > host.MaxWholeMessage {
		digest, o, err := k.hashLarge(ctx, message, opts)
		if err != nil {
			return err
		}
		return k.VerifyDigest(ctx, digest, sig, o)
	}
	if message == nil {
		message = []byte{}
	}
	return k.verify(ctx, &sidecarv1.VerifyRequest{Key: k.name, Message: message, Signature: sig, Algorithm: string(opts.Algorithm), Version: opts.Version})
}

func (k *Key) verify(ctx context.Context, req *sidecarv1.VerifyRequest) error {
	resp, err := k.c.api.Verify(ctx, req)
	if err != nil {
		return k.c.wrap(err)
	}
	if !resp.GetValid() {
		return fmt.Errorf("%w: the signature does not verify with key %s", shared.ErrBadSignature, shared.Quote(k.name))
	}
	return nil
}

// PublicKey returns a version's public key (empty version: current).
func (k *Key) PublicKey(ctx context.Context, version string) (host.PublicKey, error) {
	resp, err := k.c.api.PublicKey(ctx, &sidecarv1.PublicKeyRequest{Key: k.name, Version: version})
	if err != nil {
		return host.PublicKey{}, k.c.wrap(err)
	}
	return publicKey(resp)
}

// publicKey parses the daemon's answer: the key from the DER, its type as
// the daemon names it, checked against the key.
func publicKey(r *sidecarv1.PublicKeyResponse) (host.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(r.GetDer())
	if err != nil {
		return host.PublicKey{}, fmt.Errorf("the sidecar returned a public key that does not parse: %w", err)
	}
	kt, err := shared.KeyTypeOf(pub)
	if err != nil {
		return host.PublicKey{}, fmt.Errorf("the sidecar returned a public key of no knhk key type: %w", err)
	}
	if named := shared.KeyType(r.GetKeyType()); named != "" && named != kt {
		return host.PublicKey{}, fmt.Errorf("the sidecar names its %s public key %s", kt, shared.Quote(string(named)))
	}
	return host.PublicKey{Key: pub, DER: r.GetDer(), Type: kt, Version: r.GetVersion()}, nil
}

// Metadata describes the key and its versions.
func (k *Key) Metadata(ctx context.Context) (shared.KeyMetadata, error) {
	resp, err := k.c.api.Metadata(ctx, &sidecarv1.MetadataRequest{Key: k.name})
	if err != nil {
		return shared.KeyMetadata{}, k.c.wrap(err)
	}
	md := shared.KeyMetadata{
		KeyID:          resp.GetKeyId(),
		Type:           shared.KeyType(resp.GetKeyType()),
		CurrentVersion: resp.GetCurrentVersion(),
		Attributes:     resp.GetAttributes(),
	}
	for _, a := range resp.GetAlgorithms() {
		md.Algorithms = append(md.Algorithms, shared.Algorithm(a))
	}
	for _, v := range resp.GetVersions() {
		kv := shared.KeyVersion{Version: v.GetVersion(), Enabled: v.GetEnabled()}
		if v.GetCreated() != nil {
			kv.Created = v.GetCreated().AsTime()
		}
		md.Versions = append(md.Versions, kv)
	}
	return md, nil
}

// Rotate makes a new key version current and returns it. Never retried:
// after an UnreachableError, look at Metadata before rotating again.
func (k *Key) Rotate(ctx context.Context) (string, error) {
	resp, err := k.c.api.Rotate(ctx, &sidecarv1.RotateRequest{Key: k.name})
	if err != nil {
		return "", k.c.wrap(err)
	}
	return resp.GetVersion(), nil
}

// Signer returns a Signer (a crypto.Signer and crypto.MessageSigner) for
// the key's current version. It fetches the public key now, so Public
// cannot fail, and keeps ctx for every later Sign: a signer made with a
// request's context stops working when the request ends.
func (k *Key) Signer(ctx context.Context) (*Signer, error) {
	pk, err := k.PublicKey(ctx, "")
	if err != nil {
		return nil, err
	}
	return &Signer{key: k, ctx: ctx, pk: pk}, nil
}
