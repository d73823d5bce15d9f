// Package web serves Levee's HTTP API (and, later, its pages and websocket).
// It is the only package that imports echo, so a move off echo v4 (security
// fixes end 2026-12-31) touches nothing else.
package web

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"levee"
	"levee/accounts"
	"levee/ledger"
)

// Accounts is what the web layer needs from the accounts service.
type Accounts interface {
	Authenticate(ctx context.Context, token string) (*accounts.Principal, error)
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
	Verify(ctx context.Context) (ledger.Report, error)
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
	Live   *Live // optional: the websocket hub the engine publishes into
	Ready  Readiness
	Limits Limits // zero fields take DefaultLimits
	Logger *slog.Logger
}

// Server is Levee's HTTP handler.
type Server struct {
	deps     Deps
	echo     *echo.Echo
	logger   *slog.Logger
	registry *prometheus.Registry
	metrics  *httpMetrics
}

// New builds the server and its routes.
func New(deps Deps) *Server {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	s := &Server{deps: deps, echo: echo.New(), logger: deps.Logger, registry: prometheus.NewRegistry()}
	s.metrics = newHTTPMetrics(s.registry)
	if deps.Live != nil {
		deps.Live.markets = deps.Markets
	}
	s.echo.HideBanner, s.echo.HidePort = true, true
	s.echo.HTTPErrorHandler = s.handleError
	s.routes()
	return s
}

// Handler returns the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.echo }

// Registry is the Prometheus registry behind /metrics, for other components'
// collectors.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Route is one registered method and path.
type Route struct{ Method, Path string }

// Routes lists every registered route, so tests can check that each one has
// a declared access rule.
func (s *Server) Routes() []Route {
	var rs []Route
	for _, r := range s.echo.Routes() {
		rs = append(rs, Route{Method: r.Method, Path: r.Path})
	}
	return rs
}
