package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/bench/load"
	"levee/internal/rawsock"
	"levee/market/engine"
	"levee/migrations"
	"levee/pgserver"
	"levee/web"
	"levee/web/live"
)

// poolSize is the connection pool cmd/levee gives the server.
const poolSize = 40

// env is the world the measurements run in.
type env struct {
	cfg      Config
	progress io.Writer
	begin    time.Time
	logger   *slog.Logger // the server's logger (engine, web)
	logFile  *os.File

	dir   string
	pg    *pgserver.Server
	pgPID int // the postmaster, for CPU accounting; 0 if unknown
	url   string

	db      *sqlx.DB
	eng     *engine.Engine
	live    *web.Live // the websocket hub every engine publishes into, as in cmd/levee
	commits *commitStats

	traders []trader
	markets []engine.Market
	hot     int64 // traded over HTTP through the engine
	cold    int64 // traded over HTTP through the naive path
	anatomy int64 // written by the journal anatomy only

	answer orderAnswer // an order's answer as levee serve wrote it, for the HTTP floor (orders)
	meter  *load.Meter // the machine's pauses and slow flushes (orders: stalls.go), or nil
}

type trader struct {
	id    int64
	token string
}

func (e *env) say(format string, args ...any) {
	fmt.Fprintf(e.progress, "[%7.1fs] %s\n", time.Since(e.begin).Seconds(), fmt.Sprintf(format, args...))
}

// openDB opens a pool sized and dialed as cmd/levee's.
func openDB(ctx context.Context, url string) (*sqlx.DB, error) {
	db, err := rawsock.OpenPostgres(url)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(poolSize)
	db.SetMaxIdleConns(poolSize)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return db, nil
}

// setup starts PostgreSQL (private and durable unless -database-url),
// migrates, and creates the district, the treasury's funds, the traders and
// the markets.
func setup(ctx context.Context, cfg Config, progress io.Writer, begin time.Time) (*env, error) {
	e := &env{cfg: cfg, progress: progress, begin: begin, commits: &commitStats{}}
	dir, err := os.MkdirTemp("", "levee-bench-")
	if err != nil {
		return nil, err
	}
	e.dir = dir
	// The postgres user must be able to pass through to the cluster inside.
	if err := os.Chmod(dir, 0o711); err != nil {
		return e, err
	}
	e.logFile, err = os.Create(filepath.Join(dir, "levee.log"))
	if err != nil {
		return e, err
	}
	e.logger = slog.New(slog.NewJSONHandler(e.logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	e.url = cfg.DatabaseURL
	if e.url == "" {
		e.say("starting a private durable PostgreSQL in %s", dir)
		if err := e.startPG(ctx); err != nil {
			return e, err
		}
	}
	if e.db, err = openDB(ctx, e.url); err != nil {
		return e, err
	}
	if err := migrations.Migrate(ctx, e.db); err != nil {
		return e, err
	}
	acc := accounts.New(e.db)
	if _, err := acc.CreateDistrict(ctx, 0, "bench"); err != nil {
		return e, fmt.Errorf("create district: %w", err)
	}
	if _, err := acc.IssueToTreasury(ctx, 0, levee.Units(int64(cfg.Markets)*10_000), "benchmark market subsidies"); err != nil {
		return e, fmt.Errorf("fund treasury: %w", err)
	}
	n := max(cfg.Traders, 2*cfg.Clients)
	e.say("creating %d traders", n)
	if e.traders, err = createTraders(ctx, acc, n); err != nil {
		return e, err
	}
	e.live = web.NewLive(live.Options{Logger: e.logger})
	e.eng = e.newEngine(e.db)
	e.say("creating %d markets", cfg.Markets)
	for i := 0; i < cfg.Markets; i++ {
		outcomes := []string{"yes", "no"}
		if i >= 2 && i%5 == 0 {
			outcomes = []string{"north", "south", "east", "west"}
		}
		m, err := e.eng.CreateMarket(ctx, engine.NewMarket{
			Question: fmt.Sprintf("Benchmark market %d: will the levee hold?", i+1), Outcomes: outcomes,
			Liquidity: levee.Units(1000), ClosesAt: time.Now().Add(30 * 24 * time.Hour), District: "bench",
		})
		if err != nil {
			return e, fmt.Errorf("create market: %w", err)
		}
		e.markets = append(e.markets, m)
	}
	e.hot, e.cold = e.markets[0].ID, e.markets[1].ID
	// A market no book ever runs, for the journal anatomy.
	m, err := e.eng.CreateMarket(ctx, engine.NewMarket{Question: "Benchmark: journal anatomy", Outcomes: []string{"yes", "no"},
		Liquidity: levee.Units(1000), ClosesAt: time.Now().Add(30 * 24 * time.Hour), District: "bench"})
	if err != nil {
		return e, fmt.Errorf("create market: %w", err)
	}
	e.anatomy = m.ID
	return e, nil
}

// startPG starts the private durable PostgreSQL (again, after the fault
// scenario stopped it: same directory, same socket, same URL).
func (e *env) startPG(ctx context.Context) error {
	settings := benchPGSettings
	if e.cfg.StatStatements {
		settings = append(slices.Clone(settings), "shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all",
			"pg_stat_statements.track_planning=on")
	}
	pg, err := pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(e.dir, "pg"), Durable: true, MaxConnections: 200, Logger: e.logger,
		Settings: settings})
	if err != nil {
		return err
	}
	e.pg, e.url = pg, pg.URL("postgres")
	if b, err := os.ReadFile(filepath.Join(e.dir, "pg", "postmaster.pid")); err == nil {
		first, _, _ := strings.Cut(string(b), "\n")
		e.pgPID, _ = strconv.Atoi(strings.TrimSpace(first))
	}
	return nil
}

