package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"levee/accounts"
	"levee/budgets"
	"levee/census"
	"levee/cluster"
	"levee/contracting"
	"levee/crisis"
	"levee/federation"
	"levee/internal/rawsock"
	"levee/ledger"
	"levee/mail"
	"levee/market/engine"
	"levee/migrations"
	"levee/pgserver"
	"levee/residents"
	"levee/settlement"
	"levee/subjects"
	"levee/web"
	"levee/web/live"
)

// Main is the whole program, wired: tests start it on port 0 exactly as the
// binary does.
type Main struct {
	Config Config

	DB       *sqlx.DB
	Accounts *accounts.Service
	Ledger   *ledger.Ledger
	Engine   *engine.Engine
	Budgets  *budgets.Service
	// Contracting runs tenders, bids, awards and contracts.
	Contracting *contracting.Service
	// Settlement runs proposals, disputes, cases and juries.
	Settlement *settlement.Service
	Residents  *residents.Service
	// Census is the public census.
	Census *census.Service
	// Markets owns markets as subjects of cases: it proposes outcomes.
	Markets *subjects.Markets
	// Crisis runs the charter, the neighbours' quorum and emergencies.
	Crisis *crisis.Service
	// Node is this node in the network of cities: its key, signed
	// statements, their delivery, witnessing.
	Node *federation.Node
	// Clock is every service's clock; tests set it before Run to move time
	// without sleeping. nil means time.Now.
	Clock func() time.Time

	// rewind (zero or negative nanoseconds) is added to Clock for every
	// service: the demo seeding sets it to weeks ago and moves it forward
	// to zero, so the demo city's history happens on past days through the
	// real services. See now.
	rewind atomic.Int64

	logger  *slog.Logger
	stdout  io.Writer
	pg      *pgserver.Server
	ln      net.Listener
	http    *http.Server
	failed  chan error
	live    *web.Live
	metrics *engineMetrics
	web     *web.Server
	// node is this instance's NATS side when it is one of several
	// (Config.NATSURL; docs/cluster.md), else nil.
	node *cluster.Node

	stopAdvancing func()
	stopNetwork   func()
	stopRescans   func()
	mail          *mail.Mailer
	stopMail      func()

	// generatedAdminToken is the admin token made at this start, if any, so
	// the demo credentials can include it.
	generatedAdminToken string
}

// NewMain returns a Main that has not started yet.
func NewMain(cfg Config, logger *slog.Logger, stdout io.Writer) *Main {
	return &Main{Config: cfg, logger: logger, stdout: stdout, failed: make(chan error, 1)}
}

// Open connects to the database (starting the private one when no
// DATABASE_URL is set), applies migrations and builds the services.
func (m *Main) Open(ctx context.Context) error {
	url := m.Config.DatabaseURL
	if url == "" {
		dir := filepath.Join(m.Config.DataDir, "pg")
		var srv *pgserver.Server
		var err error
		if m.Config.Attach {
			// Beside a running levee: use its PostgreSQL, leave it alone.
			srv, err = pgserver.Attach(ctx, dir)
		}
		if !m.Config.Attach || errors.Is(err, pgserver.ErrNotRunning) {
			srv, err = pgserver.Start(ctx, pgserver.Options{Dir: dir, Durable: true, Logger: m.logger})
		}
		if err != nil {
			return err
		}
		m.pg = srv
		url = srv.URL("postgres")
	}
	if m.Config.NATSURL != "" {
		url = withIdleTransactionTimeout(url, idleTransactionTimeout)
	}
	// The order path's round trips, as its HTTP requests, read and write
	// without entering the scheduler's system-call state (internal/rawsock).
	db, err := rawsock.OpenPostgres(url)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(40)
	db.SetMaxIdleConns(40)
	db.SetConnMaxIdleTime(5 * time.Minute)
	m.DB = db
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		return fmt.Errorf("connect to database: %w", err)
	}
	if err := migrations.Migrate(ctx, db); err != nil {
		return err
	}
	warnSmallWAL(ctx, db, m.logger)
	m.Accounts = accounts.New(db)
	m.Ledger = ledger.New(db)
	// A ledger with entries from before pseudonyms gets its epoch change
	// appended once (docs/ledger.md, "Epochs"); later starts change nothing.
	if ep, err := m.Ledger.BeginPrivateEpoch(ctx); err != nil {
		return err
	} else if len(ep.Carry) > 0 {
		m.logger.Info("ledger: private epoch begun", slog.Int64("private_from", ep.PrivateFrom), slog.Int("carry_entries", len(ep.Carry)))
	}
	return m.openNode()
}

