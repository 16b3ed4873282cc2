package spire

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hclsimple"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// IDPlaceholder is what key_ref's key id part contains, once, where the
// SPIRE key id goes: key_ref = "vault:transit/spire-{id}" names SPIRE's key
// "x509-CA-A" vault:transit/spire-x509-CA-A.
const IDPlaceholder = "{id}"

// fileConfig is the plugin_data block of the KeyManager "knhk" plugin in
// SPIRE's server configuration, HCL:
//
//	plugin_dirs  = ["/usr/lib/knhk/plugins"]   # only these are searched
//	lock_file    = "/etc/knhk/knhk.lock"
//	key_ref      = "vault:transit/spire-{id}?addr=https://vault:8200"
//	call_timeout = "30s"
//	plugin_env   = { vault = ["VAULT_CLIENT_TIMEOUT"] }
//	key "JWT-Signer-A" {                       # one SPIRE key id, any reference
//	  ref = "azure:https://myvault.vault.azure.net/keys/spire-jwt-a"
//	}
type fileConfig struct {
	PluginDirs  []string            `hcl:"plugin_dirs,optional"`
	LockFile    string              `hcl:"lock_file,optional"`
	KeyRef      string              `hcl:"key_ref,optional"`
	CallTimeout string              `hcl:"call_timeout,optional"`
	PluginEnv   map[string][]string `hcl:"plugin_env,optional"`
	Keys        []keyBlock          `hcl:"key,block"`
}

// keyBlock maps one SPIRE key id to a knhk key reference.
type keyBlock struct {
	ID  string `hcl:"id,label"`
	Ref string `hcl:"ref"`
}

// Config is a checked plugin configuration.
type Config struct {
	// PluginDirs are the only directories searched for knhk provider
	// plugins (absolute). Empty: KNHK_PLUGIN_PATH, then plugins/ next to
	// the KeyManager binary.
	PluginDirs []string
	// LockFile pins every provider plugin's SHA-256 (absolute; empty: no
	// pinning).
	LockFile string
	// CallTimeout bounds each call to a provider plugin (zero: the
	// host's default, 30s).
	CallTimeout time.Duration
	// PluginEnv lets more of the SPIRE server's environment through to
	// provider plugins, as host.Config.PluginEnv.
	PluginEnv map[string][]string

	tmpl keyTemplate       // from key_ref; zero when unset
	keys map[string]string // SPIRE key id -> knhk key reference, from key blocks
}

// keyTemplate is a parsed key_ref: the reference with the key id split
// around the placeholder.
type keyTemplate struct {
	raw    string // the whole template, "" when unset
	before string // the reference up to the placeholder: "vault:transit/spire-"
	after  string // the rest: "?addr=https://vault:8200"
	// provider, idPrefix, idSuffix and params say which provider keys
	// the template names, for GetPublicKeys: provider "vault", key ids
	// "transit/spire-" + ID + "", parameters {addr: ...}.
	provider           string
	idPrefix, idSuffix string
	params             map[string]string
}

// ref is the template's reference for SPIRE key id id.
func (t keyTemplate) ref(id string) string { return t.before + id + t.after }

// spireID reports which SPIRE key id a provider key id stands for under
// the template, if any.
func (t keyTemplate) spireID(providerKeyID string) (string, bool) {
	if len(providerKeyID) < len(t.idPrefix)+len(t.idSuffix) ||
		!strings.HasPrefix(providerKeyID, t.idPrefix) || !strings.HasSuffix(providerKeyID, t.idSuffix) {
		return "", false
	}
	id := providerKeyID[len(t.idPrefix) : len(providerKeyID)-len(t.idSuffix)]
	return id, CheckKeyID(id) == nil
}

// errConfig marks a plugin_data block that cannot be used.
var errConfig = errors.New("bad knhk KeyManager configuration")

// keyIDRE is what a SPIRE key id may be: SPIRE names its keys x509-CA-A,
// JWT-Signer-B, bundle-acme-example.org+rsa. The characters are a subset
// of what a knhk key reference's key id takes literally, so an id cannot
// change the reference's shape (no ':', '?', '/', '&', '%').
var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)

// CheckKeyID checks a SPIRE key id: 1-128 of A-Z a-z 0-9 . _ + -, starting
// with a letter or digit. The error wraps shared.ErrInvalidArgument.
func CheckKeyID(id string) error {
	if !keyIDRE.MatchString(id) {
		return fmt.Errorf("%w: SPIRE key id %s must be 1-128 of A-Z a-z 0-9 . _ + - starting with a letter or digit", shared.ErrInvalidArgument, shared.Quote(id))
	}
	return nil
}

