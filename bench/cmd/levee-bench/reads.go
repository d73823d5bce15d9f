package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"levee/bench/load"
)

// floodPaths are the public reads the flood sends, in turn: the expensive
// ones (the ledger's verification and export, the census, the ledger page)
// and the markets list.
var floodPaths = []string{"/api/v1/ledger/verify", "/api/v1/census", "/api/v1/markets", "/api/v1/ledger/entries?limit=1000", "/ledger"}

// floodClients is how many anonymous clients flood the public reads.
const floodClients = 50

// ReadsReport is one run of the reads scenario.
type ReadsReport struct {
	Command           string
	Started, Finished time.Time
	Machine           Machine
	EndLoadAvg        string
	LedgerEntries     int64
	Rate              float64
	Quiet, Flooded    load.Result
	Flood             FloodResult
	Endpoints         []EndpointCost
	Failures          []string
}

// FloodResult counts the flood's answers.
type FloodResult struct {
	Served, Refused, Failed int64 // 2xx-3xx, 4xx (429 when busy), 5xx or no answer
	FirstFailure            string
}

// EndpointCost is the latency of one public GET, asked one at a time.
type EndpointCost struct {
	Path     string
	Status   int
	P50, Max time.Duration
	Bytes    int
}

// runReads is `-scenario reads`: `levee serve` in a child process on the
// bench city; orders at a fixed open-loop rate, first alone, then while
// floodClients anonymous clients request the public reads as fast as they
// are answered; then each public GET endpoint alone, for its worst case.
func runReads(ctx context.Context, cfg Config, stdout io.Writer) (err error) {
	begin := time.Now()
	rep := &ReadsReport{Started: begin, Command: "go run ./bench/cmd/levee-bench " + strings.Join(cfg.Args, " ")}
	defer func() {
		rep.Finished, rep.EndLoadAvg = time.Now(), loadAvg()
		err = finishScenario(cfg, stdout, "reads", readsSection(rep), rep.Failures, err)
	}()
	sc := cfg
	sc.Markets, sc.Clients = 2, min(cfg.Clients, 32)
	sc.Traders = max(cfg.Traders, sc.Clients)
	e, bin, err := setupForChild(ctx, sc, stdout, begin)
	if e != nil {
		defer e.close()
	}
	if err != nil {
		return err
	}
	rep.Machine = describeMachine(ctx, e.db)
	e.db.GetContext(ctx, &rep.LedgerEntries, `SELECT seq FROM ledger_head`)
	srv, err := e.startChild(ctx, bin, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer srv.stop()
	base := "http://" + srv.addr

	r := load.New(load.Target{Addr: srv.addr, MarketID: e.hot, Outcomes: 2, Tokens: e.tokens(sc.Clients), Seed: 11})
	defer r.Close()
	if err := r.Warm(ctx, 2); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	// A rate the machine keeps up with easily, so that latency, not
	// throughput, is what the flood can change.
	rep.Rate = 200
	if cfg.Quick {
		rep.Rate = 100
	}
	step := load.Step{Rate: rep.Rate, Duration: max(cfg.StepDuration, 5*time.Second), Drain: 10 * time.Second}
	step.Name = "orders alone"
	rep.Quiet = r.Run(ctx, step)
	e.say("reads: orders alone at %.0f/s: p50 %s p99 %s", rep.Rate, ms(rep.Quiet.P50), ms(rep.Quiet.P99))

	fl := load.StartFlood(base, floodPaths, floodClients)
	time.Sleep(time.Second) // the flood at full strength before the orders are timed
	step.Name = "orders during the flood"
	rep.Flooded = r.Run(ctx, step)
	fl.Stop()
	rep.Flood = FloodResult{Served: fl.Served.Load(), Refused: fl.Refused.Load(), Failed: fl.Failed.Load(), FirstFailure: fl.FirstFailure()}
	e.say("reads: orders during the flood: p50 %s p99 %s; flood served %d, refused %d, failed %d",
		ms(rep.Flooded.P50), ms(rep.Flooded.P99), rep.Flood.Served, rep.Flood.Refused, rep.Flood.Failed)
	if rep.Flood.Failed > 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d public reads failed (first: %s)", rep.Flood.Failed, rep.Flood.FirstFailure))
	}

	hc := &http.Client{Timeout: 30 * time.Second}
	for _, p := range publicGETs(e.hot) {
		rep.Endpoints = append(rep.Endpoints, measureGET(ctx, hc, base, p, 20))
	}
	return ctx.Err()
}

