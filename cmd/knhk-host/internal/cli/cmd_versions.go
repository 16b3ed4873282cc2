package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// versionOps is what versions, promote, retire and rotate --pending do
// with a key: a *host.Key's (plugins run here) or a *client.Key's
// (through the daemon, --server).
type versionOps interface {
	Versions(ctx context.Context) ([]host.VersionInfo, error)
	RotatePending(ctx context.Context) (string, error)
	Gates(ctx context.Context, version string, approvals ...[]byte) ([]host.GateResult, error)
	Promote(ctx context.Context, version string, approvals ...[]byte) error
	Retire(ctx context.Context, version string) error
}

var (
	_ versionOps = (*host.Key)(nil)
	_ versionOps = (*client.Key)(nil)
)

// openVersionKey opens the key of spec for a version state command.
func (a *app) openVersionKey(ctx context.Context, spec keySpec) (versionOps, error) {
	k, err := a.openKey(ctx, spec)
	if err != nil {
		return nil, err
	}
	return k.(versionOps), nil
}

// versionStateJSON is one version in `versions -o json`.
type versionStateJSON struct {
	Version    string     `json:"version"`
	State      string     `json:"state,omitempty"`
	Current    bool       `json:"current"`
	Enabled    bool       `json:"enabled"`
	Created    time.Time  `json:"created,omitzero"`
	SPKISHA256 string     `json:"spki_sha256,omitempty"`
	Gates      []gateJSON `json:"gates,omitempty"`
}

// gateJSON is one promotion gate's verdict on a pending version.
type gateJSON struct {
	Gate     string `json:"gate"`
	Met      bool   `json:"met"`
	Deferred bool   `json:"deferred,omitempty"`
	Detail   string `json:"detail"`
}

// gatesJSON converts the host's gate results, the state gate left out
// (the version's state says it).
func gatesJSON(res []host.GateResult) []gateJSON {
	var out []gateJSON
	for _, r := range res {
		if r.Gate != host.GateState {
			out = append(out, gateJSON{Gate: r.Gate, Met: r.Met, Deferred: r.Deferred, Detail: r.Detail})
		}
	}
	return out
}

// printGates writes a pending version's gates, one a line.
func printGates(w io.Writer, version string, gates []gateJSON) {
	if len(gates) == 0 {
		return
	}
	fmt.Fprintf(w, "\nversion %s: promotion gates\n", version)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, g := range gates {
		verdict := "not met"
		switch {
		case g.Deferred:
			verdict = "at promote"
		case g.Met:
			verdict = "met"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", g.Gate, verdict, g.Detail)
	}
	tw.Flush()
}

// versionsJSON is `versions -o json`.
type versionsJSON struct {
	Key      string             `json:"key"`
	Versions []versionStateJSON `json:"versions"`
}

func (a *app) versionsCmd() *cobra.Command {
	var (
		kf        keyFlags
		approvals []string
	)
	cmd := &cobra.Command{
		Use:   "versions --key REF [--approval FILE]...",
		Short: "List a key's versions with their states and fingerprints",
		Long: `List the key's versions, oldest first: each one's state (pending, active,
retiring, retired; "-" for a key without version states), whether it is the
version that signs when none is named, and the SHA-256 of its public key
(DER SubjectPublicKeyInfo). States are read afresh from the provider.

For each pending version of a key with promotion gates (the promotion
block of its key in --config), the gates follow, met or not, against the
approvals stored in the key's approvals_dir and those given with
--approval. The canary gate signs, so it runs only at promote.`,
		Example: `  knhk-host versions --key 'fake:demo?state=/tmp/keys.json'`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := a.resolve(kf)
			if err != nil {
				return err
			}
			k, err := a.openVersionKey(cmd.Context(), spec)
			if err != nil {
				return err
			}
			vs, err := k.Versions(cmd.Context())
			if err != nil {
				return fmt.Errorf("versions of %s: %w", spec.errName(), err)
			}
			res := versionsJSON{Key: spec.show(), Versions: []versionStateJSON{}}
			for _, v := range vs {
				j := versionStateJSON{Version: v.Version, State: string(v.State), Current: v.Current, Enabled: v.Enabled, Created: v.Created, SPKISHA256: v.SPKISHA256}
				if v.State == shared.VersionPending {
					notes, err := readApprovals(a.promotionOf(spec), v.Version, approvals)
					if err != nil {
						return err
					}
					res, err := k.Gates(cmd.Context(), v.Version, notes...)
					if err != nil {
						return fmt.Errorf("gates of %s version %s: %w", spec.errName(), shared.Quote(v.Version), err)
					}
					j.Gates = gatesJSON(res)
				}
				res.Versions = append(res.Versions, j)
			}
			return a.printer().print(res, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VERSION\tSTATE\tCURRENT\tSPKI SHA-256")
				for _, v := range res.Versions {
					state, cur, fp := v.State, "", v.SPKISHA256
					if state == "" {
						state = "-"
					}
					if v.Current {
						cur = "*"
					}
					if fp == "" {
						fp = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Version, state, cur, fp)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				for _, v := range res.Versions {
					printGates(w, v.Version, v.Gates)
				}
				return nil
			})
		},
	}
	kf.register(cmd)
	cmd.Flags().StringArrayVar(&approvals, "approval", nil, "an approval file (signed note from 'knhk-host approve'); repeatable")
	return cmd
}

