package cli

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/knhk/knhk/shared"
)

// metadataJSON is `metadata -o json`.
type metadataJSON struct {
	Key            string             `json:"key"`
	KeyID          string             `json:"key_id"`
	Type           shared.KeyType     `json:"type"`
	Algorithms     []shared.Algorithm `json:"algorithms"`
	CurrentVersion string             `json:"current_version"`
	Versions       []versionJSON      `json:"versions"`
	Attributes     map[string]string  `json:"attributes,omitempty"`
}

type versionJSON struct {
	Version string    `json:"version"`
	Created time.Time `json:"created,omitzero"`
	State   string    `json:"state"` // enabled or disabled
}

func (a *app) metadataCmd() *cobra.Command {
	var kf keyFlags
	cmd := &cobra.Command{
		Use:   "metadata --key REF",
		Short: "Show a key's type, algorithms, current version and versions",
		Example: `  knhk-host metadata --key 'fake:demo?state=/tmp/keys.json'
  knhk-host metadata --key release --config knhk.hcl -o json | jq -r .current_version`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := a.resolve(kf)
			if err != nil {
				return err
			}
			k, err := a.openKey(cmd.Context(), spec)
			if err != nil {
				return err
			}
			md, err := k.Metadata(cmd.Context())
			if err != nil {
				return fmt.Errorf("get metadata of %s: %w", spec.errName(), err)
			}
			res := metadataJSON{Key: spec.show(), KeyID: md.KeyID, Type: md.Type, Algorithms: md.Algorithms,
				CurrentVersion: md.CurrentVersion, Versions: []versionJSON{}, Attributes: md.Attributes}
			if res.Algorithms == nil {
				res.Algorithms = md.Type.Algorithms()
			}
			for _, v := range md.Versions {
				state := "enabled"
				if !v.Enabled {
					state = "disabled"
				}
				res.Versions = append(res.Versions, versionJSON{Version: v.Version, Created: v.Created.UTC(), State: state})
			}
			return a.printer().print(res, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "key:\t%s\n", res.Key)
				fmt.Fprintf(tw, "type:\t%s\n", res.Type)
				fmt.Fprintf(tw, "algorithms:\t%s\n", joinStrings(res.Algorithms))
				fmt.Fprintf(tw, "current version:\t%s\n", res.CurrentVersion)
				names := make([]string, 0, len(res.Attributes))
				for n := range res.Attributes {
					names = append(names, n)
				}
				sort.Strings(names)
				for _, n := range names {
					fmt.Fprintf(tw, "attribute %s:\t%s\n", n, res.Attributes[n])
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "\nVERSION\tCREATED\tSTATE")
				for _, v := range res.Versions {
					created := "-"
					if !v.Created.IsZero() {
						created = v.Created.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Version, created, v.State)
				}
				return tw.Flush()
			})
		},
	}
	kf.register(cmd)
	return cmd
}
