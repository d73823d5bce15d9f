package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"levee/web"
)

// engineMetrics observes the journal: how often it commits, how long a
// commit takes and how many orders each carries (the group-commit factor).
type engineMetrics struct {
	commits   *prometheus.CounterVec
	orders    prometheus.Counter
	latency   prometheus.Histogram
	batchSize prometheus.Histogram
}

func newEngineMetrics() *engineMetrics {
	return &engineMetrics{
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "levee_journal_commits_total", Help: "Journal transactions by result."}, []string{"result"}),
		orders:  prometheus.NewCounter(prometheus.CounterOpts{Name: "levee_journal_orders_total", Help: "Orders made durable by the journal."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "levee_journal_commit_seconds", Help: "Time to write and commit one journal transaction.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, 1}}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "levee_journal_orders_per_commit", Help: "Orders per journal transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13)}),
	}
}

func (m *engineMetrics) observe(orders int, elapsed time.Duration, err error) {
	if err != nil {
		m.commits.WithLabelValues("error").Inc()
		return
	}
	m.commits.WithLabelValues("ok").Inc()
	m.orders.Add(float64(orders))
	m.latency.Observe(elapsed.Seconds())
	m.batchSize.Observe(float64(orders))
}

func (m *engineMetrics) register(reg *prometheus.Registry, l *web.Live) {
	reg.MustRegister(m.commits, m.orders, m.latency, m.batchSize)
	if l == nil {
		return
	}
	for name, read := range map[string]func() float64{
		"levee_ws_connections":            func() float64 { return float64(l.Stats().Connections) },
		"levee_ws_subscriptions":          func() float64 { return float64(l.Stats().Subscriptions) },
		"levee_ws_dropped_total":          func() float64 { return float64(l.Stats().Dropped) },
		"levee_ws_slow_disconnects_total": func() float64 { return float64(l.Stats().SlowDisconnects) },
	} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: "Websocket hub: " + name + "."}, read))
	}
}
