package load

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStallsMergeOverlappingWaits(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	slow := []Slow{
		{Due: at(0), Latency: 10 * time.Millisecond}, // 0-10
		{Due: at(5), Latency: 12 * time.Millisecond}, // 5-17: joins
		{Due: at(17), Latency: 5 * time.Millisecond}, // due at the end: joins
		{Due: at(30), Latency: 6 * time.Millisecond}, // a stall of its own
	}
	got := Stalls(slow)
	if len(got) != 2 {
		t.Fatalf("stalls: %+v", got)
	}
	if s := got[0]; s.Orders != 3 || !s.From.Equal(at(0)) || !s.To.Equal(at(22)) || s.Worst != 12*time.Millisecond {
		t.Errorf("first stall: %+v", s)
	}
	if s := got[1]; s.Orders != 1 || !s.From.Equal(at(30)) || !s.To.Equal(at(36)) {
		t.Errorf("second stall: %+v", s)
	}
	if Stalls(nil) != nil {
		t.Error("stalls of no slow orders")
	}
}

func TestAttributeTakesTheMostBasicCauseThatCoversAQuarter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	span := func(from, to int) Span {
		return Span{From: t0.Add(time.Duration(from) * time.Millisecond), To: t0.Add(time.Duration(to) * time.Millisecond)}
	}
	stall := func(from, to, orders int) Stall { return Stall{Span: span(from, to), Orders: orders} }
	stalls := []Stall{
		stall(0, 10, 5),    // the pause covers 7 ms: the machine
		stall(20, 30, 3),   // only a commit: the commit
		stall(40, 50, 2),   // only a commit, 1 ms of it: the commit
		stall(60, 70, 1),   // a flush of 3 ms: the disk, though a commit covers it all
		stall(80, 120, 4),  // a pause of 2 ms and a commit of 15: neither basic cause covers a quarter; the commit most
		stall(200, 210, 2), // nothing: none of these
		stall(300, 340, 6), // a flush of 11 ms (over a quarter) and a commit over all: the disk
	}
	pauses := []Span{span(2, 9), span(100, 102)}
	flushes := []Span{span(61, 64), span(310, 321)}
	commits := []Span{span(5, 8), span(25, 29), span(49, 52), span(60, 70), span(80, 95), span(295, 345)}
	a := Attribute(stalls, pauses, flushes, commits)
	want := Attribution{Stalls: [causes]int{1, 2, 3, 1}, Orders: [causes]int{5, 7, 9, 2},
		Longest: [CauseNeither]time.Duration{7 * time.Millisecond, 11 * time.Millisecond, 15 * time.Millisecond}}
	if a != want {
		t.Errorf("got %+v, want %+v", a, want)
	}
	if st, o := a.Total(); st != 7 || o != 23 {
		t.Errorf("total %d stalls, %d orders", st, o)
	}
	if s := a.String(); !strings.Contains(s, "7 stalls (23 orders): 1 while the machine paused (5 orders; pause ≤ 7.0ms), 2 while the disk flushed slowly (7 orders; flush ≤ 11.0ms), 3 in a slow commit (9 orders; commit ≤ 15.0ms)") ||
		!strings.Contains(s, "1 in none of these (2 orders)") {
		t.Errorf("said %q", s)
	}
	if s := (Attribution{}).String(); s != "no stalls" {
		t.Errorf("no stalls said %q", s)
	}
}

// The meter says how it runs, then reports pauses and slow flushes as
// spans: run for a while it must start and stop cleanly, probe the disk in
// the directory given and leave no file there, and what it prints must be
// read back by Meter.line.
func TestMeasurePausesPrintsWhatMeterReads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	dir := t.TempDir()
	if err := MeasurePauses(ctx, &out, dir); err != nil {
		t.Fatal(err)
	}
	m := &Meter{spans: map[string][]Span{}}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		m.line(l)
	}
	m.line("flush 1000000000 1005000000")
	m.line("garbage")
	if n := m.Notes(); !strings.Contains(n, "pauses: a thread at") || !strings.Contains(n, "flushes: a thread at") {
		t.Errorf("notes %q", n)
	}
	spans := m.Spans(KindFlush)
	if last := spans[len(spans)-1]; last.To.Sub(last.From) != 5*time.Millisecond || !last.From.Equal(time.Unix(1, 0)) {
		t.Errorf("spans %+v", spans)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the probe left %v", left)
	}
}
