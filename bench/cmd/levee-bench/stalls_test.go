package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"levee/bench/load"
)

// slowCommits reads the lines the journal writes (engine's
// TestSlowCommitLogged checks the journal writes them so) from the offset
// on, and skips everything else.
func TestSlowCommitsReadTheServersLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "levee-child.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(f, nil))
	started := time.Date(2026, 12, 7, 9, 0, 0, 123456789, time.UTC)
	log.Warn("slow journal commit", slog.Duration("total", 3*time.Millisecond), slog.Time("started", started.Add(-time.Hour)))
	at := fileSize(path)
	log.Info("http request", slog.Duration("elapsed", time.Second))
	log.Warn("slow journal commit", slog.Duration("total", 7*time.Millisecond), slog.Time("started", started), slog.Int("orders", 3))
	f.WriteString("not json\n")
	f.Close()
	got := slowCommits(path, at)
	if len(got) != 1 || !got[0].From.Equal(started) || got[0].To.Sub(got[0].From) != 7*time.Millisecond {
		t.Fatalf("got %+v", got)
	}
}

func TestOrderStallsTable(t *testing.T) {
	var b strings.Builder
	steps := []OrdersStep{
		{Result: load.Result{Step: load.Step{Name: "open 300/s", Rate: 300, SlowOver: p99Goal(300)}},
			Stalls: load.Attribution{Stalls: [4]int{1, 0, 0, 2}, Orders: [4]int{4, 0, 0, 2}, Longest: [3]time.Duration{9 * time.Millisecond}},
			Pauses: 3, PauseMax: 9 * time.Millisecond, Flushes: 2, FlushMax: 12 * time.Millisecond, SlowLines: 5},
		{Result: load.Result{Step: load.Step{Name: "closed loop, 256 clients"}}},
	}
	writeOrderStalls(&b, steps)
	out := b.String()
	for _, want := range []string{"| open 300/s | 4.00ms | 6 | 3 stalls (6 orders): 1 while the machine paused (4 orders; pause ≤ 9.0ms)", "| 3, longest 9.00ms | 2, longest 12.0ms | 5 |"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "closed loop") {
		t.Errorf("a closed loop has no goal to stall against:\n%s", out)
	}
}
