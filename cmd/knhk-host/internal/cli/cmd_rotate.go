package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// rotatedJSON is `rotate -o json`.
type rotatedJSON struct {
	Key     string `json:"key"`
	Version string `json:"version"`
}

func (a *app) rotateCmd() *cobra.Command {
	var (
		kf      keyFlags
		pending bool
	)
	cmd := &cobra.Command{
		Use:   "rotate --key REF [--pending]",
		Short: "Make a new key version current and print it",
		Long: `Ask the provider for a new version of the key, make it current and print the
new version. Older versions keep verifying and can still sign with --version.
Rotation is never retried automatically: if it fails, check 'knhk-host
metadata' before rotating again.

With --pending the new version is pending instead: published (pubkey
--version works) but not signing until 'knhk-host promote'; the key gets
version states if it had none (its current version becomes active). Only for
providers that keep version states (capability version_states).`,
		Example: `  knhk-host rotate --key 'fake:demo?state=/tmp/keys.json'
  v=$(knhk-host rotate --key release --config knhk.hcl)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := a.resolve(kf)
			if err != nil {
				return err
			}
			var v string
			if pending {
				k, err := a.openVersionKey(cmd.Context(), spec)
				if err != nil {
					return err
				}
				v, err = k.RotatePending(cmd.Context())
				if err != nil {
					return fmt.Errorf("rotate %s: %w", spec.errName(), err)
				}
			} else {
				k, err := a.openKey(cmd.Context(), spec)
				if err != nil {
					return err
				}
				if v, err = k.Rotate(cmd.Context()); err != nil {
					return fmt.Errorf("rotate %s: %w", spec.errName(), err)
				}
			}
			res := rotatedJSON{Key: spec.show(), Version: v}
			return a.printer().print(res, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, v)
				return err
			})
		},
	}
	kf.register(cmd)
	cmd.Flags().BoolVar(&pending, "pending", false, "make the new version pending (promote it to sign)")
	return cmd
}
