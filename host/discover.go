package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
// provider only the first file found counts. Files that would be refused
// (symlinks, group/world-writable, not executable, not regular) are listed
// with Err set and no hash. Missing directories are skipped.
func Discover(dirs []string) []PluginInfo { return discoverIn(SearchDirs(dirs)) }

// DiscoverIn is Discover over exactly dirs, in order: what a Host with
// Config.OnlyPluginDirs searches.
func DiscoverIn(dirs []string) []PluginInfo { return discoverIn(dirs) }

func discoverIn(dirs []string) []PluginInfo {
	seen := map[string]bool{}
	var out []PluginInfo
	for _, dir := range dirs {
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
			if err := checkFile(info.Path); err != nil {
				info.Err = err
			} else if info.SHA256, err = fileSHA256(info.Path); err != nil {
				info.Err = err
			}
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
		p := filepath.Join(dir, file)
		if _, err := os.Lstat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no %s in %s; install the plugin in one of them",
		ErrPluginNotFound, file, strings.Join(dirs, ", "))
}

// checkFile refuses plugin files that someone other than their owner could
// swap: symlinks, non-regular files, group- or world-writable files. It
// also refuses files nobody may execute.
func checkFile(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s: %v", ErrPluginNotFound, path, err)
		}
		return fmt.Errorf("%w: %s: %v", ErrPluginRefused, path, err)
	}
	mode := fi.Mode()
	switch {
	case mode&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		return fmt.Errorf("%w: %s is a symlink (to %s); copy the binary into the plugin directory instead", ErrPluginRefused, path, target)
	case !mode.IsRegular():
		return fmt.Errorf("%w: %s is not a regular file (%s); install the plugin binary there instead", ErrPluginRefused, path, mode.Type())
	case mode.Perm()&0o022 != 0:
		return fmt.Errorf("%w: %s is group- or world-writable (mode %04o); run chmod go-w on it", ErrPluginRefused, path, mode.Perm())
	case mode.Perm()&0o111 == 0:
		return fmt.Errorf("%w: %s is not executable (mode %04o); run chmod u+x on it", ErrPluginRefused, path, mode.Perm())
	}
	return nil
}

// fileSHA256 hashes a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrPluginRefused, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%w: hashing %s: %v", ErrPluginRefused, path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
