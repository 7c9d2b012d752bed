// Package allow remembers access decisions that were granted, for the
// platform authorizers of package agent (Flex's TaskRouter assignment,
// Genesys' conversation check): a grant is kept until it expires, refusals
// are never kept, and the number of grants is bounded.
package allow

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// ReadOnly reports whether r may be authorized from a Cache of grants: a
// status read or a stop of the agent API (agent.Server's paths, under any
// base path), which cannot change the caller's registration. Any other
// request (the starts register, verify and reverify, and delete) is to be
// judged afresh, so an agent whose part in the call ended is refused at
// once, not a cache lifetime later.
func ReadOnly(r *http.Request) bool {
	if r == nil || r.URL == nil {
		return false
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	return strings.HasSuffix(p, "/status") || strings.HasSuffix(p, "/stop")
}

// Cache holds grants by key until they expire. The zero value is not
// usable; make one with New. It is safe for concurrent use.
type Cache struct {
	ttl  time.Duration
	size int
	mu   sync.Mutex
	m    map[[32]byte]time.Time // key → expiry
}

// New returns a cache keeping a grant for ttl and at most size grants.
// A ttl ≤ 0 keeps nothing.
func New(ttl time.Duration, size int) *Cache {
	return &Cache{ttl: ttl, size: max(size, 1), m: make(map[[32]byte]time.Time)}
}

// Allowed reports whether key holds a grant that has not expired at now.
func (c *Cache) Allowed(key [32]byte, now time.Time) bool {
	if c.ttl <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.m[key]
	if ok && !now.Before(exp) {
		delete(c.m, key)
		return false
	}
	return ok
}

// Grant keeps a grant for key from now. When the cache is full it first
// drops expired grants, then any others until there is room.
func (c *Cache) Grant(key [32]byte, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.size {
		for k, exp := range c.m {
			if !now.Before(exp) || len(c.m) >= c.size {
				delete(c.m, k)
			}
		}
	}
	c.m[key] = now.Add(c.ttl)
}
