package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/accounts"
	"levee/bench/load"
	"levee/internal/rawsock"
	"levee/ledger"
	"levee/web"
)

// server is the real HTTP API on 127.0.0.1:0, wired as cmd/levee wires it.
type server struct {
	http *http.Server
	addr string
}

// serve builds the API; hub, if not nil, is served at /api/v1/ws.
func (e *env) serve(markets web.Markets, db *sqlx.DB, hub *web.Live) (*server, error) {
	srv := web.New(web.Deps{
		Live:     hub,
		Accounts: accounts.New(db),
		Ledger:   ledger.New(db),
		Markets:  markets,
		Ready:    func(ctx context.Context) error { return db.PingContext(ctx) },
		Logger:   e.logger,
		// Every load-generator client comes from 127.0.0.1: the per-address
		// limit (200 new requests/s, burst 400) would refuse all but ~600 of
		// the 10,000 websocket subscribers. The limits protect a public
		// server; the benchmark measures what is behind them.
		Limits: web.Limits{PerAccount: 1e9, PerAddress: 1e9},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	ln = rawsock.Listener{Listener: ln} // as levee serve's
	s := &server{addr: ln.Addr().String(), http: web.NewHTTPServer(srv.Handler(), e.logger)}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.logger.Error("bench http server", slog.Any("error", err))
		}
	}()
	return s, nil
}

func (s *server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.http.Shutdown(ctx)
}

// StepResult is one load step with what the machine did meanwhile.
type StepResult struct {
	load.Result
	CPUSelf float64 // cores used by this process: server and load generator
	CPUPG   float64 // cores used by PostgreSQL
	Commits CommitSummary
	// Waits for a connection of the server's pool during the step: the
	// journal shares it with every request's queries.
	PoolWaits int64
	PoolWait  time.Duration
	Skipped   string
}

// SideResult is one order path under rising load.
type SideResult struct {
	Name    string
	Market  int64
	Clients int
	Steps   []StepResult
	Closed  *StepResult // the closed-loop step: maximum throughput
	Half    *StepResult // open loop at half the closed-loop throughput
	Keys    *StepResult // closed loop with an Idempotency-Key on every order
	Err     string
}

// loadSide runs the steps against one server: the open-loop rates in
// rising order (stopping once one saturates), a closed-loop step (CPU
// profiled into profile, if set), an open-loop step at half the closed-loop
// throughput and, if keys, a closed-loop step with idempotency keys.
func (e *env) loadSide(ctx context.Context, name, addr string, db *sqlx.DB, marketID int64, outcomes int, tokens []string, profile string, keys bool) SideResult {
	side := SideResult{Name: name, Market: marketID, Clients: len(tokens)}
	r := load.New(load.Target{Addr: addr, MarketID: marketID, Outcomes: outcomes, Tokens: tokens, Seed: uint64(marketID)})
	defer r.Close()
	if err := r.Warm(ctx, 2); err != nil {
		side.Err = "warm-up: " + err.Error()
		return side
	}
	dur := e.cfg.StepDuration
	saturated := ""
	for _, rate := range e.cfg.Rates {
		s := load.Step{Name: fmt.Sprintf("open %.0f/s", rate), Rate: rate, Duration: dur}
		if saturated != "" {
			side.Steps = append(side.Steps, StepResult{Result: load.Result{Step: s}, Skipped: "saturated at " + saturated})
			continue
		}
		st := e.step(ctx, r, db, s, "")
		side.Steps = append(side.Steps, st)
		e.say("%s: %s", name, describeStep(st))
		if st.Saturated() {
			saturated = s.Name
		}
		if ctx.Err() != nil {
			side.Err = ctx.Err().Error()
			return side
		}
	}
	closed := e.step(ctx, r, db, load.Step{Name: "closed loop", Duration: dur}, profile)
	side.Closed = &closed
	e.say("%s: %s", name, describeStep(closed))
	if closed.Throughput > 0 && ctx.Err() == nil {
		half := e.step(ctx, r, db, load.Step{Name: fmt.Sprintf("open %.0f/s (half of max)", closed.Throughput/2), Rate: closed.Throughput / 2, Duration: dur}, "")
		side.Half = &half
		e.say("%s: %s", name, describeStep(half))
	}
	if keys && ctx.Err() == nil {
		k := e.step(ctx, r, db, load.Step{Name: "closed loop, Idempotency-Key on every order", Duration: dur, IdempotencyKeys: true}, "")
		side.Keys = &k
		e.say("%s: %s", name, describeStep(k))
	}
	return side
}

func (e *env) step(ctx context.Context, r *load.Runner, db *sqlx.DB, s load.Step, profile string) StepResult {
	if profile != "" {
		f, err := os.Create(profile)
		if err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer func() {
					pprof.StopCPUProfile()
					f.Close()
				}()
			} else {
				f.Close()
			}
		}
	}
	e.commits.take()
	p0 := db.Stats()
	c0 := sampleCPU(e.pgPID)
	res := r.Run(ctx, s)
	c1 := sampleCPU(e.pgPID)
	p1 := db.Stats()
	st := StepResult{Result: res, Commits: e.commits.take(), PoolWaits: p1.WaitCount - p0.WaitCount, PoolWait: p1.WaitDuration - p0.WaitDuration}
	st.CPUSelf, st.CPUPG = cores(c0, c1)
	return st
}

func describeStep(s StepResult) string {
	return fmt.Sprintf("%-28s %8.0f orders/s  p50 %-9s p99 %-9s p999 %-9s errors %d abandoned %d  cpu levee %.2f pg %.2f  pool waits %d (avg %s)",
		s.Step.Name, s.Throughput, ms(s.P50), ms(s.P99), ms(s.P999), s.Errors(), s.Abandoned, s.CPUSelf, s.CPUPG, s.PoolWaits, ms(avgWait(s)))
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/1e3) }

func avgWait(s StepResult) time.Duration {
	if s.PoolWaits == 0 {
		return 0
	}
	return s.PoolWait / time.Duration(s.PoolWaits)
}

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
