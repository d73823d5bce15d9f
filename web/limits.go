package web

import (
	"container/list"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v5"
	"golang.org/x/time/rate"

	"levee"
)

// Limits bound what one caller can ask of the server.
type Limits struct {
	// PerAccount is the sustained request rate of one signed-in account
	// (burst twice that); PerAddress the same for anonymous callers by IP.
	PerAccount, PerAddress float64
	// RequestTimeout bounds the work done for one request (not websockets).
	RequestTimeout time.Duration
	// AnonymousReads is how many anonymous reads run at once (see
	// anonymousReads); 0 means half the CPUs, at least one.
	AnonymousReads int
}

// DefaultLimits are generous enough for a busy trading client and the
// browser pages, and stop a flood from one token or address.
var DefaultLimits = Limits{PerAccount: 500, PerAddress: 200, RequestTimeout: 15 * time.Second}

func (l Limits) withDefaults() Limits {
	if l.PerAccount == 0 {
		l.PerAccount = DefaultLimits.PerAccount
	}
	if l.PerAddress == 0 {
		l.PerAddress = DefaultLimits.PerAddress
	}
	if l.RequestTimeout == 0 {
		l.RequestTimeout = DefaultLimits.RequestTimeout
	}
	if l.AnonymousReads == 0 {
		l.AnonymousReads = max(1, runtime.GOMAXPROCS(0)/2)
	}
	return l
}

var errSlowDown = levee.Errorf(levee.ERATELIMIT, "too many requests; slow down and retry after the time in Retry-After")

// maxLimiterEntries caps each limiter's table. A bucket costs a few hundred
// bytes, so a flood from any number of addresses costs at most ~20 MB per
// table. Past the cap the least recently seen caller is forgotten (it starts
// again with a full burst), which only helps someone who already controls
// that many addresses.
const maxLimiterEntries = 65_536

// limiterStore is a token bucket per caller key, bounded in size (at most max
// entries, least recently used evicted first) and in time (a key idle for ttl
// is forgotten). echo's memory store grows with every distinct key until its
// expiry sweep, so 200,000 addresses in a few minutes would all be held.
type limiterStore struct {
	rate  rate.Limit
	burst int
	ttl   time.Duration
	max   int

	mu   sync.Mutex
	keys map[string]*list.Element // of *limiterEntry
	lru  list.List                // front: most recently used
}

type limiterEntry struct {
	key  string
	lim  *rate.Limiter
	seen time.Time
}

func newLimiterStore(r rate.Limit, burst int, ttl time.Duration) *limiterStore {
	return &limiterStore{rate: r, burst: burst, ttl: ttl, max: maxLimiterEntries, keys: map[string]*list.Element{}}
}

// limiter returns key's bucket, creating it (and making room) if need be.
// The caller holds s.mu.
func (s *limiterStore) limiter(key string, now time.Time) *rate.Limiter {
	if el, ok := s.keys[key]; ok {
		e := el.Value.(*limiterEntry)
		e.seen = now
		s.lru.MoveToFront(el)
		return e.lim
	}
	// The list is in order of last use, so idle entries are at the back.
	for back := s.lru.Back(); back != nil; back = s.lru.Back() {
		e := back.Value.(*limiterEntry)
		if now.Sub(e.seen) < s.ttl && s.lru.Len() < s.max {
			break
		}
		s.lru.Remove(back)
		delete(s.keys, e.key)
	}
	e := &limiterEntry{key: key, lim: rate.NewLimiter(s.rate, s.burst), seen: now}
	s.keys[key] = s.lru.PushFront(e)
	return e.lim
}

// allow takes one token from key's bucket, reporting whether there was one.
func (s *limiterStore) allow(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	return s.limiter(key, now).AllowN(now, 1)
}

// has reports whether key's bucket holds a token, without taking it.
func (s *limiterStore) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	return s.limiter(key, now).TokensAt(now) >= 1
}

// len is the number of keys held.
func (s *limiterStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// addressKey is the limiters' key for a client address: an IPv4 address, or
// the /64 network of an IPv6 one, since one subscriber usually gets a whole
// /64 and could otherwise rotate through 2^64 addresses.
func addressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// ipExtractor is how c.RealIP() finds the client: the connection's address,
// unless it is one of the trusted proxies, in which case the rightmost
// address of X-Forwarded-For that is not a trusted proxy. Without trusted
// proxies the header is ignored: anyone can send it, and every rate limit
// keys on the answer.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	// echo trusts loopback, link-local and private networks by default;
	// only the configured ranges are trusted here.
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// rateLimit answers 429 with Retry-After to a caller over its rate: per
// account when signed in, per address when not. It runs after authenticate.
func (s *Server) rateLimit(l Limits) echo.MiddlewareFunc {
	store := func(r float64) *limiterStore { return newLimiterStore(rate.Limit(r), int(2*r), 3*time.Minute) }
	accounts, addresses := store(l.PerAccount), store(l.PerAddress)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			var ok bool
			if p := principal(c); p != nil {
				ok = accounts.allow(levee.FormatID(p.AccountID))
			} else {
				ok = addresses.allow(addressKey(c.RealIP()))
			}
			if !ok {
				c.Response().Header().Set("Retry-After", "1")
				return errSlowDown
			}
			return next(c)
		}
	}
}

// anonymousReadWait is how long an anonymous read waits for a slot before
// it is told to come back later.
const anonymousReadWait = 2 * time.Second

// anonymousReads admits at most slots anonymous reads at once; the others
// queue for up to anonymousReadWait, then get 429. Per-address limits do not
// stop fifty addresses each reading the census or the ledger export, and
// every such read is CPU and a database connection taken from trading: with
// at most half the cores busy with them, a flood of public reads slows
// mostly itself (with one read per core, orders' p99 still went from 0.3 s
// to 1.3 s on 2 busy cores). Signed-in callers have their per-account
// limit; the websocket, health checks, metrics and static assets are cheap
// and not counted.
func (s *Server) anonymousReads(slots int) echo.MiddlewareFunc {
	sem := make(chan struct{}, slots)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			r := c.Request()
			if r.Method != http.MethodGet && r.Method != http.MethodHead || principal(c) != nil || uncountedRead(c.Path()) {
				return next(c)
			}
			t := time.NewTimer(anonymousReadWait)
			defer t.Stop()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				return next(c)
			case <-t.C:
			case <-r.Context().Done():
			}
			c.Response().Header().Set("Retry-After", "1")
			return errBusy
		}
	}
}

var errBusy = levee.Errorf(levee.ERATELIMIT, "the public reads are busy; retry after the time in Retry-After")

// uncountedRead reports whether a route is exempt from anonymousReads.
func uncountedRead(route string) bool {
	switch route {
	case "/healthz", "/readyz", "/metrics", "/api/v1/ws", "/favicon.ico":
		return true
	}
	return strings.HasPrefix(route, "/assets/")
}

// throttle limits attempts per client address (sign-ins); past the burst the
// answer is 429 with Retry-After before the handler does any work.
func throttle(store *limiterStore) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			if !store.allow(addressKey(c.RealIP())) {
				c.Response().Header().Set("Retry-After", "60")
				return errRateLimited
			}
			return next(c)
		}
	}
}

// requestTimeout gives each request a deadline, so no request holds a
// database connection or a goroutine past it. Websockets live longer. The
// deadline's timer is made only if something waits on it (requestDeadline).
func (s *Server) requestTimeout(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			if strings.HasSuffix(c.Path(), "/ws") {
				return next(c)
			}
			ctx := withRequestDeadline(c.Request().Context(), d)
			defer ctx.end()
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}
