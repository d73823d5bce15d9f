package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/bench/load"
	"levee/internal/gctune"
)

// Machine describes where the figures were measured.
type Machine struct {
	NProc      int
	GOMAXPROCS int
	GOGC       int // this process's (the in-process server's and the load generator's)
	CPUModel   string
	MemTotal   string
	Kernel     string
	GoVersion  string
	PostgreSQL string
	Durable    string // the fsync setting of the server measured
	LoadAvg    string // at the start, for a shared machine
}

func describeMachine(ctx context.Context, db *sqlx.DB) Machine {
	m := Machine{NProc: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	m.GOGC = gctune.Percent()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				m.MemTotal = strconv.FormatFloat(kb/1024/1024, 'f', 1, 64) + " GiB"
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadAvg = loadAvg()
	if db != nil {
		db.GetContext(ctx, &m.PostgreSQL, `SELECT version()`)
		var fsync, sc string
		db.GetContext(ctx, &fsync, `SHOW fsync`)
		db.GetContext(ctx, &sc, `SHOW synchronous_commit`)
		m.Durable = "fsync=" + fsync + ", synchronous_commit=" + sc
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// cpuSample is CPU time used so far by this process and by the PostgreSQL
// server (postmaster and its children).
type cpuSample struct {
	at       time.Time
	self, pg time.Duration
}

func sampleCPU(pgPID int) cpuSample {
	s := cpuSample{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if pgPID > 0 {
		s.pg = pgCPU(pgPID)
	}
	return s
}

// cores returns the cores each side used between a and b.
func cores(a, b cpuSample) (self, pg float64) {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return 0, 0
	}
	return (b.self - a.self).Seconds() / wall, (b.pg - a.pg).Seconds() / wall
}

// clockTick is USER_HZ, 100 on every Linux we run on.
const clockTick = 100

// pgCPU is the CPU time PostgreSQL used so far: the postmaster's, its
// live children's, and that of the children it has reaped (its cutime and
// cstime). Without the reaped ones a backend or an autovacuum worker that
// ended during a measurement took its time with it, and a step's
// PostgreSQL CPU could come out negative (it did, in session 10).
func pgCPU(pid int) time.Duration {
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, p := range procs {
		self, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		st, ok := readStat(p)
		if !ok || (self != pid && st.ppid != pid) {
			continue
		}
		ticks += st.utime + st.stime
		if self == pid {
			ticks += st.cutime + st.cstime
		}
	}
	return time.Duration(ticks) * time.Second / clockTick
}

// procStat is what the benchmark reads of /proc/<pid>/stat, CPU times in
// clock ticks.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

// readStat reads a /proc/<pid>/stat file.
func readStat(path string) (procStat, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	// f[0] state, f[1] ppid, ... f[11] utime, f[12] stime, f[13] cutime, f[14] cstime
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, false
	}
	var st procStat
	st.ppid, _ = strconv.Atoi(f[1])
	st.utime, _ = strconv.ParseInt(f[11], 10, 64)
	st.stime, _ = strconv.ParseInt(f[12], 10, 64)
	st.cutime, _ = strconv.ParseInt(f[13], 10, 64)
	st.cstime, _ = strconv.ParseInt(f[14], 10, 64)
	return st, true
}

// procCPU is the user + system CPU time of one process (all its threads).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	st, ok := readStat(fmt.Sprintf("/proc/%d/stat", pid))
	if !ok {
		return 0
	}
	return time.Duration(st.utime+st.stime) * time.Second / clockTick
}

func sortDurations(d []time.Duration) { slices.Sort(d) }

func pct(sorted []time.Duration, q float64) time.Duration { return load.Percentile(sorted, q) }

// firstLines returns up to n lines of s.
func firstLines(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var out []string
	for sc.Scan() && len(out) < n {
		out = append(out, sc.Text())
	}
	return strings.Join(out, "\n")
}