// now is the services' clock: Clock (or time.Now) moved back by rewind.
func (m *Main) now() time.Time {
	base := time.Now
	if m.Clock != nil {
		base = m.Clock
	}
	return base().Add(time.Duration(m.rewind.Load()))
}

// startServices starts the market engine and builds every service on it
// (serve, demo and drill use them; migrate and ledger verify do not).
func (m *Main) startServices(pub engine.Publisher) error {
	if err := m.startEngine(pub); err != nil {
		return err
	}
	m.Contracting = contracting.New(m.DB, m.Engine, contracting.Options{Logger: m.logger, Now: m.now})
	m.Budgets = budgets.New(m.DB, budgets.Options{Cash: m.Engine, Logger: m.logger, Now: m.now})
	m.Census = census.New(census.Sources{Accounts: m.Accounts, Ledger: m.Ledger, Budgets: m.Budgets, Markets: m.Engine, Contracting: m.Contracting}, m.now)
	m.Settlement = settlement.New(m.DB, settlement.Options{Cash: m.Engine, Trading: m.Engine, Clock: m.now, Logger: m.logger})
	m.Engine.SetBarSource(m.Settlement) // before any order: jurors and parties may not trade in their cases' markets
	m.Crisis = crisis.New(m.DB, crisis.Options{Contracts: m.Contracting, Reviews: m.Settlement, Clock: m.now, Logger: m.logger, Node: m.Node})
	m.Node.SetNetwork(m.Crisis)
	m.Markets = subjects.NewMarkets(m.DB, m.Settlement, m.Engine)
	subjects.Register(m.Settlement, m.Markets, m.Contracting, m.Crisis)
	m.Residents = residents.New(m.DB, residents.Options{Accounts: m.Accounts, Ledger: m.Ledger, Markets: m.Engine, Cases: m.Settlement,
		Budgets: m.Budgets, Contracting: m.Contracting, Clock: m.now, Logger: m.logger})
	return nil
}

// startEngine starts the market engine.
// With LEVEE_NATS_URL it is one of several instances: markets run under
// leases, orders for markets elsewhere are forwarded, events and cash news
// travel on NATS.
func (m *Main) startEngine(pub engine.Publisher) error {
	m.metrics = newEngineMetrics()
	opts := engine.Options{Logger: m.logger, Publisher: pub, OnCommit: m.metrics.observe, OnOrder: m.metrics.observeOrder, OnCommitPhases: m.metrics.observeCommit, Clock: m.now, PreviousJournal: m.Config.PreviousJournal, FourTrips: m.Config.FourTrips, TwoTrips: m.Config.TwoTrips, OneStatementFrom: m.Config.OneStatementFrom, InFlight: m.Config.JournalInFlight, OverlapFrom: m.Config.JournalOverlapFrom,
		IdleAfter: m.Config.BookIdleAfter, SlowCommit: m.Config.SlowCommit}
	if m.Config.NATSURL != "" {
		node, err := cluster.Connect(cluster.Options{URL: m.Config.NATSURL, Node: m.Config.Node, Logger: m.logger})
		if err != nil {
			return err
		}
		m.node = node
		opts.Node, opts.LeaseTTL, opts.Forwarder, opts.CashMoved = m.Config.Node, m.Config.LeaseTTL, node, node.CashMoved
		opts.Publisher = node.Publisher(pub)
	}
	m.Engine = engine.New(m.DB, opts)
	// People who have begun to leave the city trade no more (docs/privacy.md).
	leaving, err := m.Accounts.Leaving(context.Background())
	if err != nil {
		m.logger.Error("accounts leaving the city: their orders are refused by the web layer only", slog.Any("error", err))
	}
	for _, id := range leaving {
		m.Engine.Leave(id)
	}
	if m.node != nil {
		if err := m.node.Serve(m.Engine, pub); err != nil {
			return err
		}
	}
	return nil
}

