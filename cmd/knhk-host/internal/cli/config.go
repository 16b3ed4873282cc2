package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hclsimple"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// fileConfig is the --config file. Every attribute is optional; flags on the
// command line win over the file.
//
//	plugin_dirs    = ["./bin/plugins"]   # relative to the config file
//	lock_file      = "knhk.lock.hcl"     # relative to the config file
//	log_level      = "warn"
//	start_timeout  = "10s"
//	call_timeout   = "30s"
//	public_key_ttl = "5m"
//	plugin_env     = { aws = ["AWS_CONFIG_FILE"], "*" = ["MYCORP_*"] }
//
//	key "release" {
//	  ref    = "aws:alias/release"
//	  params = { region = "eu-west-1" }
//	}
//	key "signing" {
//	  ref = "aws:alias/signing"
//	  promotion { approvals { required = 2, approvers = [...] } }  # promotion_config.go
//	}
//	key "release-mr" {                   # a key group (host.KeyGroup)
//	  replicas = ["aws:mrk-1234ab?region=us-east-1", "aws:mrk-1234ab?region=eu-west-1"]
//	  failover = "ordered"               # or "hedged"
//	}
type fileConfig struct {
	PluginDirs   []string `hcl:"plugin_dirs,optional"`
	LockFile     string   `hcl:"lock_file,optional"`
	LogLevel     string   `hcl:"log_level,optional"`
	StartTimeout string   `hcl:"start_timeout,optional"`
	CallTimeout  string   `hcl:"call_timeout,optional"`
	PublicKeyTTL string   `hcl:"public_key_ttl,optional"`
	// PluginEnv lets more of knhk-host's environment through to plugins,
	// as host.Config.PluginEnv: provider name (or "*") to variable names
	// or PREFIX_* patterns.
	PluginEnv map[string][]string `hcl:"plugin_env,optional"`
	Keys      []keyBlock          `hcl:"key,block"`
	// Serve and Policies configure `knhk-host serve` (serve.go).
	Serve    *serveBlock   `hcl:"serve,block"`
	Policies []policyBlock `hcl:"policy,block"`
	// Audit configures the audit log (audit_config.go).
	Audit *auditBlock `hcl:"audit,block"`
	// Quotas configures the request quotas (quota_config.go).
	Quotas []quotaBlock `hcl:"quota,block"`
}

// keyBlock names a key: `--key NAME` then means Ref plus Params, or, with
// Replicas instead of Ref, the key group NAME whose replicas are those
// references (Params added to each, its own parameters winning); Failover is "ordered" (default) or
// "hedged", HedgeDelay a duration ("100ms").
type keyBlock struct {
	Name       string            `hcl:"name,label"`
	Ref        string            `hcl:"ref,optional"`
	Params     map[string]string `hcl:"params,optional"`
	Replicas   []string          `hcl:"replicas,optional"`
	Failover   string            `hcl:"failover,optional"`
	HedgeDelay string            `hcl:"hedge_delay,optional"`
	// Promotion gives the key promotion gates (promotion_config.go).
	Promotion *promotionBlock `hcl:"promotion,block"`
}

// config is the checked configuration: the file's values, paths made
// absolute, durations parsed.
type config struct {
	PluginDirs   []string
	LockFile     string
	LogLevel     string
	StartTimeout time.Duration
	CallTimeout  time.Duration
	PublicKeyTTL time.Duration
	PluginEnv    map[string][]string
	Keys         map[string]keyBlock
	KeyGroups    map[string]host.KeyGroup // the key blocks with replicas
	// Promotion is the key blocks' promotion gates by PROVIDER:KEYID,
	// PromotionGates the same for host.Config.Promotion.
	Promotion      map[string]promotion
	PromotionGates map[string]host.Gates
	Serve          *serveBlock
	Policies       []policyBlock
	Audit          auditConfig
	Quotas         host.Quotas
	base           string // the file's directory: serve's paths are relative to it
}

// errConfig marks a config file that cannot be read or is malformed.
var errConfig = errors.New("bad config file")

