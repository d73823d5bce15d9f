package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"levee/bench/load"
)

// FloorResult is the latency of a durable write with no application in
// between, paced as the open-loop order steps are: the floor under an
// order's latency at low load. Writes arrive at the rate and are written
// as a journal with one write in flight writes them: each write takes all
// that arrived meanwhile. Flushes are the disk alone (an 8 KiB write and
// fdatasync on the file system holding PostgreSQL's data); commits are an
// INSERT of a row per arrival in autocommit on one connection of the same
// PostgreSQL.
type FloorResult struct {
	Flushes, Commits []PacedLatency
	Err              string
}

// PacedLatency is one rate's latencies, each measured from its scheduled
// start (open loop), so that a write that makes the next one late is
// counted in both.
type PacedLatency struct {
	Rate           float64
	N              int
	P50, P99, P999 time.Duration
}

const floorTable = "bench_floor"

// measureFloor paces flushes and then commits at each rate for d.
func (e *env) measureFloor(ctx context.Context, rates []float64, d time.Duration) FloorResult {
	var res FloorResult
	path := filepath.Join(e.dir, "floor.flush")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer os.Remove(path)
	defer f.Close()
	const size, block = 16 << 20, 8 << 10
	// Written whole once, so that the paced writes overwrite blocks that
	// exist, as PostgreSQL's recycled WAL segments do.
	if _, err := f.Write(make([]byte, size)); err != nil {
		res.Err = err.Error()
		return res
	}
	if err := f.Sync(); err != nil {
		res.Err = err.Error()
		return res
	}
	buf := make([]byte, block)
	var off int64
	for _, rate := range rates {
		l, err := paced(ctx, rate, d, func(int) error {
			if _, err := f.WriteAt(buf, off); err != nil {
				return err
			}
			off = (off + block) % size
			return syscall.Fdatasync(int(f.Fd())) // as PostgreSQL's wal_sync_method on Linux
		})
		if err != nil {
			res.Err = fmt.Sprintf("flush: %v", err)
			return res
		}
		res.Flushes = append(res.Flushes, l)
	}
	if _, err := e.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+floorTable+` (id bigint)`); err != nil {
		res.Err = err.Error()
		return res
	}
	defer e.db.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+floorTable)
	conn, err := e.db.Connx(ctx)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer conn.Close()
	for _, rate := range rates {
		l, err := paced(ctx, rate, d, func(n int) error {
			_, err := conn.ExecContext(ctx, `INSERT INTO `+floorTable+` SELECT generate_series(1, $1)`, n)
			return err
		})
		if err != nil {
			res.Err = fmt.Sprintf("commit: %v", err)
			return res
		}
		res.Commits = append(res.Commits, l)
	}
	return res
}

// paced runs op for writes that arrive at rate per second for d, as a
// journal with one write in flight does: each op writes every arrival due
// and not yet written (n of them, at least one), and each arrival's
// latency runs from its scheduled time to the end of the op that wrote it.
func paced(ctx context.Context, rate float64, d time.Duration, op func(n int) error) (PacedLatency, error) {
	every := time.Duration(float64(time.Second) / rate)
	total := int(d / every)
	lat := make([]time.Duration, 0, total)
	start := time.Now()
	due := func(i int) time.Time { return start.Add(time.Duration(i) * every) }
	var clock load.Dispatcher // as the open-loop steps send (bench/load/clock.go)
	clock.Start()
	defer clock.Stop()
	for done := 0; done < total && ctx.Err() == nil; {
		clock.SleepUntil(due(done))
		n := min(total, int(time.Since(start)/every)+1) - done
		if err := op(n); err != nil {
			return PacedLatency{}, err
		}
		end := time.Now()
		for i := done; i < done+n; i++ {
			lat = append(lat, end.Sub(due(i)))
		}
		done += n
	}
	sortDurations(lat)
	return PacedLatency{Rate: rate, N: len(lat), P50: pct(lat, .5), P99: pct(lat, .99), P999: pct(lat, .999)}, ctx.Err()
}

// floorTableMD writes r as a table, a row per rate.
func floorTableMD(r FloorResult) string {
	if r.Err != "" {
		return "The floor could not be measured: " + r.Err + "\n\n"
	}
	s := "| paced at | flush (write + fdatasync) p50 / p99 / p999 | one-row commit p50 / p99 / p999 |\n|---:|---|---|\n"
	for i, fl := range r.Flushes {
		c := PacedLatency{}
		if i < len(r.Commits) {
			c = r.Commits[i]
		}
		s += fmt.Sprintf("| %.0f/s | %s / %s / %s | %s / %s / %s |\n", fl.Rate, ms(fl.P50), ms(fl.P99), ms(fl.P999), ms(c.P50), ms(c.P99), ms(c.P999))
	}
	return s + "\n"
}
