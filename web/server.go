// Package web serves Levee's HTTP API (and, later, its pages and websocket).
// It is the only package that imports echo, so a move off echo v4 (security
// fixes end 2026-12-31) touches nothing else.
package web

import (
	"context"
	"golang.org/x/time/rate"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"levee"
	"levee/accounts"
	"levee/settlement/ledger"
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
	Budgets  Budgets // optional: quadratic funding, budget lines and the census
	// Contracting is optional: tenders, sealed bids, awards and contracts.
	Contracting Contracting
	// Evidence is optional: files attached to milestone claims.
	Evidence Evidence
	// Cases is optional: proposals, disputes and juries.
	Cases Cases
	// Crisis is optional: the charter, the neighbours' quorum, emergencies.
	Crisis Crisis
	// Emails and Mail are optional: people's addresses and the mail that
	// confirms them.
	Emails Emails
	Mail   Mail
	Live   *Live // optional: the websocket hub the engine publishes into
	Ready  Readiness
	Limits Limits // zero fields take DefaultLimits
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
	s := &Server{deps: deps, echo: echo.New(), logger: deps.Logger, registry: prometheus.NewRegistry(),
		badTokens: newLimiterStore(1, 20, 10*time.Minute), uploads: map[string]bool{}}
	s.metrics = newHTTPMetrics(s.registry)
	if deps.Live != nil {
		deps.Live.markets = deps.Markets
	}
	s.echo.HideBanner, s.echo.HidePort = true, true
	s.echo.HTTPErrorHandler = s.handleError
	s.echo.IPExtractor = ipExtractor(deps.TrustedProxies)
	s.routes()
	return s
}

// Handler returns the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.echo }

// Registry is the Prometheus registry behind /metrics, for other components'
// collectors.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// routes lists every route in one place.
func (s *Server) routes() {
	e := s.echo
	limits := s.deps.Limits.withDefaults()
	// The body limit comes before anything that could read the body (the
	// three before it do not). echo runs these after routing, so the limit
	// is the matched route's.
	e.Use(s.recoverPanic, s.accessLog, s.securityHeaders, s.limitBody, s.requestTimeout(limits.RequestTimeout),
		s.authenticate, s.rateLimit(limits), s.anonymousReads(limits.AnonymousReads), s.checkCSRF)
	e.Use(checkText)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metricsHandler())

	api := e.Group("/api/v1")
	// Each sign-in attempt costs an argon2 hash and is a password guess: 10
	// at once, then one every 2 seconds, per client address.
	api.POST("/session", s.login, throttle(newLimiterStore(rate.Every(2*time.Second), 10, 10*time.Minute)), sameOriginJSON)
	api.DELETE("/session", s.logout)

	api.GET("/me", s.me, s.signedIn)
	api.GET("/me/tokens", s.listTokens, s.signedIn)
	api.POST("/me/tokens", s.createToken, s.signedIn)
	api.DELETE("/me/tokens/:id", s.revokeToken, s.signedIn)

	api.GET("/districts", s.listDistricts)
	api.GET("/ledger/entries", s.ledgerEntries)
	api.GET("/ledger/verify", s.ledgerVerify)

	treasurer := s.requireRole(accounts.RoleTreasurer)
	trader := s.requireRole(accounts.RoleResident)
	api.GET("/markets", s.listMarkets)
	api.POST("/markets", s.createMarket, treasurer)
	api.GET("/markets/:id", s.getMarket)
	api.GET("/markets/:id/quote", s.quote)
	api.POST("/markets/:id/orders", s.placeOrder, trader)
	api.GET("/markets/:id/trades", s.marketTrades)
	api.GET("/markets/:id/history", s.marketHistory)
	api.POST("/markets/:id/close", s.closeMarket, treasurer)
	api.POST("/markets/:id/void", s.voidMarket, treasurer)
	api.GET("/me/positions", s.myPositions, s.signedIn)
	api.GET("/me/history", s.myHistory, s.signedIn)
	if s.deps.Live != nil {
		api.GET("/ws", echo.WrapHandler(s.deps.Live.hub))
	}
	if s.deps.Budgets != nil {
		api.GET("/qf/rounds", s.listRounds)
		api.POST("/qf/rounds", s.createRound, treasurer)
		api.GET("/qf/rounds/:id", s.getRound)
		api.POST("/qf/rounds/:id/projects", s.proposeProject, trader)
		api.POST("/qf/projects/:id/eligibility", s.setEligibility, treasurer)
		api.POST("/qf/projects/:id/contributions", s.contribute, trader)
		api.POST("/qf/rounds/:id/finalize", s.finalizeRound, treasurer)
		api.GET("/qf/rounds/:id/explain", s.explainMatch, s.signedIn)
		api.GET("/budget-lines", s.listBudgetLines)
		api.GET("/census", s.census)
		api.GET("/census.csv", s.censusCSV)
	}

	s.emailRoutes(api)
	s.evidenceRoutes(api)
	s.caseRoutes(api, treasurer)
	if s.deps.Contracting != nil {
		api.GET("/tenders", s.listTenders)
		api.POST("/tenders", s.createTender, treasurer)
		api.GET("/tenders/:id", s.getTender)
		api.PATCH("/tenders/:id", s.editTender, treasurer)
		api.GET("/tenders/:id/bids", s.listBids)
		api.POST("/tenders/:id/bids", s.submitBid, s.signedIn)
		api.POST("/tenders/:id/close-bids", s.closeBids, treasurer)
		api.POST("/tenders/:id/award", s.awardTender, treasurer)
		api.GET("/bids/:id", s.getBid)
		api.PUT("/bids/:id", s.reviseBid, s.signedIn)
		api.DELETE("/bids/:id", s.withdrawBid, s.signedIn)
		api.GET("/contracts/:id", s.getContract)
		api.POST("/contracts/:id/milestones/:n/claim", s.claimMilestone, s.signedIn)
		if s.deps.Cases != nil {
			api.POST("/contracts/:id/milestones/:n/dispute", s.disputeMilestone, s.signedIn)
		}
		api.GET("/ocds/releases/:id", s.ocdsReleases)
		api.GET("/ocds/records/:id", s.ocdsRecords)
		api.GET("/contractors/:id/track-record", s.trackRecord)
	}

	s.pageRoutes()

	admin := api.Group("/admin", s.requireRole(accounts.RoleAdmin))
	admin.POST("/districts", s.createDistrict)
	admin.POST("/accounts", s.createAccount)
	admin.POST("/organisations/:id/members", s.addMember)
	admin.GET("/audit", s.audit)
	admin.POST("/treasury/issue", s.issueToTreasury)
	s.adminRoutes(admin)
	s.crisisRoutes(api, admin)
	s.docRoutes()
}

// bodyLimit is the most any request other than an upload may send.
const bodyLimit = 1 << 20

// limitBody caps the request body at the matched route's limit: uploadLimit
// for the upload routes, bodyLimit for everything else (unknown paths
// included). A declared Content-Length over it is refused at once; a longer
// streamed body fails its reader at the limit.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	small := middleware.BodyLimit(strconv.Itoa(bodyLimit/1024) + "K")(next)
	large := middleware.BodyLimit(strconv.Itoa(uploadLimit/1024) + "K")(next)
	return func(c echo.Context) error {
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
	for _, r := range s.echo.Routes() {
		rs = append(rs, Route{Method: r.Method, Path: r.Path})
	}
	return rs
}
