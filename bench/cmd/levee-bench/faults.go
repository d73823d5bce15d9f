package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"levee"
	"levee/bench/faults"
	"levee/settlement/ledger"
)

// FaultCycle is one fault while orders flow.
type FaultCycle struct {
	Down     time.Duration // how long the fault lasted (kill: until the new process listened)
	Recovery time.Duration // from the end of the fault to the first order acknowledged after it
	Err      string
}

// FaultKind is one kind of fault, repeated, and every answer given while
// its cycles ran.
type FaultKind struct {
	Name      string
	What      string
	Cycles    []FaultCycle
	Answers   int
	Acked     int
	Refused   int            // 503 with the code "unavailable"
	Transport int            // no HTTP answer: the server was gone
	Other     map[string]int // anything else, by status and code: must stay empty
	// Latency of the 503 answers: refusing must be fast.
	RefusalP50, RefusalP99, RefusalMax time.Duration
}

// FaultAudit is what the database holds after every fault, against what the
// load generator was told.
type FaultAudit struct {
	Orders             int // distinct keyed orders sent
	Acked              int
	FoundOnce          int // acknowledged, stored once with the acknowledged seq
	Lost               int // acknowledged, not stored: must be 0
	WrongSeq           int // acknowledged, stored with another seq: must be 0
	Duplicates         int // stored more than once: must be 0
	InFlight           int // not acknowledged but stored (committed as the fault struck)
	NotStored          int // not acknowledged and not stored
	RetryFailed        int // retries (same key) not answered 201, or answered with another seq
	NotOnceAfter       int // orders not stored exactly once after the retries: must be 0
	PositionMismatches int
	CashMismatches     int
	LedgerOK           bool
	LedgerEntries      int64
	LedgerProblem      string
	Err                string
}

// Passed reports whether nothing was lost, doubled or left inconsistent.
func (a FaultAudit) Passed() bool {
	return a.Err == "" && a.Acked > 0 && a.Lost == 0 && a.WrongSeq == 0 && a.Duplicates == 0 && a.RetryFailed == 0 &&
		a.NotOnceAfter == 0 && a.PositionMismatches == 0 && a.CashMismatches == 0 && a.LedgerOK
}

// FaultReport is one run of the fault scenario.
type FaultReport struct {
	Command           string
	Started, Finished time.Time
	Machine           Machine
	EndLoadAvg        string
	Workers           int
	Kinds             []FaultKind
	Audit             FaultAudit
	Failures          []string
}

