package host

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/knhk/knhk/host/internal/reattach"
	"github.com/knhk/knhk/shared"
)

// Host runs provider plugins and hands out signers for their keys. It is
// safe for concurrent use. Close it to stop every plugin.
type Host struct {
	cfg   Config
	log   hclog.Logger
	dirs  []string
	lock  *Lock
	cache *pubCache
	// states caches keys' version states (Config.VersionStatesTTL).
	states *stateCache
	// promotion is Config.Promotion by PROVIDER:KEYID.
	promotion map[string]Gates
	spawn     spawner // starts the plugin processes
	tel       *instruments
	gtel      *groupInstruments

	// reattach lists the plugins served elsewhere, by provider name
	// (host/hosttest sets it through host/internal/reattach).
	reattach map[string]*goplugin.ReattachConfig

	mu      sync.Mutex // guards plugins; with closed, orders wg.Add before Wait
	plugins map[string]*managed
	groups  map[string]*group // the key groups in use, by name
	closed  atomic.Bool
	done    chan struct{}  // closed by Close: stops the groups' probes
	wg      sync.WaitGroup // launches, kills and probes in flight

	calls, batches, batched atomic.Uint64 // see Stats
}

// Stats counts a Host's traffic to its plugins since New.
type Stats struct {
	// Calls is the number of plugin calls made (each attempt of a
	// retried call counts; a launch's handshake does not).
	Calls uint64
	// SignBatches counts the batches sent as SignBatch calls (a batch
	// retried on a fresh process counts once), and BatchedSignatures the
	// sign requests they carried.
	SignBatches, BatchedSignatures uint64
}

// Stats returns the host's plugin traffic counters.
func (h *Host) Stats() Stats {
	return Stats{Calls: h.calls.Load(), SignBatches: h.batches.Load(), BatchedSignatures: h.batched.Load()}
}

// New makes a Host. It reads the lock file (when configured) but launches
// nothing: each plugin starts on first use. ctx only bounds New itself.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := checkKeyGroups(cfg.KeyGroups); err != nil {
		return nil, err
	}
	promotion, err := checkPromotion(cfg.Promotion)
	if err != nil {
		return nil, err
	}
	h := &Host{
		cfg:       cfg,
		log:       cfg.Logger,
		dirs:      cfg.searchDirs(),
		cache:     newPubCache(cfg.PublicKeyTTL),
		states:    newStateCache(cfg.VersionStatesTTL),
		plugins:   map[string]*managed{},
		groups:    map[string]*group{},
		promotion: promotion,
		done:      make(chan struct{}),
		tel:       newInstruments(cfg),
		gtel:      newGroupInstruments(cfg),

		reattach: reattach.From(ctx),
	}
	if cfg.LockFile != "" {
		l, err := ReadLockFile(cfg.LockFile)
		if err != nil {
			return nil, err
		}
		h.lock = l
	}
	return h, nil
}

// Close kills every plugin process (gracefully, then with SIGKILL) and
// waits until they are gone. Calls after Close fail with ErrClosed.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed.Swap(true) {
		h.mu.Unlock()
		return nil
	}
	close(h.done)
	var insts []*instance
	for _, m := range h.plugins {
		m.mu.Lock()
		if m.cur != nil {
			insts = append(insts, m.cur)
			m.cur = nil
			m.countUp(-1)
		}
		m.mu.Unlock()
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Add(1)
		go func() { defer wg.Done(); inst.kill(false) }()
	}
	wg.Wait()
	h.wg.Wait()
	h.spawn.stop()
	return nil
}

// track registers a launch in flight; false once the host is closed.
func (h *Host) track() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed.Load() {
		return false
	}
	h.wg.Add(1)
	return true
}

// goKill kills an instance in the background, tracked so Close waits.
func (h *Host) goKill(inst *instance, hard bool) {
	if !h.track() {
		inst.kill(hard)
		return
	}
	go func() {
		defer h.wg.Done()
		inst.kill(hard)
	}()
}

// plugin returns the supervisor of a provider's plugin, checking that the
// plugin exists (without launching it).
func (h *Host) plugin(name string) (*managed, error) {
	if h.closed.Load() {
		return nil, ErrClosed
	}
	if !providerRE.MatchString(name) {
		return nil, fmt.Errorf("%w: provider name %q must be 1-64 of a-z 0-9 _ - (the plugin is knhk-plugin-<provider>)", ErrPluginNotFound, name)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if m, ok := h.plugins[name]; ok {
		return m, nil
	}
	if _, ok := h.reattach[name]; !ok {
		if _, err := findPlugin(h.dirs, name); err != nil {
			return nil, err
		}
	}
	m := newManaged(h, name)
	h.plugins[name] = m
	return m, nil
}

// Provider returns the host-managed provider for plugin name: every call
// goes through the host (lazy launch, call timeout, crash detection and
// relaunch, retry-once of idempotent calls, verify-after-sign on Sign, the
// public-key cache). Use it to run shared/providertest through the host.
func (h *Host) Provider(ctx context.Context, name string) (shared.Provider, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := h.plugin(name)
	if err != nil {
		return nil, err
	}
	return &managedProvider{h: h, m: m}, nil
}

// Key returns a handle on the key ref names: a reference, or the name of
// one of Config.KeyGroups. Nothing is launched or fetched until a method
// needs it.
func (h *Host) Key(ctx context.Context, ref string) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if g, ok, err := h.group(ref); ok {
		if err != nil {
			return nil, err
		}
		first := g.reps[0].key
		return &Key{h: h, m: first.m, ref: first.ref, g: g}, nil
	}
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	m, err := h.plugin(r.Provider)
	if err != nil {
		return nil, err
	}
	return &Key{h: h, m: m, ref: r}, nil
}

