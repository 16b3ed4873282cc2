package host

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared"
)

// PublicKey is one version of a key's public half.
type PublicKey struct {
	Key     crypto.PublicKey
	DER     []byte // SubjectPublicKeyInfo
	Type    shared.KeyType
	Version string // may be empty when the provider has no versions
}

// cacheKey names a cached public key: which key (provider, id, parameters)
// and which version ("" is "current").
type cacheKey struct {
	key     string
	version string
}

type cacheEntry struct {
	pk      PublicKey
	expires time.Time
}

// pubCache caches public keys with a TTL.
type pubCache struct {
	ttl time.Duration // <= 0: off
	mu  sync.RWMutex
	m   map[cacheKey]cacheEntry
	// refetched is when a verification miss last refetched each key.
	refetched map[string]time.Time
}

// maxCacheEntries bounds the cache; expired entries are swept past it.
const maxCacheEntries = 4096

// makeRoom keeps a cache map under maxCacheEntries before an insertion:
// it drops the expired entries when full, and everything if none had.
func makeRoom[K comparable, E any](m map[K]E, now time.Time, expires func(E) time.Time) {
	if len(m) < maxCacheEntries {
		return
	}
	for k, e := range m {
		if now.After(expires(e)) {
			delete(m, k)
		}
	}
	if len(m) >= maxCacheEntries {
		clear(m)
	}
}

func newPubCache(ttl time.Duration) *pubCache {
	return &pubCache{ttl: ttl, m: map[cacheKey]cacheEntry{}, refetched: map[string]time.Time{}}
}

// keyName is a canonical string for (provider, key id, parameters). It is
// on every signature's path (verify-after-sign looks the key up), so it
// avoids fmt and sorts only when there are several parameters.
func keyName(r Ref) string {
	n := len(r.Provider) + 1 + len(r.KeyID)
	for k, v := range r.Params {
		n += len(k) + len(v) + 2
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(r.Provider)
	b.WriteByte(0)
	b.WriteString(r.KeyID)
	switch len(r.Params) {
	case 0:
	case 1:
		for k, v := range r.Params {
			writeParam(&b, k, v)
		}
	default:
		names := make([]string, 0, len(r.Params))
		for k := range r.Params {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			writeParam(&b, k, r.Params[k])
		}
	}
	return b.String()
}

func writeParam(b *strings.Builder, k, v string) {
	b.WriteByte(0)
	b.WriteString(k)
	b.WriteByte('=')
	b.WriteString(v)
}

func (c *pubCache) get(r Ref, version string) (PublicKey, bool) {
	if c.ttl <= 0 {
		return PublicKey{}, false
	}
	name := keyName(r)
	c.mu.RLock()
	e, ok := c.m[cacheKey{name, version}]
	c.mu.RUnlock()
	if !ok || time.Now().After(e.expires) {
		return PublicKey{}, false
	}
	return e.pk, true
}

func (c *pubCache) put(r Ref, versions []string, pk PublicKey) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	makeRoom(c.m, now, func(e cacheEntry) time.Time { return e.expires })
	name := keyName(r)
	for _, v := range versions {
		c.m[cacheKey{name, v}] = cacheEntry{pk: pk, expires: now.Add(c.ttl)}
	}
}

// refetchAllowed reports whether a verification miss may refetch a key
// now: once per key per d, so a stream of bad signatures cannot become a
// stream of plugin calls.
func (c *pubCache) refetchAllowed(r Ref, d time.Duration) bool {
	name := keyName(r)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if last, ok := c.refetched[name]; ok && now.Sub(last) < d {
		return false
	}
	if len(c.refetched) >= maxCacheEntries {
		clear(c.refetched)
	}
	c.refetched[name] = now
	return true
}

// drop forgets one version of a key.
func (c *pubCache) drop(r Ref, version string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, cacheKey{keyName(r), version})
}

// invalidate forgets every version of a key (after rotation or creation).
func (c *pubCache) invalidate(r Ref) {
	name := keyName(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if k.key == name {
			delete(c.m, k)
		}
	}
}

// publicKey returns a key version's public key from the cache or the
// plugin; refresh skips the cache. The result's DER is the caller's to keep.
func (h *Host) publicKey(ctx context.Context, m *managed, r Ref, version string, refresh bool) (PublicKey, error) {
	ctx, run := m.begin(ctx, opPublicKey, r)
	pk, err := h.sharedPublicKey(ctx, m, r, version, refresh)
	run.version(cmp.Or(pk.Version, version))
	if err = run.end(ctx, err); err != nil {
		return PublicKey{}, err
	}
	pk.DER = bytes.Clone(pk.DER)
	return pk, nil
}

// sharedPublicKey is publicKey for the host's own use (verify-after-sign):
// the result's DER is shared with the cache and must not be changed.
func (h *Host) sharedPublicKey(ctx context.Context, m *managed, r Ref, version string, refresh bool) (PublicKey, error) {
	if !refresh {
		pk, ok := h.cache.get(r, version)
		m.countCache(ctx, ok)
		if ok {
			return pk, nil
		}
	}
	resp, err := limited(ctx, m, quotaReq{op: shared.OpPublicKey, ref: r, version: version}, "get public key", true, func(ctx context.Context, c *pluginrpc.Client) (shared.PublicKeyResponse, error) {
		return c.PublicKey(ctx, shared.PublicKeyRequest{Key: r.keyRef(), Version: version})
	})
	if err != nil {
		return PublicKey{}, err
	}
	pub, kt, err := shared.ParsePublicKey(resp.DER)
	if err != nil {
		return PublicKey{}, fmt.Errorf("plugin %s returned an unusable public key for %q: %w", m.name, r.KeyID, err)
	}
	if resp.Type != "" && resp.Type != kt {
		return PublicKey{}, fmt.Errorf("%w: plugin %s says key %q is %s but its public key is %s", shared.ErrInvalidArgument, m.name, r.KeyID, resp.Type, kt)
	}
	if version != "" && resp.Version != "" && resp.Version != version {
		return PublicKey{}, fmt.Errorf("%w: plugin %s returned version %q of key %q when asked for %q", shared.ErrInvalidArgument, m.name, resp.Version, r.KeyID, version)
	}
	pk := PublicKey{Key: pub, DER: resp.DER, Type: kt, Version: resp.Version}
	versions := []string{version}
	if resp.Version != "" && resp.Version != version {
		versions = append(versions, resp.Version)
	}
	h.cache.put(r, versions, pk)
	return pk, nil
}
