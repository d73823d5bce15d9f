package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"levee/bench/hostile"
)

// HostileReport is one run of the hostile scenario.
type HostileReport struct {
	Command           string
	Started, Finished time.Time
	Machine           Machine
	EndLoadAvg        string
	Workers           int
	Timeout           time.Duration
	Run               *hostile.Report
	Causes            []hostileCause // the server's "internal error" log lines, grouped
	StillUp           bool           // /healthz answered 200 after the run
	Ledger            hostile.LedgerCheck
	LedgerVerify      string // what `levee ledger verify` printed
	Failures          []string
}

// hostileCause is one distinct error behind the 5xx, from the server's log.
type hostileCause struct {
	Route, Error string
	Count        int
}

// runHostile is `-scenario hostile` (make hostile): `levee serve --demo` in
// a child process against a private durable PostgreSQL, cfg.HostileN
// generated hostile requests over every route it registers (`levee routes`)
// as every role of the demo city and anonymously, then the ledger verified
// and every balance read.
func runHostile(ctx context.Context, cfg Config, stdout io.Writer) (err error) {
	begin := time.Now()
	rep := &HostileReport{Started: begin, Workers: cfg.HostileWorkers, Timeout: cfg.HostileTimeout,
		Command: "go run ./bench/cmd/levee-bench " + strings.Join(cfg.Args, " ")}
	defer func() {
		rep.Finished, rep.EndLoadAvg = time.Now(), loadAvg()
		err = finishScenario(cfg, stdout, "hostile", hostileSection(rep), rep.Failures, err)
	}()
	if cfg.DatabaseURL != "" {
		return errors.New("-scenario hostile attacks a fresh demo city in its own PostgreSQL: it cannot use -database-url")
	}
	seed := cfg.HostileSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	sc := cfg
	sc.Markets, sc.Traders, sc.Clients = 2, 1, 1
	e, bin, err := setupForChild(ctx, sc, stdout, begin)
	if e != nil {
		defer e.close()
	}
	if err != nil {
		return err
	}
	rep.Machine = describeMachine(ctx, e.db)
	out, err := exec.CommandContext(ctx, bin, "routes").Output()
	if err != nil {
		return fmt.Errorf("levee routes: %w", err)
	}
	routes, err := hostile.ParseRoutes(string(out))
	if err != nil {
		return err
	}
	// The generator stands for many clients behind a proxy on loopback
	// (bench/hostile sets X-Forwarded-For per request): trust it as one, so
	// the per-address throttles see many addresses, as they would.
	os.Setenv("LEVEE_TRUSTED_PROXIES", "127.0.0.1/32")
	srv, err := e.startChild(ctx, bin, "127.0.0.1:0", "--demo")
	if err != nil {
		return err
	}
	defer srv.stop()
	base := "http://" + srv.addr
	hc := &http.Client{Timeout: 30 * time.Second}
	principals, revoked, err := hostile.SignInDemo(ctx, hc, base, filepath.Join(e.dir, "demo-credentials.txt"), benchAdminToken)
	if err != nil {
		return err
	}
	e.say("hostile: %d requests over %d routes as %d callers and anonymously, %d workers, seed %d", cfg.HostileN, len(routes), len(principals), cfg.HostileWorkers, seed)
	rep.Run, err = hostile.Run(ctx, hostile.Config{BaseURL: base, Routes: routes, Principals: principals, Revoked: revoked,
		Requests: cfg.HostileN, Workers: cfg.HostileWorkers, Seed: seed, Timeout: cfg.HostileTimeout,
		Progress: func(sent int, r *hostile.Report) { e.say("hostile: %d sent", sent) }})
	if err != nil {
		return err
	}
	e.say("hostile: %s", rep.Run.Summary())
	st, _ := httpStatus(ctx, base+"/healthz")
	rep.StillUp = st == http.StatusOK
	rep.Ledger = hostile.CheckLedger(ctx, base, e.db)
	cmd := exec.CommandContext(ctx, bin, "ledger", "verify")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+e.url, "LEVEE_DATA="+e.dir)
	verify, verr := cmd.CombinedOutput()
	rep.LedgerVerify = strings.TrimSpace(string(verify))
	if verr != nil {
		rep.Failures = append(rep.Failures, "levee ledger verify: "+oneLine(rep.LedgerVerify))
	}
	e.say("hostile: %s; levee ledger verify: %s", rep.Ledger, rep.LedgerVerify)
	rep.Causes = internalErrors(filepath.Join(e.dir, "levee-child.log"))
	r := rep.Run
	if r.ServerErrors > 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d answers were 5xx", r.ServerErrors))
	}
	if r.Hangs > 0 || r.Resets > 0 || r.OtherTransport > 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d hangs, %d resets, %d other requests without an answer", r.Hangs, r.Resets, r.OtherTransport))
	}
	if !rep.StillUp {
		rep.Failures = append(rep.Failures, "the server did not answer /healthz after the run")
	}
	if !rep.Ledger.Passed() {
		rep.Failures = append(rep.Failures, rep.Ledger.String())
	}
	return ctx.Err()
}