// ParseConfig reads and checks plugin_data (HCL, as SPIRE passes it). At
// least one of key_ref and key blocks is required; paths must be absolute
// (SPIRE's working directory is no good anchor).
func ParseConfig(hclSource string) (*Config, error) {
	var fc fileConfig
	if err := hclsimple.Decode("plugin_data.hcl", []byte(hclSource), nil, &fc); err != nil {
		return nil, fmt.Errorf("%w: %s", errConfig, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	cfg := &Config{PluginEnv: fc.PluginEnv, keys: map[string]string{}}
	for _, d := range fc.PluginDirs {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("%w: plugin_dirs entry %s is not an absolute path", errConfig, shared.Quote(d))
		}
		cfg.PluginDirs = append(cfg.PluginDirs, filepath.Clean(d))
	}
	if fc.LockFile != "" {
		if !filepath.IsAbs(fc.LockFile) {
			return nil, fmt.Errorf("%w: lock_file %s is not an absolute path", errConfig, shared.Quote(fc.LockFile))
		}
		cfg.LockFile = filepath.Clean(fc.LockFile)
	}
	if fc.CallTimeout != "" {
		d, err := time.ParseDuration(fc.CallTimeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: call_timeout %s is not a positive duration such as \"30s\"", errConfig, shared.Quote(fc.CallTimeout))
		}
		cfg.CallTimeout = d
	}
	for provider, names := range fc.PluginEnv {
		for _, n := range names {
			if !envNameRE.MatchString(n) {
				return nil, fmt.Errorf("%w: plugin_env %s: %s is not a variable name or a PREFIX_* pattern", errConfig, shared.Quote(provider), shared.Quote(n))
			}
		}
	}
	if fc.KeyRef != "" {
		t, err := parseTemplate(fc.KeyRef)
		if err != nil {
			return nil, err
		}
		cfg.tmpl = t
	}
	for _, k := range fc.Keys {
		if err := CheckKeyID(k.ID); err != nil {
			return nil, fmt.Errorf("%w: key block: %w", errConfig, err)
		}
		if _, dup := cfg.keys[k.ID]; dup {
			return nil, fmt.Errorf("%w: key %s is defined twice", errConfig, shared.Quote(k.ID))
		}
		if _, err := host.ParseRef(k.Ref); err != nil {
			return nil, fmt.Errorf("%w: key %s: %w", errConfig, shared.Quote(k.ID), err)
		}
		cfg.keys[k.ID] = k.Ref
	}
	if cfg.tmpl.raw == "" && len(cfg.keys) == 0 {
		return nil, fmt.Errorf("%w: set key_ref (a knhk key reference with %s where SPIRE's key id goes, e.g. \"vault:transit/spire-{id}?addr=https://vault:8200\") or key blocks", errConfig, IDPlaceholder)
	}
	return cfg, nil
}

// envNameRE is an environment variable name, or a prefix of one ending
// in '*' (as the knhk-host configuration file takes).
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\*?$`)

// parseTemplate checks key_ref: a knhk key reference whose key id holds
// the placeholder exactly once (and whose parameters do not).
func parseTemplate(s string) (keyTemplate, error) {
	head, query, hasQuery := strings.Cut(s, "?")
	switch {
	case strings.Count(s, IDPlaceholder) != 1 || !strings.Contains(head, IDPlaceholder):
		return keyTemplate{}, fmt.Errorf("%w: key_ref must hold %s exactly once, in the key id (before any '?'), e.g. \"vault:transit/spire-{id}?addr=https://vault:8200\"", errConfig, IDPlaceholder)
	case strings.Index(head, IDPlaceholder) < strings.Index(head, ":"):
		return keyTemplate{}, fmt.Errorf("%w: key_ref: %s must be in the key id, after PROVIDER:", errConfig, IDPlaceholder)
	}
	before, afterID, _ := strings.Cut(head, IDPlaceholder)
	after := afterID
	if hasQuery {
		after += "?" + query
	}
	r, err := host.ParseRef(before + "x" + after)
	if err != nil {
		return keyTemplate{}, fmt.Errorf("%w: key_ref: %w", errConfig, err)
	}
	_, prefix, _ := strings.Cut(before, ":")
	return keyTemplate{
		raw: s, before: before, after: after,
		provider: r.Provider, idPrefix: prefix, idSuffix: afterID, params: r.Params,
	}, nil
}

// keyRef is the knhk key reference for SPIRE key id id: its key block's,
// else the template's; ok is false when neither names it.
func (c *Config) keyRef(id string) (string, bool) {
	if ref, ok := c.keys[id]; ok {
		return ref, true
	}
	if c.tmpl.raw != "" {
		return c.tmpl.ref(id), true
	}
	return "", false
}

// configuredIDs are the SPIRE key ids of the key blocks, sorted.
func (c *Config) configuredIDs() []string {
	ids := make([]string, 0, len(c.keys))
	for id := range c.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// providers are the provider names the configuration uses, sorted.
func (c *Config) providers() []string {
	seen := map[string]bool{}
	if c.tmpl.raw != "" {
		seen[c.tmpl.provider] = true
	}
	for _, ref := range c.keys {
		if r, err := host.ParseRef(ref); err == nil {
			seen[r.Provider] = true
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// hostConfig is the knhk host configuration the plugin runs with.
func (c *Config) hostConfig() host.Config {
	return host.Config{
		PluginDirs:     c.PluginDirs,
		OnlyPluginDirs: len(c.PluginDirs) > 0,
		LockFile:       c.LockFile,
		CallTimeout:    c.CallTimeout,
		PluginEnv:      c.PluginEnv,
	}
}
