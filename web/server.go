// Package web serves Levee's HTTP API (and, later, its pages and websocket).
// It is the only package that imports echo, so a move off echo v4 (security
// fixes end 2026-12-31) touches nothing else.
package web

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"levee"
	"levee/accounts"
	"levee/ledger"
)

// Accounts is what the web layer needs from the accounts service.
type Accounts interface {
	Authenticate(ctx context.Context, token string) (*accounts.Principal, error)
	// CachedToken is Authenticate answered from memory only, without a
	// query: ok is false when the token is not known there.
	CachedToken(token string) (p *accounts.Principal, ok bool)
	Session(ctx context.Context, sessionID string) (*accounts.Principal, error)
	Login(ctx context.Context, name, password string) (string, *accounts.Principal, error)
	LoginWithToken(ctx context.Context, token string) (string, *accounts.Principal, error)
	Logout(ctx context.Context, sessionID string) error
	CreateDistrict(ctx context.Context, actor int64, name string) (accounts.District, error)
	Districts(ctx context.Context) ([]accounts.District, error)
	Contractors(ctx context.Context) ([]accounts.Named, error)
	OrganisationsOf(ctx context.Context, member int64) ([]accounts.Named, error)
	CreateAccount(ctx context.Context, actor int64, n accounts.NewAccount) (accounts.Account, string, error)
	AddMember(ctx context.Context, actor, org, member int64) error
	Get(ctx context.Context, id int64) (accounts.Account, error)
	CreateToken(ctx context.Context, accountID int64, label string) (accounts.Token, string, error)
	Tokens(ctx context.Context, accountID int64) ([]accounts.Token, error)
	RevokeToken(ctx context.Context, accountID, tokenID int64) error
	Audit(ctx context.Context, limit int) ([]accounts.AuditEntry, error)
	IssueToTreasury(ctx context.Context, actor int64, amount levee.Micros, memo string) (ledger.Entry, error)
}

// Ledger is what the web layer needs from the treasury ledger.
type Ledger interface {
	Page(ctx context.Context, after int64, limit int) (ledger.Page, error)
	History(ctx context.Context, account string, limit int) ([]ledger.Movement, error)
	// Verified is the cached verification, extended with new entries; the
	// public reads use it so that no anonymous call recomputes the chain.
	Verified(ctx context.Context) (ledger.Verified, error)
}

// Readiness reports whether the service can take traffic (database reachable,
// schema current); nil means ready.
type Readiness func(ctx context.Context) error

// Deps are the services the web layer serves.
type Deps struct {
	Accounts Accounts
	Ledger   Ledger
	Markets  Markets
	Budgets  Budgets // optional: quadratic funding and budget lines
	Census   Census  // optional: the public census
	// Contracting is optional: tenders, sealed bids, awards and contracts.
	Contracting Contracting
	// Evidence is optional: files attached to milestone claims.
	Evidence Evidence
	// Cases is optional: proposals, disputes and juries.
	Cases Cases
	// Proposals proposes market outcomes; required with Cases.
	Proposals Proposals
	// Crisis is optional: the charter, the neighbours' quorum, emergencies.
	Crisis Crisis
	// Node is optional: this node in the network of cities (identity,
	// signed statements, witnesses).
	Node Federation
	// Emails and Mail are optional: people's addresses and the mail that
	// confirms them.
	Emails Emails
	Mail   Mail
	Live   *Live // optional: the websocket hub the engine publishes into
	Ready  Readiness
	// ReadyInfo adds fields to /readyz (several instances: whether this one
	// holds NATS, how many markets it owns); optional.
	ReadyInfo func() map[string]any
	Limits    Limits // zero fields take DefaultLimits
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed; from anyone else the header is ignored.
	TrustedProxies []*net.IPNet
	Logger         *slog.Logger
}

// Server is Levee's HTTP handler.
type Server struct {
	deps     Deps
	echo     *echo.Echo
	logger   *slog.Logger
	registry *prometheus.Registry
	metrics  *httpMetrics
	// badTokens counts failed bearer tokens per client address.
	badTokens *limiterStore
	// uploads are the routes that take a file, with the larger body limit.
	uploads map[string]bool
}

// New builds the server and its routes.
func New(deps Deps) *Server {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	s := &Server{deps: deps, logger: deps.Logger, registry: prometheus.NewRegistry(),
		badTokens: newLimiterStore(1, 20, 10*time.Minute), uploads: map[string]bool{}}
	s.metrics = newHTTPMetrics(s.registry)
	if deps.Live != nil {
		deps.Live.markets = deps.Markets
	}
	s.echo = echo.NewWithConfig(echo.Config{
		Logger:           deps.Logger,
		HTTPErrorHandler: s.handleError,
		IPExtractor:      ipExtractor(deps.TrustedProxies),
		// A route registered twice is a mistake in routes.go, not a
		// deliberate override: refuse it at start instead of serving the
		// last one.
		Router: echo.NewRouter(echo.RouterConfig{}),
	})
	s.routes()
	return s
}

// Handler returns the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.echo }

// Registry is the Prometheus registry behind /metrics, for other components'
// collectors.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// bodyLimit is the most any request other than an upload may send.
const bodyLimit = 1 << 20

// limitBody caps the request body at the matched route's limit: uploadLimit
// for the upload routes, bodyLimit for everything else (unknown paths
// included). A declared Content-Length over it is refused at once; a longer
// streamed body fails its reader at the limit.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	small := middleware.BodyLimit(bodyLimit)(next)
	large := middleware.BodyLimit(uploadLimit)(next)
	return func(c *echo.Context) error {
		if c.Request().Method == http.MethodPost && s.uploads[c.Path()] {
			return large(c)
		}
		return small(c)
	}
}

// upload registers a POST route that takes a file, with the upload limit.
func (s *Server) upload(g *echo.Group, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	r := g.POST(path, h, m...)
	s.uploads[r.Path] = true
}

// Route is one registered method and path.
type Route struct{ Method, Path string }

// Routes lists every registered route, so tests can check that each one has
// a declared access rule.
func (s *Server) Routes() []Route {
	var rs []Route
	for _, r := range s.echo.Router().Routes() {
		rs = append(rs, Route{Method: r.Method, Path: r.Path})
	}
	return rs
}
