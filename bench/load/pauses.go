package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The meter of the machine's pauses and of its disk's slow flushes, run
// beside a load so that the load's stalls can be set beside them
// (stalls.go).
const (
	// PauseTick is how often the pause meter wakes; a wake PauseOver or
	// more past its due time is a pause of the machine.
	PauseTick = time.Millisecond
	PauseOver = 2 * time.Millisecond
	// FlushEvery is how often the disk probe writes 8 KiB in place and
	// flushes it (fdatasync, as PostgreSQL flushes its WAL); a flush of
	// FlushOver or more is a slow disk. 50 a second is a small share of
	// the flushes of the load it watches (one per journal commit).
	FlushEvery = 20 * time.Millisecond
	FlushOver  = 2 * time.Millisecond
)

// Kinds of spans the meter reports.
const (
	KindPause = "pause"
	KindFlush = "flush"
)

// Meter collects what the meter process reports: the benchmark's binary
// re-run with a flag that calls MeasurePauses. In the load generator's
// process the meter's wake-ups would wait for Go's scheduler, busy with the
// load.
type Meter struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	spans map[string][]Span
	notes []string
	done  chan struct{}
}

// StartMeter runs exe with args (which must end up in MeasurePauses) and
// reads what it prints.
func StartMeter(ctx context.Context, exe string, args ...string) (*Meter, error) {
	m := &Meter{cmd: exec.CommandContext(ctx, exe, args...), spans: map[string][]Span{}, done: make(chan struct{})}
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	m.cmd.Stderr = os.Stderr
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the pause meter: %w", err)
	}
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			m.line(sc.Text())
		}
	}()
	return m, nil
}

// line takes "KIND FROM TO" (Unix nanoseconds) or "note TEXT".
func (m *Meter) line(l string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if note, ok := strings.CutPrefix(l, "note "); ok {
		m.notes = append(m.notes, note)
		return
	}
	f := strings.Fields(l)
	if len(f) != 3 {
		return
	}
	a, err1 := strconv.ParseInt(f[1], 10, 64)
	b, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 == nil && err2 == nil {
		m.spans[f[0]] = append(m.spans[f[0]], Span{From: time.Unix(0, a), To: time.Unix(0, b)})
	}
}

// Spans returns the spans of a kind seen so far.
func (m *Meter) Spans(kind string) []Span {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.spans[kind])
}

// Notes says how the meter runs (its priority, its probe's file).
func (m *Meter) Notes() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.notes, "; ")
}

// Stop ends the meter.
func (m *Meter) Stop() {
	if m.cmd.Process != nil {
		m.cmd.Process.Kill()
	}
	<-m.done
	m.cmd.Wait()
}

// MeasurePauses is the meter's process, until ctx ends. Each of its two
// threads runs at a real-time priority where it may (SCHED_FIFO), so it
// runs as soon as its timer fires or its flush returns, whatever else the
// machine is doing:
//   - one sleeps PauseTick at a time and reports each wake PauseOver or
//     more late as "pause FROM TO" (Unix nanoseconds: when it was due, when
//     it ran): the machine, or the hypervisor under it, ran nothing then;
//   - if dir is not empty, one writes 8 KiB in place to a file there every
//     FlushEvery and reports each fdatasync of FlushOver or more as "flush
//     FROM TO": the disk was slow to flush then, for everyone.
func MeasurePauses(ctx context.Context, w io.Writer, dir string) error {
	var mu sync.Mutex
	bw := bufio.NewWriter(w)
	say := func(format string, args ...any) error {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(bw, format+"\n", args...)
		return bw.Flush()
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, note := lockRealtime()
		say("note pauses: a thread %s waking every %s", note, PauseTick)
		next := time.Now()
		for ctx.Err() == nil {
			next = next.Add(PauseTick)
			sleepUntil(next)
			if now := time.Now(); now.Sub(next) >= PauseOver {
				if errs[0] = say("%s %d %d", KindPause, next.UnixNano(), now.UnixNano()); errs[0] != nil {
					return
				}
				next = now
			}
		}
	}()
	if dir != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[1] = probeFlushes(ctx, dir, say)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// probeFlushes is MeasurePauses' disk probe.
func probeFlushes(ctx context.Context, dir string, say func(string, ...any) error) error {
	_, note := lockRealtime()
	path := filepath.Join(dir, "flush-probe")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("disk probe: %w", err)
	}
	defer os.Remove(path)
	defer f.Close()
	// Written whole and flushed first, as PostgreSQL fills a WAL segment
	// before use, so that each probe's flush writes data and no metadata.
	const blocks = 128
	block := make([]byte, 8<<10)
	for i := range blocks {
		if _, err := f.WriteAt(block, int64(i*len(block))); err != nil {
			return fmt.Errorf("disk probe: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("disk probe: %w", err)
	}
	say("note flushes: a thread %s writing 8 KiB in place and calling fdatasync every %s", note, FlushEvery)
	next := time.Now()
	for i := 0; ctx.Err() == nil; i++ {
		next = next.Add(FlushEvery)
		sleepUntil(next)
		start := time.Now()
		block[0] = byte(i)
		if _, err := f.WriteAt(block, int64(i%blocks*len(block))); err != nil {
			return fmt.Errorf("disk probe: %w", err)
		}
		if err := fdatasync(f); err != nil {
			return fmt.Errorf("disk probe: %w", err)
		}
		if end := time.Now(); end.Sub(start) >= FlushOver {
			if err := say("%s %d %d", KindFlush, start.UnixNano(), end.UnixNano()); err != nil {
				return err
			}
		}
	}
	return nil
}
