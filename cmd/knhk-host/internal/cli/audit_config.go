package cli

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// auditBlock is the config file's `audit { ... }`: the audit log of
// every operation this knhk-host runs (one-shot commands and serve).
// Paths are relative to the config file.
//
//	audit {
//	  path                = "/var/log/knhk/audit.log"
//	  checkpoint_key      = "audit.key"          # a key file (audit keygen), a key name or a reference
//	  checkpoint_key_name = "example.org/knhk-audit" # with a key name or reference: the note key name
//	  checkpoint_interval = "10s"
//	  origin              = "host1.example.org/knhk-audit"
//	  host                = "host1.example.org"
//	  rotate_size         = 104857600
//	  rotate_interval     = "24h"
//	  fail_open           = false
//	}
type auditBlock struct {
	Path               string `hcl:"path,optional"`
	CheckpointKey      string `hcl:"checkpoint_key,optional"`
	CheckpointKeyName  string `hcl:"checkpoint_key_name,optional"`
	CheckpointInterval string `hcl:"checkpoint_interval,optional"`
	Origin             string `hcl:"origin,optional"`
	Host               string `hcl:"host,optional"`
	RotateSize         int64  `hcl:"rotate_size,optional"`
	RotateInterval     string `hcl:"rotate_interval,optional"`
	FailOpen           bool   `hcl:"fail_open,optional"`
}

// auditConfig is the checked audit block; Path empty: no audit log
// unless --audit-log.
type auditConfig struct {
	Path               string
	CheckpointKey      string // a file path (made absolute), a key name or a reference
	CheckpointKeyName  string
	CheckpointInterval time.Duration
	Origin             string
	Host               string
	RotateSize         int64
	RotateInterval     time.Duration
	FailOpen           bool
}

// check checks the block (nil: no block) and makes its paths absolute.
func (b *auditBlock) check(path, base string) (auditConfig, error) {
	var c auditConfig
	if b == nil {
		return c, nil
	}
	var err error
	if c.CheckpointInterval, err = duration(path, "audit checkpoint_interval", b.CheckpointInterval); err != nil {
		return c, err
	}
	if c.RotateInterval, err = duration(path, "audit rotate_interval", b.RotateInterval); err != nil {
		return c, err
	}
	if b.RotateSize < 0 {
		return c, fmt.Errorf("%w: %s: audit rotate_size is negative", errConfig, path)
	}
	if b.Path != "" {
		c.Path = relTo(base, b.Path)
	}
	c.CheckpointKey = b.CheckpointKey
	if b.CheckpointKey != "" && !isKeyRef(b.CheckpointKey) {
		c.CheckpointKey = relTo(base, b.CheckpointKey)
	}
	c.CheckpointKeyName, c.Origin, c.Host = b.CheckpointKeyName, b.Origin, b.Host
	c.RotateSize, c.FailOpen = b.RotateSize, b.FailOpen
	return c, nil
}

// refLikeRE matches what is meant as a key reference, PROVIDER:..., and
// not a file path (a provider name has no '/' or '.').
var refLikeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}:`)

// isKeyRef tells a checkpoint key given as a reference from a file path.
func isKeyRef(s string) bool { return refLikeRE.MatchString(s) }

// defaultCheckpointKeyName names a checkpoint key held in a provider
// when the config does not.
const defaultCheckpointKeyName = "knhk-audit"

// openAudit opens the audit log the config and --audit-log ask for
// (nil when neither does). A checkpoint key that is a key name or a
// reference is used through a host of its own, made from hc (without an
// audit log: its signatures are the log's checkpoints, not operations
// in it), which a.auditKeyHost keeps to close after the log.
func (a *app) openAudit(ctx context.Context, hc host.Config) (*audit.Log, error) {
	c := a.cfg.Audit
	if a.auditLog != "" {
		c.Path = a.auditLog
	}
	if a.auditKey != "" {
		c.CheckpointKey = a.auditKey
	}
	if c.Path == "" {
		return nil, nil
	}
	if c.CheckpointKey == "" {
		return nil, usagef("set checkpoint_key in the config's audit block or give --audit-key (make a key file with 'knhk-host audit keygen')",
			"the audit log %s needs a checkpoint key", shared.Quote(c.Path))
	}
	key, err := a.checkpointKey(ctx, c, hc)
	if err != nil {
		return nil, err
	}
	l, err := audit.Open(ctx, audit.Options{
		Path:               c.Path,
		Key:                key,
		Origin:             c.Origin,
		Host:               c.Host,
		CheckpointInterval: c.CheckpointInterval,
		RotateSize:         c.RotateSize,
		RotateInterval:     c.RotateInterval,
		FailOpen:           c.FailOpen,
		Logger:             a.auditLogger(),
	})
	if err != nil {
		return nil, fmt.Errorf("open the audit log: %w", err)
	}
	return l, nil
}

// auditLogger is the audit log's logger: warnings and errors always
// reach stderr (a record dropped by a fail-open log, a write failing, a
// torn record dropped), whatever --log-level says, more when it asks.
func (a *app) auditLogger() hclog.Logger {
	lvl, _ := a.level() // checked already
	return hclog.New(&hclog.LoggerOptions{
		Name:       "knhk-host.audit",
		Level:      min(lvl, hclog.Warn),
		Output:     a.stderr,
		JSONFormat: a.output == formatJSON,
	})
}

// checkpointKey loads the checkpoint key: a key file, or a key of the
// config's (by name) or a reference, through a host of its own.
func (a *app) checkpointKey(ctx context.Context, c auditConfig, hc host.Config) (*audit.Key, error) {
	ref := c.CheckpointKey
	if k, ok := a.cfg.Keys[ref]; ok {
		r, err := host.ParseRef(k.Ref)
		if err != nil {
			return nil, fmt.Errorf("%w: key %s: %w", errConfig, shared.Quote(ref), err)
		}
		r.Params = merge(r.Params, k.Params)
		ref = r.String()
	} else if !isKeyRef(ref) {
		return audit.LoadKeyFile(ref)
	}
	kh, err := host.New(ctx, hc)
	if err != nil {
		return nil, fmt.Errorf("start the audit checkpoint key's host: %w", err)
	}
	a.auditKeyHost = kh
	s, err := kh.Signer(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("the audit checkpoint key: %w", err)
	}
	name := c.CheckpointKeyName
	if name == "" {
		name = defaultCheckpointKeyName
	}
	return audit.NewKey(name, s)
}

// closeAudit closes the audit log (its final checkpoint) and then the
// checkpoint key's host.
func (a *app) closeAudit() error {
	var err error
	if a.audit != nil {
		if cerr := a.audit.Close(); cerr != nil {
			err = fmt.Errorf("close the audit log: %w", cerr)
		}
		a.audit = nil
	}
	if a.auditKeyHost != nil {
		_ = a.auditKeyHost.Close()
		a.auditKeyHost = nil
	}
	return err
}
