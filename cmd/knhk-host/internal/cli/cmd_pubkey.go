package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/knhk/knhk/internal/keyfmt"
	"github.com/knhk/knhk/shared"
)

func (a *app) pubkeyCmd() *cobra.Command {
	var kf keyFlags
	var version, format, alg string
	cmd := &cobra.Command{
		Use:   "pubkey --key REF [--version V] [--format pem|jwk]",
		Short: "Print a key's public key as PEM or JWK",
		Long: `Print the public key of a key version (default: current) on stdout, and
nothing else, so it can be piped:
  pem  SubjectPublicKeyInfo in a "PUBLIC KEY" PEM block (the default; what
       openssl reads)
  jwk  a JSON Web Key (RFC 7517; RSA and EC members per RFC 7518, Ed25519 per
       RFC 8037) with use "sig", kid = its RFC 7638 thumbprint, and alg = --alg,
       or the key's only algorithm for EC and Ed25519 keys
-o does not change this output.`,
		Example: `  knhk-host pubkey --key 'fake:demo?state=/tmp/keys.json' | openssl pkey -pubin -noout -text
  knhk-host pubkey --key release --config knhk.hcl --format jwk --alg PS256
  knhk-host pubkey --key release --config knhk.hcl --version 1 > release-v1.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := a.resolve(kf)
			if err != nil {
				return err
			}
			if format != "pem" && format != "jwk" {
				return usagef("use --format pem or --format jwk", "unknown format %s", shared.Quote(format))
			}
			var jwkAlg shared.Algorithm
			if alg != "" {
				if jwkAlg, err = shared.ParseAlgorithm(alg); err != nil {
					return usagef("pass --alg, one of "+joinStrings(shared.Algorithms), "%v", err)
				}
			}
			k, err := a.openKey(cmd.Context(), spec)
			if err != nil {
				return err
			}
			pk, err := k.PublicKey(cmd.Context(), version)
			if err != nil {
				return fmt.Errorf("get public key of %s: %w", spec.errName(), err)
			}
			var out []byte
			if format == "pem" {
				out, err = keyfmt.PEM(pk.DER)
			} else {
				var j *keyfmt.JWK
				if j, err = keyfmt.NewJWK(pk.Key, jwkAlg); err == nil {
					out, err = j.MarshalIndent()
				}
			}
			if err != nil {
				return fmt.Errorf("public key of %s: %w", spec.errName(), err)
			}
			_, err = a.stdout.Write(out)
			return writeErr(err)
		},
	}
	kf.register(cmd)
	cmd.Flags().StringVar(&version, "version", "", "key version (default: current)")
	cmd.Flags().StringVarP(&format, "format", "f", "pem", "pem or jwk")
	cmd.Flags().StringVarP(&alg, "alg", "a", "", "JWK only: the algorithm to record in \"alg\"")
	return cmd
}
