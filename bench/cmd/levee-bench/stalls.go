package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"levee/bench/load"
)

// slowCommit is LEVEE_SLOW_COMMIT for the orders scenario's servers: a
// commit of one order takes about 0.7 ms here, so one of 2.5 ms is a
// stall of the database (or of the journal's goroutine) that an order at
// the open-loop steps' goals could not absorb. In the closed loop every
// commit is longer (5-15 ms) and is logged: about 200 lines a second.
const slowCommit = 2500 * time.Microsecond

// p99Goal is issue 18's p99 goal at an open-loop rate: an order slower than
// it is part of a stall.
func p99Goal(rate float64) time.Duration {
	switch {
	case rate <= 300:
		return 4 * time.Millisecond
	case rate <= 1000:
		return 5 * time.Millisecond
	default:
		return 8 * time.Millisecond
	}
}

// attributeStalls sets a step's stalls beside the machine's pauses, the
// disk probe's slow flushes and the slow commits the server logged (from
// byte logAt of its log).
func (e *env) attributeStalls(st *OrdersStep, from, to time.Time, logPath string, logAt int64) {
	var pauses, flushes []load.Span
	if e.meter != nil {
		// Orders answered during the drain after the step are in it too.
		w := load.Span{From: from, To: to.Add(time.Second)}
		pauses, flushes = load.Within(e.meter.Spans(load.KindPause), w), load.Within(e.meter.Spans(load.KindFlush), w)
	}
	count := func(spans []load.Span) (n int, longest time.Duration) {
		for _, p := range spans {
			if !p.From.Before(from) && !p.To.After(to) {
				n++
				longest = max(longest, p.To.Sub(p.From))
			}
		}
		return n, longest
	}
	st.Pauses, st.PauseMax = count(pauses)
	st.Flushes, st.FlushMax = count(flushes)
	commits := slowCommits(logPath, logAt)
	st.SlowLines = len(commits)
	st.Stalls = load.Attribute(load.Stalls(st.Slow), pauses, flushes, commits)
	st.Slow = nil // kept in the report as the attribution only
}

// slowCommits reads the journal's "slow journal commit" lines of levee
// serve's JSON log from byte at on, as the spans of those commits.
func slowCommits(path string, at int64) []load.Span {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(at, io.SeekStart); err != nil {
		return nil
	}
	var out []load.Span
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg     string    `json:"msg"`
			Started time.Time `json:"started"`
			Total   int64     `json:"total"` // slog writes a Duration as nanoseconds
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "slow journal commit" || l.Started.IsZero() {
			continue
		}
		out = append(out, load.Span{From: l.Started, To: l.Started.Add(time.Duration(l.Total))})
	}
	return out
}

// fileSize is the size of the file at path, or 0.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// stallMeterMD says, once per report, how the stalls tables count.
func stallMeterMD(meter string) string {
	if meter == "" {
		meter = "did not run"
	}
	return "**The stall meter.** Each open-loop step keeps the orders over its p99 goal and merges those whose waits overlap " +
		"into stalls, then sets each beside what else was slow then and counts it under the first of these that covers a quarter of it or more (else the one that covers most of it): a pause " +
		"of the machine (a thread sleeping 1 ms at a time woke 2 ms or more late), a slow flush of the disk (a probe writing " +
		"8 KiB beside PostgreSQL's data and calling fdatasync every 20 ms took 2 ms or more), or a journal commit of " +
		slowCommit.String() + " or more in the server's log (LEVEE_SLOW_COMMIT), else none of these. In this run: " + meter + ".\n\n"
}

// writeOrderStalls writes a variant's open-loop stalls table.
func writeOrderStalls(b io.StringWriter, steps []OrdersStep) {
	var rows []OrdersStep
	for _, s := range steps {
		if s.Step.SlowOver > 0 {
			rows = append(rows, s)
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("Stalls: the orders over each open-loop step's p99 goal (the stall meter above says how they are counted).\n\n")
	b.WriteString("| step | goal | orders over it | stalls and what else was slow | the machine's pauses during the step | the probe's slow flushes | slow commits logged |\n|---|---:|---:|---|---|---|---:|\n")
	some := func(n int, longest time.Duration) string {
		if n == 0 {
			return "none"
		}
		return fmt.Sprintf("%d, longest %s", n, ms(longest))
	}
	for _, s := range rows {
		_, over := s.Stalls.Total()
		b.WriteString(fmt.Sprintf("| %s | %s | %d | %s | %s | %s | %d |\n", s.Step.Name, ms(s.Step.SlowOver), over, s.Stalls,
			some(s.Pauses, s.PauseMax), some(s.Flushes, s.FlushMax), s.SlowLines))
	}
	b.WriteString("\n")
}
