package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"levee/bench/load"
	"levee/cluster"
)

// OrdersReport is one run of the orders scenario: the order path alone,
// with the server in a process of its own so that its CPU, PostgreSQL's and
// the load generator's are counted apart.
type OrdersReport struct {
	Command           string
	Started, Finished time.Time
	Machine           Machine
	EndLoadAvg        string
	History           int
	Variants          []OrdersVariant // PerRound of them per round, the first the reference
	Floors            []FloorResult   // per round, measured before its variants
	CPUFloors         []CPUFloor      // per round, measured after its variants
	PerRound          int
	Profile           ProfileResult
	IndexCosts        []IndexCost
	Failures          []string
	PauseMeter        string // how the pause meter ran (stalls.go)
}

// OrdersVariant is the same steps against one server configuration (the
// current path, or an earlier one behind a flag).
type OrdersVariant struct {
	Key   string // its name for -variants
	Name  string
	Env   []string
	Setup []string // SQL run before the variant's server starts
	Undo  []string // SQL run after it stops
	// Cluster runs the server as one instance of a cluster: on an embedded
	// NATS server, holding a lease on each market it trades and fenced by
	// its epoch in every commit (docs/cluster.md).
	Cluster bool
	// Bin runs this build of levee instead of the working tree's
	// (-variants bin=PATH): two revisions of the code in the same run.
	Bin   string
	Steps []OrdersStep
	Costs []StatementCost
}

// StatementCost is the wall time of one statement of a commit, run alone
// many times in a transaction rolled back: the minimum is what it costs
// PostgreSQL with no one else on the machine, the least noisy figure on a
// shared one.
type StatementCost struct {
	Name        string
	Min, Median time.Duration
}

// statementCosts times the journal's statement and the ledger's append for
// a batch of planBatch buys on the hot market (the arguments of section 3).
func (e *env) statementCosts(ctx context.Context) ([]StatementCost, error) {
	qs, err := e.orderPathQueries(ctx)
	if err != nil {
		return nil, err
	}
	var out []StatementCost
	for _, q := range qs {
		if !strings.HasPrefix(q.name, "journal:") && !strings.HasPrefix(q.name, "ledger.PostBatch: append") {
			continue
		}
		var ds []time.Duration
		for range 25 {
			tx, err := e.db.BeginTxx(ctx, nil)
			if err != nil {
				return out, err
			}
			t0 := time.Now()
			_, err = tx.ExecContext(ctx, q.sql, q.args...)
			d := time.Since(t0)
			tx.Rollback()
			if err != nil {
				return out, fmt.Errorf("%s: %w", q.name, err)
			}
			ds = append(ds, d)
		}
		sortDurations(ds)
		out = append(out, StatementCost{Name: q.name, Min: ds[0], Median: ds[len(ds)/2]})
	}
	return out, nil
}

// OrdersStep is one load step with the CPU each process used.
type OrdersStep struct {
	load.Result
	CPUServer, CPUPG, CPUGen float64 // cores
	Journal                  journalMetrics
	// Open loop: the stalls of orders over the step's goal and what else
	// was slow then (stalls.go), and the machine's pauses and the disk
	// probe's slow flushes during the whole step (how many, the longest).
	Stalls          load.Attribution
	Pauses, Flushes int
	PauseMax        time.Duration
	FlushMax        time.Duration
	SlowLines       int // slow journal commits the server logged during the step
}

// journalMetrics are the server's journal commits during a step, from its
// /metrics (levee_journal_*): how many, how many orders each, and the commit
// time's p50 and p99 as the upper bounds of their histogram buckets; an
// order request's time in the server, the same way; and
// where committed orders' time went in the engine (levee_order_engine_seconds:
// waiting in the book, waiting for the journal's previous commit, their own
// commit), p50 and p99 the same way.
//
// Also where a commit's time went, round trip by round trip (the means of
// levee_journal_phase_seconds: begin, rows, ledger, commit; one_trip for a
// transaction in one round trip, whose share is given), and how long
// the server's goroutines waited runnable for a thread
// (levee_go_sched_wait_seconds, p90 and p99 as bucket bounds): under load a
// round trip's wait for the journal's goroutine to run again is most of it.
type journalMetrics struct {
	Commits, Orders float64
	P50, P99        float64 // seconds
	// RequestP50, RequestP99: an order request's time inside the server
	// (levee_http_request_duration_seconds of the order route), so that a
	// step's tail can be placed inside the server or outside it (the
	// sockets, the generator, a thread waiting for a core).
	RequestP50, RequestP99 float64
	Phases                 []phaseQuantiles
	CommitPhases           []phaseMean
	OneTrips               float64 // commits in one round trip (phase one_trip)
	SchedP90, SchedP99     float64 // seconds
}

type phaseMean struct {
	Phase string
	Mean  float64 // seconds
}

// commitPhases are the phases of levee_journal_phase_seconds, in a
// transaction's order.
var commitPhases = []string{"begin", "rows", "ledger", "commit", "one_trip"}

type phaseQuantiles struct {
	Phase    string
	P50, P99 float64 // seconds
}

// enginePhases are the phases of levee_order_engine_seconds, in an order's
// order.
var enginePhases = []string{"book", "journal", "commit"}

// histograms maps a histogram's name (the commit time: "commit_seconds"; a
// phase of an order: its label) to its cumulative buckets by upper bound.
type histograms map[string]map[float64]float64

// scrapeJournal reads the journal's counters, its commit-time histogram and
// the histograms of orders' engine phases.
func scrapeJournal(addr string) (counts map[string]float64, hists histograms) {
	counts, hists = map[string]float64{}, histograms{}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return counts, hists
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	bucket := func(name, le string, v float64) {
		if hists[name] == nil {
			hists[name] = map[float64]float64{}
		}
		if b, err := strconv.ParseFloat(le, 64); err == nil {
			hists[name][b] = v
		} else if le == "+Inf" {
			hists[name][math.Inf(1)] = v
		}
	}
	for sc.Scan() {
		line := sc.Text()
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch {
		case name == `levee_journal_commits_total{result="ok"}`:
			counts["commits"] = v
		case name == "levee_journal_orders_total":
			counts["orders"] = v
		case strings.HasPrefix(name, `levee_journal_commit_seconds_bucket{le="`):
			bucket("commit_seconds", strings.TrimSuffix(strings.TrimPrefix(name, `levee_journal_commit_seconds_bucket{le="`), `"}`), v)
		case strings.HasPrefix(name, `levee_journal_phase_seconds_sum{phase="`):
			counts["phase_sum:"+strings.TrimSuffix(strings.TrimPrefix(name, `levee_journal_phase_seconds_sum{phase="`), `"}`)] = v
		case strings.HasPrefix(name, `levee_journal_phase_seconds_count{phase="`):
			counts["phase_count:"+strings.TrimSuffix(strings.TrimPrefix(name, `levee_journal_phase_seconds_count{phase="`), `"}`)] = v
		case strings.HasPrefix(name, `levee_go_sched_wait_seconds_bucket{le="`):
			bucket("sched", strings.TrimSuffix(strings.TrimPrefix(name, `levee_go_sched_wait_seconds_bucket{le="`), `"}`), v)
		case strings.HasPrefix(name, `levee_http_request_duration_seconds_bucket{`) && strings.Contains(name, `method="POST"`) && strings.Contains(name, `/orders"`):
			// The order route's time in the server, from the first
			// middleware to the handler's return (web/metrics.go).
			if _, le, ok := strings.Cut(name, `le="`); ok {
				bucket("request", strings.TrimSuffix(le, `"}`), v)
			}
		case strings.HasPrefix(name, `levee_order_engine_seconds_bucket{phase="`):
			// {phase="book",le="0.001"}: the exposition puts le last.
			phase, le, ok := strings.Cut(strings.TrimPrefix(name, `levee_order_engine_seconds_bucket{phase="`), `",le="`)
			if ok {
				bucket(phase, strings.TrimSuffix(le, `"}`), v)
			}
		}
	}
	return counts, hists
}

