package load

import (
	"fmt"
	"slices"
	"time"
)

// An open-loop step's p99 on this machine is often set by one stall: at
// 3,000 orders/s, a 30 ms stall delays about a hundred orders, more than
// the step's slowest 1%. To say whose stall it was, the benchmark keeps
// the slow orders (Step.SlowOver), merges them into stalls, and sets each
// beside the spans when something else was slow: the machine itself (a
// real-time thread that woke late, MeasurePauses) and the server's journal
// commits (LEVEE_SLOW_COMMIT's log).

// Slow is one acknowledged order that took longer than Step.SlowOver.
type Slow struct {
	Due     time.Time // when it was due (its latency counts from here)
	Latency time.Duration
}

// Span is an interval of wall-clock time.
type Span struct{ From, To time.Time }

// Overlaps reports whether s and o share an instant.
func (s Span) Overlaps(o Span) bool { return !s.To.Before(o.From) && !o.To.Before(s.From) }

// Stall is a run of slow orders whose waits overlap.
type Stall struct {
	Span
	Orders int
	Worst  time.Duration
}

// Stalls merges slow orders (sorted by due time) into stalls: an order
// joins the stall before it when it was due before that stall's last
// order was answered.
func Stalls(slow []Slow) []Stall {
	var out []Stall
	for _, o := range slow {
		end := o.Due.Add(o.Latency)
		if n := len(out); n > 0 && !o.Due.After(out[n-1].To) {
			st := &out[n-1]
			st.Orders++
			st.Worst = max(st.Worst, o.Latency)
			if end.After(st.To) {
				st.To = end
			}
			continue
		}
		out = append(out, Stall{Span: Span{From: o.Due, To: end}, Orders: 1, Worst: o.Latency})
	}
	return out
}

// Cause names what else was slow during a stall.
type Cause int

const (
	// CauseMachine: a real-time thread on the machine woke late (the
	// machine, or the VM under it, ran nothing then).
	CauseMachine Cause = iota
	// CauseDisk: the disk probe's flush was slow (every durable commit's
	// flush waited then too).
	CauseDisk
	// CauseCommit: a journal commit was slow.
	CauseCommit
	// CauseNeither: none of these; the time went elsewhere in the server,
	// the generator or the kernel's network path.
	CauseNeither
	causes
)

// Attribution counts a step's stalls by cause.
type Attribution struct {
	Stalls [causes]int // by Cause
	Orders [causes]int // slow orders in those stalls
	// Longest is, per cause but the last, the longest span of that cause
	// behind a stall counted under it.
	Longest [CauseNeither]time.Duration
}

// Attribute sets each stall beside the machine's pauses, the disk probe's
// slow flushes and the slow commits (each in any order). A slow commit is
// how a pause or a slow flush shows in the server, so a stall counts under
// the most basic cause (the machine, then the disk, then the commit) whose
// spans cover a quarter of it or more; else under the one that covers most
// of it (a short pause inside a long stall did not make it); a stall that
// none overlaps is CauseNeither.
func Attribute(stalls []Stall, pauses, flushes, commits []Span) Attribution {
	var a Attribution
	for _, st := range stalls {
		var covered, longest [CauseNeither]time.Duration
		for k, spans := range [CauseNeither][]Span{pauses, flushes, commits} {
			for _, p := range spans {
				if p.Overlaps(st.Span) {
					covered[k] += overlap(p, st.Span)
					longest[k] = max(longest[k], p.To.Sub(p.From))
				}
			}
		}
		c := CauseNeither
		for k := range CauseNeither {
			if longest[k] > 0 && 4*covered[k] >= st.To.Sub(st.From) {
				c = k
				break
			}
		}
		if c == CauseNeither {
			for k := range CauseNeither {
				if longest[k] > 0 && (c == CauseNeither || covered[k] > covered[c]) {
					c = k
				}
			}
		}
		if c != CauseNeither {
			a.Longest[c] = max(a.Longest[c], longest[c])
		}
		a.Stalls[c]++
		a.Orders[c] += st.Orders
	}
	return a
}

// overlap is how long a and b share.
func overlap(a, b Span) time.Duration {
	from, to := a.From, a.To
	if b.From.After(from) {
		from = b.From
	}
	if b.To.Before(to) {
		to = b.To
	}
	return max(to.Sub(from), 0)
}

// Total is the number of stalls and of slow orders in them.
func (a Attribution) Total() (stalls, orders int) {
	for c := range causes {
		stalls += a.Stalls[c]
		orders += a.Orders[c]
	}
	return stalls, orders
}

// String says it in a sentence for a report's cell.
func (a Attribution) String() string {
	stalls, orders := a.Total()
	if stalls == 0 {
		return "no stalls"
	}
	return fmt.Sprintf("%d stalls (%d orders): %d while the machine paused (%d orders; pause ≤ %s), %d while the disk flushed slowly (%d orders; flush ≤ %s), %d in a slow commit (%d orders; commit ≤ %s), %d in none of these (%d orders)",
		stalls, orders, a.Stalls[CauseMachine], a.Orders[CauseMachine], ms(a.Longest[CauseMachine]),
		a.Stalls[CauseDisk], a.Orders[CauseDisk], ms(a.Longest[CauseDisk]),
		a.Stalls[CauseCommit], a.Orders[CauseCommit], ms(a.Longest[CauseCommit]), a.Stalls[CauseNeither], a.Orders[CauseNeither])
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

// Within returns the spans that overlap w, sorted by start.
func Within(spans []Span, w Span) []Span {
	var out []Span
	for _, s := range spans {
		if s.Overlaps(w) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Span) int { return a.From.Compare(b.From) })
	return out
}