// Run opens everything, makes sure the admin can sign in, seeds the demo city
// if asked, and starts serving HTTP. It returns once the server listens.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Open(ctx); err != nil {
		return err
	}
	token, err := m.Accounts.EnsureAdmin(ctx, m.Config.AdminToken)
	if err != nil {
		return err
	}
	if token != "" {
		fmt.Fprintf(m.stdout, "\nBootstrap admin token (shown once; set LEVEE_ADMIN_TOKEN to choose your own):\n  %s\n\n", token)
		m.generatedAdminToken = token
	}
	m.live = web.NewLive(live.Options{Logger: m.logger, WritePumps: m.Config.WSWritePumps})
	if err := m.startServices(m.live); err != nil {
		return err
	}
	if m.Config.Demo {
		if err := m.SeedDemo(ctx); err != nil {
			return err
		}
	}
	m.startAdvancing()
	m.startLedgerRescans()
	m.mail = m.newMailer()
	srv := web.New(m.webDeps())
	m.metrics.register(srv.Registry(), m.live)
	if m.node != nil {
		registerClusterMetrics(srv.Registry(), m.Engine, m.node)
	}
	m.web = srv
	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Addr, err)
	}
	ln = rawsock.Listener{Listener: ln}
	m.ln = ln
	if m.Config.PublicURL != "" {
		m.Node.SetURL(m.Config.PublicURL)
	} else {
		m.Node.SetURL("http://" + ln.Addr().String())
	}
	m.startNetwork()
	m.http = web.NewHTTPServer(srv.Handler(), m.logger)
	hs, pg := m.http, m.pg // Close clears the fields; the goroutines keep their own
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.fail(fmt.Errorf("http server: %w", err))
		}
	}()
	if pg != nil {
		go func() {
			<-pg.Done()
			m.fail(errors.New("the private PostgreSQL server exited"))
		}()
	}
	m.startMail()
	m.logger.Info("levee serving", slog.String("url", "http://"+m.Addr()))
	fmt.Fprintf(m.stdout, "Levee is serving on http://%s  (Ctrl-C stops it)\n", m.Addr())
	return nil
}

// webDeps are the services the HTTP server serves. Before Open they are nil
// pointers, which is enough for `levee routes` to list the same routes.
func (m *Main) webDeps() web.Deps {
	d := web.Deps{
		Live:        m.live,
		Budgets:     m.Budgets,
		Census:      m.Census,
		Contracting: m.Contracting,
		Evidence:    m.Contracting,
		Cases:       m.Settlement,
		Proposals:   m.Markets,
		Crisis:      m.Crisis,
		Residents:   m.Residents,
		Node:        m.Node,
		Accounts:    m.Accounts,
		Ledger:      m.Ledger,
		Markets:     m.Engine,
		Ready:       m.ready,
		Logger:      m.logger,
		Limits:      web.Limits{PerAccount: m.Config.RatePerAccount, PerAddress: m.Config.RatePerAddress},
		// X-Forwarded-For is believed only from these; see web.ipExtractor.
		TrustedProxies: m.Config.TrustedProxies,
	}
	if m.Accounts != nil && m.mail != nil {
		d.Emails, d.Mail = m.Accounts, m.mail
	}
	if m.node != nil {
		node, eng := m.node, m.Engine
		d.ReadyInfo = func() map[string]any {
			// Still ready without NATS: this instance serves the markets it
			// owns and every read; orders for others' markets get 503s.
			return map[string]any{"node": node.Name(), "nats": node.Connected(), "markets_owned": eng.ClusterStats().Owned}
		}
	}
	return d
}

func (m *Main) fail(err error) {
	select {
	case m.failed <- err:
	default:
	}
}

// Failed delivers an error that should stop the process.
func (m *Main) Failed() <-chan error { return m.failed }

// Addr is the address the HTTP server listens on (useful with port 0).
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

