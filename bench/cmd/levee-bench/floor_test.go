package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"levee/migrations/dbtest"
)

// TestPacedGroupsWhatArrived: paced measures each arrival from its
// scheduled time. A write faster than the pace writes one arrival at a
// time; a slower one writes every arrival that waited, so each waits at
// most about two writes and every arrival is written exactly once.
func TestPacedGroupsWhatArrived(t *testing.T) {
	for _, c := range []struct {
		name    string
		op      time.Duration
		grouped bool
	}{{"keeps up", 0, false}, {"groups", 20 * time.Millisecond, true}} {
		t.Run(c.name, func(t *testing.T) {
			var writes, written int
			l, err := paced(context.Background(), 200, 200*time.Millisecond, func(n int) error {
				if n < 1 {
					t.Errorf("a write of %d arrivals", n)
				}
				writes++
				written += n
				time.Sleep(c.op)
				return nil
			})
			if err != nil || l.N != 40 || written != 40 || l.Rate != 200 {
				t.Fatalf("%+v %v; %d written", l, err, written)
			}
			if grouped := writes < 20; grouped != c.grouped {
				t.Errorf("%d writes for 40 arrivals; grouped %v, want %v", writes, grouped, c.grouped)
			}
			if c.grouped && (l.P99 < c.op || l.P99 > 4*c.op+10*time.Millisecond) {
				t.Errorf("p99 %v with writes of %v", l.P99, c.op)
			}
		})
	}
}

// TestMeasureFloor flushes a file and commits rows on a real PostgreSQL and
// leaves neither the file nor the table behind.
func TestMeasureFloor(t *testing.T) {
	db := dbtest.New(t)
	e := &env{db: db, dir: t.TempDir()}
	r := e.measureFloor(context.Background(), []float64{200, 500}, 100*time.Millisecond)
	if r.Err != "" || len(r.Flushes) != 2 || len(r.Commits) != 2 {
		t.Fatalf("%+v", r)
	}
	for _, l := range append(r.Flushes, r.Commits...) {
		if l.N < 10 || l.P50 <= 0 || l.P99 < l.P50 || l.P999 < l.P99 {
			t.Errorf("%+v", l)
		}
	}
	var left bool
	db.Get(&left, `SELECT to_regclass($1) IS NOT NULL`, floorTable)
	if left {
		t.Errorf("%s left behind", floorTable)
	}
	if md := floorTableMD(r); !strings.Contains(md, "| 200/s |") || !strings.Contains(md, "| 500/s |") {
		t.Errorf("table:\n%s", md)
	}
}