// runFaults is `-scenario faults`: a private durable PostgreSQL, `levee
// serve` in a child process, cfg.FaultWorkers residents sending keyed orders
// one after the other, and while they do: SIGKILL and restart of the server,
// PostgreSQL stopped and started, every PostgreSQL connection taken by
// another client. Then every order is looked up in the database.
func runFaults(ctx context.Context, cfg Config, stdout io.Writer) (err error) {
	begin := time.Now()
	rep := &FaultReport{Started: begin, Workers: cfg.FaultWorkers, Command: "go run ./bench/cmd/levee-bench " + strings.Join(cfg.Args, " ")}
	defer func() {
		rep.Finished, rep.EndLoadAvg = time.Now(), loadAvg()
		err = finishScenario(cfg, stdout, "faults", faultSection(rep), rep.Failures, err)
	}()
	if cfg.DatabaseURL != "" {
		return errors.New("-scenario faults stops and starts its own PostgreSQL: it cannot use -database-url")
	}
	sc := cfg
	sc.Markets, sc.Traders, sc.Clients = 2, cfg.FaultWorkers, 1
	e, bin, err := setupForChild(ctx, sc, stdout, begin)
	if e != nil {
		defer e.close()
	}
	if err != nil {
		return err
	}
	rep.Machine = describeMachine(ctx, e.db)
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	srv, err := e.startChild(ctx, bin, addr)
	if err != nil {
		return err
	}
	defer func() {
		if srv != nil { // a failed restart leaves none
			srv.stop()
		}
	}()
	tokens := e.tokens(cfg.FaultWorkers)
	l := newAckLoad(addr, e.hot, tokens)
	l.start()
	if _, err := l.waitAck(ctx, time.Now(), 10*time.Second); err != nil {
		l.finish()
		return fmt.Errorf("before any fault: %w", err)
	}

	pause := func() error {
		select {
		case <-time.After(cfg.FaultEvery):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Each fault returns when it has ended; the recovery is timed from then.
	type fault struct {
		name, what string
		cycles     int
		strike     func() (ended time.Time, err error)
	}
	plan := []fault{
		{"SIGKILL + restart of levee serve", "the server process is killed with SIGKILL (no shutdown, no flush) and started again at once on the same address",
			cfg.Kills, func() (time.Time, error) {
				srv.kill()
				srv, err = e.startChild(ctx, bin, addr)
				return time.Now(), err
			}},
		{fmt.Sprintf("PostgreSQL stopped for %s", cfg.FaultDown), "PostgreSQL is stopped (fast shutdown), kept down, and started again; the server is not restarted",
			cfg.PGStops, func() (time.Time, error) {
				if err := e.pg.Stop(); err != nil {
					return time.Now(), err
				}
				select {
				case <-time.After(cfg.FaultDown):
				case <-ctx.Done():
				}
				err := e.startPG(ctx)
				return time.Now(), err
			}},
		{fmt.Sprintf("PostgreSQL connections exhausted for %s", cfg.FaultDown), "another client takes every connection PostgreSQL allows (max_connections 200) and, every 250 ms, closes the server's from the server side and takes their slots too; then lets go (the time shown includes opening the hog's connections)",
			cfg.Exhaustions, func() (time.Time, error) {
				hog, err := faults.NewHog(ctx, e.url)
				if err != nil {
					return time.Now(), err
				}
				defer hog.Release()
				for t0 := time.Now(); time.Since(t0) < cfg.FaultDown && ctx.Err() == nil; time.Sleep(250 * time.Millisecond) {
					if _, err := hog.EvictOthers(ctx); err != nil {
						return time.Now(), err
					}
				}
				hog.Release()
				return time.Now(), nil
			}},
	}
	var windows [][2]time.Time
	for _, f := range plan {
		k := FaultKind{Name: f.name, What: f.what}
		from := time.Now()
		for i := 0; i < f.cycles && ctx.Err() == nil; i++ {
			if err := pause(); err != nil {
				break
			}
			t0 := time.Now()
			ended, err := f.strike()
			c := FaultCycle{Down: ended.Sub(t0)}
			if err != nil {
				c.Err = err.Error()
				rep.Failures = append(rep.Failures, fmt.Sprintf("%s, cycle %d: %v", f.name, i+1, err))
				k.Cycles = append(k.Cycles, c)
				break
			}
			if c.Recovery, err = l.waitAck(ctx, ended, 30*time.Second); err != nil {
				c.Err = err.Error()
				rep.Failures = append(rep.Failures, fmt.Sprintf("%s, cycle %d: %v", f.name, i+1, err))
			}
			k.Cycles = append(k.Cycles, c)
			e.say("faults: %s, cycle %d/%d: down %s, first order acknowledged %s after", f.name, i+1, f.cycles, ms(c.Down), ms(c.Recovery))
		}
		rep.Kinds = append(rep.Kinds, k)
		windows = append(windows, [2]time.Time{from, time.Now()})
	}
	time.Sleep(cfg.FaultEvery)
	answers := l.finish()
	for i := range rep.Kinds {
		tallyFaultKind(&rep.Kinds[i], answers, windows[i][0], windows[i][1])
	}
	e.say("faults: auditing %d orders", len(answers))
	rep.Audit = e.auditFaults(ctx, l, answers)
	if !rep.Audit.Passed() {
		rep.Failures = append(rep.Failures, "the audit failed: see the table")
	}
	e.say("faults: %+v", rep.Audit)
	return ctx.Err()
}

func tallyFaultKind(k *FaultKind, answers []answer, from, to time.Time) {
	k.Other = map[string]int{}
	var refusals []time.Duration
	for _, a := range answers {
		if a.Sent.Before(from) || !a.Sent.Before(to) {
			continue
		}
		k.Answers++
		switch {
		case a.Status == http.StatusCreated:
			k.Acked++
		case a.Status == http.StatusServiceUnavailable && a.Code == levee.EUNAVAILABLE:
			k.Refused++
			refusals = append(refusals, a.Took)
		case a.Status == 0:
			k.Transport++
		default:
			k.Other[fmt.Sprintf("%d %s", a.Status, a.Code)]++
		}
	}
	slices.Sort(refusals)
	k.RefusalP50, k.RefusalP99 = pct(refusals, .5), pct(refusals, .99)
	if len(refusals) > 0 {
		k.RefusalMax = refusals[len(refusals)-1]
	}
}

// auditFaults looks every order up, retries the unacknowledged ones with
// their keys, and checks positions, cash and the ledger.
func (e *env) auditFaults(ctx context.Context, l *ackLoad, answers []answer) (a FaultAudit) {
	fail := func(err error) FaultAudit { a.Err = err.Error(); return a }
	before, err := faults.StoredByKey(ctx, e.db, "fault-%")
	if err != nil {
		return fail(err)
	}
	a.Orders = len(answers)
	hc := &http.Client{Timeout: 20 * time.Second}
	// Retries go out one worker's keys after the other, the workers side by
	// side, as the residents themselves would retry.
	retries := make([][]answer, len(l.tokens))
	for _, o := range answers {
		seqs := before[o.Key]
		if len(seqs) > 1 {
			a.Duplicates++
		}
		if o.Status == http.StatusCreated {
			a.Acked++
			switch {
			case len(seqs) == 0:
				a.Lost++
			case seqs[0] != o.Seq:
				a.WrongSeq++
			case len(seqs) == 1:
				a.FoundOnce++
			}
			continue
		}
		if len(seqs) > 0 {
			a.InFlight++
		} else {
			a.NotStored++
		}
		retries[o.Worker] = append(retries[o.Worker], o)
	}
	var failed atomic.Int64
	var wg sync.WaitGroup
	for _, rs := range retries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, o := range rs {
				seqs := before[o.Key]
				r := l.send(hc, o.Key, o.Worker, o.Outcome)
				if r.Status != http.StatusCreated || (len(seqs) == 1 && r.Seq != seqs[0]) {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	a.RetryFailed = int(failed.Load())
	after, err := faults.StoredByKey(ctx, e.db, "fault-%")
	if err != nil {
		return fail(err)
	}
	for _, o := range answers {
		if len(after[o.Key]) != 1 {
			a.NotOnceAfter++
		}
	}
	if a.PositionMismatches, err = faults.PositionMismatches(ctx, e.db); err != nil {
		return fail(err)
	}
	// Each trader was credited 1,000,000 (createTraders) and only traded since.
	for w, tok := range l.tokens {
		req, _ := http.NewRequest("GET", "http://"+l.addr+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			return fail(fmt.Errorf("cash of worker %d: %w", w, err))
		}
		var me struct {
			ID   string `json:"id"`
			Cash string `json:"cash"`
		}
		json.NewDecoder(resp.Body).Decode(&me)
		resp.Body.Close()
		id, _ := strconv.ParseInt(me.ID, 10, 64)
		spent, err := faults.NetSpent(ctx, e.db, id)
		if err != nil {
			return fail(err)
		}
		if (levee.Units(1_000_000) - levee.MustMicros(spent)).String() != me.Cash {
			a.CashMismatches++
		}
	}
	r, err := ledger.New(e.db).Verify(ctx)
	if err != nil {
		return fail(fmt.Errorf("verify the ledger: %w", err))
	}
	a.LedgerOK, a.LedgerEntries, a.LedgerProblem = r.OK, r.Entries, r.Problem
	return a
}

func faultSection(r *FaultReport) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## 8. Faults\n\n")
	w("Written by `make faults` (`levee-bench -scenario faults`), which replaces only this section. `levee serve` runs in a\n")
	w("process of its own against a private durable PostgreSQL; %d residents each send keyed orders (`Idempotency-Key`)\n", r.Workers)
	w("one after the other, backing off 20 ms after a refusal, and the load generator records every answer. Each fault\n")
	w("strikes while they trade; recovery is timed from the end of the fault to the first order acknowledged after it.\n\n")
	w("```\n%s\n```\n\n", r.Command)
	m := r.Machine
	w("%s, took %s; %d cores, %s; %s; %s; load average %s at the start, %s at the end (a shared machine).\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(time.Second),
		m.NProc, orDash(m.CPUModel), orDash(firstWords(m.PostgreSQL, 2)), orDash(m.Durable), orDash(m.LoadAvg), orDash(r.EndLoadAvg))
	w("| fault | cycles | fault lasted (median) | recovery median / max | orders answered | acknowledged | 503 unavailable | 503 latency p50 / p99 / max | no answer (server gone) | other answers |\n")
	w("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, k := range r.Kinds {
		var downs, recs []time.Duration
		for _, c := range k.Cycles {
			downs, recs = append(downs, c.Down), append(recs, c.Recovery)
		}
		slices.Sort(downs)
		slices.Sort(recs)
		maxRec := time.Duration(0)
		if len(recs) > 0 {
			maxRec = recs[len(recs)-1]
		}
		w("| %s | %d | %s | %s / %s | %d | %d | %d | %s / %s / %s | %d | %s |\n", k.Name, len(k.Cycles), ms(pct(downs, .5)),
			ms(pct(recs, .5)), ms(maxRec), k.Answers, k.Acked, k.Refused, ms(k.RefusalP50), ms(k.RefusalP99), ms(k.RefusalMax),
			k.Transport, otherAnswers(k.Other))
	}
	w("\n")
	for _, k := range r.Kinds {
		w("- **%s**: %s.\n", k.Name, k.What)
	}
	a := r.Audit
	w("\n### Audit: every order looked up in the database\n\n| | |\n|---|---|\n")
	w("| keyed orders sent | %d |\n", a.Orders)
	w("| acknowledged (201) | %d |\n", a.Acked)
	w("| acknowledged and stored exactly once, with the acknowledged seq | %d |\n", a.FoundOnce)
	w("| **acknowledged but lost** | **%d** %s |\n", a.Lost, mark(a.Lost == 0))
	w("| acknowledged with one seq, stored with another | %d %s |\n", a.WrongSeq, mark(a.WrongSeq == 0))
	w("| **stored more than once** | **%d** %s |\n", a.Duplicates, mark(a.Duplicates == 0))
	w("| not acknowledged, not stored | %d |\n", a.NotStored)
	w("| not acknowledged but stored (committed as the fault struck; the retry with its key returns it) | %d |\n", a.InFlight)
	w("| retries with the same key not answered 201 with the stored seq | %d %s |\n", a.RetryFailed, mark(a.RetryFailed == 0))
	w("| orders not stored exactly once after the retries | %d %s |\n", a.NotOnceAfter, mark(a.NotOnceAfter == 0))
	w("| positions that are not the sum of their trades | %d %s |\n", a.PositionMismatches, mark(a.PositionMismatches == 0))
	w("| traders whose cash is not credit − net cost of their trades | %d of %d %s |\n", a.CashMismatches, r.Workers, mark(a.CashMismatches == 0))
	ledgerCell := fmt.Sprintf("verifies, %d entries %s", a.LedgerEntries, passMark)
	if !a.LedgerOK {
		ledgerCell = "BROKEN: " + oneLine(a.LedgerProblem) + " " + failMark
	}
	w("| ledger (hash chain and trial balance) | %s |\n", ledgerCell)
	if a.Err != "" {
		w("| audit error | %s %s |\n", oneLine(a.Err), failMark)
	}
	w("\n")
	writeFailures(&b, r.Failures, "nothing acknowledged was lost or doubled, and the service recovered from every fault by itself")
	w("The short versions of these faults run in `make test`: `TestKillDuringLoad`, `TestDatabaseOutageDuringLoad`,\n")
	w("`TestConnectionExhaustion`, `TestDiskFull`, `TestClientsDisconnectMidRequest`, `TestReconnectStorm` (`cmd/levee`).\n")
	return b.String()
}

func otherAnswers(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(n, len(f))], " ")
}
