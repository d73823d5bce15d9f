// Package load drives POST /api/v1/markets/{id}/orders of a running Levee
// with many keep-alive HTTP/1.1 clients, each a trader with its own token:
// at a fixed arrival rate (open loop, latency counted from the moment a
// request was due, so a slow server cannot hide its queue) or as fast as the
// answers come (closed loop). It records the latency of every acknowledged
// order.
package load

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Target is the market under load and the traders who trade it.
type Target struct {
	Addr     string   // host:port of the HTTP server
	MarketID int64    // the one hot market
	Outcomes int      // its number of outcomes
	Tokens   []string // one bearer token per client; len(Tokens) clients
	Seed     uint64
}

// Step is one measurement.
type Step struct {
	Name string
	// Rate is the offered load in orders per second; 0 runs closed loop:
	// every client sends its next order as soon as it has the answer.
	Rate     float64
	Duration time.Duration
	// Drain bounds how long an open-loop step waits, after its last arrival,
	// for orders still queued; those not sent by then are abandoned.
	Drain time.Duration
	// IdempotencyKeys sends a fresh Idempotency-Key with every order.
	IdempotencyKeys bool
	// SlowOver, if positive, keeps every acknowledged order of an open-loop
	// step that took longer (Result.Slow), so that its stalls can be put
	// beside what else happened then (stalls.go).
	SlowOver time.Duration
}

// Result is what one step measured. Latencies are of acknowledged (201)
// orders only.
type Result struct {
	Step       Step
	Clients    int
	Due        int // open loop: orders scheduled
	Sent       int
	OK         int
	Status     map[int]int // non-201 answers by status
	Transport  int         // connection errors
	Abandoned  int         // open loop: never sent before the drain deadline
	Elapsed    time.Duration
	Throughput float64 // acknowledged orders per second
	P50, P90   time.Duration
	P99, P999  time.Duration
	Max        time.Duration
	FirstError string
	// LateP50 and LateP99 are how late an open-loop step's orders were sent
	// after their due time (the generator's own error, inside every
	// latency).
	LateP50, LateP99 time.Duration
	// Slow are the open-loop orders over Step.SlowOver, by due time.
	Slow []Slow
}

// Saturated reports whether an open-loop step failed to keep up with its
// offered rate (less than 90% served, or orders abandoned).
func (r Result) Saturated() bool {
	if r.Step.Rate == 0 {
		return false
	}
	return r.Abandoned > 0 || r.Throughput < 0.9*r.Step.Rate
}

// Errors is the number of non-201 answers and connection errors.
func (r Result) Errors() int {
	n := r.Transport
	for _, v := range r.Status {
		n += v
	}
	return n
}

// Runner owns the clients of one target; their connections stay open from
// step to step.
type Runner struct {
	t       Target
	clients []*client
}

// New makes a client per token. Nothing connects until the first request.
func New(t Target) *Runner {
	r := &Runner{t: t}
	for i, tok := range t.Tokens {
		r.clients = append(r.clients, newClient(t.Addr, t.MarketID, tok, t.Outcomes, i, t.Seed))
	}
	return r
}

// Close closes every connection.
func (r *Runner) Close() {
	for _, c := range r.clients {
		c.close()
	}
}

