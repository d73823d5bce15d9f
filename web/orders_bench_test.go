package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/market"
	"levee/market/engine"
)

// stubAccounts knows one token; everything else panics (the embedded nil).
type stubAccounts struct{ Accounts }

var benchPrincipal = &accounts.Principal{AccountID: 42, Name: "alice", Kind: "person", Roles: []string{accounts.RoleResident}, Via: "token"}

func (stubAccounts) CachedToken(token string) (*accounts.Principal, bool) {
	return benchPrincipal, token == "lv_bench"
}

// stubMarkets fills every order at once.
type stubMarkets struct{ Markets }

func (stubMarkets) Submit(_ context.Context, account, marketID int64, o market.Order, _ string) (engine.Result, error) {
	return engine.Result{MarketID: marketID, Seq: 1234, Outcome: o.Outcome, Side: o.Side, Shares: o.Shares,
		Cost: levee.MustMicros("1.312345"), Prices: []levee.Micros{400_000, 600_000}}, nil
}

func orderRequest() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/markets/1/orders", strings.NewReader(`{"outcome":0,"side":"buy","shares":"2.5"}`))
	r.Header.Set("Authorization", "Bearer lv_bench")
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = "127.0.0.1:5000"
	return r
}

// BenchmarkOrderRequest is the server's own work for one order, without the
// engine and without the network: routing, every middleware, strict
// decoding, the answer. Issue 18: CPU per order.
//
//	go test -run '^$' -bench OrderRequest -benchmem ./web/
func BenchmarkOrderRequest(b *testing.B) {
	s := New(Deps{Accounts: stubAccounts{}, Markets: stubMarkets{}, Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Limits: Limits{PerAccount: 1e9, PerAddress: 1e9}})
	h := s.Handler()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, orderRequest())
		if w.Code != http.StatusCreated {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkOrderMiddleware measures each middleware of the chain (routes.go)
// alone, around a handler that does nothing, against no middleware at all:
// what each costs an order.
func BenchmarkOrderMiddleware(b *testing.B) {
	s := New(Deps{Accounts: stubAccounts{}, Markets: stubMarkets{}, Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Limits: Limits{PerAccount: 1e9, PerAddress: 1e9}})
	limits := Limits{PerAccount: 1e9, PerAddress: 1e9}.withDefaults()
	authenticated := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			c.Set(principalKey, benchPrincipal)
			return next(c)
		}
	}
	for _, tc := range []struct {
		name string
		mw   []echo.MiddlewareFunc
	}{
		{"none", nil},
		{"recoverPanic", []echo.MiddlewareFunc{s.recoverPanic}},
		{"accessLog", []echo.MiddlewareFunc{s.accessLog}},
		{"securityHeaders", []echo.MiddlewareFunc{s.securityHeaders}},
		{"limitBody", []echo.MiddlewareFunc{s.limitBody}},
		{"requestTimeout", []echo.MiddlewareFunc{s.requestTimeout(limits.RequestTimeout)}},
		{"authenticate", []echo.MiddlewareFunc{s.authenticate}},
		{"rateLimit", []echo.MiddlewareFunc{authenticated, s.rateLimit(limits)}},
		{"anonymousReads", []echo.MiddlewareFunc{authenticated, s.anonymousReads(limits.AnonymousReads)}},
		{"checkCSRF", []echo.MiddlewareFunc{authenticated, s.checkCSRF}},
		{"checkText", []echo.MiddlewareFunc{checkText}},
		{"requireRole", []echo.MiddlewareFunc{authenticated, s.requireRole(accounts.RoleResident)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := echo.New()
			e.Use(tc.mw...)
			e.POST("/api/v1/markets/:id/orders", func(c *echo.Context) error { return c.NoContent(http.StatusCreated) })
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				e.ServeHTTP(w, orderRequest())
				if w.Code != http.StatusCreated {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