// stateChangeJSON is `promote -o json` and `retire -o json`.
type stateChangeJSON struct {
	Key     string `json:"key"`
	Version string `json:"version"`
	State   string `json:"state"`
}

func (a *app) promoteCmd() *cobra.Command {
	var approvals []string
	cmd := a.stateCmd("promote", shared.VersionActive,
		"Make a pending key version active, once its gates are met",
		`Make a pending version of the key active: from now on it signs, and the
version active before becomes retiring (it still verifies and stays
published, but no longer signs). Hosts sharing the key follow within their
version state cache's TTL (5s).

First the key's promotion gates (the promotion block of its key in
--config) must all be met: canary, replicas_agree, approvals (from the
key's approvals_dir and --approval files), soak. If any is not, nothing
changes, the unmet gates are listed and the exit status is 3.`,
		func(ctx context.Context, k versionOps, spec keySpec, v string) error {
			notes, err := readApprovals(a.promotionOf(spec), v, approvals)
			if err != nil {
				return err
			}
			return k.Promote(ctx, v, notes...)
		})
	cmd.Flags().StringArrayVar(&approvals, "approval", nil, "an approval file (signed note from 'knhk-host approve'); repeatable")
	return cmd
}

func (a *app) retireCmd() *cobra.Command {
	return a.stateCmd("retire", shared.VersionRetired,
		"Retire a retiring or pending key version (it neither signs nor verifies)",
		`Retire a version of the key: it no longer signs, its signatures no longer
verify and it is no longer published. Only a retiring or pending version can
be retired; the active one cannot (promote another first).`,
		func(ctx context.Context, k versionOps, _ keySpec, v string) error { return k.Retire(ctx, v) })
}

// stateCmd is promote or retire.
func (a *app) stateCmd(name string, state shared.VersionState, short, long string, do func(context.Context, versionOps, keySpec, string) error) *cobra.Command {
	var (
		kf      keyFlags
		version string
	)
	cmd := &cobra.Command{
		Use:     name + " --key REF --version V",
		Short:   short,
		Long:    long,
		Example: "  knhk-host " + name + " --key 'fake:demo?state=/tmp/keys.json' --version 2",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := a.resolve(kf)
			if err != nil {
				return err
			}
			if version == "" {
				return &usageError{err: fmt.Errorf("%s needs --version", name)}
			}
			k, err := a.openVersionKey(cmd.Context(), spec)
			if err != nil {
				return err
			}
			if err := do(cmd.Context(), k, spec, version); err != nil {
				return fmt.Errorf("%s %s version %s: %w", name, spec.errName(), shared.Quote(version), err)
			}
			res := stateChangeJSON{Key: spec.show(), Version: version, State: string(state)}
			return a.printer().print(res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s %s\n", version, state)
				return err
			})
		},
	}
	kf.register(cmd)
	cmd.Flags().StringVar(&version, "version", "", "the key version")
	return cmd
}
