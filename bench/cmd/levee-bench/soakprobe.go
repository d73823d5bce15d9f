package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// soakProbe watches, while the soak runs, everything that could make an
// interval stall, so that a slow interval comes with its evidence: where the
// machine's CPU went (the server, PostgreSQL, the load generator and
// subscribers, and everyone else on the machine), how long runnable tasks
// waited for a CPU, what PostgreSQL's busy backends were waiting on, its
// checkpoints and WAL, and the journal's commits as the server counts them.
type soakProbe struct {
	db       *sqlx.DB
	pgPID    int
	childPID int
	subsPID  int

	mu     sync.Mutex
	waits  map[string]int // "type:event" of active client backends, per poll
	polls  int
	vacuum map[string]bool // autovacuum targets seen
	last   probeCounters
}

// probeCounters are the cumulative counters read at each sample.
type probeCounters struct {
	at                             time.Time
	cpuBusy, cpuSteal              time.Duration // the whole machine (all cores)
	self, pg, child, subs          time.Duration
	psiCPU, psiIO                  time.Duration // "some" stall totals
	checkpoints, buffersCheckpoint int64
	walBytes                       float64
	walSyncMs                      float64
	commits, commitsOver1s         float64
	commitSeconds                  float64
	gcPauseSeconds                 float64
	// the server's own timing of POST .../orders: cumulative histogram
	orderBuckets         map[float64]float64 // le -> count
	orderCount, orderSum float64
}

// ProbeSample is what the probe saw over one soak interval.
type ProbeSample struct {
	CoresLevee, CoresPG, CoresBench, CoresOther float64 // bench: load generator + subscriber process
	Steal                                       float64 // cores stolen by the hypervisor
	CPUWait, IOWait                             float64 // share of the interval some task waited for CPU / IO (PSI)
	Checkpoints                                 int64
	WALMiB                                      float64
	WALSyncMs                                   float64 // time spent in WAL fsync (track_wal_io_timing)
	Commits                                     float64
	CommitMean                                  time.Duration
	CommitsOver1s                               float64
	GCPause                                     time.Duration
	// ServerMean and ServerP99 are the order latency as the server timed it
	// (request in to answer out), from its histogram: the p99 is a bucket's
	// upper bound. The load generator's figures add the wait of orders that
	// were due but not yet sent because every client was busy.
	ServerMean, ServerP99 time.Duration
	Waits                 string // the most frequent wait events of active backends
	Vacuum                string // tables autovacuum worked on
}

func newSoakProbe(db *sqlx.DB, pgPID, childPID, subsPID int) *soakProbe {
	return &soakProbe{db: db, pgPID: pgPID, childPID: childPID, subsPID: subsPID, waits: map[string]int{}, vacuum: map[string]bool{}}
}

// poll samples pg_stat_activity every interval until ctx ends.
func (p *soakProbe) poll(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var rows []struct {
			Type  string `db:"backend_type"`
			Wait  string `db:"wait"`
			Query string `db:"query"`
		}
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		err := p.db.SelectContext(qctx, &rows, `
			SELECT backend_type, coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait, left(query, 60) AS query
			FROM pg_stat_activity
			WHERE state = 'active' AND pid <> pg_backend_pid() AND backend_type IN ('client backend', 'autovacuum worker')`)
		cancel()
		if err != nil {
			continue
		}
		p.mu.Lock()
		p.polls++
		for _, r := range rows {
			if r.Type == "autovacuum worker" {
				p.vacuum[strings.TrimPrefix(r.Query, "autovacuum: ")] = true
				continue
			}
			p.waits[r.Wait]++
		}
		p.mu.Unlock()
	}
}