func httpStatus(ctx context.Context, url string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

var numbersRE = regexp.MustCompile(`\b[0-9]+\b`)

// internalErrors groups the server's "internal error" log lines (web's
// error handler writes one for every uncoded error, with its route) by
// route and error, numbers blanked, most frequent first.
func internalErrors(logPath string) []hostileCause {
	f, err := os.Open(logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	counts := map[[2]string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l struct {
			Msg, Method, Path, Error string
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "internal error" {
			continue
		}
		counts[[2]string{l.Method + " " + l.Path, numbersRE.ReplaceAllString(oneLine(l.Error[:min(len(l.Error), 240)]), "N")}]++
	}
	var out []hostileCause
	for k, n := range counts {
		out = append(out, hostileCause{Route: k[0], Error: k[1], Count: n})
	}
	slices.SortFunc(out, func(a, b hostileCause) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Route+a.Error, b.Route+b.Error)
	})
	return out
}

func hostileSection(r *HostileReport) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## 10. Hostile requests\n\n")
	w("Written by `make hostile` (`levee-bench -scenario hostile`), which replaces only this section. `levee serve --demo`\n")
	w("runs in a process of its own against a private durable PostgreSQL; the generator (`bench/hostile`) takes every route\n")
	w("from `levee routes`, fills path parameters with real ids of the demo city or hostile values, mutates a valid body per\n")
	w("route (control characters, hostile decimals and numbers, wrong types, unknown fields, truncated and deeply nested\n")
	w("JSON, huge strings under and over the body limit, multipart uploads), forges tokens, CSRF tokens and\n")
	w("X-Forwarded-For, and sends bursts of eight concurrent requests with one Idempotency-Key, as every role of the demo\n")
	w("city and anonymously, from %d workers; an answer later than %s is a hang. Every 5xx is a failure: a caller can\n", r.Workers, r.Timeout)
	w("cause a 4xx, never a 5xx.\n\n")
	w("```\n%s\n```\n\n", r.Command)
	m := r.Machine
	w("%s, took %s; %d cores, %s; %s; %s; load average %s at the start, %s at the end (a shared machine).\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(time.Second),
		m.NProc, orDash(m.CPUModel), orDash(firstWords(m.PostgreSQL, 2)), orDash(m.Durable), orDash(m.LoadAvg), orDash(r.EndLoadAvg))
	if r.Run == nil {
		w("**The run did not start:** %s\n", strings.Join(r.Failures, "; "))
		return b.String()
	}
	h := r.Run
	w("| | |\n|---|---|\n")
	w("| requests | %d in %s (seed %d; bursts of one Idempotency-Key: %d) |\n", h.Requests, h.Elapsed.Round(time.Second), h.Seed, h.Bursts)
	w("| routes | %d of %d sent requests; %d answered 2xx at least once |\n", h.Covered, h.Routes, h.Answered2xx)
	for _, c := range []string{"2xx", "3xx", "4xx"} {
		w("| %s | %d |\n", c, h.ByClass[c])
	}
	w("| **5xx** | **%d** %s |\n", h.ServerErrors, mark(h.ServerErrors == 0))
	w("| hangs (no answer within %s) | %d %s |\n", r.Timeout, h.Hangs, mark(h.Hangs == 0))
	w("| connections reset or closed before an answer | %d %s |\n", h.Resets, mark(h.Resets == 0))
	w("| other requests without an answer | %d %s |\n", h.OtherTransport, mark(h.OtherTransport == 0))
	w("| server up after the run (`/healthz`) | %s |\n", mark(r.StillUp))
	l := r.Ledger
	w("| ledger (`GET /api/v1/ledger/verify`) | %s, %d entries, trial balance %s %s |\n", map[bool]string{true: "verifies", false: "BROKEN: " + oneLine(l.Problem)}[l.Verified],
		l.Entries, orDash(l.TrialBalance), mark(l.Verified && l.Err == ""))
	w("| `levee ledger verify` | %s |\n", oneLine(r.LedgerVerify))
	w("| sum of every account's balance | %s over %d accounts %s |\n", orDash(l.SumOfAll), l.Accounts, mark(l.SumOfAll != "" && strings.Trim(l.SumOfAll, "-0.") == ""))
	neg := "none"
	if len(l.Negative) > 0 {
		neg = strings.Join(l.Negative, ", ")
	}
	w("| accounts below zero that may not go negative (all but issuance) | %s %s |\n", neg, mark(len(l.Negative) == 0))
	if l.Err != "" {
		w("| ledger check error | %s %s |\n", oneLine(l.Err), failMark)
	}
	w("\n")
	statuses := make([]int, 0, len(h.ByStatus))
	for s := range h.ByStatus {
		statuses = append(statuses, s)
	}
	slices.Sort(statuses)
	var parts []string
	for _, s := range statuses {
		parts = append(parts, fmt.Sprintf("%d ×%d", s, h.ByStatus[s]))
	}
	w("Answers by status: %s.\n\n", strings.Join(parts, ", "))
	if h.ServerErrors > 0 || h.Hangs > 0 {
		w("### The 5xx and hangs, by route\n\n| route | 5xx |\n|---|---|\n")
		routes := make([]string, 0, len(h.ServerErrorsBy))
		for k := range h.ServerErrorsBy {
			routes = append(routes, k)
		}
		slices.SortFunc(routes, func(a, b string) int { return h.ServerErrorsBy[b] - h.ServerErrorsBy[a] })
		for _, k := range routes {
			w("| `%s` | %d |\n", k, h.ServerErrorsBy[k])
		}
		w("\nTheir causes, from the server's log (\"internal error\" lines, numbers blanked):\n\n| route | error | count |\n|---|---|---|\n")
		for _, c := range r.Causes {
			w("| `%s` | %s | %d |\n", c.Route, mdCell(c.Error), c.Count)
		}
		w("\nThe first %d distinct (method, route, status, answer), each with the first request that got it:\n\n", len(h.Failures))
		for _, f := range h.Failures {
			w("- %d× `%s %s` as %s → %d: sent %s %s; answered %s\n", f.Count, f.Method, f.Route, f.Caller, f.Status,
				mdCode(f.URL), mdCode(f.Request), mdCode(f.Response))
		}
		w("\n")
	}
	if len(h.TransportSamples) > 0 {
		w("Requests without an answer (first %d):\n\n", len(h.TransportSamples))
		for _, s := range h.TransportSamples {
			w("- %s\n", mdCode(s))
		}
		w("\n")
	}
	writeFailures(&b, r.Failures, "no 5xx, no hang, no cut connection; the ledger verifies and every balance is where it may be")
	w("The short version runs in `make test`: `TestHostileGenerated` (`cmd/levee`, a few thousand requests;\n")
	w("`LEVEE_HOSTILE_N` and `LEVEE_HOSTILE_SEED` change the count and the seed).\n")
	return b.String()
}

// mdCode quotes s as inline code for a Markdown line ("" if empty).
func mdCode(s string) string {
	if s == "" {
		return "(empty)"
	}
	return "`` " + strings.ReplaceAll(oneLine(s), "`", "'") + " ``"
}

// mdCell makes s safe in a table cell.
func mdCell(s string) string { return strings.ReplaceAll(oneLine(s), "|", "\\|") }
