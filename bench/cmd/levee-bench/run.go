package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"levee/bench/naive"
)

// Report is everything one run measured.
type Report struct {
	Command  string
	Cfg      Config
	Started  time.Time
	Finished time.Time
	Machine  Machine
	Private  bool // a private durable server (not -database-url)

	HotMarket, NaiveMarket int64
	Setup                  time.Duration
	History                HistoryResult
	Restart                RestartResult
	Plans                  []Plan
	Journal                JournalAnatomy
	Micro                  MicroResult
	Memory                 MemoryResult
	Durable, Naive         SideResult
	Ceiling                CeilingResult
	Profile                ProfileResult
	Fanout                 FanoutResult

	Failures []string // sections that could not complete
}

func (r *Report) fail(section string, err error) {
	r.Failures = append(r.Failures, section+": "+err.Error())
}

// run does every measurement in order and writes the report, also when a
// section fails (what was measured is kept; the failure is listed).
func run(ctx context.Context, cfg Config, stdout io.Writer) (err error) {
	begin := time.Now()
	rep := &Report{Cfg: cfg, Started: begin, Private: cfg.DatabaseURL == "",
		Command: "go run ./bench/cmd/levee-bench " + strings.Join(cfg.Args, " ")}
	defer func() {
		rep.Finished = time.Now()
		if werr := writeReport(cfg.Out, rep); werr != nil {
			err = errors.Join(err, werr)
		} else {
			fmt.Fprintf(stdout, "wrote %s\n", cfg.Out)
		}
		if err == nil && len(rep.Failures) > 0 {
			err = fmt.Errorf("%d section(s) failed: %s", len(rep.Failures), strings.Join(rep.Failures, "; "))
		}
	}()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	e, err := setup(ctx, cfg, stdout, begin)
	if e != nil {
		defer e.close()
	}
	if err != nil {
		rep.fail("setup", err)
		return err
	}
	rep.Setup = time.Since(begin)
	rep.Machine = describeMachine(ctx, e.db)
	rep.HotMarket, rep.NaiveMarket = e.hot, e.cold

	e.say("1. history: %d trades through the engine from %d traders over %d markets", cfg.History, min(cfg.Traders, len(e.traders)), len(e.markets))
	rep.History, err = e.seedHistory(ctx)
	e.say("history: %d trades in %s (%.0f trades/s); vacuum+checkpoint %s; database %s", rep.History.Trades,
		rep.History.Elapsed.Round(time.Millisecond), rep.History.Rate, rep.History.Vacuum.Round(time.Millisecond), rep.History.DBSize)
	if err != nil {
		rep.fail("history", err)
		if ctx.Err() != nil {
			return err
		}
	}

	e.say("2. restart")
	rep.Restart, err = e.restart(ctx)
	if err != nil {
		rep.fail("restart", err)
		if e.eng == nil || e.db == nil {
			return err
		}
	}
	e.say("restart: first order acknowledged %s after the new engine started (%s with the connection pool)", rep.Restart.FirstAck.Round(time.Microsecond), rep.Restart.Total.Round(time.Microsecond))

	e.say("3. query plans")
	rep.Plans, err = e.explainOrderPath(ctx)
	if err != nil {
		rep.fail("query plans", err)
	}
	for _, p := range rep.Plans {
		if p.Err != "" {
			rep.fail("query plan "+p.Name, errors.New(p.Err))
		}
	}

	e.say("3b. anatomy of a journal commit")
	rep.Journal = e.journalAnatomy(ctx)
	if rep.Journal.Err != "" {
		rep.fail("journal anatomy", errors.New(rep.Journal.Err))
	}
	e.say("journal: a commit costs %s + %s per order", ms(rep.Journal.Fixed), us(rep.Journal.PerOrder))

	if cfg.GoBench {
		e.say("4. pricing micro-benchmarks (go test -bench ./market)")
		rep.Micro = runGoBench(ctx, root, cfg.BenchTime)
		if rep.Micro.Err != "" {
			rep.fail("pricing micro-benchmarks", errors.New(rep.Micro.Err))
		}
	} else {
		rep.Micro.Err = "skipped (-go-bench=false)"
	}

	e.say("5. engine in memory")
	rep.Memory = runMemory(cfg.MemDuration)
	e.say("memory: %.0f trades/s on one binary market; %.0f trades/s per core on %d markets", rep.Memory.Single.Rate, rep.Memory.Multi.PerCore, rep.Memory.Multi.Goroutines)
	if ctx.Err() != nil {
		return ctx.Err()
	}

	e.say("6. durable orders over HTTP")
	e.runHTTP(ctx, rep)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// runHTTP measures the engine and the naive path over the real HTTP API,
// the ceiling of the same PostgreSQL, and the fan-out.
func (e *env) runHTTP(ctx context.Context, rep *Report) {
	cfg := e.cfg
	durable, err := e.serve(e.eng, e.db, e.live)
	if err != nil {
		rep.fail("durable server", err)
		return
	}
	defer durable.close()
	naiveDB, err := openDB(ctx, e.url)
	if err != nil {
		rep.fail("naive server", err)
		return
	}
	defer naiveDB.Close()
	slow, err := e.serve(naive.New(e.eng, naiveDB), naiveDB, nil)
	if err != nil {
		rep.fail("naive server", err)
		return
	}
	defer slow.close()

	tokens := func(from, to int) []string {
		var ts []string
		for _, t := range e.traders[from:to] {
			ts = append(ts, t.token)
		}
		return ts
	}
	profile := cfg.CPUProfile
	if profile == "" {
		profile = filepath.Join(filepath.Dir(cfg.Out), "durable-closed-loop.pprof")
	}
	e.db.ExecContext(ctx, `CHECKPOINT`)
	rep.Durable = e.loadSide(ctx, "engine", durable.addr, e.db, e.hot, 2, tokens(0, cfg.Clients), profile, true)
	if rep.Durable.Err != "" {
		rep.fail("durable HTTP", errors.New(rep.Durable.Err))
	}
	if _, err := os.Stat(profile); err == nil {
		rep.Profile = summarizeProfile(ctx, profile)
		if rep.Profile.Err != "" {
			rep.fail("profile", errors.New(rep.Profile.Err))
		}
	}
	if ctx.Err() != nil {
		return
	}
	e.db.ExecContext(ctx, `CHECKPOINT`)
	rep.Naive = e.loadSide(ctx, "naive", slow.addr, naiveDB, e.cold, 2, tokens(cfg.Clients, 2*cfg.Clients), "", false)
	if rep.Naive.Err != "" {
		rep.fail("naive HTTP", errors.New(rep.Naive.Err))
	}
	if ctx.Err() != nil {
		return
	}
	e.say("ceiling: COPY of trade-sized rows")
	rep.Ceiling = e.measureCeiling(ctx, cfg.StepDuration)
	if rep.Ceiling.Err != "" {
		rep.fail("ceiling", errors.New(rep.Ceiling.Err))
	}
	e.say("ceiling: %.0f rows/s in %.0f commits/s; one-row transactions: %.0f commits/s", rep.Ceiling.RowsPerSec, rep.Ceiling.CommitsSec, rep.Ceiling.SinglePerSec)
	if ctx.Err() != nil {
		return
	}

	e.say("7. websocket fan-out")
	rep.Fanout = e.measureFanout(ctx, durable.addr)
	if rep.Fanout.Err != "" {
		rep.fail("fan-out", errors.New(rep.Fanout.Err))
	}
	if rep.Fanout.Ran {
		e.say("fan-out: p50 %.1fms p99 %.1fms, last client p99 %.1fms", rep.Fanout.Summary.P50ms, rep.Fanout.Summary.P99ms, rep.Fanout.Summary.LastP99ms)
	} else {
		e.say("fan-out: not run: %s", rep.Fanout.Why)
	}
}
