package web

import (
	"math"
	"runtime/metrics"

	"github.com/prometheus/client_golang/prometheus"
)

// schedWait exports how long goroutines waited runnable for a thread
// (runtime/metrics /sched/latencies:seconds) as levee_go_sched_wait_seconds,
// (which the runtime samples, about one wait in eight), on bounds fine
// enough to tell 100 µs from 2 ms: the Prometheus client's
// Go collector re-buckets it to powers of about 11 (0.08, 0.9, 10.5 ms),
// too coarse for the question it answers here. Under load a round trip to
// PostgreSQL costs the journal mostly this wait (engine.CommitPhases).
type schedWait struct {
	desc   *prometheus.Desc
	bounds []float64
	sample []metrics.Sample
}

func newSchedWait() *schedWait {
	return &schedWait{
		desc: prometheus.NewDesc("levee_go_sched_wait_seconds",
			"How long goroutines waited runnable before a thread ran them (runtime/metrics /sched/latencies:seconds, sampled), since the process started.", nil, nil),
		bounds: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .002, .005, .01, .025, .1},
		sample: []metrics.Sample{{Name: "/sched/latencies:seconds"}},
	}
}

func (s *schedWait) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

// Collect folds the runtime's buckets into s.bounds: a runtime bucket
// counts towards the first bound at or above its upper edge, so each count
// is an upper bound like any histogram's; the sum takes each bucket's
// midpoint (its lower edge for the last, unbounded one).
func (s *schedWait) Collect(ch chan<- prometheus.Metric) {
	metrics.Read(s.sample)
	if s.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return
	}
	h := s.sample[0].Value.Float64Histogram()
	cum := make(map[float64]uint64, len(s.bounds))
	var count uint64
	var sum float64
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		count += n
		if math.IsInf(hi, 1) {
			sum += float64(n) * lo
		} else {
			sum += float64(n) * (max(lo, 0) + hi) / 2
		}
		for _, b := range s.bounds {
			if hi <= b {
				cum[b] += n
			}
		}
	}
	m, err := prometheus.NewConstHistogram(s.desc, count, sum, cum)
	if err != nil {
		return
	}
	ch <- m
}
