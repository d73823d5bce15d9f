package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"levee/migrations/dbtest"
)

// TestQuickRun runs the whole harness in -quick mode against a test
// database: a small history, one-second steps, the websocket clients (if the
// server routes them) in process. It proves that every section runs and the
// report is written; the figures mean nothing.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole benchmark harness")
	}
	out := filepath.Join(t.TempDir(), "RESULTS.md")
	cfg, err := parseFlags([]string{"-quick", "-database-url", dbtest.NewURL(t), "-go-bench=false",
		"-ws-inprocess", "-mem-duration", "100ms", "-out", out}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress strings.Builder
	if err := run(ctx, cfg, &progress); err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	report := string(b)
	for _, want := range []string{
		"## Summary against the issue's targets",
		"| trades acknowledged | 2000 of 2000 |",
		"**ready: pool + engine + first order**",
		"## 3. Query plans of the order path",
		"## 5. Engine in memory",
		"### Engine (`market/engine`)",
		"### Naive baseline",
		"### Ceiling",
		"durable / naive",
		"## 7. Websocket fan-out",
		"| subscribed | 200 of 200",
		// The fan-out's baseline in the same run: the same clients
		// against one write(2) per subscriber.
		"| **the floor**, right after, same clients",
		"| Levee / the floor | p50 ",
		"one write(2) per subscriber and nothing else, in the same run: p99 ",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	// The journal's connection scans no table (engine.JournalSettings): on
	// this small database a generic plan would otherwise scan
	// ledger_accounts and markets. ledger_head is one row with no key to
	// look it up by; its scan is costed as disabled, which must not make
	// PostgreSQL compile the statement (JIT took 140-200 ms a statement).
	for _, sec := range strings.Split(report, "\n### ") {
		if !strings.Contains(sec, "(generic plan)") {
			continue
		}
		if strings.Contains(sec, "JIT:") {
			t.Errorf("a generic plan of the journal's connection was compiled (JIT):\n### %s", sec)
		}
		for _, m := range regexp.MustCompile(`Seq Scan on (\w+)`).FindAllStringSubmatch(sec, -1) {
			if m[1] != "ledger_head" {
				t.Errorf("a generic plan of the journal's connection scans %s:\n### %s", m[1], sec)
			}
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", report)
	}
}

func TestFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-quick", "-history", "500"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.History != 500 || cfg.StepDuration != time.Second || len(cfg.Rates) != 2 {
		t.Fatalf("quick mode with -history: %+v", cfg)
	}
	cfg, err = parseFlags(nil, io.Discard)
	if err != nil || cfg.History != 1_000_000 || cfg.Clients != 256 || len(cfg.Rates) != 5 || cfg.WSClients != 10_000 {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	if cfg.HostileN != 100_000 || cfg.HostileWorkers != 16 {
		t.Fatalf("hostile defaults: %+v", cfg)
	}
	if cfg, err = parseFlags([]string{"-quick", "-scenario", "hostile"}, io.Discard); err != nil || cfg.HostileN != 3000 {
		t.Fatalf("quick hostile: %+v %v", cfg, err)
	}
	for _, bad := range [][]string{{"-rates", "10,x"}, {"-markets", "1"}, {"-ws-url", "ws://x"}, {"-hostile-requests", "0"}, {"-scenario", "chaos"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