// journalBetween is what the journal did between two scrapes.
func journalBetween(c0 map[string]float64, h0 histograms, c1 map[string]float64, h1 histograms) journalMetrics {
	m := journalMetrics{Commits: c1["commits"] - c0["commits"], Orders: c1["orders"] - c0["orders"]}
	m.P50, m.P99 = quantiles(h0["commit_seconds"], h1["commit_seconds"])
	if h1["request"] != nil {
		m.RequestP50, m.RequestP99 = quantiles(h0["request"], h1["request"])
	}
	for _, p := range enginePhases {
		if h1[p] == nil {
			continue
		}
		q := phaseQuantiles{Phase: p}
		q.P50, q.P99 = quantiles(h0[p], h1[p])
		m.Phases = append(m.Phases, q)
	}
	for _, p := range commitPhases {
		if n := c1["phase_count:"+p] - c0["phase_count:"+p]; n > 0 {
			m.CommitPhases = append(m.CommitPhases, phaseMean{p, (c1["phase_sum:"+p] - c0["phase_sum:"+p]) / n})
		}
	}
	m.OneTrips = c1["phase_count:one_trip"] - c0["phase_count:one_trip"]
	if h1["sched"] != nil {
		m.SchedP90, m.SchedP99 = quantile(h0["sched"], h1["sched"], 0.9), quantile(h0["sched"], h1["sched"], 0.99)
	}
	return m
}

// quantiles are the p50 and p99 of what a cumulative histogram counted
// between two scrapes, as the upper bounds of their buckets.
func quantiles(b0, b1 map[float64]float64) (p50, p99 float64) {
	return quantile(b0, b1, 0.5), quantile(b0, b1, 0.99)
}

// quantile is the q-quantile of what a cumulative histogram counted between
// two scrapes, as the upper bound of its bucket (0 when it counted nothing).
func quantile(b0, b1 map[float64]float64, q float64) float64 {
	var les []float64
	for le := range b1 {
		les = append(les, le)
	}
	slices.Sort(les)
	total := b1[math.Inf(1)] - b0[math.Inf(1)]
	for _, le := range les {
		if total > 0 && b1[le]-b0[le] >= q*total {
			return le
		}
	}
	return 0
}

func (j journalMetrics) String() string {
	if j.Commits == 0 {
		return "-"
	}
	s := fmt.Sprintf("%.0f commits, %.1f orders each, commit p50 ≤ %s p99 ≤ %s", j.Commits, j.Orders/j.Commits, bucketMS(j.P50), bucketMS(j.P99))
	if j.RequestP99 > 0 {
		s += fmt.Sprintf("; an order request's p50/p99 in the server ≤ %s/%s", bucketMS(j.RequestP50), bucketMS(j.RequestP99))
	}
	if len(j.Phases) > 0 {
		s += "; an order's p50/p99 in"
		for i, p := range j.Phases {
			if i > 0 {
				s += ","
			}
			s += fmt.Sprintf(" %s ≤ %s/%s", p.Phase, bucketMS(p.P50), bucketMS(p.P99))
		}
	}
	if len(j.CommitPhases) > 0 {
		var names, means []string
		for _, p := range j.CommitPhases {
			names, means = append(names, p.Phase), append(means, fmt.Sprintf("%.2f", p.Mean*1000))
		}
		s += fmt.Sprintf("; a commit's %s %s ms (means)", strings.Join(names, "/"), strings.Join(means, "/"))
		if j.OneTrips > 0 {
			s += fmt.Sprintf(", %.0f%% of commits in one round trip", 100*j.OneTrips/j.Commits)
		}
	}
	if j.SchedP90 > 0 {
		s += fmt.Sprintf("; goroutines waited for a thread p90 ≤ %s p99 ≤ %s", bucketMS(j.SchedP90), bucketMS(j.SchedP99))
	}
	return s
}

func bucketMS(s float64) string {
	if math.IsInf(s, 1) {
		return "∞"
	}
	return fmt.Sprintf("%gms", s*1000)
}

// PerOrder is the CPU of server and PostgreSQL per acknowledged order, in
// core-milliseconds.
func (s OrdersStep) PerOrder() float64 {
	if s.Throughput == 0 {
		return 0
	}
	return (s.CPUServer + s.CPUPG) * 1000 / s.Throughput
}

// restore0003 puts back on trades what migration order_keys (issue 18) dropped: the foreign
// keys, the account index and the unique index on idempotency keys.
var restore0003 = []string{
	`ALTER TABLE trades ADD CONSTRAINT trades_market_id_fkey FOREIGN KEY (market_id) REFERENCES markets (id),
		ADD CONSTRAINT trades_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id)`,
	`CREATE INDEX trades_account_idx ON trades (account_id, market_id, seq)`,
	`CREATE UNIQUE INDEX trades_idempotency_idx ON trades (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL`,
}

var undo0003 = []string{
	`ALTER TABLE trades DROP CONSTRAINT trades_market_id_fkey, DROP CONSTRAINT trades_account_id_fkey`,
	`DROP INDEX trades_account_idx`, `DROP INDEX trades_idempotency_idx`,
}