// benchPGSettings make the private server's log (postgres.log beside the
// database, kept with -keep) say when a checkpoint, a lock wait, an
// autovacuum run or a slow statement happened, and time WAL writes and
// syncs (pg_stat_wal), so a stall in a measurement can be traced to its
// cause. None of them changes durability.
var benchPGSettings = []string{
	"log_checkpoints=on",
	"log_lock_waits=on",
	"deadlock_timeout=200ms", // log_lock_waits reports waits longer than this
	"log_autovacuum_min_duration=0",
	"log_min_duration_statement=500ms",
	"track_wal_io_timing=on",
	"track_io_timing=on",
}

func (e *env) newEngine(db *sqlx.DB) *engine.Engine {
	return engine.New(db, engine.Options{Logger: e.logger, Publisher: e.live, OnCommit: e.commits.observe})
}

// createTraders opens n resident accounts with plenty of cash, each with its
// own API token, from a few goroutines.
func createTraders(ctx context.Context, acc *accounts.Service, n int) ([]trader, error) {
	ts := make([]trader, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				a, tok, err := acc.CreateAccount(ctx, 0, accounts.NewAccount{Name: fmt.Sprintf("trader-%05d", i),
					Roles: []string{accounts.RoleResident}, District: "bench", Credit: levee.Units(1_000_000)})
				if err != nil {
					errs <- fmt.Errorf("create trader %d: %w", i, err)
					return
				}
				ts[i] = trader{id: a.ID, token: tok}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return ts, ctx.Err()
}

func (e *env) close() {
	if e.live != nil {
		e.live.Close()
	}
	if e.eng != nil {
		e.eng.Close()
	}
	if e.db != nil {
		e.db.Close()
	}
	if e.pg != nil {
		e.pg.Stop()
	}
	if e.logFile != nil {
		e.logFile.Close()
	}
	if e.dir != "" && !e.cfg.Keep {
		os.RemoveAll(e.dir)
	} else if e.dir != "" {
		e.say("kept %s", e.dir)
	}
}

// commitStats collects the engine's journal commits (Options.OnCommit).
type commitStats struct {
	mu     sync.Mutex
	orders int
	errors int
	durs   []time.Duration
}

func (c *commitStats) observe(orders int, d time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.errors++
		return
	}
	c.orders += orders
	c.durs = append(c.durs, d)
}

// CommitSummary describes the journal commits of a period.
type CommitSummary struct {
	Commits         int
	Errors          int
	Orders          int
	OrdersPerCommit float64
	P50, P99, Max   time.Duration
}

// take summarizes the commits since the last take and starts afresh.
func (c *commitStats) take() CommitSummary {
	c.mu.Lock()
	durs, orders, errs := c.durs, c.orders, c.errors
	c.durs, c.orders, c.errors = nil, 0, 0
	c.mu.Unlock()
	s := CommitSummary{Commits: len(durs), Errors: errs, Orders: orders}
	if len(durs) == 0 {
		return s
	}
	s.OrdersPerCommit = float64(orders) / float64(len(durs))
	sortDurations(durs)
	s.P50, s.P99, s.Max = pct(durs, .5), pct(durs, .99), durs[len(durs)-1]
	return s
}
