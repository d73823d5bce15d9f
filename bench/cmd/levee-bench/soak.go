package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"levee/bench/fanout"
	"levee/bench/load"
)

// SoakSample is the server seen from outside at one moment, with the order
// latency of the interval before it.
type SoakSample struct {
	At         time.Duration // since the soak began
	RSS        float64       // bytes (process_resident_memory_bytes)
	Goroutines float64       // go_goroutines
	WSConns    float64       // levee_ws_connections
	Throughput float64       // acknowledged orders/s in the interval
	P50, P99   time.Duration
	Errors     int
	Probe      ProbeSample // what the machine and PostgreSQL did in the interval
}

// SoakReport is one run of the soak scenario.
type SoakReport struct {
	Command           string
	Started, Finished time.Time
	Machine           Machine
	EndLoadAvg        string
	Duration          time.Duration
	Clients           int
	Capacity          float64 // closed-loop orders/s measured first
	Rate              float64 // offered during the soak: half the capacity
	Subscribers       int
	WatchEvents       int        // trades published on the watched market
	Before, After     SoakSample // before any subscriber, and once everything stopped
	WithSubs          SoakSample // the subscribers connected, before the capacity step
	Samples           []SoakSample
	Total             load.Result // every order of the soak
	Fanout            fanout.Summary
	Failures          []string
}

