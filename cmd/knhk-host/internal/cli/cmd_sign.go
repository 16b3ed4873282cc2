package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// signFlags are shared by sign and verify.
type signFlags struct {
	keyFlags
	alg       string
	version   string
	prehashed bool
	in        string
}

func (f *signFlags) register(cmd *cobra.Command) {
	f.keyFlags.register(cmd)
	cmd.Flags().StringVarP(&f.alg, "alg", "a", "", "algorithm: "+joinStrings(shared.Algorithms)+" (default: the key's natural one: RS256 for RSA, ES256/ES384/ES512 by curve, EdDSA for Ed25519)")
	cmd.Flags().StringVar(&f.version, "version", "", "key version (default: current)")
	cmd.Flags().BoolVar(&f.prehashed, "prehashed", false, "the input is the binary digest, already hashed with the algorithm's hash (not for EdDSA)")
	cmd.Flags().StringVarP(&f.in, "in", "i", "", "file holding the message or digest (default: stdin)")
}

// prepared is a sign or verify command ready to run: the key, how to
// name it, the options and the input.
type prepared struct {
	key  keyOps
	spec keySpec
	opts host.SignOptions
	in   input
}

// prepare checks the flags, opens the input and the key, in that order, so
// a bad command line never starts a plugin, then reads the input: the
// digest with --prehashed, else the message, hashed while it is read when
// it is long (see readMessage). edLimit bounds an EdDSA message (0: no
// bound).
func (a *app) prepare(ctx context.Context, f signFlags, stdinFree bool, edLimit int64) (prepared, error) {
	var p prepared
	spec, err := a.resolve(f.keyFlags)
	if err != nil {
		return p, err
	}
	p.spec = spec
	if f.alg != "" {
		alg, err := shared.ParseAlgorithm(f.alg)
		if err != nil {
			return p, usagef("pass --alg, one of "+joinStrings(shared.Algorithms), "%v", err)
		}
		if alg == shared.EdDSA && f.prehashed {
			return p, usagef("leave out --prehashed: Ed25519 signs the whole message", "EdDSA cannot sign a prehashed digest")
		}
		p.opts.Algorithm = alg
	}
	p.opts.Version = f.version
	if !stdinFree && (f.in == "" || f.in == "-") {
		return p, usagef("pass the message with --in FILE", "the signature is read from stdin, so the message cannot be too")
	}
	what := "message"
	if f.prehashed {
		what = "digest"
	}
	r, err := openInput(f.in, a.stdin, what)
	if err != nil {
		return p, err
	}
	defer r.Close()
	if p.key, err = a.openKey(ctx, spec); err != nil {
		return p, err
	}
	if p.opts.Algorithm == "" {
		// The default algorithm depends on the key: find it now, to know
		// whether the message is hashed, and so that EdDSA keys get a
		// clear refusal of --prehashed instead of a digest-length error.
		pk, err := p.key.PublicKey(ctx, f.version)
		if err != nil {
			return p, fmt.Errorf("get public key of %s: %w", spec.errName(), err)
		}
		p.opts.Algorithm = pk.Type.DefaultAlgorithm()
		if p.opts.Algorithm == shared.EdDSA && f.prehashed {
			return p, usagef("leave out --prehashed: Ed25519 signs the whole message", "%s is an Ed25519 key, which cannot sign a prehashed digest", spec.errName())
		}
	}
	if f.prehashed {
		digest, err := readBounded(r, maxDigestInput, f.in, "digest", "--prehashed takes the binary digest (32, 48 or 64 bytes), e.g. from openssl dgst -binary")
		p.in = input{data: digest, digest: true}
		return p, err
	}
	p.in, err = readMessage(r, p.opts.Algorithm, edLimit, f.in)
	return p, err
}

// signatureJSON is `sign -o json`.
type signatureJSON struct {
	Key       string           `json:"key"`
	Algorithm shared.Algorithm `json:"algorithm"`
	Version   string           `json:"version"`
	Signature string           `json:"signature"` // standard base64
	Out       string           `json:"out,omitempty"`
}