// restoreChecks puts back the CHECKs that migration 0023 moved into
// triggers: ledger_accounts' regular expressions, which ran on each balance
// update (PostgreSQL evaluates every CHECK on every UPDATE), and the fixed
// columns of markets and ledger_head, whose CHECKs PostgreSQL built for
// every commit; and those that migration 0024 made domains, in place of the
// domains' constraints. NOT VALID: rows already there are not checked
// again; new writes are.
var restoreChecks = []string{
	`ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_key_check CHECK (key ~ '^[a-z0-9_.:-]{1,100}$') NOT VALID,
		ADD CONSTRAINT ledger_accounts_kind_check CHECK (kind ~ '^[a-z0-9_.:-]{1,64}$') NOT VALID,
		ADD CONSTRAINT ledger_accounts_public_check CHECK (public ~ '^[a-z0-9_.:-]{1,100}$') NOT VALID`,
	`ALTER TABLE markets ADD CONSTRAINT markets_liquidity_check CHECK (liquidity > 0) NOT VALID,
		ADD CONSTRAINT markets_subsidy_check CHECK (subsidy >= 0) NOT VALID,
		ADD CONSTRAINT markets_outcomes_check CHECK (cardinality(outcomes) BETWEEN 2 AND 100) NOT VALID,
		ADD CONSTRAINT markets_question_check CHECK (length(question) BETWEEN 1 AND 500) NOT VALID,
		ADD CONSTRAINT markets_status_check CHECK (status IN ('open', 'closed', 'resolved', 'void')) NOT VALID,
		ADD CONSTRAINT markets_check1 CHECK ((status = 'resolved') = (resolved_outcome IS NOT NULL)) NOT VALID`,
	`ALTER TABLE ledger_head ADD CONSTRAINT ledger_head_id_check CHECK (id) NOT VALID,
		ADD CONSTRAINT ledger_head_private_from_check CHECK (private_from > 0) NOT VALID`,
	`ALTER DOMAIN levee_money DROP CONSTRAINT money_bound`,
	`ALTER DOMAIN levee_posting DROP CONSTRAINT posting_not_zero`,
	`ALTER DOMAIN levee_posting DROP CONSTRAINT posting_money_bound`,
	`ALTER DOMAIN levee_volume DROP CONSTRAINT volume_bound`,
	`ALTER DOMAIN levee_positive DROP CONSTRAINT positive`,
	`ALTER DOMAIN levee_nonnegative DROP CONSTRAINT nonnegative`,
	`ALTER DOMAIN levee_side DROP CONSTRAINT side`,
	`ALTER DOMAIN levee_key DROP CONSTRAINT key_length`,
	`ALTER DOMAIN levee_index DROP CONSTRAINT index_nonnegative`,
	`ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_money_bound CHECK (balance BETWEEN -1000000000000 AND 1000000000000) NOT VALID`,
	`ALTER TABLE ledger_postings ADD CONSTRAINT ledger_postings_amount_check CHECK (amount <> 0) NOT VALID,
		ADD CONSTRAINT ledger_postings_money_bound CHECK (amount BETWEEN -1000000000000 AND 1000000000000) NOT VALID,
		ADD CONSTRAINT ledger_postings_idx_check CHECK (idx >= 0) NOT VALID`,
	`ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_shape,
		ADD CONSTRAINT ledger_entries_idempotency_key_check CHECK (octet_length(idempotency_key) BETWEEN 1 AND 200) NOT VALID,
		ADD CONSTRAINT ledger_entries_seq_check CHECK (seq > 0) NOT VALID,
		ADD CONSTRAINT ledger_entries_prev_hash_check CHECK (octet_length(prev_hash) = 32) NOT VALID,
		ADD CONSTRAINT ledger_entries_hash_check CHECK (octet_length(hash) = 32) NOT VALID`,
	`ALTER TABLE ledger_head DROP CONSTRAINT ledger_head_shape,
		ADD CONSTRAINT ledger_head_seq_check CHECK (seq >= 0) NOT VALID,
		ADD CONSTRAINT ledger_head_hash_check CHECK (octet_length(hash) = 32) NOT VALID`,
	`ALTER TABLE markets ADD CONSTRAINT markets_volume_bound CHECK (volume <= 1000000000000) NOT VALID`,
	`ALTER TABLE trades ADD CONSTRAINT trades_side_check CHECK (side IN ('buy', 'sell')) NOT VALID,
		ADD CONSTRAINT trades_shares_check CHECK (shares > 0) NOT VALID,
		ADD CONSTRAINT trades_amount_check CHECK (amount >= 0) NOT VALID`,
	`ALTER TABLE positions ADD CONSTRAINT positions_shares_check CHECK (shares >= 0) NOT VALID`,
	`ALTER TABLE market_stakes ADD CONSTRAINT market_stakes_put_in_check CHECK (put_in >= 0) NOT VALID,
		ADD CONSTRAINT market_stakes_held_check CHECK (held >= 0) NOT VALID`,
	`ALTER TABLE order_keys ADD CONSTRAINT order_keys_key_check CHECK (octet_length(key) BETWEEN 1 AND 200) NOT VALID`,
}

var undoChecks = []string{
	`ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_key_check, DROP CONSTRAINT ledger_accounts_kind_check,
		DROP CONSTRAINT ledger_accounts_public_check`,
	`ALTER TABLE markets DROP CONSTRAINT markets_liquidity_check, DROP CONSTRAINT markets_subsidy_check,
		DROP CONSTRAINT markets_outcomes_check, DROP CONSTRAINT markets_question_check, DROP CONSTRAINT markets_status_check,
		DROP CONSTRAINT markets_check1`,
	`ALTER TABLE ledger_head DROP CONSTRAINT ledger_head_id_check, DROP CONSTRAINT ledger_head_private_from_check`,
	`ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_money_bound`,
	`ALTER TABLE ledger_postings DROP CONSTRAINT ledger_postings_amount_check, DROP CONSTRAINT ledger_postings_money_bound,
		DROP CONSTRAINT ledger_postings_idx_check`,
	`ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_idempotency_key_check, DROP CONSTRAINT ledger_entries_seq_check,
		DROP CONSTRAINT ledger_entries_prev_hash_check, DROP CONSTRAINT ledger_entries_hash_check,
		ADD CONSTRAINT ledger_entries_shape CHECK (seq > 0 AND octet_length(prev_hash) = 32 AND octet_length(hash) = 32) NOT VALID`,
	`ALTER TABLE ledger_head DROP CONSTRAINT ledger_head_seq_check, DROP CONSTRAINT ledger_head_hash_check,
		ADD CONSTRAINT ledger_head_shape CHECK (seq >= 0 AND octet_length(hash) = 32) NOT VALID`,
	`ALTER TABLE markets DROP CONSTRAINT markets_volume_bound`,
	`ALTER TABLE trades DROP CONSTRAINT trades_side_check, DROP CONSTRAINT trades_shares_check, DROP CONSTRAINT trades_amount_check`,
	`ALTER TABLE positions DROP CONSTRAINT positions_shares_check`,
	`ALTER TABLE market_stakes DROP CONSTRAINT market_stakes_put_in_check, DROP CONSTRAINT market_stakes_held_check`,
	`ALTER TABLE order_keys DROP CONSTRAINT order_keys_key_check`,
	`ALTER DOMAIN levee_money ADD CONSTRAINT money_bound CHECK (VALUE BETWEEN -1000000000000 AND 1000000000000) NOT VALID`,
	`ALTER DOMAIN levee_posting ADD CONSTRAINT posting_not_zero CHECK (VALUE <> 0) NOT VALID`,
	`ALTER DOMAIN levee_posting ADD CONSTRAINT posting_money_bound CHECK (VALUE BETWEEN -1000000000000 AND 1000000000000) NOT VALID`,
	`ALTER DOMAIN levee_volume ADD CONSTRAINT volume_bound CHECK (VALUE <= 1000000000000) NOT VALID`,
	`ALTER DOMAIN levee_positive ADD CONSTRAINT positive CHECK (VALUE > 0) NOT VALID`,
	`ALTER DOMAIN levee_nonnegative ADD CONSTRAINT nonnegative CHECK (VALUE >= 0) NOT VALID`,
	`ALTER DOMAIN levee_side ADD CONSTRAINT side CHECK (VALUE IN ('buy', 'sell')) NOT VALID`,
	`ALTER DOMAIN levee_key ADD CONSTRAINT key_length CHECK (octet_length(VALUE) BETWEEN 1 AND 200) NOT VALID`,
	`ALTER DOMAIN levee_index ADD CONSTRAINT index_nonnegative CHECK (VALUE >= 0) NOT VALID`,
}

