package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"levee/bench/hostile"
)

// TestHostileGenerated is the short version of make hostile: a few thousand
// generated hostile requests over every route the server registers, as
// every role of the demo city and anonymously, and not one may get a 5xx,
// hang or lose its connection; then the ledger must verify with every
// balance where it may be. LEVEE_HOSTILE_N and LEVEE_HOSTILE_SEED change the
// count and the seed (the answers also depend on the order in which the
// workers' requests arrive).
func TestHostileGenerated(t *testing.T) {
	n, seed := 2000, uint64(21)
	if v, err := strconv.Atoi(os.Getenv("LEVEE_HOSTILE_N")); err == nil && v > 0 {
		n = v
	}
	if v, err := strconv.ParseUint(os.Getenv("LEVEE_HOSTILE_SEED"), 10, 64); err == nil {
		seed = v
	}
	m, _, _ := MustRunMainClock(t, func(c *Config) {
		c.Demo = true
		c.RatePerAccount, c.RatePerAddress = 1e6, 1e6 // the limiter is not under test: every caller comes from 127.0.0.1
	})
	base := "http://" + m.Addr()
	principals, revoked, err := hostile.SignInDemo(t.Context(), http.DefaultClient, base, m.credentialsPath(), testAdminToken)
	if err != nil {
		t.Fatal(err)
	}
	var routes []hostile.Route
	for _, r := range routeTable(m.web) {
		routes = append(routes, hostile.Route{Method: r.Method, Path: r.Path})
	}
	// make hostile takes its routes from `levee routes`: it must list what
	// the running server serves.
	var printed strings.Builder
	if code, err := run(t.Context(), []string{"routes"}, &printed, io.Discard); code != 0 || err != nil {
		t.Fatalf("levee routes: %d %v", code, err)
	}
	if listed, err := hostile.ParseRoutes(printed.String()); err != nil || !slices.Equal(listed, routes) {
		t.Fatalf("levee routes lists %d routes (%v), the server serves %d:\n%s", len(listed), err, len(routes), printed.String())
	}
	rep, err := hostile.Run(t.Context(), hostile.Config{BaseURL: base, Routes: routes, Principals: principals, Revoked: revoked,
		Requests: n, Workers: 8, Seed: seed, Timeout: 10 * time.Second, Check: apiChecker(t)})
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	t.Log(rep.Summary())
	if rep.Failed() {
		var b strings.Builder
		for _, f := range rep.Failures {
			fmt.Fprintf(&b, "\n  %d× %s %s as %s → %d\n     sent %s %s\n     got  %s", f.Count, f.Method, f.Route, f.Caller, f.Status, f.URL, f.Request, f.Response)
		}
		for _, s := range rep.TransportSamples {
			fmt.Fprintf(&b, "\n  no answer: %s", s)
		}
		t.Errorf("seed %d (LEVEE_HOSTILE_SEED=%d LEVEE_HOSTILE_N=%d replays it): %s%s", seed, seed, n, rep.Summary(), b.String())
	}
	if c := hostile.CheckLedger(t.Context(), base, m.DB); !c.Passed() {
		t.Errorf("seed %d: after the run, %s", seed, c)
	}
}
