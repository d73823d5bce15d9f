package accounts

import (
	"sync"
	"time"
)

// tokenCacheTTL bounds how long a token revoked on another instance (or
// directly in the database) may still be accepted here.
const tokenCacheTTL = 5 * time.Second

// tokenCacheMax bounds memory: past it the cache starts over.
const tokenCacheMax = 100_000

type tokenCache struct {
	mu sync.Mutex
	m  map[string]cachedPrincipal
}

type cachedPrincipal struct {
	p       Principal
	expires time.Time
}

func (c *tokenCache) get(hash []byte) (*Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[string(hash)]
	if !ok || time.Now().After(e.expires) {
		return nil, false
	}
	p := e.p // a copy: callers may not change the cached one
	return &p, true
}

func (c *tokenCache) put(hash []byte, p *Principal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= tokenCacheMax {
		c.m = map[string]cachedPrincipal{}
	}
	c.m[string(hash)] = cachedPrincipal{p: *p, expires: time.Now().Add(tokenCacheTTL)}
}

func (c *tokenCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