// ordersVariants are the server configurations compared in one run: the
// current order path; the commit as one statement (ledger_append, the hash
// chain computed in PostgreSQL: LEVEE_JOURNAL=one-statement); the previous
// journal (five round trips per commit, keyed orders looked up first:
// LEVEE_JOURNAL=previous); the four round trips of sessions 7 to 9 (BEGIN
// and COMMIT each a round trip of their own: LEVEE_JOURNAL=four-trips);
// and that with trades' constraints and indexes of
// migration 0003 restored, which is the order path before issue 18 but for
// the HTTP answer and the order_keys rows; and the current path with the
// CHECKs that migrations 0023 and 0024 took off the tables every commit
// writes. -variants picks some by key.
var ordersVariants = []OrdersVariant{
	{Key: "current", Name: "current"},
	{Key: "four-trips", Name: "four round trips per commit (LEVEE_JOURNAL=four-trips)", Env: []string{"LEVEE_JOURNAL=four-trips"}},
	{Key: "two-trips", Name: "two round trips per commit (LEVEE_JOURNAL=two-trips)", Env: []string{"LEVEE_JOURNAL=two-trips"}},
	{Key: "checks", Name: "current, CHECKs as before 0023 and 0024", Setup: restoreChecks, Undo: undoChecks},
	{Key: "pipelined", Name: "two transactions in flight (LEVEE_JOURNAL=pipelined)", Env: []string{"LEVEE_JOURNAL=pipelined"}},
	{Key: "cluster", Name: "current, one instance of a cluster (LEVEE_NATS_URL: leases and fencing)", Cluster: true},
	{Key: "gogc100", Name: "current, Go's default collector pace (GOGC=100)", Env: []string{"GOGC=100"}},
	{Key: "gogcoff", Name: "current, no collection (GOGC=off)", Env: []string{"GOGC=off"}},
	{Key: "noadvance", Name: "current, no clock-driven work during the steps (LEVEE_ADVANCE_EVERY=1h)", Env: []string{"LEVEE_ADVANCE_EVERY=1h"}},
	{Key: "noautovacuum", Name: "current, PostgreSQL's autovacuum off", Setup: []string{"ALTER SYSTEM SET autovacuum = off", "SELECT pg_reload_conf()"},
		Undo: []string{"ALTER SYSTEM RESET autovacuum", "SELECT pg_reload_conf()"}},
	{Key: "nocheckpoint", Name: "current, no checkpoint during the steps (checkpoint_timeout 1h, max_wal_size 20GB)",
		Setup: []string{"CHECKPOINT", "ALTER SYSTEM SET checkpoint_timeout = '1h'", "ALTER SYSTEM SET max_wal_size = '20GB'", "SELECT pg_reload_conf()"},
		Undo:  []string{"ALTER SYSTEM RESET checkpoint_timeout", "ALTER SYSTEM RESET max_wal_size", "SELECT pg_reload_conf()"}},
	{Key: "pipelined-all", Name: "two transactions in flight, every batch overlapped (LEVEE_JOURNAL_OVERLAP_FROM=1)", Env: []string{"LEVEE_JOURNAL=pipelined", "LEVEE_JOURNAL_OVERLAP_FROM=1"}},
	{Key: "one-statement", Name: "one statement (LEVEE_JOURNAL=one-statement)", Env: []string{"LEVEE_JOURNAL=one-statement"}},
	{Key: "previous", Name: "previous journal (LEVEE_JOURNAL=previous)", Env: []string{"LEVEE_JOURNAL=previous"}},
	{Key: "0003", Name: "previous journal, trades as in 0003", Env: []string{"LEVEE_JOURNAL=previous"}, Setup: restore0003, Undo: undo0003},
}

// pickVariants returns the variants named in keys (comma-separated keys of
// ordersVariants, in that order; empty: all).
// defaultVariants are the variants make orders runs unless -variants
// names others: the current path and what it is compared with most (the
// rest were measured in earlier sessions and stay available by name).
const defaultVariants = "current,two-trips,four-trips,cluster,pipelined,previous"

// variantKeys lists every variant's key, for -variants' help.
func variantKeys() string {
	keys := make([]string, len(ordersVariants))
	for i, v := range ordersVariants {
		keys[i] = v.Key
	}
	return strings.Join(keys, ", ")
}

func pickVariants(keys string) ([]OrdersVariant, error) {
	if keys == "" {
		keys = defaultVariants
	}
	var out []OrdersVariant
	for _, k := range strings.Split(keys, ",") {
		if path, ok := strings.CutPrefix(k, "bin="); ok {
			if _, err := os.Stat(path); err != nil {
				return nil, fmt.Errorf("-variants %s: %w", k, err)
			}
			out = append(out, OrdersVariant{Key: k, Name: "levee built at " + path, Bin: path})
			continue
		}
		i := slices.IndexFunc(ordersVariants, func(v OrdersVariant) bool { return v.Key == k })
		if i < 0 {
			return nil, fmt.Errorf("-variants: no variant %q", k)
		}
		out = append(out, ordersVariants[i])
	}
	return out, nil
}

