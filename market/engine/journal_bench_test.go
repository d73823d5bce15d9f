package engine_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/migrations/dbtest"
)

// BenchmarkDurableOrders measures durable orders on one hot market from
// concurrent traders, through the engine and its journal (no HTTP): what the
// journal's round trips per commit cost. Each order is a small buy, so every
// commit carries trades, positions, the market row and one ledger entry per
// fill.
//
// Each size runs with the current journal and the previous one
// (Options.PreviousJournal) and with two transactions in flight
// (Options.InFlight, "pipelined"), and reports the CPU this process used per
// order (cpu-µs/order: the engine and the driver) and the CPU PostgreSQL's
// processes on this machine used per order (pg-cpu-µs/order; with `levee
// with-db` that is the test server alone), which a shared machine disturbs
// less than the rate:
//
//	go test -run '^$' -bench DurableOrders -benchtime 3000x -count 3 ./market/engine/
//
// BENCH_SETUP_SQL, if set, runs on each size's fresh database before it is
// used: what a schema change would save, measured before writing its
// migration (e.g. a CHECK dropped), in rounds alternated with a run
// without it.
func BenchmarkDurableOrders(b *testing.B) {
	for _, c := range []struct {
		traders  int
		journal  string
		previous bool
		keys     bool
		inFlight int
	}{
		{1, "current", false, false, 1}, {1, "pipelined", false, false, 2}, {1, "previous", true, false, 1},
		{16, "current", false, false, 1}, {16, "pipelined", false, false, 2}, {16, "previous", true, false, 1},
		{64, "current", false, false, 1}, {64, "pipelined", false, false, 2}, {64, "previous", true, false, 1},
		{64, "current,keys", false, true, 1}, {64, "previous,keys", true, true, 1},
	} {
		traders := c.traders
		b.Run(fmt.Sprintf("traders=%d/journal=%s", traders, c.journal), func(b *testing.B) {
			ctx := context.Background()
			db := dbtest.New(b)
			if q := os.Getenv("BENCH_SETUP_SQL"); q != "" {
				if _, err := db.Exec(q); err != nil {
					b.Fatal(err)
				}
			}
			acc, led := accounts.New(db), ledger.New(db)
			if _, err := acc.CreateDistrict(ctx, 0, "north"); err != nil {
				b.Fatal(err)
			}
			if _, err := led.Transfer(ctx, ledger.Transfer{Kind: "treasury_funding", Ref: "test", Postings: []ledger.Posting{
				{Account: ledger.Issuance, Amount: -levee.Units(100_000_000)}, {Account: ledger.Treasury, Amount: levee.Units(100_000_000)}}}); err != nil {
				b.Fatal(err)
			}
			e := engine.New(db, engine.Options{PreviousJournal: c.previous, InFlight: c.inFlight})
			defer e.Close()
			m, err := e.CreateMarket(ctx, engine.NewMarket{Question: "Will the pump station be fixed?", Outcomes: []string{"yes", "no"},
				Liquidity: levee.Units(1_000_000), ClosesAt: time.Now().Add(time.Hour)})
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]int64, traders)
			for i := range ids {
				a, _, err := acc.CreateAccount(ctx, 0, accounts.NewAccount{Name: fmt.Sprintf("t%d", i), Roles: []string{"resident"}, District: "north", Credit: levee.Units(1_000_000)})
				if err != nil {
					b.Fatal(err)
				}
				ids[i] = a.ID
			}
			o := market.Order{Outcome: 0, Side: market.Buy, Shares: levee.MustMicros("0.5")}
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, traders)
			b.ResetTimer()
			start, cpu0, pg0 := time.Now(), processCPU(), postgresCPU()
			for _, id := range ids {
				wg.Go(func() {
					for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
						key := ""
						if c.keys {
							key = fmt.Sprintf("k%d", n)
						}
						if _, err := e.Submit(ctx, id, m.ID, o, key); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "orders/s")
			b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/order")
			b.ReportMetric(float64(postgresCPU()-pg0)/float64(time.Microsecond)/float64(b.N), "pg-cpu-µs/order")
		})
	}
}

// postgresCPU is the CPU time used so far by the running processes named
// postgres on this machine (from /proc; clock ticks of 10 ms, so measure
// thousands of orders). Processes that exit meanwhile are not counted.
func postgresCPU() time.Duration {
	dirs, _ := os.ReadDir("/proc")
	var ticks int64
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.HasSuffix(s[:i], "(postgres") {
			continue
		}
		// After "pid (comm) ": state is field 3; utime and stime are 14 and 15.
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