// loadConfig reads and checks an HCL config file. An empty path is the
// empty config.
func loadConfig(path string) (*config, error) {
	cfg := &config{Keys: map[string]keyBlock{}}
	if path == "" {
		return cfg, nil
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errConfig, unwrapPathError(err))
	}
	var fc fileConfig
	// hclsimple picks the syntax by extension; anything not .json is HCL.
	name := path
	if !strings.HasSuffix(name, ".json") {
		name = strings.TrimSuffix(name, filepath.Ext(name)) + ".hcl"
	}
	if err := hclsimple.Decode(name, src, nil, &fc); err != nil {
		// Diagnostics name the file we gave hclsimple; show the real one.
		msg := strings.ReplaceAll(err.Error(), name, path)
		return nil, fmt.Errorf("%w: %s", errConfig, msg)
	}
	base := filepath.Dir(path)
	cfg.base = base
	cfg.Serve, cfg.Policies = fc.Serve, fc.Policies
	for _, d := range fc.PluginDirs {
		if d == "" {
			return nil, fmt.Errorf("%w: %s: plugin_dirs has an empty entry", errConfig, path)
		}
		cfg.PluginDirs = append(cfg.PluginDirs, relTo(base, d))
	}
	if fc.LockFile != "" {
		cfg.LockFile = relTo(base, fc.LockFile)
	}
	cfg.LogLevel = fc.LogLevel
	if cfg.StartTimeout, err = duration(path, "start_timeout", fc.StartTimeout); err != nil {
		return nil, err
	}
	if cfg.CallTimeout, err = duration(path, "call_timeout", fc.CallTimeout); err != nil {
		return nil, err
	}
	if cfg.PublicKeyTTL, err = duration(path, "public_key_ttl", fc.PublicKeyTTL); err != nil {
		return nil, err
	}
	for provider, names := range fc.PluginEnv {
		for _, n := range names {
			if !envNameRE.MatchString(n) {
				return nil, fmt.Errorf("%w: %s: plugin_env %s: %s is not a variable name or a PREFIX_* pattern", errConfig, path, shared.Quote(provider), shared.Quote(n))
			}
		}
	}
	cfg.PluginEnv = fc.PluginEnv
	if cfg.Audit, err = fc.Audit.check(path, base); err != nil {
		return nil, err
	}
	if cfg.Quotas, err = quotas(path, fc.Quotas); err != nil {
		return nil, err
	}
	for _, k := range fc.Keys {
		if _, dup := cfg.Keys[k.Name]; dup {
			return nil, fmt.Errorf("%w: %s: key %s is defined twice", errConfig, path, shared.Quote(k.Name))
		}
		if len(k.Replicas) > 0 {
			g, err := k.group(path)
			if err != nil {
				return nil, err
			}
			if cfg.KeyGroups == nil {
				cfg.KeyGroups = map[string]host.KeyGroup{}
			}
			cfg.KeyGroups[k.Name] = g
		} else if strings.TrimSpace(k.Ref) == "" {
			return nil, fmt.Errorf("%w: %s: key %s has an empty ref (give ref, or replicas for a key group)", errConfig, path, shared.Quote(k.Name))
		}
		cfg.Keys[k.Name] = k
	}
	if cfg.Promotion, cfg.PromotionGates, err = promotions(path, base, fc.Keys); err != nil {
		return nil, err
	}
	return cfg, nil
}

// group checks a key block with replicas and makes its key group.
func (k keyBlock) group(path string) (host.KeyGroup, error) {
	bad := func(format string, args ...any) (host.KeyGroup, error) {
		return host.KeyGroup{}, fmt.Errorf("%w: %s: key %s: %s", errConfig, path, shared.Quote(k.Name), fmt.Sprintf(format, args...))
	}
	if k.Ref != "" {
		return bad("give either ref (one key) or replicas (a key group), not both")
	}
	if strings.Contains(k.Name, ":") {
		return bad("a key group's name must not contain ':'")
	}
	g := host.KeyGroup{Failover: host.FailoverMode(k.Failover)}
	switch g.Failover {
	case "", host.FailoverOrdered, host.FailoverHedged:
	default:
		return bad("failover is %s; want \"ordered\" or \"hedged\"", shared.Quote(k.Failover))
	}
	var err error
	if g.HedgeDelay, err = duration(path, "hedge_delay", k.HedgeDelay); err != nil {
		return host.KeyGroup{}, err
	}
	for i, ref := range k.Replicas {
		r, err := host.ParseRef(ref)
		if err != nil {
			return bad("replica %d: %v", i+1, err)
		}
		r.Params = merge(k.Params, r.Params) // a replica's own parameters win
		g.Replicas = append(g.Replicas, r.String())
	}
	return g, nil
}

// envNameRE is an environment variable name, or a prefix of one ending
// in '*'.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\*?$`)

// relTo resolves a path in the config file relative to the file's directory.
func relTo(base, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// unwrapPathError drops the operation name from an *os.PathError so the
// message reads "PATH: no such file or directory".
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}