// runOrders is `-scenario orders`: `levee serve` in a child process on the
// bench city, one hot binary market, and for each server configuration the
// issue's steps: open loop at 300, 1,000 and 3,000 orders/s, closed loop with
// cfg.Clients clients without and with idempotency keys, and one client.
// Then a closed loop against an in-process server, CPU-profiled (the
// profile is of server and generator; the generator's functions are apart).
func runOrders(ctx context.Context, cfg Config, stdout io.Writer) (err error) {
	begin := time.Now()
	rep := &OrdersReport{Started: begin, Command: "go run ./bench/cmd/levee-bench " + strings.Join(cfg.Args, " ")}
	defer func() {
		rep.Finished, rep.EndLoadAvg = time.Now(), loadAvg()
		err = finishScenario(cfg, stdout, "orders", ordersSection(rep), rep.Failures, err)
	}()
	sc := cfg
	sc.Markets = max(cfg.Markets, 4)
	e, err := setup(ctx, sc, stdout, begin)
	if e != nil {
		defer e.close()
	}
	if err != nil {
		return err
	}
	rep.Machine = describeMachine(ctx, e.db)
	if cfg.History > 0 {
		h, err := e.seedHistory(ctx)
		if err != nil {
			return fmt.Errorf("history: %w", err)
		}
		rep.History = h.Trades
		e.say("history: %d trades (%.0f/s)", h.Trades, h.Rate)
	}
	// The in-process profile first, while this process's engine owns the
	// markets; then the child servers take them over.
	profile := cfg.CPUProfile
	if profile == "" {
		profile = filepath.Join(filepath.Dir(cfg.Out), "orders-closed-loop.pprof")
	}
	if err := e.profileOrders(ctx, profile); err != nil {
		rep.Failures = append(rep.Failures, "profile: "+err.Error())
	} else {
		rep.Profile = summarizeProfile(ctx, profile)
	}
	e.say("index costs (bench/indexcost.sql)")
	if rep.IndexCosts, err = e.measureIndexCosts(ctx); err != nil {
		rep.Failures = append(rep.Failures, "index costs: "+err.Error())
	}
	for _, c := range rep.IndexCosts {
		e.say("%s: %d ns/row (%v)", c.Name, c.Median, c.Runs)
	}
	e.eng.Close()
	e.eng = nil
	bin, err := e.buildLevee(ctx)
	if err != nil {
		return err
	}
	if exe, err := os.Executable(); err == nil {
		// The disk probe's file sits beside PostgreSQL's data, on the disk
		// of its WAL.
		if e.meter, err = load.StartMeter(ctx, exe, "-pause-meter", e.dir); err != nil {
			rep.Failures = append(rep.Failures, err.Error())
		} else {
			defer e.meter.Stop()
			defer func() { rep.PauseMeter = e.meter.Notes() }()
		}
	}
	// Twice in turn (A B A B), so that a drift of the machine's other load
	// shows as a difference between the rounds rather than the variants.
	vs, err := pickVariants(cfg.Variants)
	if err != nil {
		return err
	}
	rep.PerRound = len(vs)
	var natsURL string
	if slices.ContainsFunc(vs, func(v OrdersVariant) bool { return v.Cluster }) {
		ns, err := cluster.StartNATS(0)
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		natsURL = ns.URL()
	}
	for round := 1; round <= cfg.Rounds; round++ {
		fl := e.measureFloor(ctx, orderRates, floorStep(cfg.StepDuration))
		e.say("round %d: the floor (no application): %s", round, strings.ReplaceAll(floorTableMD(fl), "\n", " "))
		rep.Floors = append(rep.Floors, fl)
		for _, v := range vs {
			v.Name = fmt.Sprintf("%s (round %d)", v.Name, round)
			if v.Cluster {
				v.Env = append(slices.Clip(v.Env), "LEVEE_NATS_URL="+natsURL, "LEVEE_INSTANCE=orders")
			}
			v.Steps, v.Costs, err = e.orderSteps(ctx, cmp.Or(v.Bin, bin), v)
			rep.Variants = append(rep.Variants, v)
			if err != nil {
				rep.Failures = append(rep.Failures, v.Name+": "+err.Error())
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		cf := e.measureCPUFloor(ctx, e.answer, e.cfg.StepDuration)
		e.say("round %d: the floor of CPU per order: %s", round, strings.ReplaceAll(cpuFloorMD(cf, currentClosedLoop(rep.Variants, len(rep.Variants)-len(vs))), "\n", " "))
		rep.CPUFloors = append(rep.CPUFloors, cf)
	}
	return nil
}

// currentClosedLoop is the closed loop of e.cfg.Clients of the variant at
// index i (the round's first, the current path), if it ran.
func currentClosedLoop(vs []OrdersVariant, i int) *OrdersStep {
	if i < 0 || i >= len(vs) {
		return nil
	}
	for j, s := range vs[i].Steps {
		if s.Step.Rate == 0 && !s.Step.IdempotencyKeys && s.Clients > 1 {
			return &vs[i].Steps[j]
		}
	}
	return nil
}

// orderRates are the open-loop steps' offered loads (orders/s); the floor
// is paced at the same rates.
var orderRates = []float64{300, 1000, 3000}

// floorStep is how long the floor is paced at each rate.
func floorStep(step time.Duration) time.Duration { return min(step, 3*time.Second) }

// profileOrders runs a closed loop against an in-process server with the CPU
// profiler on.
func (e *env) profileOrders(ctx context.Context, path string) error {
	srv, err := e.serve(e.eng, e.db, e.live)
	if err != nil {
		return err
	}
	defer srv.close()
	r := load.New(load.Target{Addr: srv.addr, MarketID: e.markets[2].ID, Outcomes: len(e.markets[2].Outcomes), Tokens: e.tokens(e.cfg.Clients), Seed: 5})
	defer r.Close()
	if err := r.Warm(ctx, 2); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	res := r.Run(ctx, load.Step{Name: "closed loop (profiled, in process)", Duration: e.cfg.StepDuration})
	pprof.StopCPUProfile()
	e.say("profile: %s", describeOrders(OrdersStep{Result: res}))
	return nil
}

// orderSteps starts a child server with v's environment and runs the steps.
func (e *env) orderSteps(ctx context.Context, bin string, v OrdersVariant) ([]OrdersStep, []StatementCost, error) {
	for _, q := range v.Setup {
		if _, err := e.db.ExecContext(ctx, q); err != nil {
			return nil, nil, fmt.Errorf("variant set-up: %w", err)
		}
	}
	costs, err := e.statementCosts(ctx)
	if err != nil {
		return nil, costs, fmt.Errorf("statement costs: %w", err)
	}
	for _, c := range costs {
		e.say("%s: %s: min %s, median %s", v.Name, c.Name, ms(c.Min), ms(c.Median))
	}
	defer func() {
		for _, q := range v.Undo {
			if _, err := e.db.ExecContext(context.Background(), q); err != nil {
				e.say("variant undo: %v", err)
			}
		}
	}()
	srv, err := e.startChildEnv(ctx, bin, "127.0.0.1:0", append(slices.Clip(v.Env), "LEVEE_SLOW_COMMIT="+slowCommit.String()))
	if err != nil {
		return nil, costs, err
	}
	defer srv.stop()
	pid := srv.cmd.Process.Pid
	many := load.New(load.Target{Addr: srv.addr, MarketID: e.hot, Outcomes: 2, Tokens: e.tokens(e.cfg.Clients), Seed: 7})
	defer many.Close()
	one := load.New(load.Target{Addr: srv.addr, MarketID: e.hot, Outcomes: 2, Tokens: e.tokens(1), Seed: 8})
	defer one.Close()
	if err := many.Warm(ctx, 2); err != nil {
		return nil, costs, fmt.Errorf("warm-up: %w", err)
	}
	if err := one.Warm(ctx, 2); err != nil {
		return nil, costs, fmt.Errorf("warm-up: %w", err)
	}
	if e.answer.Status == 0 {
		// The answer the HTTP floor replays (cpufloor.go).
		if e.answer, err = captureAnswer(ctx, srv.addr, e.hot, e.traders[0].token); err != nil {
			e.say("%v", err)
		}
	}
	// A server starts by verifying the whole ledger (ledger.RescanEvery),
	// and PostgreSQL may be vacuuming the history just loaded: measured
	// now, the first steps would carry seconds of that work.
	if d, ok := e.waitIdle(ctx, pid, 30*time.Second); ok {
		e.say("%s: server and PostgreSQL idle after %s", v.Name, d.Round(100*time.Millisecond))
	} else {
		e.say("%s: server and PostgreSQL still busy after %s; measuring anyway", v.Name, d.Round(time.Second))
	}
	// Every variant starts from a checkpoint: with min_wal_size
	// (pgserver.MinWALSize) it leaves the WAL the variants before wrote
	// ready for reuse, so that no variant's commits create WAL segments
	// because of the ones before it, nor carry a checkpoint that they
	// started.
	if _, err := e.db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return nil, costs, fmt.Errorf("checkpoint: %w", err)
	}
	dur := e.cfg.StepDuration
	type plan struct {
		r *load.Runner
		s load.Step
	}
	var plans []plan
	for _, rate := range orderRates {
		plans = append(plans, plan{many, load.Step{Name: fmt.Sprintf("open %.0f/s", rate), Rate: rate, Duration: dur, SlowOver: p99Goal(rate)}})
	}
	plans = append(plans,
		plan{many, load.Step{Name: fmt.Sprintf("closed loop, %d clients", e.cfg.Clients), Duration: dur}},
		plan{many, load.Step{Name: fmt.Sprintf("closed loop, %d clients, Idempotency-Key", e.cfg.Clients), Duration: dur, IdempotencyKeys: true}},
		plan{one, load.Step{Name: "closed loop, 1 client", Duration: dur}},
	)
	var out []OrdersStep
	for _, p := range plans {
		e.resetStatements(ctx)
		j0, h0 := scrapeJournal(srv.addr)
		logAt := fileSize(srv.logPath)
		s0, c0 := procCPU(pid), sampleCPU(e.pgPID)
		res := p.r.Run(ctx, p.s)
		s1, c1 := procCPU(pid), sampleCPU(e.pgPID)
		j1, h1 := scrapeJournal(srv.addr)
		st := OrdersStep{Result: res, Journal: journalBetween(j0, h0, j1, h1)}
		if p.s.Rate > 0 {
			e.attributeStalls(&st, c0.at, c1.at, srv.logPath, logAt)
			e.say("%s: %s: %s; pauses %d, slow flushes %d (longest %s)", v.Name, p.s.Name, st.Stalls, st.Pauses, st.Flushes, ms(st.FlushMax))
		}
		wall := c1.at.Sub(c0.at).Seconds()
		st.CPUGen, st.CPUPG = cores(c0, c1)
		st.CPUServer = (s1 - s0).Seconds() / wall
		out = append(out, st)
		e.say("%s: %s", v.Name, describeOrders(st))
		e.sayStatements(ctx, res.OK)
		if ctx.Err() != nil {
			return out, costs, ctx.Err()
		}
	}
	return out, costs, nil
}

// resetStatements empties pg_stat_statements (-pg-stat-statements).
func (e *env) resetStatements(ctx context.Context) {
	if !e.cfg.StatStatements {
		return
	}
	if _, err := e.db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		e.say("pg_stat_statements: %v", err)
	}
	if _, err := e.db.ExecContext(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
		e.say("pg_stat_statements: %v", err)
	}
}

