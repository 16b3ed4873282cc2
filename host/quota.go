package host

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/knhk/knhk/shared"
)

// Quotas configures the host's own throttling to the key services'
// request quotas: requests wait for a token before they leave the host,
// so callers meet the quota as a wait rather than as throttling errors.
//
// Each plugin declares its service's quota classes and their documented
// default rates in its Describe (shared.QuotaClass: the operations and
// key types a class counts, the reference parameters such as region or
// vault that scope it). The host keeps one token bucket
// (golang.org/x/time/rate) per provider, class and scope. A request
// takes its tokens in the caller's goroutine before it is sent or
// queued for a SignBatch call, and gives up at once, with an error
// wrapping shared.ErrThrottled, when its wait would pass its deadline.
// When the service throttles anyway (the account's quota is shared with
// other clients, or is lower than declared), the bucket's rate is cut to
// 70% (at most once a second, down to a tenth of the configured rate)
// and grows back by a tenth of it every second without throttling.
//
// The zero value applies the plugins' declared defaults.
type Quotas struct {
	// Disable turns the host's throttling off: requests leave at once.
	Disable bool

	// Classes overrides and adds quota classes, by provider name. A
	// class named like one the plugin declares changes it: its non-zero
	// fields replace the declared ones (a negative Rate makes the class
	// unlimited). A class with a new name is added, tried before the
	// declared ones; that is how a provider that declares none (Vault)
	// gets a quota.
	Classes map[string][]shared.QuotaClass
}

// Check reports the first invalid class in q.
func (q Quotas) Check() error {
	for provider, classes := range q.Classes {
		for _, c := range classes {
			if err := c.Check(); err != nil {
				return fmt.Errorf("quota for provider %q: %w", provider, err)
			}
		}
	}
	return nil
}

// The adaptation to throttling errors from the service.
const (
	// quotaCut is what a throttled answer multiplies a bucket's rate by.
	quotaCut = 0.7
	// quotaCutEvery spaces the cuts: the throttled answers of requests
	// already in flight report the same overload once.
	quotaCutEvery = time.Second
	// quotaFloor is the lowest share of the configured rate a bucket is
	// cut to.
	quotaFloor = 0.1
	// quotaRecoverStep is the share of the configured rate a cut bucket
	// gets back every quotaRecoverEvery without throttling.
	quotaRecoverStep  = 0.1
	quotaRecoverEvery = time.Second
)

// quotaReq is what the quotas need to know about a request. When kt is
// empty and alg is set, the key type is looked up in the public-key
// cache, or guessed from the algorithm.
type quotaReq struct {
	op      shared.Operation
	ref     Ref
	version string
	alg     shared.Algorithm
	kt      shared.KeyType
}

// quotaSet is one provider's quota classes and buckets. The zero value
// is ready: it reads the classes from the plugin's description on first
// use, and again after a relaunch brings a new description.
type quotaSet struct {
	mu      sync.Mutex
	desc    *shared.Description // the description classes was made from
	classes []shared.QuotaClass
	buckets map[bucketKey]*bucket
}

// bucketKey names a bucket within a provider.
type bucketKey struct{ class, scope string }

// take waits for q's tokens and returns the bucket they came from (nil
// when no class limits the request). The wait ends early, with an error
// wrapping shared.ErrThrottled, when it would pass ctx's deadline.
func (s *quotaSet) take(ctx context.Context, m *managed, q quotaReq) (*bucket, error) {
	if m.h.cfg.Quotas.Disable {
		return nil, nil
	}
	desc := m.description()
	if desc == nil {
		// Not launched yet: the classes come with the plugin's Describe.
		if _, err := m.acquire(ctx); err != nil {
			return nil, err
		}
		desc = m.description()
	}
	s.mu.Lock()
	if desc != s.desc {
		s.desc = desc
		s.classes = mergeClasses(m, desc)
	}
	if len(s.classes) == 0 {
		s.mu.Unlock()
		return nil, nil
	}
	if q.kt == "" && q.alg != "" {
		q.kt = m.h.keyTypeOf(q.ref, q.version, q.alg)
	}
	var c *shared.QuotaClass
	for i := range s.classes {
		if s.classes[i].Counts(q.op, q.kt) {
			c = &s.classes[i]
			break
		}
	}
	if c == nil || c.Rate <= 0 {
		s.mu.Unlock()
		return nil, nil
	}
	key := bucketKey{c.Name, scopeOf(c.Scope, q.ref)}
	b := s.buckets[key]
	if b == nil {
		if s.buckets == nil {
			s.buckets = map[bucketKey]*bucket{}
		}
		b = newBucket(m.name+" "+c.Name+scopeLabel(key.scope), c.Rate, c.Burst, time.Now())
		s.buckets[key] = b
	}
	n := min(c.Weight(q.kt), b.lim.Burst())
	s.mu.Unlock()
	return b, b.wait(ctx, n)
}

