package shared

import (
	"context"
	"sync"
)

// ClientCache keeps one client of a key service per connection settings
// (region and endpoint, vault address and credentials...), so one plugin
// process serves many regions and vaults without a new client, TLS
// handshake or login per call. A client is made on first use of its key;
// concurrent first uses share one make; a failed make is not kept, so the
// next call tries again. The zero value is ready to use.
type ClientCache[C any] struct {
	mu sync.Mutex
	m  map[string]*cacheEntry[C]
}

type cacheEntry[C any] struct {
	done   chan struct{}
	client C
	err    error
}

// Get returns the client for key, calling newClient to create it the
// first time. A caller whose ctx ends while another makes the client gets ctx's
// error; the making goes on for the others.
func (c *ClientCache[C]) Get(ctx context.Context, key string, newClient func(context.Context) (C, error)) (C, error) {
	c.mu.Lock()
	e, ok := c.m[key]
	if !ok {
		if c.m == nil {
			c.m = map[string]*cacheEntry[C]{}
		}
		e = &cacheEntry[C]{done: make(chan struct{})}
		c.m[key] = e
		c.mu.Unlock()
		e.client, e.err = newClient(ctx)
		if e.err != nil {
			c.mu.Lock()
			delete(c.m, key)
			c.mu.Unlock()
		}
		close(e.done)
		return e.client, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.client, e.err
	case <-ctx.Done():
		var zero C
		return zero, ctx.Err()
	}
}

// Len reports how many clients are cached.
func (c *ClientCache[C]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Each calls f for every client made so far (to close them, say).
func (c *ClientCache[C]) Each(f func(C)) {
	c.mu.Lock()
	var ready []C
	for _, e := range c.m {
		select {
		case <-e.done:
			if e.err == nil {
				ready = append(ready, e.client)
			}
		default:
		}
	}
	c.mu.Unlock()
	for _, cl := range ready {
		f(cl)
	}
}