// Warm opens every connection and sends each client's first orders, so that
// the first step measures neither TCP set-up nor the engine's first look at
// a trader.
func (r *Runner) Warm(ctx context.Context, orders int) error {
	var wg sync.WaitGroup
	errs := make([]error, len(r.clients))
	for i, c := range r.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < orders && ctx.Err() == nil; k++ {
				st, err := c.do(false)
				if err != nil {
					errs[i] = err
					return
				}
				if st >= 500 || st == 401 || st == 403 || st == 404 {
					errs[i] = fmt.Errorf("warm-up order answered %d", st)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// tally is one client's share of a step.
type tally struct {
	lat       []time.Duration
	late      []time.Duration // open loop: from each order's due time to its send
	slow      []Slow          // open loop: orders over Step.SlowOver
	sent, ok  int
	status    map[int]int
	transport int
	abandoned int
	firstErr  string
}

func (t *tally) record(st int, err error, lat time.Duration) {
	t.sent++
	switch {
	case err != nil:
		t.transport++
		if t.firstErr == "" {
			t.firstErr = err.Error()
		}
	case st == 201:
		t.ok++
		t.lat = append(t.lat, lat)
	default:
		if t.status == nil {
			t.status = map[int]int{}
		}
		t.status[st]++
		if t.firstErr == "" {
			t.firstErr = fmt.Sprintf("HTTP %d", st)
		}
	}
}

// Run runs one step and returns what it measured.
func (r *Runner) Run(ctx context.Context, s Step) Result {
	if s.Rate > 0 {
		return r.open(ctx, s)
	}
	return r.closed(ctx, s)
}

func (r *Runner) closed(ctx context.Context, s Step) Result {
	tallies := make([]tally, len(r.clients))
	start := time.Now()
	deadline := start.Add(s.Duration)
	var wg sync.WaitGroup
	for i, c := range r.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[i]
			t.lat = make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				st, err := c.do(s.IdempotencyKeys)
				t.record(st, err, time.Since(t0))
				if err != nil {
					time.Sleep(10 * time.Millisecond) // do not spin on a dead server
				}
			}
		}()
	}
	wg.Wait()
	return summarize(s, len(r.clients), 0, tallies, time.Since(start))
}

func (r *Runner) open(ctx context.Context, s Step) Result {
	due := int(math.Ceil(s.Rate * s.Duration.Seconds()))
	interval := float64(time.Second) / s.Rate
	jobs := make(chan time.Time, due)
	var stop atomic.Bool
	tallies := make([]tally, len(r.clients))
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range r.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[i]
			t.lat = make([]time.Duration, 0, due/len(r.clients)+16)
			t.late = make([]time.Duration, 0, cap(t.lat))
			for at := range jobs {
				if stop.Load() || ctx.Err() != nil {
					t.abandoned++
					continue
				}
				t.late = append(t.late, time.Since(at))
				st, err := c.do(s.IdempotencyKeys)
				lat := time.Since(at)
				t.record(st, err, lat)
				if s.SlowOver > 0 && lat > s.SlowOver && err == nil && st == 201 {
					t.slow = append(t.slow, Slow{Due: at, Latency: lat})
				}
			}
		}()
	}
	// The arrival schedule: order k is due at start + k/rate, and is
	// handed to a free client then (clock.go).
	var d Dispatcher
	d.Start()
	for sent := 0; sent < due && ctx.Err() == nil; sent++ {
		at := start.Add(time.Duration(float64(sent) * interval))
		d.SleepUntil(at)
		jobs <- at
	}
	d.Stop()
	close(jobs)
	drain := s.Drain
	if drain <= 0 {
		drain = max(2*time.Second, s.Duration/2)
	}
	timer := time.AfterFunc(time.Until(start.Add(s.Duration+drain)), func() { stop.Store(true) })
	wg.Wait()
	timer.Stop()
	return summarize(s, len(r.clients), due, tallies, time.Since(start))
}

func summarize(s Step, clients, due int, ts []tally, elapsed time.Duration) Result {
	res := Result{Step: s, Clients: clients, Due: due, Elapsed: elapsed, Status: map[int]int{}}
	var lat, late []time.Duration
	for i := range ts {
		t := &ts[i]
		res.Sent += t.sent
		res.OK += t.ok
		res.Transport += t.transport
		res.Abandoned += t.abandoned
		for k, v := range t.status {
			res.Status[k] += v
		}
		if res.FirstError == "" {
			res.FirstError = t.firstErr
		}
		lat = append(lat, t.lat...)
		late = append(late, t.late...)
		res.Slow = append(res.Slow, t.slow...)
	}
	slices.SortFunc(res.Slow, func(a, b Slow) int { return a.Due.Compare(b.Due) })
	slices.Sort(late)
	res.LateP50, res.LateP99 = Percentile(late, 0.50), Percentile(late, 0.99)
	res.Throughput = float64(res.OK) / elapsed.Seconds()
	slices.Sort(lat)
	res.P50, res.P90, res.P99, res.P999 = Percentile(lat, 0.50), Percentile(lat, 0.90), Percentile(lat, 0.99), Percentile(lat, 0.999)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	return res
}

// Percentile returns the q-quantile (0..1) of sorted by the nearest-rank
// method, or 0 for no samples.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}