// mergeClasses applies the configuration's classes for m's provider to
// the plugin's: overrides in place, additions first. Invalid classes
// are logged and left out.
func mergeClasses(m *managed, desc *shared.Description) []shared.QuotaClass {
	var declared []shared.QuotaClass
	if desc != nil {
		declared = append(declared, desc.Quotas...)
	}
	var added []shared.QuotaClass
	for _, c := range m.h.cfg.Quotas.Classes[m.name] {
		i := indexClass(declared, c.Name)
		if i < 0 {
			added = append(added, c)
			continue
		}
		d := &declared[i]
		if c.Rate != 0 {
			d.Rate = c.Rate
		}
		if c.Burst != 0 {
			d.Burst = c.Burst
		}
		if c.Operations != nil {
			d.Operations = c.Operations
		}
		if c.KeyTypes != nil {
			d.KeyTypes = c.KeyTypes
		}
		if c.Scope != nil {
			d.Scope = c.Scope
		}
		if c.Weights != nil {
			d.Weights = c.Weights
		}
	}
	all := append(added, declared...)
	kept := all[:0]
	for _, c := range all {
		if err := c.Check(); err != nil {
			m.log.Warn("ignoring an invalid quota class", "error", err)
			continue
		}
		kept = append(kept, c)
	}
	return kept
}

func indexClass(cs []shared.QuotaClass, name string) int {
	for i, c := range cs {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// scopeOf is the bucket's scope within its class: the values of the
// scope parameters, "name=value" joined by commas.
func scopeOf(names []string, r Ref) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteByte('=')
		if n == shared.ScopeKeyOrigin {
			b.WriteString(keyOrigin(r.KeyID))
		} else {
			b.WriteString(r.Params[n])
		}
	}
	return b.String()
}

// keyOrigin is the scheme and host of a key id that is a URL, else "".
func keyOrigin(id string) string {
	u, err := url.Parse(id)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// scopeLabel is a scope for messages, without what a URL could carry.
func scopeLabel(scope string) string {
	if scope == "" {
		return ""
	}
	return " (" + shared.RedactURL(scope) + ")"
}

// keyTypeOf is the type of the key a request uses: from the public-key
// cache (verify-after-sign and Key's algorithm choice have fetched it),
// else the algorithm's smallest key type (an RSA key of unknown size
// counts as RSA-2048).
func (h *Host) keyTypeOf(r Ref, version string, alg shared.Algorithm) shared.KeyType {
	if pk, ok := h.cache.get(r, version); ok {
		return pk.Type
	}
	switch alg {
	case shared.RS256, shared.RS384, shared.RS512, shared.PS256, shared.PS384, shared.PS512:
		return shared.RSA2048
	case shared.ES256:
		return shared.ECP256
	case shared.ES384:
		return shared.ECP384
	case shared.ES512:
		return shared.ECP521
	case shared.EdDSA:
		return shared.Ed25519
	}
	return ""
}

// bucket is one token bucket, with its adaptation to throttling.
type bucket struct {
	name    string // provider, class and scope, for messages
	lim     *rate.Limiter
	nominal rate.Limit // the configured rate

	mu      sync.Mutex // guards the fields below
	cur     rate.Limit // the rate now: nominal, or less after a cut
	changed time.Time  // the last cut or recovery step
	cut     time.Time  // the last cut
}

// newBucket makes a bucket of perSecond tokens a second; burst zero
// means a tenth of a second's worth.
func newBucket(name string, perSecond float64, burst int, now time.Time) *bucket {
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond/10)))
	}
	lim := rate.NewLimiter(rate.Limit(perSecond), burst)
	lim.SetLimitAt(now, rate.Limit(perSecond))
	return &bucket{name: name, lim: lim, nominal: rate.Limit(perSecond), cur: rate.Limit(perSecond), changed: now}
}

// wait takes n tokens, sleeping until they are there. It fails at once,
// taking nothing, when they would come after ctx's deadline.
func (b *bucket) wait(ctx context.Context, n int) error {
	now := time.Now()
	b.recover(now)
	r := b.lim.ReserveN(now, n)
	if !r.OK() {
		return fmt.Errorf("%w: request quota %s: a request needs %d tokens, more than the burst of %d", shared.ErrThrottled, b.name, n, b.lim.Burst())
	}
	delay := r.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	if d, ok := ctx.Deadline(); ok && now.Add(delay).After(d) {
		r.CancelAt(now)
		return fmt.Errorf("request quota %s (%s/s): the next token is %s away, after the caller's deadline in %s: %w",
			b.name, formatRate(b.lim.Limit()), delay.Round(time.Millisecond), d.Sub(now).Round(time.Millisecond), shared.ErrThrottled)
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// observe adapts the bucket to how the service answered a request that
// took its tokens. b may be nil (no quota).
func (b *bucket) observe(err error) {
	if b != nil && errors.Is(err, shared.ErrThrottled) {
		b.throttled(time.Now())
	}
}

// throttled cuts the rate after the service throttled a request, at most
// once per quotaCutEvery, never below quotaFloor of the configured rate.
func (b *bucket) throttled(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.cut.IsZero() && now.Sub(b.cut) < quotaCutEvery {
		return
	}
	b.cur = max(b.cur*quotaCut, b.nominal*quotaFloor)
	b.cut, b.changed = now, now
	b.lim.SetLimitAt(now, b.cur)
}

// recover gives a cut bucket back quotaRecoverStep of its configured
// rate for every quotaRecoverEvery since the last change.
func (b *bucket) recover(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur >= b.nominal {
		return
	}
	steps := now.Sub(b.changed) / quotaRecoverEvery
	if steps <= 0 {
		return
	}
	b.cur = min(b.nominal, b.cur+rate.Limit(steps)*b.nominal*quotaRecoverStep)
	b.changed = b.changed.Add(steps * quotaRecoverEvery)
	b.lim.SetLimitAt(now, b.cur)
}

// rateNow is the bucket's current rate, for tests and messages.
func (b *bucket) rateNow() rate.Limit {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur
}

func formatRate(l rate.Limit) string { return strconv.FormatFloat(float64(l), 'g', 4, 64) }