// runSoak is `-scenario soak`: `levee serve` in a child process; first its
// closed-loop capacity on one market, then cfg.Soak of orders at half that
// rate while cfg.SoakSubs websocket clients (in a second process) follow
// another market that trades at a steady 10/s. Every cfg.Sample the
// server's /metrics gives its memory and goroutines, and the load generator
// the latency of the interval.
func runSoak(ctx context.Context, cfg Config, stdout io.Writer) (err error) {
	begin := time.Now()
	rep := &SoakReport{Started: begin, Duration: cfg.Soak, Clients: cfg.SoakClients, Subscribers: cfg.SoakSubs,
		Command: "go run ./bench/cmd/levee-bench " + strings.Join(cfg.Args, " ")}
	defer func() {
		rep.Finished, rep.EndLoadAvg = time.Now(), loadAvg()
		err = finishScenario(cfg, stdout, "soak", soakSection(rep), rep.Failures, err)
	}()
	sc := cfg
	sc.Markets, sc.Traders, sc.Clients = 2, cfg.SoakClients+1, cfg.SoakClients
	e, bin, err := setupForChild(ctx, sc, stdout, begin)
	if e != nil {
		defer e.close()
	}
	if err != nil {
		return err
	}
	rep.Machine = describeMachine(ctx, e.db)
	srv, err := e.startChild(ctx, bin, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer func() {
		if srv != nil { // a failed restart leaves none
			srv.stop()
		}
	}()

	tokens := e.tokens(cfg.SoakClients)
	r := load.New(load.Target{Addr: srv.addr, MarketID: e.hot, Outcomes: 2, Tokens: tokens, Seed: 7})
	defer r.Close()
	if err := r.Warm(ctx, 2); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if rep.Before, err = scrapeSample(ctx, srv.addr); err != nil {
		return err
	}
	// The capacity is measured with the subscribers connected and their
	// market trading: half of it is then half of what this machine can do
	// in the soak's conditions.
	capDur := min(10*time.Second, cfg.Soak/2)
	// The subscribers wait for more trades than the watched market can
	// make in the time (so none leaves early) until stopped at the end.
	most := int((cfg.Soak+capDur).Seconds()*wsPace) + 100
	wc, ready, err := startWSClients(ctx, "ws://"+srv.addr+"/api/v1/ws", e.cold, cfg.SoakSubs, most, 2*(cfg.Soak+capDur)+time.Minute)
	if err != nil {
		return err
	}
	e.say("soak: subscriber process %s", ready)
	soakCtx, endSoak := context.WithCancel(ctx)
	defer endSoak()
	watchDone := make(chan error, 1)
	go func() {
		n, werr := paceWatchTrades(soakCtx, srv.addr, e.traders[len(e.traders)-1].token, e.cold, most-100)
		rep.WatchEvents = n // read only after watchDone
		watchDone <- werr
	}()
	if rep.WithSubs, err = scrapeSample(ctx, srv.addr); err != nil {
		return err
	}
	probe := newSoakProbe(e.db, e.pgPID, srv.cmd.Process.Pid, wc.cmd.Process.Pid)
	go probe.poll(soakCtx, 200*time.Millisecond)
	capStep := r.Run(ctx, load.Step{Name: "capacity (closed loop)", Duration: capDur})
	rep.Capacity = capStep.Throughput
	rep.Rate = rep.Capacity / 2
	e.say("soak: capacity %.0f orders/s closed loop with %d clients; soaking at %.0f/s for %s", rep.Capacity, cfg.SoakClients, rep.Rate, cfg.Soak)
	if rep.Rate <= 0 {
		return fmt.Errorf("capacity step acknowledged nothing: %s", capStep.FirstError)
	}

	probe.take(ctx, srv.addr) // the soak's intervals start here
	start := time.Now()
	end := start.Add(cfg.Soak)
	var all []load.Result
	for time.Now().Before(end) && ctx.Err() == nil {
		res := r.Run(ctx, load.Step{Name: "soak", Rate: rep.Rate, Duration: min(cfg.Sample, time.Until(end)), Drain: cfg.Sample})
		all = append(all, res)
		s, err := scrapeSample(ctx, srv.addr)
		if err != nil {
			rep.Failures = append(rep.Failures, err.Error())
			break
		}
		s.At, s.Throughput, s.P50, s.P99, s.Errors = time.Since(start), res.Throughput, res.P50, res.P99, res.Errors()
		s.Probe = probe.take(ctx, srv.addr)
		rep.Samples = append(rep.Samples, s)
		pr := s.Probe
		e.say("soak: %s rss %.0f MiB goroutines %.0f ws %.0f  %.0f orders/s p50 %s p99 %s errors %d | cores levee %.2f pg %.2f bench %.2f other %.2f steal %.2f cpu-wait %.0f%% io-wait %.0f%% | ckpt %d wal %.1f MiB sync %.0fms | server mean %s p99 %s | commits %.0f mean %s >1s %.0f | gc %s | waits %s | vacuum %s",
			s.At.Round(time.Second), s.RSS/(1<<20), s.Goroutines, s.WSConns, s.Throughput, ms(s.P50), ms(s.P99), s.Errors,
			pr.CoresLevee, pr.CoresPG, pr.CoresBench, pr.CoresOther, pr.Steal, 100*pr.CPUWait, 100*pr.IOWait,
			pr.Checkpoints, pr.WALMiB, pr.WALSyncMs, ms(pr.ServerMean), upTo(pr.ServerP99), pr.Commits, ms(pr.CommitMean), pr.CommitsOver1s, ms(pr.GCPause), pr.Waits, pr.Vacuum)
	}
	endSoak()
	if err := <-watchDone; err != nil {
		rep.Failures = append(rep.Failures, "watch-market trades: "+err.Error())
	}
	wc.stop()
	if rep.Fanout, err = wc.summary(); err != nil {
		rep.Failures = append(rep.Failures, "subscribers: "+err.Error())
	}
	rep.Total = mergeResults(all)
	// Once everything has stopped, the server should give back what the
	// subscribers and the load took.
	time.Sleep(3 * time.Second)
	if rep.After, err = scrapeSample(ctx, srv.addr); err != nil {
		rep.Failures = append(rep.Failures, err.Error())
	}
	return ctx.Err()
}

// paceWatchTrades trades n times on the watched market at wsPace, so the
// subscribers have a steady stream to time.
func paceWatchTrades(ctx context.Context, addr, token string, market int64, n int) (sent int, err error) {
	hc := &http.Client{Timeout: 20 * time.Second}
	tick := time.NewTicker(time.Second / wsPace)
	defer tick.Stop()
	for i := 0; i < n; i++ {
		side := "buy"
		if i%2 == 1 {
			side = "sell"
		}
		req, _ := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("http://%s/api/v1/markets/%d/orders", addr, market),
			strings.NewReader(`{"outcome":0,"side":"`+side+`","shares":"1"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if ctx.Err() != nil {
			return sent, nil // the soak is over
		}
		if err != nil {
			return sent, fmt.Errorf("order %d: %w", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return sent, fmt.Errorf("order %d: HTTP %d", i, resp.StatusCode)
		}
		sent++
		select {
		case <-tick.C:
		case <-ctx.Done():
			return sent, nil
		}
	}
	return sent, nil
}

// scrapeSample reads the server's memory, goroutines and websocket
// connections from its /metrics.
func scrapeSample(ctx context.Context, addr string) (SoakSample, error) {
	var s SoakSample
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(strings.TrimSpace(value), 64)
		switch name {
		case "process_resident_memory_bytes":
			s.RSS = f
		case "go_goroutines":
			s.Goroutines = f
		case "levee_ws_connections":
			s.WSConns = f
		}
	}
	if s.RSS == 0 || s.Goroutines == 0 {
		return s, errors.New("scrape /metrics: no process_resident_memory_bytes or go_goroutines")
	}
	return s, sc.Err()
}

// mergeResults adds up the intervals of the soak; the percentiles are the
// worst interval's (the intervals' samples are not kept).
func mergeResults(rs []load.Result) load.Result {
	var t load.Result
	t.Status = map[int]int{}
	for _, r := range rs {
		t.Due += r.Due
		t.Sent += r.Sent
		t.OK += r.OK
		t.Transport += r.Transport
		t.Abandoned += r.Abandoned
		t.Elapsed += r.Elapsed
		for k, v := range r.Status {
			t.Status[k] += v
		}
		t.P50, t.P99, t.Max = max(t.P50, r.P50), max(t.P99, r.P99), max(t.Max, r.Max)
	}
	if t.Elapsed > 0 {
		t.Throughput = float64(t.OK) / t.Elapsed.Seconds()
	}
	return t
}

// slope fits y = a + b·t by least squares and returns b per hour.
func slope(samples []SoakSample, y func(SoakSample) float64) float64 {
	n := float64(len(samples))
	if n < 2 {
		return 0
	}
	var st, sy, stt, sty float64
	for _, s := range samples {
		t := s.At.Hours()
		st, sy, stt, sty = st+t, sy+y(s), stt+t*t, sty+t*y(s)
	}
	d := n*stt - st*st
	if d == 0 {
		return 0
	}
	return (n*sty - st*sy) / d
}

func soakSection(r *SoakReport) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## 9. Soak\n\n")
	w("Written by `make soak` (`levee-bench -scenario soak`), which replaces only this section. `levee serve` runs in a\n")
	w("process of its own against a private durable PostgreSQL. %d websocket subscribers, in a second process, follow a\n", r.Subscribers)
	w("market that trades 10 times a second; with them connected, the server's closed-loop capacity on another market is\n")
	w("measured with %d clients, then orders are offered at half that rate (open loop) for %s. Every sample reads the server's `/metrics`\n", r.Clients, r.Duration)
	w("(`process_resident_memory_bytes`, `go_goroutines`, `levee_ws_connections`) and the latency of the interval before it.\n\n")
	w("```\n%s\n```\n\n", r.Command)
	m := r.Machine
	w("%s, took %s; %d cores, %s; %s; %s; load average %s at the start, %s at the end (a shared machine: other work may\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(time.Second), m.NProc, orDash(m.CPUModel),
		orDash(firstWords(m.PostgreSQL, 2)), orDash(m.Durable), orDash(m.LoadAvg), orDash(r.EndLoadAvg))
	w("have run meanwhile). The load generator, the subscribers, the server and PostgreSQL share the cores.\n\n")
	if len(r.Samples) == 0 {
		w("**No samples**: %s\n", strings.Join(r.Failures, "; "))
		return b.String()
	}
	first, last := r.Samples[0], r.Samples[len(r.Samples)-1]
	var maxRSS, maxG float64
	var worst SoakSample
	for _, s := range r.Samples {
		maxRSS, maxG = max(maxRSS, s.RSS), max(maxG, s.Goroutines)
		if s.P99 > worst.P99 {
			worst = s
		}
	}
	mib := func(f float64) string { return fmt.Sprintf("%.0f MiB", f/(1<<20)) }
	t := r.Total
	w("| | |\n|---|---|\n")
	w("| capacity (closed loop, %d clients, subscribers connected) | %.0f orders/s |\n", r.Clients, r.Capacity)
	w("| offered during the soak | %.0f orders/s for %s |\n", r.Rate, r.Duration)
	w("| acknowledged | %d of %d due (%.0f orders/s); errors %d, abandoned %d |\n", t.OK, t.Due, t.Throughput, t.Errors(), t.Abandoned)
	w("| order latency p99 per interval: first / last / worst | %s / %s / %s (at %s) |\n", ms(first.P99), ms(last.P99), ms(worst.P99), worst.At.Round(time.Second))
	w("| order latency p50 per interval: first / last | %s / %s |\n", ms(first.P50), ms(last.P50))
	w("| server RSS: no subscribers / subscribers connected / first sample / last / max / all gone | %s / %s / %s / %s / %s / %s |\n", mib(r.Before.RSS), mib(r.WithSubs.RSS), mib(first.RSS), mib(last.RSS), mib(maxRSS), mib(r.After.RSS))
	w("| RSS slope over the soak (least squares) | %+.1f MiB/hour |\n", slope(r.Samples, func(s SoakSample) float64 { return s.RSS / (1 << 20) }))
	w("| goroutines: no subscribers / subscribers connected / first sample / last / max / all gone | %.0f / %.0f / %.0f / %.0f / %.0f / %.0f |\n", r.Before.Goroutines, r.WithSubs.Goroutines, first.Goroutines, last.Goroutines, maxG, r.After.Goroutines)
	w("| goroutine slope over the soak | %+.1f/hour |\n", slope(r.Samples, func(s SoakSample) float64 { return s.Goroutines }))
	f := r.Fanout
	w("| subscribers | %d of %d subscribed (%d failed) |\n", f.Subscribed, f.Clients, f.Failed)
	w("| watched-market trades published / receipts missing (trades × subscribers − received) / gaps | %d / %d / %d |\n", r.WatchEvents, r.WatchEvents*f.Subscribed-f.Pairs, f.Gaps)
	w("| fan-out latency (commit → receipt) p50 / p99 / max | %.1f / %.1f / %.1f ms |\n", f.P50ms, f.P99ms, f.MaxMs)
	writeStalls(w, r.Samples)
	w("\n<details><summary>every sample</summary>\n\n| at | RSS | goroutines | ws connections | orders/s | p50 | p99 | errors |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Samples {
		w("| %s | %s | %.0f | %.0f | %.0f | %s | %s | %d |\n", s.At.Round(time.Second), mib(s.RSS), s.Goroutines, s.WSConns, s.Throughput, ms(s.P50), ms(s.P99), s.Errors)
	}
	w("\n</details>\n\n")
	w("<details><summary>what the machine and PostgreSQL did in each interval</summary>\n\n")
	w("Cores: CPU used in the interval by the server (`levee serve`), PostgreSQL, the load generator and subscriber processes (bench), and every\n")
	w("other process on the machine (other). CPU wait: the share of the interval in which some runnable task waited for a core\n")
	w("(`/proc/pressure/cpu`). Server: the order latency as the server timed it (its `/metrics` histogram; the p99 is a bucket's\n")
	w("upper bound); the load generator's p99 adds the time due orders waited for a free client. Commits: the journal's\n")
	w("transactions in the interval (the server's `/metrics`) and their mean time. GC: the server's stop-the-world pauses,\n")
	w("summed. Waits: PostgreSQL's active client backends by wait event, averaged over polls every 200 ms (CPU: none).\n\n")
	w("| at | p99 | server: mean / p99 | cores levee / pg / bench / other | CPU wait | checkpoints | WAL | commits (mean) | > 1 s | GC | waits | autovacuum |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Samples {
		p := s.Probe
		w("| %s | %s | %s / %s | %.2f / %.2f / %.2f / **%.2f** | %.0f%% | %d | %.1f MiB | %.0f (%s) | %.0f | %s | %s | %s |\n", s.At.Round(time.Second), ms(s.P99),
			ms(p.ServerMean), upTo(p.ServerP99), p.CoresLevee, p.CoresPG, p.CoresBench, p.CoresOther, 100*p.CPUWait, p.Checkpoints, p.WALMiB, p.Commits, ms(p.CommitMean),
			p.CommitsOver1s, ms(p.GCPause), orDash(p.Waits), orDash(p.Vacuum))
	}
	w("\n</details>\n\n")
	writeFailures(&b, r.Failures, "")
	return b.String()
}

// writeStalls compares the intervals whose p99 passed a second with the
// others: what the rest of the machine, PostgreSQL and the server's GC did
// in each kind.
func writeStalls(w func(string, ...any), samples []SoakSample) {
	type agg struct {
		n                              int
		other, wait, levee, pg, commit float64
		ckpt                           int64
		gc                             time.Duration
		vac                            int
	}
	var slow, calm agg
	for _, s := range samples {
		a := &calm
		if s.P99 > time.Second {
			a = &slow
		}
		p := s.Probe
		a.n++
		a.other, a.wait, a.levee, a.pg = a.other+p.CoresOther, a.wait+p.CPUWait, a.levee+p.CoresLevee, a.pg+p.CoresPG
		a.commit += p.CommitMean.Seconds()
		a.ckpt += p.Checkpoints
		a.gc = max(a.gc, p.GCPause)
		if p.Vacuum != "" {
			a.vac++
		}
	}
	row := func(name string, a agg) {
		if a.n == 0 {
			w("| %s | 0 | | | | | | | |\n", name)
			return
		}
		n := float64(a.n)
		w("| %s | %d | %.2f | %.0f%% | %.2f / %.2f | %s | %d | %s | %d |\n", name, a.n, a.other/n, 100*a.wait/n, a.levee/n, a.pg/n,
			ms(time.Duration(a.commit/n*float64(time.Second))), a.ckpt, ms(a.gc), a.vac)
	}
	w("\nIntervals whose order latency p99 passed 1 s against the others (means over the intervals; per-interval figures below):\n\n")
	w("| intervals | count | cores used by other processes | CPU wait | cores levee / pg | journal commit (mean) | checkpoints | GC pauses in the worst interval | with autovacuum |\n|---|---|---|---|---|---|---|---|---|\n")
	row("p99 > 1 s", slow)
	row("p99 ≤ 1 s", calm)
	w("\n")
}
