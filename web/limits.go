package web

import (
	"context"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
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
	return l
}

var errSlowDown = levee.Errorf(levee.ERATELIMIT, "too many requests; slow down and retry after the time in Retry-After")

// rateLimit answers 429 with Retry-After to a caller over its rate: per
// account when signed in, per address when not. It runs after authenticate.
func (s *Server) rateLimit(l Limits) echo.MiddlewareFunc {
	store := func(r float64) *middleware.RateLimiterMemoryStore {
		return middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: rate.Limit(r), Burst: int(2 * r), ExpiresIn: 3 * time.Minute})
	}
	accounts, addresses := store(l.PerAccount), store(l.PerAddress)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			var ok bool
			if p := principal(c); p != nil {
				ok, _ = accounts.Allow(levee.FormatID(p.AccountID))
			} else {
				ok, _ = addresses.Allow(c.RealIP())
			}
			if !ok {
				c.Response().Header().Set("Retry-After", "1")
				return errSlowDown
			}
			return next(c)
		}
	}
}

// requestTimeout gives each request a deadline, so no request holds a
// database connection or a goroutine past it. Websockets live longer.
func (s *Server) requestTimeout(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if strings.HasSuffix(c.Path(), "/ws") {
				return next(c)
			}
			ctx, cancel := context.WithTimeout(c.Request().Context(), d)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}