// take reads the counters, returns what changed since the last take, and
// starts a new interval.
func (p *soakProbe) take(ctx context.Context, addr string) ProbeSample {
	c := p.counters(ctx, addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := p.last
	p.last = c
	var s ProbeSample
	type kv struct {
		k string
		n int
	}
	var ws []kv
	for k, n := range p.waits {
		ws = append(ws, kv{k, n})
	}
	slices.SortFunc(ws, func(a, b kv) int { return b.n - a.n })
	var parts []string
	for i, w := range ws {
		if i == 3 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.1f", w.k, float64(w.n)/float64(max(p.polls, 1))))
	}
	s.Waits = strings.Join(parts, ", ")
	var vac []string
	for t := range p.vacuum {
		vac = append(vac, t)
	}
	slices.Sort(vac)
	s.Vacuum = strings.Join(vac, "; ")
	clear(p.waits)
	clear(p.vacuum)
	p.polls = 0
	if prev.at.IsZero() {
		return s
	}
	wall := c.at.Sub(prev.at).Seconds()
	cores := func(a, b time.Duration) float64 { return (b - a).Seconds() / wall }
	s.CoresLevee, s.CoresPG = cores(prev.child, c.child), cores(prev.pg, c.pg)
	s.CoresBench = cores(prev.self+prev.subs, c.self+c.subs)
	s.CoresOther = max(0, cores(prev.cpuBusy, c.cpuBusy)-s.CoresLevee-s.CoresPG-s.CoresBench)
	s.Steal = cores(prev.cpuSteal, c.cpuSteal)
	s.CPUWait, s.IOWait = cores(prev.psiCPU, c.psiCPU), cores(prev.psiIO, c.psiIO)
	s.Checkpoints = c.checkpoints - prev.checkpoints
	s.WALMiB = (c.walBytes - prev.walBytes) / (1 << 20)
	s.WALSyncMs = c.walSyncMs - prev.walSyncMs
	s.Commits = c.commits - prev.commits
	if s.Commits > 0 {
		s.CommitMean = time.Duration((c.commitSeconds - prev.commitSeconds) / s.Commits * float64(time.Second))
	}
	s.CommitsOver1s = c.commitsOver1s - prev.commitsOver1s
	s.GCPause = time.Duration((c.gcPauseSeconds - prev.gcPauseSeconds) * float64(time.Second))
	if n := c.orderCount - prev.orderCount; n > 0 {
		s.ServerMean = time.Duration((c.orderSum - prev.orderSum) / n * float64(time.Second))
		les := make([]float64, 0, len(c.orderBuckets))
		for le := range c.orderBuckets {
			les = append(les, le)
		}
		slices.Sort(les)
		for _, le := range les {
			if c.orderBuckets[le]-prev.orderBuckets[le] >= 0.99*n {
				s.ServerP99 = -1 // past the last finite bucket
				if !math.IsInf(le, 1) {
					s.ServerP99 = time.Duration(le * float64(time.Second))
				}
				break
			}
		}
	}
	return s
}

func (p *soakProbe) counters(ctx context.Context, addr string) probeCounters {
	c := probeCounters{at: time.Now()}
	c.cpuBusy, c.cpuSteal = machineCPU()
	c.self = sampleCPU(0).self
	if p.pgPID > 0 {
		c.pg = pgCPU(p.pgPID)
	}
	c.child, c.subs = procCPU(p.childPID), procCPU(p.subsPID)
	c.psiCPU, c.psiIO = psiSome("cpu"), psiSome("io")
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	p.db.QueryRowxContext(qctx, `SELECT checkpoints_timed + checkpoints_req, buffers_checkpoint FROM pg_stat_bgwriter`).Scan(&c.checkpoints, &c.buffersCheckpoint)
	p.db.QueryRowxContext(qctx, `SELECT wal_bytes::float8, wal_sync_time FROM pg_stat_wal`).Scan(&c.walBytes, &c.walSyncMs)
	m := scrapeMetrics(qctx, addr)
	c.commits, c.commitSeconds = m["levee_journal_commit_seconds_count"], m["levee_journal_commit_seconds_sum"]
	c.commitsOver1s = c.commits - m[`levee_journal_commit_seconds_bucket{le="1"}`]
	c.gcPauseSeconds = m["go_gc_duration_seconds_sum"]
	c.orderBuckets = map[float64]float64{}
	for k, v := range m {
		if !strings.HasPrefix(k, "levee_http_request_duration_seconds") || !strings.Contains(k, `method="POST"`) || !strings.Contains(k, `/orders"`) {
			continue
		}
		switch {
		case strings.HasPrefix(k, "levee_http_request_duration_seconds_count"):
			c.orderCount += v
		case strings.HasPrefix(k, "levee_http_request_duration_seconds_sum"):
			c.orderSum += v
		default:
			_, le, ok := strings.Cut(k, `le="`)
			if !ok {
				continue
			}
			le, _, _ = strings.Cut(le, `"`)
			if f, err := strconv.ParseFloat(le, 64); err == nil { // "+Inf" too
				c.orderBuckets[f] += v
			}
		}
	}
	return c
}

// scrapeMetrics reads every unlabelled-or-labelled sample of /metrics into
// a map keyed by the sample's name with its labels as written.
func scrapeMetrics(ctx context.Context, addr string) map[string]float64 {
	out := map[string]float64{}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		f, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = f
		}
	}
	return out
}

// machineCPU returns the CPU time the whole machine spent busy (everything
// but idle and iowait) and stolen by the hypervisor, over all cores.
func machineCPU() (busy, steal time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var ticks [8]int64
	for i := range ticks {
		ticks[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	// user nice system idle iowait irq softirq steal
	busy = time.Duration(ticks[0]+ticks[1]+ticks[2]+ticks[5]+ticks[6]) * time.Second / clockTick
	steal = time.Duration(ticks[7]) * time.Second / clockTick
	return busy, steal
}

// psiSome is the kernel's pressure-stall total for resource: how long at
// least one task was runnable but waiting (cpu) or blocked on IO (io).
func psiSome(resource string) time.Duration {
	b, err := os.ReadFile("/proc/pressure/" + resource)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "some ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "total="); ok {
				us, _ := strconv.ParseInt(v, 10, 64)
				return time.Duration(us) * time.Microsecond
			}
		}
	}
	return 0
}

// upTo shows a histogram bound: "≤ 250.0ms", or "> last" past the last one.
func upTo(d time.Duration) string {
	if d < 0 {
		return "> 2.5s"
	}
	return "≤ " + ms(d)
}
