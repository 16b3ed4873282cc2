package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// pluginJSON is one plugin in `plugins -o json`.
type pluginJSON struct {
	Name            string              `json:"name"`
	Path            string              `json:"path"`
	SHA256          string              `json:"sha256,omitempty"`
	Version         string              `json:"version,omitempty"`
	ProtocolVersion uint32              `json:"protocol_version,omitempty"`
	Capabilities    []shared.Capability `json:"capabilities"`
	KeyTypes        []shared.KeyType    `json:"key_types"`
	Algorithms      []shared.Algorithm  `json:"algorithms"`
	Error           string              `json:"error,omitempty"`
}

func (a *app) pluginsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List the provider plugins found in the plugin directories",
		Long: `List every knhk-plugin-<provider> binary found in the plugin directories
(exactly those named with --plugin-dir or plugin_dirs in --config, else
$KNHK_PLUGIN_PATH, then plugins/ next to knhk-host): its name, path, SHA-256,
and what the plugin reports when started: its version, protocol version and
capabilities. A plugin that cannot be used is listed with the reason; the
command still succeeds.`,
		Example: `  knhk-host plugins --plugin-dir ./bin/plugins
  knhk-host plugins -o json | jq -r '.[].name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := a.openHost(cmd.Context())
			if err != nil {
				return err
			}
			infos := h.Plugins()
			out := make([]pluginJSON, 0, len(infos))
			for _, p := range infos {
				j := pluginJSON{
					Name: p.Name, Path: p.Path, SHA256: p.SHA256, Version: p.Version,
					ProtocolVersion: p.ProtocolVersion, Capabilities: p.Capabilities,
					KeyTypes: p.KeyTypes, Algorithms: p.Algorithms,
				}
				if p.Err != nil {
					j.Error = oneLine(p.Err.Error())
				}
				// Empty lists, not null, for a plugin that could not say.
				if j.Capabilities == nil {
					j.Capabilities = []shared.Capability{}
				}
				if j.KeyTypes == nil {
					j.KeyTypes = []shared.KeyType{}
				}
				if j.Algorithms == nil {
					j.Algorithms = []shared.Algorithm{}
				}
				out = append(out, j)
			}
			return a.printer().print(out, func(w io.Writer) error {
				if len(out) == 0 {
					_, err := fmt.Fprintf(a.stderr, "no plugins found in %s\n", strings.Join(a.searchDirs(), ", "))
					return err
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tVERSION\tPROTOCOL\tSHA256\tPATH\tCAPABILITIES")
				for _, p := range out {
					caps := joinStrings(p.Capabilities)
					if p.Error != "" {
						caps = "unusable: " + p.Error
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, dash(p.Version), dash(protocol(p.ProtocolVersion)), dash(p.SHA256), p.Path, dash(caps))
				}
				return tw.Flush()
			})
		},
	}
	cmd.AddCommand(a.pluginsLockCmd())
	return cmd
}

// lockChange is one line of `plugins lock` output.
type lockChange struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Change string `json:"change"` // added, updated, unchanged
}

// lockJSON is `plugins lock -o json`.
type lockJSON struct {
	LockFile string       `json:"lock_file"`
	Plugins  []lockChange `json:"plugins"`
	Removed  []string     `json:"removed"`
}

func (a *app) pluginsLockCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "lock",
		Short: "Write or update the lock file pinning each plugin's SHA-256",
		Long: `Hash every plugin found in the plugin directories (with --plugin-dir, only
those) and write the lock file (--lock-file, or lock_file in --config),
replacing it atomically: plugins elsewhere are not pinned. From then on
the host refuses to run a plugin that is missing from the lock file or whose
SHA-256 differs. Plugins run nothing while being locked. Prints each plugin
with "added", "updated" or "unchanged", and plugins dropped from the file.`,
		Example: `  knhk-host plugins lock --plugin-dir ./bin/plugins --lock-file knhk.lock
  knhk-host sign --plugin-dir ./bin/plugins --lock-file knhk.lock --key 'fake:demo' --in msg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.lockFile == "" {
				return usagef("pass --lock-file FILE or set lock_file in --config", "no lock file given")
			}
			old := map[string]string{}
			// A missing lock file is created; host.ReadLockFile does not
			// keep os.ErrNotExist in its error, so look first.
			if _, err := os.Stat(a.lockFile); err == nil {
				l, err := host.ReadLockFile(a.lockFile)
				if err != nil {
					return fmt.Errorf("read lock file: %w", err)
				}
				old = l.Sums
			} else if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("read lock file: %w", unwrapPathError(err))
			}
			dirs := a.searchDirs()
			infos := host.DiscoverIn(dirs)
			if len(infos) == 0 {
				hint := "pass --plugin-dir DIR naming the directory with the knhk-plugin-* binaries"
				if len(a.pluginDirs) > 0 {
					hint = "check that --plugin-dir (or plugin_dirs in --config) names the directory with the knhk-plugin-* binaries"
				}
				return usagef(hint, "no plugins found in %s", strings.Join(dirs, ", "))
			}
			res := lockJSON{LockFile: a.lockFile, Removed: []string{}}
			for _, p := range infos {
				if p.Err != nil {
					return fmt.Errorf("lock plugin %s: %w", p.Name, p.Err)
				}
				file := host.PluginPrefix + p.Name
				change := "added"
				if sum, ok := old[file]; ok {
					change = "updated"
					if sum == p.SHA256 {
						change = "unchanged"
					}
					delete(old, file)
				}
				res.Plugins = append(res.Plugins, lockChange{Name: p.Name, SHA256: p.SHA256, Change: change})
			}
			for file := range old {
				res.Removed = append(res.Removed, strings.TrimPrefix(file, host.PluginPrefix))
			}
			if err := host.WriteLockFile(a.lockFile, infos); err != nil {
				return fmt.Errorf("write lock file: %w", err)
			}
			return a.printer().print(res, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				for _, p := range res.Plugins {
					fmt.Fprintf(tw, "%s\tsha256:%s\t%s\n", p.Name, p.SHA256, p.Change)
				}
				for _, name := range res.Removed {
					fmt.Fprintf(tw, "%s\t-\tremoved\n", name)
				}
				return tw.Flush()
			})
		},
	}
}

// dash shows "-" for an empty table cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func protocol(v uint32) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprint(v)
}

// joinStrings joins named string types with commas.
func joinStrings[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ",")
}
