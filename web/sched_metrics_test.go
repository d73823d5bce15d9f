package web

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSchedWait: the scheduler's waits come out as a histogram on our
// bounds, cumulative, with the waits the runtime timed (it samples them:
// about one in eight).
func TestSchedWait(t *testing.T) {
	var wg sync.WaitGroup
	for range 100 { // goroutines that wait to run
		wg.Add(1)
		go func() { defer wg.Done() }()
	}
	wg.Wait()
	reg := prometheus.NewRegistry()
	sw := newSchedWait()
	reg.MustRegister(sw)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "levee_go_sched_wait_seconds" {
		t.Fatalf("gathered %v", mfs)
	}
	h := mfs[0].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() < 10 || h.GetSampleSum() <= 0 {
		t.Fatalf("count %d sum %g", h.GetSampleCount(), h.GetSampleSum())
	}
	bs := h.GetBucket()
	if len(bs) != len(sw.bounds) {
		t.Fatalf("%d buckets, want %d", len(bs), len(sw.bounds))
	}
	for i, b := range bs {
		if b.GetUpperBound() != sw.bounds[i] || (i > 0 && b.GetCumulativeCount() < bs[i-1].GetCumulativeCount()) || b.GetCumulativeCount() > h.GetSampleCount() {
			t.Fatalf("bucket %d: %v (count %d)", i, b, h.GetSampleCount())
		}
	}
}
