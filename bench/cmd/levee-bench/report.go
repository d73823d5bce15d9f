package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"levee/bench/fanout"
)

// Targets from the issue.
const (
	targetEngine   = 1_000_000 // trades/s per core, binary market
	targetDurable  = 20_000    // orders/s on one hot market
	targetHalfP99  = 10 * time.Millisecond
	targetVsNaive  = 10.0
	targetFanout   = 50.0 // ms, p99
	targetSubs     = 10_000
	targetRestart  = 2 * time.Second
	targetHistory  = 1_000_000
	passMark       = "✅ pass"
	failMark       = "❌ FAIL"
	notRunMark     = "⚪ not run"
	notMeasureMark = "⚪ n/a"
)

func mark(ok bool) string {
	if ok {
		return passMark
	}
	return failMark
}

func writeReport(path string, r *Report) error {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cfg := r.Cfg

	w("# Levee benchmarks\n\n")
	w("Written by `levee-bench` (run it with `make bench`). Every figure below comes from **one run**; each ratio compares\n")
	w("figures measured in that same run, on the same machine and the same PostgreSQL.\n\n")
	w("```\n%s\n```\n\n", r.Command)
	if cfg.Quick {
		w("> **Quick mode** (`-quick`): small history, short steps. A smoke test of the harness, not a measurement.\n\n")
	}
	if !r.Private {
		w("> Ran against an existing database (`-database-url`), not a private durable server: durability figures do not apply.\n\n")
	}

	m := r.Machine
	w("## Machine\n\n| | |\n|---|---|\n")
	w("| date | %s (took %s) |\n", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(time.Second))
	w("| nproc | %d (GOMAXPROCS %d, GOGC %d as levee serve's; internal/gctune) |\n", m.NProc, m.GOMAXPROCS, m.GOGC)
	w("| CPU | %s |\n", orDash(m.CPUModel))
	w("| memory | %s |\n", orDash(m.MemTotal))
	w("| kernel | %s |\n", orDash(m.Kernel))
	w("| Go | %s |\n", m.GoVersion)
	w("| PostgreSQL | %s |\n", orDash(m.PostgreSQL))
	w("| durability | %s; max_connections 200; pools of %d connections as in cmd/levee |\n", orDash(m.Durable), poolSize)
	w("| load average | %s at the start, %s at the end (a shared machine: other work may have run meanwhile) |\n", orDash(m.LoadAvg), orDash(loadAvg()))
	w("\nThe load generator, the server and PostgreSQL all share these %d cores.\n\n", m.NProc)

	writeSummary(w, r)
	if len(r.Failures) > 0 {
		w("### Sections that failed\n\n")
		for _, f := range r.Failures {
			w("- %s\n", oneLine(f))
		}
		w("\n")
	}

	h := r.History
	w("## 1. History\n\n")
	w("Before any measurement the database is loaded through the real engine (`engine.Submit`, in process): %d goroutines,\n", h.Goroutines)
	w("one per trader, each sending orders one after the other to one of %d markets chosen at random (binary, and every fifth\n", cfg.Markets)
	w("with 4 outcomes; liquidity 1000), mostly buys of shares or of an amount and sells of part or all of a position; about\n")
	w("one order in ten carries an idempotency key.\n\n")
	w("| | |\n|---|---|\n")
	w("| trades acknowledged | %d of %d |\n", h.Trades, h.Target)
	w("| seeding time | %s |\n", h.Elapsed.Round(time.Millisecond))
	w("| **seeding rate** | **%.0f trades/s** |\n", h.Rate)
	w("| journal commits | %d, %.1f orders each on average, commit p50 %s, p99 %s |\n", h.Commits.Commits, h.Commits.OrdersPerCommit, ms(h.Commits.P50), ms(h.Commits.P99))
	w("| CPU while seeding | levee %.2f cores, PostgreSQL %.2f cores |\n", h.CPUSelf, h.CPUPG)
	w("| refused orders | %s |\n", codes(h.Refused))
	w("| rows afterwards | trades %d, ledger entries %d, positions %d |\n", h.TradesRows, h.LedgerEntries, h.Positions)
	w("| size | database %s, trades with indexes %s |\n", orDash(h.DBSize), orDash(h.TradesSize))
	w("| VACUUM (ANALYZE) + CHECKPOINT afterwards | %s (so that autovacuum of the fresh rows does not run during the measurements) |\n\n", h.Vacuum.Round(time.Millisecond))

	rs := r.Restart
	w("## 2. Restart\n\n")
	w("The engine and its connection pool are closed as a stopping process closes them; then a new pool and a new engine are\n")
	w("opened and the clock runs until the first order on market %d (%d trades of history, %d in all) is acknowledged,\n", r.HotMarket, rs.MarketSeq, rs.HistoryTrades)
	w("durable.\n\n| | time |\n|---|---|\n")
	w("| close the old engine and pool | %s |\n", ms(rs.Close))
	w("| open the new pool (connect, ping) | %s |\n", ms(rs.Connect))
	w("| new engine → first order acknowledged (book load, positions, wallet, commit) | %s |\n", ms(rs.FirstAck))
	w("| **ready: pool + engine + first order** | **%s** (target ≤ %s) %s |\n", ms(rs.Total), targetRestart, mark(rs.Total > 0 && rs.Total <= targetRestart))
	w("| a second order, for comparison | %s |\n\n", ms(rs.SecondAck))

	writePlans(w, r.Plans)
	writeJournal(w, r.Journal)
	writeMicro(w, r.Micro)
	writeMemory(w, r.Memory)
	writeHTTP(w, r)
	writeFanout(w, r.Fanout, r.HotMarket)

	w("## Notes\n\n")
	w("- Latencies of open-loop steps count from the moment each order was due, not from when a client got round to\n")
	w("  sending it, so a server that falls behind shows its queue. A step is *saturated* when it serves under 90%% of its\n")
	w("  offered rate or leaves orders unsent at its deadline; the higher rates are then skipped.\n")
	w("- The load generator runs in the server's process: one keep-alive HTTP/1.1 connection per client, requests written\n")
	w("  by hand and answers parsed by net/http, so that it costs the server's CPU as little as possible. Its share of the\n")
	w("  CPU is in the profile (`levee/bench/load`).\n")
	w("- The server logs every order at level info to a file, as `levee serve` does by default.\n")
	w("- The naive baseline is `bench/naive`: the same web layer and maths, one transaction per order; its test checks it\n")
	w("  gives exactly the engine's fills on the same order flow.\n")

	if kept := preservedSections(path); kept != "" {
		w("\n%s", kept) // the fault and soak figures, which this run did not measure
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func writeSummary(w func(string, ...any), r *Report) {
	w("## Summary against the issue's targets\n\n| target | measured | |\n|---|---|---|\n")
	mem := r.Memory.Single
	if mem.Trades > 0 {
		w("| engine ≥ 1,000,000 trades/s per core on a binary market | %s trades/s (one goroutine); %s per core on %d markets | %s |\n",
			num(mem.PerCore), num(r.Memory.Multi.PerCore), r.Memory.Multi.Goroutines, mark(mem.PerCore >= targetEngine))
	}
	best := bestDurable(r.Durable)
	if best > 0 {
		w("| durable ≥ 20,000 orders/s on one hot market | %s orders/s (best of the closed loop and unsaturated open-loop steps) | %s |\n", num(best), mark(best >= targetDurable))
	} else {
		w("| durable ≥ 20,000 orders/s on one hot market | not measured | %s |\n", notRunMark)
	}
	half, verdict := halfTarget(r.Durable)
	w("| p99 ≤ 10 ms at half that rate (10,000 orders/s offered) | %s | %s |\n", half, verdict)
	naive := bestDurable(r.Naive)
	if best > 0 && naive > 0 {
		ratio := best / naive
		w("| durable ≥ 10× naive | %.1f× (%s vs %s orders/s) | %s |\n", ratio, num(best), num(naive), mark(ratio >= targetVsNaive))
	} else {
		w("| durable ≥ 10× naive | not measured | %s |\n", notRunMark)
	}
	f := r.Fanout
	if f.Ran {
		floor := ""
		if f.Floor.Pairs > 0 {
			floor = fmt.Sprintf("; one write(2) per subscriber and nothing else, in the same run: p99 %.1f ms", f.Floor.P99ms)
		}
		w("| fan-out p99 ≤ 50 ms to 10,000 subscribers | p99 %.1f ms to %d subscribers (time to the last client: p99 %.1f ms%s) | %s |\n",
			f.Summary.P99ms, f.Summary.Subscribed, f.Summary.LastP99ms, floor, fanoutMark(f.Summary))
	} else {
		w("| fan-out p99 ≤ 50 ms to 10,000 subscribers | could not run: %s | %s |\n", oneLine(orDash(f.Why+f.Err)), notRunMark)
	}
	if r.Restart.Total > 0 {
		note := ""
		if r.Restart.HistoryTrades < targetHistory {
			note = fmt.Sprintf(" (only %d trades of history in this run)", r.Restart.HistoryTrades)
		}
		w("| restart ≤ 2 s with 1M trades | %s to the first acknowledged order%s | %s |\n", ms(r.Restart.Total), note, mark(r.Restart.Total <= targetRestart))
	}
	if r.Ceiling.RowsPerSec > 0 && best > 0 {
		w("| (context) durable / ceiling | %.1f%% of %s rows/s that COPY alone commits | |\n", 100*best/r.Ceiling.RowsPerSec, num(r.Ceiling.RowsPerSec))
	}
	w("\n")
}

// bestDurable is the highest sustained throughput of a side: the closed
// loop, or an open-loop step that kept up.
func bestDurable(s SideResult) float64 {
	best := 0.0
	if s.Closed != nil {
		best = s.Closed.Throughput
	}
	for _, st := range append(append([]StepResult(nil), s.Steps...), deref(s.Half)...) {
		if st.Skipped == "" && st.OK > 0 && !st.Saturated() {
			best = max(best, st.Throughput)
		}
	}
	return best
}

func deref(s *StepResult) []StepResult {
	if s == nil {
		return nil
	}
	return []StepResult{*s}
}

func halfTarget(s SideResult) (string, string) {
	for _, st := range s.Steps {
		if st.Step.Rate != targetDurable/2 {
			continue
		}
		if st.Skipped != "" {
			return "not sustainable: " + st.Skipped, failMark
		}
		if st.Saturated() {
			return fmt.Sprintf("saturated: served %s orders/s of 10,000, p99 %s", num(st.Throughput), ms(st.P99)), failMark
		}
		return fmt.Sprintf("p99 %s at %s orders/s", ms(st.P99), num(st.Throughput)), mark(st.P99 <= targetHalfP99)
	}
	return "no 10,000/s step in this run (see -rates)", notMeasureMark
}

func writePlans(w func(string, ...any), plans []Plan) {
	w("## 3. Query plans of the order path\n\n")
	w("`EXPLAIN (ANALYZE, BUFFERS)` against the seeded database, with arguments taken from it (a batch of up to %d trades on\n", planBatch)
	w("the hot market for the journal and ledger statements). Statements that write run inside a transaction that is rolled\n")
	w("back. A sequential scan of a table of %d rows or more is flagged: these tables grow with trades or accounts, and a\n", largeTable)
	w("scan that is cheap on this benchmark's accounts is not on a city's.\n\n")
	flagged := 0
	for _, p := range plans {
		flagged += len(p.SeqScans)
	}
	if flagged == 0 && len(plans) > 0 {
		w("**No sequential scan of a large table on the order path.**\n\n")
	} else if flagged > 0 {
		w("**⚠ %d sequential scan(s) of tables of %d rows or more — see below.** A scan of a table under %d rows is usually\n", flagged, largeTable, 10*largeTable)
		w("the planner's choice at this size (many of its rows wanted, an index available): re-check those at a city's size.\n\n")
	}
	w("| statement | source | large seq scans | execution |\n|---|---|---|---|\n")
	for _, p := range plans {
		scans := "none"
		if len(p.SeqScans) > 0 {
			scans = "⚠ " + strings.Join(p.SeqScans, ", ")
		}
		w("| %s | `%s` | %s | %s |\n", p.Name, p.Source, scans, execTime(p))
	}
	w("\n")
	for _, p := range plans {
		w("### %s\n\n", p.Name)
		if p.Note != "" {
			w("%s\n\n", p.Note)
		}
		w("```sql\n%s\n```\n\n", p.SQL)
		if p.Err != "" {
			w("Error: `%s`\n\n", oneLine(p.Err))
		}
		if p.Text != "" {
			w("```\n%s\n```\n\n", p.Text)
		}
	}
}

func writeJournal(w func(string, ...any), j JournalAnatomy) {
	w("## 3b. Anatomy of a journal commit\n\n")
	w("The statements the engine's journal runs for a batch of buys (`market/engine/store_journal.go`: COPY of the trades, the\n")
	w("positions upsert, the market row, `ledger.PostBatch`, the balances read back) timed one by one from the client, then\n")
	w("COMMIT with fsync on: a real, durable transaction on a market of its own that no book runs. Median of 5 per batch size.\n\n")
	if j.Err != "" {
		w("Error: `%s`\n\n", oneLine(j.Err))
	}
	if len(j.Batches) == 0 {
		return
	}
	w("| orders in the batch |")
	for _, s := range anatomySteps {
		w(" %s |", s)
	}
	w(" total | per order |\n|---:|")
	for range anatomySteps {
		w("---:|")
	}
	w("---:|---:|\n")
	for _, b := range j.Batches {
		w("| %d |", b.Batch)
		for _, s := range b.Steps {
			w(" %s |", ms(s.Dur))
		}
		w(" **%s** | %s |\n", ms(b.Total), us(b.Total/time.Duration(b.Batch)))
	}
	w("\nA least-squares fit gives **%s per commit + %s per order**. A book has one batch in flight at a time and the\n", ms(j.Fixed), us(j.PerOrder))
	if j.PerOrder > 0 {
		w("journal commits one transaction at a time, so however large the batches grow, one hot market cannot acknowledge more\n")
		w("than about **%s orders/s** (1 / per-order cost), and the whole engine no more than that across all markets.\n\n", num(float64(time.Second)/float64(j.PerOrder)))
	}
}

func execTime(p Plan) string {
	for _, line := range strings.Split(p.Text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Execution Time:"); ok {
			return strings.TrimSpace(v)
		}
	}
	if p.Err != "" {
		return "error"
	}
	return "-"
}

func writeMicro(w func(string, ...any), m MicroResult) {
	w("## 4. Pricing micro-benchmarks\n\n")
	if m.Command != "" {
		w("`%s` (the benchmarks beside the maths, `market/lmsr_bench_test.go`).\n\n", m.Command)
	}
	if m.Err != "" {
		w("Error: `%s`\n\n", oneLine(m.Err))
	}
	if len(m.Benches) == 0 {
		return
	}
	w("| benchmark | ns/op | ops/s | B/op | allocs/op |\n|---|---:|---:|---:|---:|\n")
	for _, b := range m.Benches {
		ops := 0.0
		if b.NsPerOp > 0 {
			ops = 1e9 / b.NsPerOp
		}
		w("| %s | %.1f | %s | %d | %d |\n", b.Name, b.NsPerOp, num(ops), b.BPerOp, b.AllocsOp)
	}
	w("\n")
}

func writeMemory(w func(string, ...any), m MemoryResult) {
	w("## 5. Engine in memory (no database)\n\n")
	w("The book's loop alone: `market.State.Evaluate` + `Apply` for a stream of random valid orders (the history's mix) from\n")
	w("16 traders per market, unlimited cash; the random choice of each order is included in the time.\n\n")
	w("| run | trades | time | trades/s | per core | target | |\n|---|---:|---:|---:|---:|---:|---|\n")
	for i, r := range []MemRun{m.Single, m.SinglePrices, m.Multi} {
		if r.Trades == 0 && r.Elapsed == 0 {
			continue
		}
		verdict := ""
		if i == 0 {
			verdict = mark(r.PerCore >= targetEngine)
		}
		w("| %s | %d | %s | %s | %s | ≥ 1,000,000/core | %s |\n", r.Name, r.Trades, r.Elapsed.Round(time.Millisecond), num(r.Rate), num(r.PerCore), verdict)
	}
	w("\n")
}

func writeHTTP(w func(string, ...any), r *Report) {
	cfg := r.Cfg
	w("## 6. Durable orders over HTTP\n\n")
	w("The real API (`web.New`, wired as `cmd/levee` wires it) on 127.0.0.1, `POST /api/v1/markets/{id}/orders`, %d clients\n", cfg.Clients)
	w("each with its own resident token and keep-alive connection, alternating a buy of 0.5–5 shares and the sell of it, on\n")
	w("**one hot binary market** with history. Steps of %s: open loop at fixed arrival rates, then closed loop (each client\n", cfg.StepDuration)
	w("sends as soon as it has its answer), then open loop at half the closed-loop throughput. An order counts when it is\n")
	w("acknowledged (201): committed with fsync on. CPU columns are cores used during the step by this process (server and\n")
	w("load generator) and by PostgreSQL.\n\n")
	writeSide(w, "Engine (`market/engine`)", r.Durable, true)
	writeSide(w, "Naive baseline: one transaction per order (`bench/naive`)", r.Naive, false)

	c := r.Ceiling
	w("### Ceiling: the same PostgreSQL with no application\n\n")
	if c.Err != "" {
		w("Error: `%s`\n\n", oneLine(c.Err))
	}
	w("| | |\n|---|---|\n")
	w("| COPY of trade-sized rows, %d rows per transaction, %d connections | **%s rows/s** (%s commits/s, PostgreSQL %.2f cores) |\n", c.Batch, c.Conns, num(c.RowsPerSec), num(c.CommitsSec), c.CPUPG)
	w("| one-row INSERT transactions from %d connections | %s commits/s |\n", c.SingleConns, num(c.SinglePerSec))
	w("| one-row INSERT transactions from 1 connection: commit latency (WAL fsync) | p50 %s, p99 %s |\n\n", ms(c.OneConnP50), ms(c.OneConnP99))
	w("The table is `LIKE trades` with its checks and indexes but no foreign keys; an order also writes a position, the\n")
	w("market row, a ledger entry with two postings and two balances, so this is a ceiling, not a like-for-like figure.\n\n")

	w("### Ratios (same run)\n\n| | |\n|---|---|\n")
	best, nv := bestDurable(r.Durable), bestDurable(r.Naive)
	if best > 0 && nv > 0 {
		w("| durable / naive | **%.1f×** (%s / %s orders/s; target ≥ 10×) %s |\n", best/nv, num(best), num(nv), mark(best/nv >= targetVsNaive))
	}
	if best > 0 && c.RowsPerSec > 0 {
		w("| durable / ceiling (COPY rows/s) | **%.1f%%** (%s / %s) |\n", 100*best/c.RowsPerSec, num(best), num(c.RowsPerSec))
	}
	if nv > 0 && c.SinglePerSec > 0 {
		w("| naive / one-row commit rate | %.1f%% (%s / %s) |\n", 100*nv/c.SinglePerSec, num(nv), num(c.SinglePerSec))
	}
	w("\n")
	if d := diagnose(r); len(d) > 0 {
		w("### What limits one hot market (computed from this run)\n\n")
		for _, line := range d {
			w("- %s\n", line)
		}
		w("\n")
	}
	writeProfile(w, r.Profile, cfg)
}

func writeSide(w func(string, ...any), title string, s SideResult, engine bool) {
	w("### %s — market %d\n\n", title, s.Market)
	if s.Err != "" {
		w("Error: `%s`\n\n", oneLine(s.Err))
	}
	w("| step | offered/s | acknowledged/s | p50 | p99 | p999 | max | errors | unsent | CPU levee | CPU pg | pool waits (avg) |")
	if engine {
		w(" commits | orders/commit | commit p50 | commit p99 |")
	}
	w("\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	if engine {
		w("---:|---:|---:|---:|")
	}
	w("\n")
	rows := append(append(append(append([]StepResult(nil), s.Steps...), deref(s.Closed)...), deref(s.Half)...), deref(s.Keys)...)
	for _, st := range rows {
		offered := "closed loop"
		if st.Step.Rate > 0 {
			offered = num(st.Step.Rate)
		}
		if st.Skipped != "" {
			w("| %s | %s | skipped: %s | | | | | | | | | |", st.Step.Name, offered, st.Skipped)
			if engine {
				w(" | | | |")
			}
			w("\n")
			continue
		}
		name := st.Step.Name
		if st.Saturated() {
			name += " ⚠ saturated"
		}
		w("| %s | %s | **%s** | %s | %s | %s | %s | %s | %d | %.2f | %.2f | %d (%s) |", name, offered, num(st.Throughput), ms(st.P50), ms(st.P99), ms(st.P999), ms(st.Max),
			errorsCell(st), st.Abandoned, st.CPUSelf, st.CPUPG, st.PoolWaits, ms(avgWait(st)))
		if engine {
			w(" %d | %.1f | %s | %s |", st.Commits.Commits, st.Commits.OrdersPerCommit, ms(st.Commits.P50), ms(st.Commits.P99))
		}
		w("\n")
	}
	w("\n")
	for _, st := range rows {
		if st.FirstError != "" {
			w("First error seen in step \"%s\": `%s`\n\n", st.Step.Name, oneLine(st.FirstError))
			break
		}
	}
}

func errorsCell(st StepResult) string {
	n := st.Errors()
	if n == 0 {
		return "0"
	}
	var parts []string
	keys := make([]int, 0, len(st.Status))
	for k := range st.Status {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d×%d", st.Status[k], k))
	}
	if st.Transport > 0 {
		parts = append(parts, fmt.Sprintf("%d conn", st.Transport))
	}
	return strings.Join(parts, ", ")
}

func writeProfile(w func(string, ...any), p ProfileResult, cfg Config) {
	w("### Where the time goes: CPU profile of the durable closed-loop step\n\n")
	if p.Path == "" {
		w("No profile was taken.\n\n")
		return
	}
	w("`runtime/pprof` of this process (server **and** load generator) for the whole closed-loop step; saved as `%s`\n", p.Path)
	w("(`go tool pprof -top %s`). PostgreSQL's own CPU is in the CPU pg column above.\n\n", p.Path)
	if p.Err != "" {
		w("Error: `%s`\n\n", oneLine(p.Err))
		return
	}
	if p.Header != "" {
		w("%s\n\n", p.Header)
	}
	if len(p.Focus) > 0 {
		w("Cumulative share of all samples, by what an order goes through:\n\n| function | cum %% |\n|---|---:|\n")
		for _, s := range p.Focus {
			w("| `%s` | %.1f%% |\n", s.Name, s.Percent)
		}
		w("\n")
	}
	if len(p.Packages) > 0 {
		w("Flat share by package (top 20):\n\n| package | flat %% |\n|---|---:|\n")
		for _, s := range p.Packages {
			w("| `%s` | %.1f%% |\n", s.Name, s.Percent)
		}
		w("\n")
	}
	w("Top of the profile (flat):\n\n```\n%s\n```\n\n", strings.TrimSpace(p.Top))
	if p.TopCum != "" {
		w("Top of the profile (cumulative):\n\n```\n%s\n```\n\n", strings.TrimSpace(p.TopCum))
	}
}

func writeFanout(w func(string, ...any), f FanoutResult, hot int64) {
	w("## 7. Websocket fan-out\n\n")
	if !f.Ran {
		w("**Could not run.** %s\n\n", orDash(f.Why))
		if f.Err != "" {
			w("Error: `%s`\n\n", oneLine(f.Err))
		}
		w("The measurement is implemented (`bench/fanout`, tested against `web/live`'s Hub): %d subscribers of the hot market\n", f.Clients)
		w("in a second process (the bench binary re-executed with `-ws-url`), each timing every `trade` event from its\n")
		w("server timestamp `ts` to its receipt, while the server submits %d orders at %d/s. It runs as soon as\n", f.Events, wsPace)
		w("`GET /api/v1/ws` answers a websocket upgrade on the server that `web.New` builds and the engine publishes to\n")
		w("the hub.\n\n")
		return
	}
	s := f.Summary
	w("%d subscribers of the hot market (%s), %s; %d orders submitted one by one, paced at %d/s at most, over %.1fs. Latency is\n", s.Clients, strconv.FormatInt(hot, 10), f.Mode, f.Events, wsPace, f.PublishSecs)
	w("receipt minus the event's `%s` timestamp (its commit), over every (event, client) pair; \"last client\" is per event the\n", orDash(s.Clock))
	w("latency of the slowest client. The clients share the machine's cores with the server and PostgreSQL")
	if s.Reader == "epoll" {
		w(", so they read\nas cheaply as they can: a few epoll loops, one `read(2)` per ready socket (`bench/fanout`; a goroutine per\nconnection cost the machine as much CPU per message as the server's write, §7a)")
	}
	w(".\n\n")
	if f.Err != "" {
		w("Error: `%s`\n\n", oneLine(f.Err))
	}
	w("| | |\n|---|---|\n")
	w("| subscribed | %d of %d in %.1fs (failed %d%s) |\n", s.Subscribed, s.Clients, s.SubscribeSecs, s.Failed, firstErr(s.FirstError))
	w("| events seen | %d; pairs %d; missing %d; gaps %d |\n", s.Events, s.Pairs, s.Missing, s.Gaps)
	w("| per pair | p50 %.1f ms, p90 %.1f ms, **p99 %.1f ms**, p999 %.1f ms, max %.1f ms (target p99 ≤ 50 ms with 10,000 subscribers) %s |\n",
		s.P50ms, s.P90ms, s.P99ms, s.P999ms, s.MaxMs, fanoutMark(s))
	w("| time to the last client | p50 %.1f ms, p99 %.1f ms, max %.1f ms |\n", s.LastP50ms, s.LastP99ms, s.LastMaxMs)
	w("| CPU while the orders were published | this process (server) %.2f cores, PostgreSQL %.2f cores", f.ServerCPU, f.PGCPU)
	if strings.Contains(f.Mode, "second process") && s.WallSecs > 0 {
		w(", the client process %.2f cores", s.CPUSecs/s.WallSecs)
	}
	w(" (of %d) |\n", runtime.NumCPU())
	h := f.Hub
	w("| hub counters when the last order was acknowledged | connections %d, subscriptions %d, trades dropped %d, quotes conflated %d, gaps %d, slow disconnects %d |\n",
		h.Connections, h.Subscriptions, h.Dropped, h.Conflated, h.Gaps, h.SlowDisconnects)
	if fl := f.Floor; fl.Pairs > 0 {
		w("| **the floor**, right after, same clients: one write(2) per subscriber and event, nothing of Levee (`bench/fanout.Floor`) | p50 %.1f ms, p90 %.1f ms, **p99 %.1f ms**, max %.1f ms; pairs %d, missing %d |\n",
			fl.P50ms, fl.P90ms, fl.P99ms, fl.MaxMs, fl.Pairs, fl.Missing)
		w("| Levee / the floor | p50 %s, p99 %s, max %s |\n", ratio(s.P50ms, fl.P50ms), ratio(s.P99ms, fl.P99ms), ratio(s.MaxMs, fl.MaxMs))
	} else if f.FloorErr != "" {
		w("| the floor | could not run: `%s` |\n", oneLine(f.FloorErr))
	}
	w("\n")
	if s.Clock == "at" {
		w("⚠ The events carry no `ts`: the trade's `at` (its submission) was used, so these latencies include the commit.\n\n")
	}
}

func fanoutMark(s fanout.Summary) string {
	if s.Subscribed < targetSubs {
		return fmt.Sprintf("%s (only %d subscribers)", notMeasureMark, s.Subscribed)
	}
	return mark(s.P99ms <= targetFanout && s.Missing == 0)
}

func firstErr(s string) string {
	if s == "" {
		return ""
	}
	return "; first error: " + oneLine(s)
}

func codes(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// num writes a number with thousands separators.
func num(f float64) string {
	n := int64(f + 0.5)
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "`", "'")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