func (a *app) signCmd() *cobra.Command {
	var f signFlags
	var out string
	cmd := &cobra.Command{
		Use:   "sign --key REF [--alg ALG] [--prehashed] [--version V] [--in FILE] [--out FILE]",
		Short: "Sign a message (or a digest) with a key",
		Long: `Sign the message read from --in (or stdin). The message is hashed with the
algorithm's hash (SHA-256 for RS256, PS256, ES256...) unless --prehashed says
the input already is that binary digest; EdDSA signs the whole message.

Messages of any size can be signed with a hashed algorithm: up to ` + mib(streamThreshold) + ` the
message goes to the host whole (a provider that signs whole messages itself
gets it as is); past ` + mib(streamThreshold) + ` it is hashed here while it is read, in constant
memory, and only the digest goes to the provider. The signature is the same
either way. EdDSA sends the whole message to the plugin, so it is limited to
` + mib(host.MaxWholeMessage) + `; a longer one is refused (exit status 2) before it is sent.

The signature (ECDSA as ASN.1 DER, RSA and Ed25519 raw, as openssl writes
them) goes to --out as raw bytes, or to stdout as one line of base64. With
-o json, stdout gets the signature, algorithm and key version as JSON.
Every signature is checked against the key's public key before it is
returned.`,
		Example: `  echo -n hello | knhk-host sign --key 'fake:demo?state=/tmp/keys.json'
  knhk-host sign --key release --config knhk.hcl --in release.tar.gz --out release.sig
  openssl dgst -sha256 -binary release.tar.gz | knhk-host sign --key release --config knhk.hcl --prehashed
  knhk-host sign --key 'fake:rsa?state=/tmp/keys.json' --alg PS256 --version 1 --in msg --out msg.sig`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, err := a.prepare(ctx, f, true, host.MaxWholeMessage)
			if err != nil {
				return err
			}
			var sig host.Signature
			if p.in.digest {
				sig, err = p.key.SignDigest(ctx, p.in.data, p.opts)
			} else {
				sig, err = p.key.SignMessage(ctx, p.in.data, p.opts)
			}
			if err != nil {
				return fmt.Errorf("sign with %s: %w", p.spec.errName(), err)
			}
			if out != "" && out != "-" {
				if err := writeOutput(out, sig.Signature); err != nil {
					return err
				}
			}
			res := signatureJSON{Key: p.spec.show(), Algorithm: sig.Algorithm, Version: sig.Version, Signature: base64.StdEncoding.EncodeToString(sig.Signature), Out: out}
			if out == "-" && !a.printer().json {
				_, err := a.stdout.Write(sig.Signature)
				return writeErr(err)
			}
			return a.printer().print(res, func(w io.Writer) error {
				if out != "" {
					return nil // the signature is in the file; say nothing
				}
				_, err := fmt.Fprintln(w, res.Signature)
				return err
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "write the raw signature to this file ('-': raw bytes to stdout) instead of base64 to stdout")
	return cmd
}

// verdictJSON is `verify -o json`.
type verdictJSON struct {
	Key       string           `json:"key"`
	Algorithm shared.Algorithm `json:"algorithm,omitempty"`
	Version   string           `json:"version,omitempty"`
	Valid     bool             `json:"valid"`
}

func (a *app) verifyCmd() *cobra.Command {
	var f signFlags
	var sigPath string
	cmd := &cobra.Command{
		Use:   "verify --key REF [--alg ALG] [--version V] --sig FILE [--in FILE]",
		Short: "Check a signature: exit status 0 when valid, 1 when invalid",
		Long: `Check the signature in --sig over the message read from --in (or stdin),
locally with the key's public key (with --server, the daemon checks it). --sig holds raw signature bytes or the
base64 that 'sign' prints. --alg, --version and --prehashed mean what they
mean for sign; without --version the current version's key is used, so pass
the version that signed after a rotation.

Prints "valid" or "invalid" (JSON with -o json) and exits 0 when the
signature is valid, 1 when it is not, 2 or 3 on any error.`,
		Example: `  echo -n hello | knhk-host verify --key 'fake:demo?state=/tmp/keys.json' --sig hello.sig
  knhk-host verify --key release --config knhk.hcl --in release.tar.gz --sig release.sig --version 2 && echo ok`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if sigPath == "" {
				return usagef("pass --sig FILE holding the signature (raw or base64)", "missing --sig")
			}
			sr, err := openInput(sigPath, a.stdin, "signature")
			if err != nil {
				return err
			}
			raw, err := readBounded(sr, maxSignatureInput, sigPath, "signature", "--sig takes the signature, raw or in base64, as sign writes it")
			sr.Close()
			if err != nil {
				return err
			}
			sig := decodeSignature(raw)
			// Verification is local: an EdDSA message of any size can be
			// checked, so it is not bounded. (Through the daemon, one
			// over host.MaxWholeMessage is refused.)
			p, err := a.prepare(ctx, f, sigPath != "-", 0)
			if err != nil {
				return err
			}
			if p.in.digest {
				err = p.key.VerifyDigest(ctx, p.in.data, sig, p.opts)
			} else {
				err = p.key.VerifyMessage(ctx, p.in.data, sig, p.opts)
			}
			valid := err == nil
			if err != nil && !errors.Is(err, shared.ErrBadSignature) {
				return fmt.Errorf("verify with %s: %w", p.spec.errName(), err)
			}
			res := verdictJSON{Key: p.spec.show(), Algorithm: p.opts.Algorithm, Version: p.opts.Version, Valid: valid}
			// Name the algorithm and version that were checked; the public
			// key is cached (locally), so this costs no plugin call.
			if pk, err := p.key.PublicKey(ctx, p.opts.Version); err == nil {
				if res.Algorithm == "" {
					res.Algorithm = pk.Type.DefaultAlgorithm()
				}
				if pk.Version != "" {
					res.Version = pk.Version
				}
			}
			if perr := a.printer().print(res, func(w io.Writer) error {
				verdict := "valid"
				if !valid {
					verdict = "invalid"
				}
				_, err := fmt.Fprintln(w, verdict)
				return err
			}); perr != nil {
				return perr
			}
			if !valid {
				return errInvalidSignature
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&sigPath, "sig", "s", "", "file holding the signature, raw or base64 ('-': stdin) (required)")
	return cmd
}
