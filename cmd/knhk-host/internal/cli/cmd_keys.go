package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create and list keys",
		Example: `  knhk-host keys create --key 'fake:demo?state=/tmp/keys.json' --type ec-p256
  knhk-host keys list --provider fake --param state=/tmp/keys.json`,
		RunE:                       needsSubcommand,
		SuggestionsMinimumDistance: 2,
	}
	cmd.AddCommand(a.keysCreateCmd(), a.keysListCmd(), a.keysHealthCmd())
	return cmd
}

// createdJSON is `keys create -o json`.
type createdJSON struct {
	Key     string         `json:"key"`
	KeyID   string         `json:"key_id"`
	Type    shared.KeyType `json:"type"`
	Version string         `json:"version"`
	// Replicas are the replicas' full references (--replicate-to).
	Replicas []string `json:"replicas,omitempty"`
}

func (a *app) keysCreateCmd() *cobra.Command {
	var kf keyFlags
	var typ string
	var replicateTo []string
	cmd := &cobra.Command{
		Use:   "create --key REF --type TYPE [--replicate-to REGION ...]",
		Short: "Create a key and print its id and version",
		Long: `Create a key of the given type with the provider named in the reference and
print the key (PROVIDER:KEYID, as --key takes it) and its first version. Some
providers choose the key id themselves; the printed one is the one to use.
Creation is never retried: if it fails without an answer, check with
'knhk-host metadata' (or 'keys list') before creating the key again.

--replicate-to makes a key with replicas in other regions holding the same
key material (an AWS multi-Region key, created in the reference's region
with an empty key id, replicated with ReplicateKey) and prints the replicas'
references, ready for a key block's replicas (add each region's endpoint
parameter if you use one). Providers that cannot replicate refuse it.

Key types: ` + joinStrings(shared.KeyTypes) + `.`,
		Example: `  knhk-host keys create --key 'fake:demo?state=/tmp/keys.json' --type ed25519
  knhk-host keys create --key aws:alias/release --param region=eu-west-1 --type ec-p256 -o json
  knhk-host keys create --key 'aws:?region=us-east-1' --type ec-p256 --replicate-to eu-west-1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := a.resolve(kf)
			if err != nil {
				return err
			}
			if typ == "" {
				return usagef("pass --type, one of "+joinStrings(shared.KeyTypes), "missing --type")
			}
			kt, err := shared.ParseKeyType(typ)
			if err != nil {
				return usagef("pass --type, one of "+joinStrings(shared.KeyTypes), "%v", err)
			}
			k, created, replicas, err := a.backend().CreateKey(cmd.Context(), spec, kt, host.CreateOptions{ReplicateTo: replicateTo})
			if err != nil {
				return fmt.Errorf("create %s key %s: %w", kt, spec.errName(), err)
			}
			// The created key's name carries the id; the version comes with the public key.
			pk, err := k.PublicKey(cmd.Context(), "")
			if err != nil {
				return fmt.Errorf("created key %s but could not read it back: %w", created.errName(), err)
			}
			res := createdJSON{Key: created.show(), KeyID: created.keyID(), Type: pk.Type, Version: pk.Version}
			// A replica's reference is printed whole, parameters included:
			// without its region it names nothing, and the provider puts no
			// secret in it (shared.CreateKeyResponse.Replicas).
			for _, r := range replicas {
				res.Replicas = append(res.Replicas, r.String())
			}
			return a.printer().print(res, func(w io.Writer) error {
				if _, err := fmt.Fprintf(w, "key:     %s\nversion: %s\n", res.Key, res.Version); err != nil {
					return err
				}
				for i, r := range res.Replicas {
					label := "         "
					if i == 0 {
						label = "replicas:"
					}
					if _, err := fmt.Fprintf(w, "%s %q\n", label, r); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	kf.register(cmd)
	cmd.Flags().StringVarP(&typ, "type", "t", "", "key type: "+joinStrings(shared.KeyTypes)+" (required)")
	cmd.Flags().StringSliceVar(&replicateTo, "replicate-to", nil, "region to replicate the key to (repeatable or comma-separated); only providers that can replicate, e.g. aws")
	return cmd
}

// keyJSON is one key in `keys list -o json`.
type keyJSON struct {
	Key            string         `json:"key"`
	KeyID          string         `json:"key_id"`
	Type           shared.KeyType `json:"type"`
	CurrentVersion string         `json:"current_version"`
	Aliases        []string       `json:"aliases"`
}

func (a *app) keysListCmd() *cobra.Command {
	var provider string
	var params []string
	cmd := &cobra.Command{
		Use:   "list --provider NAME [--param name=value ...]",
		Short: "List a provider's keys",
		Long: `List the signing keys a provider holds where the parameters point (a region,
a vault address, a state file...): key, type, current version and aliases.`,
		Example: `  knhk-host keys list --provider fake --param state=/tmp/keys.json
  knhk-host keys list --provider aws --param region=eu-west-1 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if provider == "" {
				return usagef("pass --provider NAME, e.g. --provider fake; 'knhk-host plugins' lists them", "missing --provider")
			}
			p, err := parseParams(params)
			if err != nil {
				return err
			}
			keys, err := a.backend().ListKeys(cmd.Context(), provider, p)
			if err != nil {
				return fmt.Errorf("list keys of %s: %w", safe(provider), err)
			}
			out := make([]keyJSON, 0, len(keys))
			for _, k := range keys {
				aliases := k.Aliases
				if aliases == nil {
					aliases = []string{}
				}
				ref := host.Ref{Provider: provider, KeyID: k.KeyID}
				out = append(out, keyJSON{Key: show(ref), KeyID: k.KeyID, Type: k.Type, CurrentVersion: k.CurrentVersion, Aliases: aliases})
			}
			return a.printer().print(out, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "KEY\tTYPE\tVERSION\tALIASES")
				for _, k := range out {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Key, dash(string(k.Type)), dash(k.CurrentVersion), dash(strings.Join(k.Aliases, ",")))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVarP(&provider, "provider", "p", "", "provider name, e.g. fake (required)")
	cmd.Flags().StringArrayVar(&params, "param", nil, "parameter name=value saying where to list (repeatable)")
	return cmd
}

func (a *app) keysHealthCmd() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "health --key GROUP",
		Short: "Check a key group's replicas and show their health",
		Long: `Check now that every replica of a key group (a key block with replicas in
--config) holds the group's key, and show each replica: its state (healthy,
degraded, down, quarantined), the SHA-256 of its public key
(SubjectPublicKeyInfo), the median latency and error rate of its recent
calls. A quarantined replica holds another key (or none) and is never used.
Runs in this process's host, so "recent" is this command's own check; the
daemon's view is in its logs and metrics.`,
		Example: `  knhk-host --config knhk.hcl keys health --key release
  knhk-host --config knhk.hcl keys health --key release -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" {
				return usagef("pass --key NAME, a key block with replicas in --config", "missing --key")
			}
			if a.client != nil {
				return usagef("run keys health without --server, with the daemon's config file", "keys health is not available through the daemon")
			}
			if g, ok := a.cfg.Keys[key]; !ok || len(g.Replicas) == 0 {
				return usagef("name a key block with replicas in --config", "%s is not a key group", shared.Quote(key))
			}
			h, err := a.openHost(cmd.Context())
			if err != nil {
				return err
			}
			health, err := h.KeyHealth(cmd.Context(), key)
			if err != nil {
				return fmt.Errorf("key group %s: %w", safe(key), err)
			}
			return a.printer().print(health, func(w io.Writer) error {
				fmt.Fprintf(w, "group:       %s (%s)\nfingerprint: %s\n", health.Group, health.Failover, dash(health.Fingerprint))
				if health.Version != "" {
					fmt.Fprintf(w, "version:     %s\n", health.Version)
				}
				if health.Err != "" {
					fmt.Fprintf(w, "error:       %s\n", health.Err)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "#\tREPLICA\tSTATE\tFINGERPRINT\tLATENCY\tERRORS\tCALLS")
				for i, r := range health.Replicas {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%.0f%%\t%d\n", i+1, r.Replica, r.State, dash(r.Fingerprint), r.Latency.Round(10*time.Microsecond), 100*r.ErrorRate, r.Calls)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVarP(&key, "key", "k", "", "key group name from --config (required)")
	return cmd
}