// Signer returns a Signer (a crypto.Signer and crypto.MessageSigner) for
// the key ref names, as Key.Signer does. It fetches the key's current public
// key now, so Public cannot fail, and keeps ctx for every later Sign: a
// signer made with a request's context stops working when the request
// ends.
func (h *Host) Signer(ctx context.Context, ref string) (*Signer, error) {
	k, err := h.Key(ctx, ref)
	if err != nil {
		return nil, err
	}
	return k.Signer(ctx)
}

// CreateKey creates a key of type kt named by ref (PROVIDER:KEYID with the
// parameters the provider needs) and returns a handle on it. The provider
// may pick another id; the handle uses the id it returns. Never retried:
// after a plugin crash, check with ListKeys or Metadata before creating
// again. CreateKeyWith takes options (replicas in other regions).
func (h *Host) CreateKey(ctx context.Context, ref string, kt shared.KeyType) (*Key, error) {
	k, _, err := h.CreateKeyWith(ctx, ref, kt, CreateOptions{})
	return k, err
}

// CreateOptions are the optional parts of a key creation.
type CreateOptions struct {
	// ReplicateTo names regions (in the provider's terms, e.g. eu-west-1)
	// where the new key is to have replicas holding the same key material:
	// an AWS multi-Region key, created in the reference's region and
	// replicated to these. Only providers that claim
	// shared.CapReplicateKey can; the others refuse with
	// shared.ErrUnimplemented.
	ReplicateTo []string
}

// CreateKeyWith is CreateKey with options. It also returns the replicas'
// references, one per opts.ReplicateTo region and in its order: with the
// key's own (Key.Ref), the Replicas of a KeyGroup. Nothing is retried; if
// a replication fails, the error says which key was made, and where.
func (h *Host) CreateKeyWith(ctx context.Context, ref string, kt shared.KeyType, opts CreateOptions) (*Key, []Ref, error) {
	k, err := h.Key(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	if k.g != nil {
		return nil, nil, fmt.Errorf("%w: %s is a key group: create the key at each replica's reference (or with the provider's own replication) and name them in the group", shared.ErrFailedPrecondition, shared.Quote(ref))
	}
	resp, err := k.m.createKey(ctx, k.ref, kt, opts.ReplicateTo)
	if err != nil {
		return nil, nil, err
	}
	if resp.KeyID != "" {
		k.ref.KeyID = resp.KeyID
	}
	var replicas []Ref
	for _, r := range resp.Replicas {
		replicas = append(replicas, Ref{Provider: k.ref.Provider, KeyID: r.ID, Params: r.Params})
	}
	return k, replicas, nil
}

// ListKeys lists the keys of a provider; params says where (region,
// vault address...), as in a key reference.
func (h *Host) ListKeys(ctx context.Context, provider string, params map[string]string) ([]shared.KeySummary, error) {
	m, err := h.plugin(provider)
	if err != nil {
		return nil, err
	}
	return m.listKeys(ctx, params)
}

// Plugins lists the plugins the host can see: every file Discover finds
// plus reattached plugins. Each usable plugin is launched (if not running
// yet) and asked to describe itself; plugins that are refused or fail to
// start are listed with Err set. Nothing refused is ever executed.
func (h *Host) Plugins() []PluginInfo {
	infos := discoverIn(h.dirs)
	for name := range h.reattach {
		if i := sort.Search(len(infos), func(i int) bool { return infos[i].Name >= name }); i < len(infos) && infos[i].Name == name {
			infos[i] = PluginInfo{Name: name} // reattachment wins, as in launch
		} else {
			infos = append(infos, PluginInfo{Name: name})
		}
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for i := range infos {
		info := &infos[i]
		if info.Err != nil {
			continue
		}
		if h.lock != nil && info.Path != "" {
			if err := h.lock.check(PluginPrefix+info.Name, info.SHA256); err != nil {
				info.Err = err
				continue
			}
		}
		m, err := h.plugin(info.Name)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), h.cfg.StartTimeout+h.cfg.CallTimeout)
			_, err = m.acquire(ctx)
			cancel()
		}
		if err != nil {
			info.Err = err
			continue
		}
		if d := m.description(); d != nil {
			info.Version, info.ProtocolVersion = d.Version, d.ProtocolVersion
			info.Capabilities, info.KeyTypes, info.Algorithms = d.Capabilities, d.KeyTypes, d.Algorithms
		}
	}
	return infos
}