// publicGETs are the anonymous GET endpoints measured one by one, with the
// largest page each allows.
func publicGETs(market int64) []string {
	m := fmt.Sprintf("/api/v1/markets/%d", market)
	return []string{
		"/healthz", "/readyz", "/metrics",
		"/api/v1/districts", "/api/v1/ledger/verify", "/api/v1/ledger/entries?limit=1000",
		"/api/v1/markets?limit=200", m, m + "/quote?outcome=0&side=buy&shares=5", m + "/trades?limit=500", m + "/history?points=2000",
		"/api/v1/census", "/api/v1/census.csv", "/api/v1/qf/rounds", "/api/v1/budget-lines",
		"/api/v1/tenders", "/api/v1/cases", "/api/v1/charter", "/api/v1/emergency", "/api/v1/emergencies", "/api/v1/quorum/proposals",
		"/markets", fmt.Sprintf("/markets/%d", market), "/ledger", "/census", "/rounds", "/tenders", "/cases",
	}
}

// measureGET asks path n times, one after the other.
func measureGET(ctx context.Context, hc *http.Client, base, path string, n int) EndpointCost {
	c := EndpointCost{Path: path}
	var took []time.Duration
	for range n {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			c.Status = -1
			break
		}
		b, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took = append(took, time.Since(start))
		c.Status, c.Bytes = resp.StatusCode, int(b)
	}
	if len(took) > 0 {
		slices.Sort(took)
		c.P50, c.Max = took[len(took)/2], took[len(took)-1]
	}
	return c
}

func readsSection(r *ReadsReport) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## 11. Orders while the public reads are flooded\n\n")
	w("Written by `levee-bench -scenario reads`, which replaces only this section. `levee serve` runs in a process of its\n")
	w("own on the bench city (ledger of %d entries at the start, durable PostgreSQL). Orders are offered at %.0f/s (open loop) on one\n", r.LedgerEntries, r.Rate)
	w("market, first alone, then while %d anonymous clients request `%s` in turn, each\n", floodClients, strings.Join(floodPaths, "`, `"))
	w("as soon as it has its last answer. The server admits one anonymous read per two cores at a time (the others queue for\n")
	w("up to 2 s, then get 429) and serves the ledger's verification from a cache extended with new entries only.\n\n")
	w("```\n%s\n```\n\n", r.Command)
	m := r.Machine
	w("%s, took %s; %d cores, %s; %s; load average %s at the start, %s at the end (a shared machine).\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(time.Second), m.NProc, orDash(m.CPUModel),
		orDash(firstWords(m.PostgreSQL, 2)), orDash(m.LoadAvg), orDash(r.EndLoadAvg))
	w("| orders at %.0f/s | acknowledged | p50 | p99 | max | other answers |\n| --- | --- | --- | --- | --- | --- |\n", r.Rate)
	for _, s := range []load.Result{r.Quiet, r.Flooded} {
		w("| %s | %d of %d | %s | %s | %s | %s |\n", s.Step.Name, s.OK, s.Sent, ms(s.P50), ms(s.P99), ms(s.Max), otherAnswers(refusals(s)))
	}
	w("\nThe flood: %d public reads answered, %d refused (429 while busy), %d failed (5xx or no answer)%s.\n\n",
		r.Flood.Served, r.Flood.Refused, r.Flood.Failed, orEmpty(", first: ", r.Flood.FirstFailure))
	w("Each public GET alone (20 requests one after the other, the largest page it allows):\n\n")
	w("| endpoint | status | bytes | p50 | worst |\n| --- | --- | --- | --- | --- |\n")
	for _, c := range r.Endpoints {
		w("| `%s` | %d | %d | %s | %s |\n", c.Path, c.Status, c.Bytes, ms(c.P50), ms(c.Max))
	}
	if len(r.Failures) > 0 {
		w("\n**Failures**: %s\n", strings.Join(r.Failures, "; "))
	}
	return b.String()
}

// refusals names a step's answers other than 201, for otherAnswers.
func refusals(r load.Result) map[string]int {
	m := map[string]int{}
	for st, n := range r.Status {
		m[fmt.Sprintf("HTTP %d", st)] += n
	}
	if r.Transport > 0 {
		m["transport error"] = r.Transport
	}
	if r.Abandoned > 0 {
		m["abandoned"] = r.Abandoned
	}
	return m
}

func orEmpty(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
