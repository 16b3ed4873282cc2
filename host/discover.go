package host

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/knhk/knhk/shared"
)

// PluginInfo describes one plugin. Discover fills Name, Path, SHA256 and
// Err; Host.Plugins also fills what the plugin says about itself.
type PluginInfo struct {
	Name            string // provider name, e.g. "fake"
	Path            string // the file; empty for a reattached plugin
	SHA256          string // lowercase hex of the file's SHA-256
	Version         string // the plugin's own version
	ProtocolVersion uint32 // wire protocol it speaks
	Capabilities    []shared.Capability
	KeyTypes        []shared.KeyType
	Algorithms      []shared.Algorithm
	// Err says why the plugin cannot be used (refused, failed to start...);
	// nil when it can.
	Err error
}

// Discover lists the knhk-plugin-<provider> files in the search
// directories (see SearchDirs) without running any of them. For each
// provider only the first file found counts. Files a launch would refuse
// (see ErrPluginRefused) are listed with Err set and no hash. Missing
// directories are skipped.
func Discover(dirs []string) []PluginInfo { return discoverIn(SearchDirs(dirs)) }

// DiscoverIn is Discover over exactly dirs, in order: what a Host with
// Config.OnlyPluginDirs searches.
func DiscoverIn(dirs []string) []PluginInfo { return discoverIn(dirs) }

func discoverIn(dirs []string) []PluginInfo {
	seen := map[string]bool{}
	var out []PluginInfo
	for _, dir := range dirs {
		dir = absDir(dir)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), PluginPrefix)
			if !ok || !providerRE.MatchString(name) || seen[name] {
				continue
			}
			seen[name] = true
			info := PluginInfo{Name: name, Path: filepath.Join(dir, e.Name())}
			info.SHA256, info.Err = checkAndHash(info.Path)
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// findPlugin returns the path of knhk-plugin-<name> in the first search
// directory that has it.
func findPlugin(dirs []string, name string) (string, error) {
	file := PluginPrefix + name
	for _, dir := range dirs {
		p := filepath.Join(absDir(dir), file)
		if _, err := os.Lstat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no %s in %s; install the plugin in one of them",
		ErrPluginNotFound, file, strings.Join(dirs, ", "))
}