func (m *Main) ready(ctx context.Context) error {
	if err := m.DB.PingContext(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	return migrations.Check(ctx, m.DB)
}

// Close shuts down in order: stop taking HTTP requests and let those in
// flight finish, close the database pool, stop the private PostgreSQL.
func (m *Main) Close() error {
	var errs []error
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, m.http.Shutdown(ctx))
		cancel()
		m.http = nil
	}
	if m.stopMail != nil {
		m.stopMail()
		m.stopMail = nil
	}
	if m.stopAdvancing != nil {
		m.stopAdvancing()
		m.stopAdvancing = nil
	}
	if m.stopNetwork != nil {
		m.stopNetwork()
		m.stopNetwork = nil
	}
	if m.stopRescans != nil {
		m.stopRescans()
		m.stopRescans = nil
	}
	if m.live != nil {
		m.live.Close()
		m.live = nil
	}
	if m.Engine != nil {
		m.Engine.Close() // ends its leases: the other instances take its markets at once
		m.Engine = nil
	}
	if m.node != nil {
		m.node.Close()
		m.node = nil
	}
	if m.DB != nil {
		errs = append(errs, m.DB.Close())
		m.DB = nil
	}
	if m.pg != nil {
		errs = append(errs, m.pg.Stop())
		m.pg = nil
	}
	return errors.Join(errs...)
}

// ledgerRescanEvery is how often the ledger is verified again from its first
// entry in the background. In between, the public verification
// (Ledger.Verified) checks only what was appended since, so a change to an
// entry already verified is found at the next rescan.
const ledgerRescanEvery = 10 * time.Minute

// startLedgerRescans runs the full rescans, the first one now, so the first
// public read finds a result ready.
func (m *Main) startLedgerRescans() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.stopRescans = func() { cancel(); <-done }
	go func() {
		defer close(done)
		m.Ledger.RescanEvery(ctx, ledgerRescanEvery, m.logger)
	}()
}

// startAdvancing runs the clock-driven work (emergencies' expiry, proposals
// past their dispute window, case deadlines, milestone claims past their
// dispute window and reminders of milestones due) every AdvanceEvery; every
// read of a case or contract also advances it, so the ticker only matters
// for what nobody looks at.
func (m *Main) startAdvancing() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.stopAdvancing = func() { cancel(); <-done }
	go func() {
		defer close(done)
		every := m.Config.AdvanceEvery
		if every <= 0 {
			every = 5 * time.Second
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := m.Crisis.Advance(ctx); err != nil && ctx.Err() == nil {
					m.logger.Warn("advancing emergencies", slog.Any("error", err))
				}
				if err := m.Settlement.Advance(ctx); err != nil && ctx.Err() == nil {
					m.logger.Warn("advancing cases", slog.Any("error", err))
				}
				if m.Contracting != nil {
					if err := m.Contracting.Advance(ctx); err != nil && ctx.Err() == nil {
						m.logger.Warn("advancing contracts", slog.Any("error", err))
					}
				}
			}
		}
	}()
}

// idleTransactionTimeout is how long PostgreSQL lets one of this instance's
// transactions wait for its next statement (several instances only). An
// instance paused in the middle of a transaction (SIGSTOP, a frozen VM)
// would otherwise keep its row locks — a market's row, the ledger's head —
// for as long as it sleeps, and the others could neither take its markets
// over nor append to the ledger. PostgreSQL ends such a session and rolls
// its transaction back; the instance finds out when it wakes (its commit
// fails, its book reloads and finds another epoch: docs/cluster.md).
// Levee's transactions never wait a second between statements otherwise.
const idleTransactionTimeout = time.Second

// withIdleTransactionTimeout sets idle_in_transaction_session_timeout on
// every connection of a lib/pq connection string (a URL or key=value pairs).
func withIdleTransactionTimeout(url string, d time.Duration) string {
	opt := fmt.Sprintf("-c idle_in_transaction_session_timeout=%d", d.Milliseconds())
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		return url + sep + "options=" + neturl.QueryEscape(opt)
	}
	return url + " options='" + opt + "'"
}