// sayStatements prints the statements that took the most time since
// resetStatements, per order acknowledged (-pg-stat-statements).
func (e *env) sayStatements(ctx context.Context, orders int) {
	if !e.cfg.StatStatements || orders == 0 {
		return
	}
	var rows []struct {
		Query string  `db:"query"`
		Calls int64   `db:"calls"`
		Exec  float64 `db:"exec"`
		Plan  float64 `db:"plan"`
	}
	if err := e.db.SelectContext(ctx, &rows, `SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query, calls,
		total_exec_time AS exec, total_plan_time AS plan FROM pg_stat_statements
		ORDER BY total_exec_time + total_plan_time DESC LIMIT 12`); err != nil {
		e.say("pg_stat_statements: %v", err)
		return
	}
	for _, r := range rows {
		e.say("  %7.1f µs/order exec %7.1f plan, %6.2f calls/order: %s", 1000*r.Exec/float64(orders), 1000*r.Plan/float64(orders),
			float64(r.Calls)/float64(orders), r.Query)
	}
}

// waitIdle waits until the server (pid) and PostgreSQL together use under
// a tenth of a core over half a second, or for at most within; it says how
// long it waited and whether they went idle.
func (e *env) waitIdle(ctx context.Context, pid int, within time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < within && ctx.Err() == nil {
		s0, c0 := procCPU(pid), sampleCPU(e.pgPID)
		time.Sleep(500 * time.Millisecond)
		s1, c1 := procCPU(pid), sampleCPU(e.pgPID)
		_, pg := cores(c0, c1)
		if server := (s1 - s0).Seconds() / c1.at.Sub(c0.at).Seconds(); server+pg < 0.1 {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}

func describeOrders(s OrdersStep) string {
	return fmt.Sprintf("%-44s %8.0f orders/s  p50 %-9s p99 %-9s p999 %-9s errors %d abandoned %s  cpu server %.2f pg %.2f gen %.2f  %.4f core-ms/order  journal: %s",
		s.Step.Name, s.Throughput, ms(s.P50), ms(s.P99), ms(s.P999), s.Errors(), unsent(s), s.CPUServer, s.CPUPG, s.CPUGen, s.PerOrder(), s.Journal)
}

// unsent is a step's orders never sent and, for an open loop, how late the
// others left after their due time (p50 / p99): the generator's own error,
// inside every latency of the step.
func unsent(s OrdersStep) string {
	if s.Step.Rate == 0 {
		return strconv.Itoa(s.Abandoned)
	}
	return fmt.Sprintf("%d (sent %s / %s late)", s.Abandoned, ms(s.LateP50), ms(s.LateP99))
}

func ordersSection(rep *OrdersReport) string {
	var b strings.Builder
	b.WriteString("## 12. The order path alone (`-scenario orders`)\n\n")
	fmt.Fprintf(&b, "`%s`, %s (took %s); load average %s at the start, %s at the end. %d trades of history. "+
		"`levee serve` runs in a child process, so its CPU, PostgreSQL's and the load generator's (this process) are "+
		"counted apart; core-ms per order is (server + PostgreSQL) CPU over acknowledged orders.\n\n",
		rep.Command, rep.Started.UTC().Format("2006-01-02 15:04 UTC"), rep.Finished.Sub(rep.Started).Round(time.Second),
		rep.Machine.LoadAvg, rep.EndLoadAvg, rep.History)
	writeFailures(&b, rep.Failures, "")
	b.WriteString(ordersNotes)
	b.WriteString(stallMeterMD(rep.PauseMeter))
	for i, fl := range rep.Floors {
		fmt.Fprintf(&b, "### The floor: a durable write with no application (round %d)\n\n", i+1)
		b.WriteString("Measured before the round's variants. Writes arrive as the open-loop steps' orders do and are written " +
			"as a journal with one write in flight writes them (each write takes every arrival waiting; latency from an " +
			"arrival's scheduled time to the end of its write): an 8 KiB write and fdatasync of a file beside PostgreSQL's " +
			"data (the disk alone), and an INSERT of a row per arrival committed in autocommit on one connection " +
			"(PostgreSQL's WAL flush and one round trip). An order at that rate pays at least such a commit.\n\n")
		b.WriteString(floorTableMD(fl))
	}
	for i, v := range rep.Variants {
		if per := max(rep.PerRound, 1); i > 0 && i%per == 0 && i/per-1 < len(rep.CPUFloors) {
			writeCPUFloor(&b, i/per, rep.CPUFloors[i/per-1], currentClosedLoop(rep.Variants, i-per))
		}
		fmt.Fprintf(&b, "### %s\n\n", v.Name)
		b.WriteString("| step | offered/s | acknowledged/s | p50 | p99 | p999 | errors | unsent (open loop: how late the others were sent, p50 / p99) | CPU server | CPU pg | CPU generator | core-ms/order | journal (server's /metrics) |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, s := range v.Steps {
			offered := "closed loop"
			if s.Step.Rate > 0 {
				offered = fmt.Sprintf("%.0f", s.Step.Rate)
			}
			fmt.Fprintf(&b, "| %s | %s | **%.0f** | %s | %s | %s | %d | %s | %.2f | %.2f | %.2f | %.4f | %s |\n",
				s.Step.Name, offered, s.Throughput, ms(s.P50), ms(s.P99), ms(s.P999), s.Errors(), unsent(s),
				s.CPUServer, s.CPUPG, s.CPUGen, s.PerOrder(), s.Journal)
		}
		b.WriteString("\n")
		writeOrderStalls(&b, v.Steps)
		if len(v.Costs) > 0 {
			b.WriteString("| statement, alone, 25 times in a transaction rolled back | min | median |\n|---|---:|---:|\n")
			for _, c := range v.Costs {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Name, ms(c.Min), ms(c.Median))
			}
			b.WriteString("\n")
		}
	}
	per := max(rep.PerRound, 1)
	if n := len(rep.Variants) / per; n > 0 && n <= len(rep.CPUFloors) && len(rep.Variants)%per == 0 {
		writeCPUFloor(&b, n, rep.CPUFloors[n-1], currentClosedLoop(rep.Variants, len(rep.Variants)-per))
	}
	// Each variant against the current one of the same round.
	for r := 0; r+per <= len(rep.Variants); r += per {
		cur := rep.Variants[r]
		for _, prev := range rep.Variants[r+1 : r+per] {
			if len(cur.Steps) != len(prev.Steps) {
				continue
			}
			fmt.Fprintf(&b, "### Ratios, round %d: current / %s\n\n| step | orders/s | p99 | core-ms/order |\n|---|---:|---:|---:|\n", r/per+1, prev.Name)
			for i, s := range cur.Steps {
				p := prev.Steps[i]
				fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", s.Step.Name, ratio(s.Throughput, p.Throughput),
					ratio(float64(s.P99), float64(p.P99)), ratio(s.PerOrder(), p.PerOrder()))
			}
			for i, c := range cur.Costs {
				if i < len(prev.Costs) {
					fmt.Fprintf(&b, "| %s (min time) | | | %s |\n", c.Name, ratio(float64(c.Min), float64(prev.Costs[i].Min)))
				}
			}
			b.WriteString("\n")
		}
	}
	if len(rep.IndexCosts) > 0 {
		b.WriteString("### What each constraint and index of trades costs\n\n`bench/indexcost.sql` in a scratch database of the same server: 40 " +
			"transactions of 1,000 rows into a fresh table shaped like trades, per variant; the median of three runs in turn, in ns per row " +
			"(wall time inside PostgreSQL, so the machine's other load inflates all of them alike).\n\n| table | ns/row | runs |\n|---|---:|---|\n")
		for _, c := range rep.IndexCosts {
			fmt.Fprintf(&b, "| %s | %d | %v |\n", c.Name, c.Median, c.Runs)
		}
		b.WriteString("\n")
	}
	if rep.Profile.Header != "" {
		fmt.Fprintf(&b, "### CPU profile of an in-process closed loop (server and generator)\n\n`%s` (%s)\n\n", rep.Profile.Path, rep.Profile.Header)
		b.WriteString("| function (cumulative) | share |\n|---|---:|\n")
		for _, f := range rep.Profile.Focus {
			fmt.Fprintf(&b, "| `%s` | %.1f%% |\n", f.Name, f.Percent)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// ordersNotes says what issue 18 changed on the order path and how each
// change is measured; the figures of this run follow it.
const ordersNotes = `**What changed (issue 18), and where it is measured.**

- **trades lost its two foreign keys, trades_account_idx and trades_idempotency_idx** (migration order_keys). Each
  foreign key is a trigger and a row look-up per trade, and no query reads trades by account. Measured per row in
  the last table of this section, and per batch as the journal statement's minimum time alone (the variant "trades
  as in 0003" restores them on the same database).
- **Idempotency keys live in order_keys, kept 24 hours and pruned** (engine.KeyRetention, documented in the API
  reference), instead of an index on trades that grew with every keyed order ever placed. A keyed order costs no
  round trip of its own: a retry in flight is joined, a recent one (the last 32,768) answered from memory, and any
  other is priced as new; order_keys' primary key refuses a key stored before, the journal drops that batch and
  writes the rest, and the book answers the retry from its stored trade (market/engine/keys.go). The previous path
  looked every keyed batch up before pricing it. Compare the closed loop with and without keys in each variant.
- **The journal's commit is four round trips instead of five**: the trades, keys, positions and market rows are
  data-modifying CTEs of the ledger's first statement (ledger.Prepared.PostBatchBalancesWith), run before the head
  is locked so that the lock order of docs/locks.md holds. The previous journal stays behind LEVEE_JOURNAL=previous.
- **Less per request in the server**: an order's answer is written without reflection (it was about a tenth of
  the in-process profile), an acknowledged order is logged at debug, metrics series are cached per route and
  status, security headers are made once. go test -bench 'OrderRequest|OrderMiddleware' ./web measures the chain
  and each middleware alone: 59 -> 50 allocations per order request (10,050 -> 9,786 B), accessLog 5 -> 0,
  securityHeaders 7 -> 3; requestTimeout (5) and the strict decoding stay.
- **No planning per commit** (session 5): the journal commits on a connection of its own with plan_cache_mode =
  force_generic_plan (market/engine/journal_conn.go). With -pg-stat-statements this scenario showed PostgreSQL
  planning the journal's first statement on every execution, 0.41-0.56 ms per commit against 0.28-0.39 ms of
  execution for a commit of one order; with the setting, 0.0 ms. The previous journal begins on the pool as before.
- **The commit as one statement** (LEVEE_JOURNAL=one-statement, the variant of that name): the journal's CTEs and
  the database function ledger_append (migration 0022), which locks, checks funds, chains the hashes and writes
  inside PostgreSQL, in autocommit: one round trip instead of four. It saves about 0.1 ms of round trips and costs
  PostgreSQL the hashing and checking that Go does otherwise (go test -bench Append ./ledger, test database:
  0.8-1.3 against 0.85-1.1 ms for one entry, 11-12.5 against 7.7-10 ms for 128). Session 6 measured it again
  now that one ledger entry carries a market's batch: at 256 clients 0.92-1.19x the orders per second of the four
  round trips over four rounds in two runs (no gain beyond this machine's noise), and a longer tail for groups of
  one order (p99 at 300/s 5.0-6.9 ms against 3.7-4.6 ms), so it is still not the default.
- **CHECK constraints off the rows every commit updates** (session 6, migration 0023; the variant "checks" puts
  them back on the same database). PostgreSQL evaluates every CHECK of a table on every UPDATE, whichever columns
  it sets, and builds each from its stored text for every statement: ledger_accounts' three regular expressions
  ran on each trader's balance update (perf on PostgreSQL: 30% of its CPU at 64 traders), and markets' eight and
  ledger_head's four CHECKs were built for every commit. The rules on columns a commit never writes are now
  triggers on the statements that write them.
- **A commit writes only the parts it needs** (session 6): keys, shrinking positions and stakes are inert CTEs when
  the group has none, since PostgreSQL starts every part of a statement even when it writes no row.
- **The CHECKs left on the tables a commit writes are domains** (session 7, migration 0024; the variant "checks"
  now puts back the CHECKs of 0023 and 0024). PostgreSQL also parses and plans every CHECK of a table for every
  statement that writes it: 15% of its CPU for a commit of one order (perf), 6% with the rules on one column as
  domains, whose constraints it keeps parsed per connection. One CHECK per table is left (no overdraft; as many
  quantities as outcomes; the hashes' lengths).
- **Two journal transactions in flight** (session 7, LEVEE_JOURNAL=pipelined, the variant "pipelined"; off by
  default): a book hands its next batch over, priced on top of the one in flight, once that one's transaction holds
  its locks, and the journal writes it on a second connection; a market row is written only at the seq its batch
  was priced after (market/engine/pipeline.go, docs/engine.md). Since session 8 only a batch of 16 orders or more
  (LEVEE_JOURNAL_OVERLAP_FROM) has the next one go beside it, so that low load runs as with one in flight. Since
  session 11 each of the two commits in two round trips (ledger.Session), taking the commit-order mutex once it
  holds the ledger's head.
- **The garbage collector at GOGC=400** (session 8, internal/gctune; the variant "gogc100" runs Go's default, "gogcoff" none). The
  server's live heap is 5-15 MB under load (gctrace), so at GOGC=100 it collected about five times a second: 16% of
  its CPU at 256 clients (perf), and with two cores a mark worker beside the order path.
- **The journal's connection scans no table** (session 8, enable_seqscan = off and jit = off,
  engine.JournalSettings). With 614 accounts the balances' UPDATE read all of ledger_accounts for every commit (a
  generic plan assumes ten rows per array): 0.13 ms against 0.027 ms by index for one order, and ExecScan was 39%
  of the journal backend's CPU at 300 orders/s (perf); after, that backend's CPU at 300 orders/s is about half.
- **One instance of a cluster** (session 8, the variant "cluster"): the current path as one instance on an
  embedded NATS server, holding the hot market's lease and fenced by its epoch in every commit (docs/cluster.md):
  the price of leases and fencing on the same steps.
- **The floor** (session 8, measured at the start of each round): what the disk alone and PostgreSQL alone take for
  writes arriving at the open-loop steps' rates, grouped as the journal groups them. An order's p99 at low load is
  compared with it.

- **Another build of levee** (session 12, -variants bin=PATH, named "levee built at PATH"): a binary built from
  another revision runs the same steps in the same run, so a change is measured against the code before it on the
  same machine at the same moment (git worktree add /tmp/old REV, then in /tmp/old go build -o /tmp/levee-REV
  ./cmd/levee, then make orders BENCHFLAGS="-variants current,bin=/tmp/levee-REV"). Session 12's make orders ran
  main's build of session 11's end (/tmp/levee-8780969, commit 8780969) beside the current path, which since writes the journal's literals in one
  pass (ledger/literal.go), makes a request deadline's timer only when something waits on it
  (web/request_deadline.go) and makes two allocations less per order. A build must know every migration of the
  database it is given: a build from before a new migration refuses it, so such a change is compared through a
  setting of the current build instead (as two-trips below).
- **One round trip per commit, from memory** (session 13, ledger.Session.Remember; the variant "two-trips",
  LEVEE_JOURNAL=two-trips, is the Session without memory, as in sessions 10 to 12): with one transaction in flight
  the journal's Session keeps what its last commit left in the ledger and, when it knows every account of the
  next batch, computes the append from that and sends BEGIN, the rows with the head's lock, the append and COMMIT
  as one message (since session 14 after an unlocked look at the head only while its memory was lately found
  wrong, so that a head another writer keeps moving fails before the rows are written); the append writes only if the head and every account are still as remembered (migration 0025's
  ledger_expect), and otherwise nothing is written and the commit goes in two round trips (docs/engine.md). The
  journal column gives the share of commits in one round trip and their mean (one_trip).
- **The open loop sends on time** (session 13, bench/load/clock.go): the generator used to release due orders
  every 200 µs by time.Sleep, but Go's runtime waits for a timer in epoll_pwait in whole milliseconds, so on an
  idle process each such sleep took about 1.05 ms and orders left up to a millisecond after their due time, which
  counted in their latency (it runs from the due time). A dispatcher on a thread of its own now sleeps until each
  order's due time with clock_nanosleep and a timer slack of 1 ns, and each open-loop step says how late its
  orders were sent (the unsent column: p50 / p99). The floor's paced writes use the same dispatcher.
- **The floor of CPU per order** (session 11, measured after each round's variants, cpufloor.go): Go's net/http
  answering each order's request with the bytes levee serve answered one with (the HTTP half: its server's CPU per
  request), and PostgreSQL writing the rows an order makes it write into copies of those tables with the same indexes,
  batches of 128 orders in one round trip of prepared statements on one connection (the rows half: PostgreSQL's CPU
  per order). Their sum is what an order costs with nothing of Levee's in between, against issue 18's goal of 0.06
  core-ms; the table sets the current path's closed loop beside it.
- **The journal reads its accounts without row locks** (session 11, ledger.Session and ReadAccountsSQL): once it
  holds the ledger's head, in a statement of its own, since every writer of balances holds the head. The four-trips
  variant still locks them.
- **Two round trips per commit** (session 10, ledger.Session; the variant "four-trips" runs the four of sessions 7
  to 9, LEVEE_JOURNAL=four-trips): BEGIN goes with the rows and the ledger's locks, and the append with COMMIT,
  each statement prepared once with SQL PREPARE and sent as EXECUTE with its arguments as quoted literals in a
  simple query (lib/pq sends one statement per round trip otherwise). The hash chain is still computed in Go,
  between the two. In the journal column begin and ledger are then zero: rows includes BEGIN, and commit the
  hashing, the append and the flush.
- **A commit's round trips, and the wait for a thread** (session 9): the journal column now ends with the mean
  time of each round trip of a commit (begin, rows with the ledger's locks, the ledger's append, commit:
  levee_journal_phase_seconds) and how long the server's goroutines waited runnable for a thread
  (levee_go_sched_wait_seconds, p90/p99 as bucket bounds). At 256 clients BEGIN, which PostgreSQL executes in
  microseconds, takes 1.2-1.8 ms, about that wait's p90: about half of each commit is the journal's goroutine
  waiting to run again after PostgreSQL has answered (docs/engine.md).
- **One ledger entry per market per commit** (session 5): kind trades, every trader's cash posting in the order of
  the trades and one net posting per market account, instead of an entry per trade (the previous journal keeps
  those). With -pg-stat-statements the append still costs 46 µs per order at 256 clients, as before: the posting
  and the balance update each order needs dominate, not the entries.
- **Reads and writes that are not system calls to Go's scheduler** (session 15, internal/rawsock): the server's
  HTTP connections and its database connections read and write their non-blocking sockets with raw system calls
  and wait on the poller only when a socket is not ready, so that sysmon no longer takes a P from a thread in a
  write to a loopback socket (often over its 20 µs tick here) and wakes another thread for it. Every variant here
  has it (each is the current build, or another build named so); measured against a build without it in
  docs/engine.md (session 15): about a quarter less server CPU at 300 to 3,000 orders/s, 7-9% at 256 clients.
- **Whose stalls** (session 16, the stalls table under each variant, bench/load/stalls.go): the open-loop steps'
  p99 was set by a few stalls of 10-30 ms each. Each step now keeps its orders over the p99 goal, merges them into
  stalls and sets each beside a meter in a process of its own (a SCHED_FIFO thread that wakes every millisecond: did
  the machine run; a second that writes 8 KiB and calls fdatasync every 20 ms beside PostgreSQL's data: did the disk
  flush) and the journal's commits of 2.5 ms or more, which levee serve logs with their start (LEVEE_SLOW_COMMIT).
  Almost none were the machine or the server outside its commit: they were commits. Most of the long ones were
  commits that created a WAL segment (16 MB of zeros written and flushed under the WAL's write lock: the segments'
  creation times and perf trace of the journal's backend, an 8 ms fsync of a new segment inside a stall), because
  the history and the variants before had used up the segments a checkpoint leaves for reuse. **Levee's private
  PostgreSQL now keeps 1 GB of WAL for reuse (min_wal_size, pgserver.MinWALSize, docs/operations.md) and every
  variant starts from a CHECKPOINT**, so that none creates segments or carries a checkpoint because of the ones
  before it. The stalls left are the disk's own slow flushes (the probe's, up to 10-20 ms), which every durable
  commit on this machine waits for.

**Reading these figures.** CPU per order counts the server's and PostgreSQL's (core-ms/order); the generator's is
apart. Compare a variant only with the other variants of the same round: identical steps minutes apart still move by
10-30% on this machine even when nothing else runs. The journal column says how many orders each commit carried:
at 300/s on an idle machine it is one, and an order's latency is its commit's plus its HTTP round trip.
Each variant starts once the server and PostgreSQL are idle (the server verifies the whole ledger when it starts).
`

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
