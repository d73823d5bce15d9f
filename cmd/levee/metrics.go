package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"levee/cluster"
	"levee/market/engine"
	"levee/web"
)

// engineMetrics observes the journal: how often it commits, how long a
// commit takes and how many orders each carries (the group-commit factor).
type engineMetrics struct {
	commits   *prometheus.CounterVec
	orders    prometheus.Counter
	latency   prometheus.Histogram
	batchSize prometheus.Histogram
	// phases is where committed orders' time went inside the engine
	// (engine.OrderTimes), one series per phase, so that an order's tail
	// can be traced to the book, the journal's queue or the commit.
	phases                   *prometheus.HistogramVec
	inBook, inJournal, inTxn prometheus.Observer
	// commitPhases is where committed journal transactions' time went,
	// round trip by round trip (engine.CommitPhases).
	commitPhases                    *prometheus.HistogramVec
	cBegin, cRows, cLedger, cCommit prometheus.Observer
	cOneTrip                        prometheus.Observer // a whole transaction in one round trip
}

func newEngineMetrics() *engineMetrics {
	m := &engineMetrics{
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "levee_journal_commits_total", Help: "Journal transactions by result."}, []string{"result"}),
		orders:  prometheus.NewCounter(prometheus.CounterOpts{Name: "levee_journal_orders_total", Help: "Orders made durable by the journal."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "levee_journal_commit_seconds", Help: "Time to write and commit one journal transaction.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, 1}}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "levee_journal_orders_per_commit", Help: "Orders per journal transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13)}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "levee_order_engine_seconds",
			Help:    "Where committed orders' time went in the engine: book (queued and priced), journal (waiting for the previous commit), commit.",
			Buckets: []float64{.00025, .0005, .001, .002, .003, .004, .005, .0075, .01, .015, .02, .05, .1, .25, 1}}, []string{"phase"}),
	}
	m.inBook, m.inJournal, m.inTxn = m.phases.WithLabelValues("book"), m.phases.WithLabelValues("journal"), m.phases.WithLabelValues("commit")
	m.commitPhases = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "levee_journal_phase_seconds",
		Help:    "Where committed journal transactions' time went, one round trip each: begin, rows (the trades, positions and markets with the ledger's locks), ledger (the append), commit; or one_trip, a whole transaction in one round trip (the append computed from what the journal's last commit left).",
		Buckets: []float64{.0001, .00025, .0005, .001, .002, .003, .005, .0075, .01, .02, .05, .1, .25, 1}}, []string{"phase"})
	m.cBegin, m.cRows = m.commitPhases.WithLabelValues("begin"), m.commitPhases.WithLabelValues("rows")
	m.cLedger, m.cCommit = m.commitPhases.WithLabelValues("ledger"), m.commitPhases.WithLabelValues("commit")
	m.cOneTrip = m.commitPhases.WithLabelValues("one_trip")
	return m
}

// observeCommit records one committed transaction's engine.CommitPhases.
func (m *engineMetrics) observeCommit(p engine.CommitPhases) {
	if p.OneTrip {
		m.cOneTrip.Observe((p.Rows + p.Commit).Seconds())
		return
	}
	m.cBegin.Observe(p.Begin.Seconds())
	m.cRows.Observe(p.Rows.Seconds())
	m.cLedger.Observe(p.Ledger.Seconds())
	m.cCommit.Observe(p.Commit.Seconds())
}

// observeOrder records one committed order's engine.OrderTimes.
func (m *engineMetrics) observeOrder(t engine.OrderTimes) {
	m.inBook.Observe(t.Book.Seconds())
	m.inJournal.Observe(t.Journal.Seconds())
	m.inTxn.Observe(t.Commit.Seconds())
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
	reg.MustRegister(m.commits, m.orders, m.latency, m.batchSize, m.phases, m.commitPhases)
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

// registerClusterMetrics shows the leases and the NATS side of an instance
// of several (docs/cluster.md).
func registerClusterMetrics(reg *prometheus.Registry, e *engine.Engine, n *cluster.Node) {
	gauges := map[string]struct {
		help string
		read func() float64
	}{
		"levee_cluster_markets_owned":          {"Markets whose book runs here under a lease.", func() float64 { return float64(e.ClusterStats().Owned) }},
		"levee_cluster_nats_connected":         {"1 while the NATS connection is up.", func() float64 { return b2f(n.Connected()) }},
		"levee_cluster_leases_acquired_total":  {"Market leases taken.", func() float64 { return float64(e.ClusterStats().Acquired) }},
		"levee_cluster_takeovers_total":        {"Leases taken from another instance.", func() float64 { return float64(e.ClusterStats().Takeovers) }},
		"levee_cluster_leases_lost_total":      {"Leases found taken or expired at renewal.", func() float64 { return float64(e.ClusterStats().Lost) }},
		"levee_cluster_leases_released_total":  {"Leases given up (idle, rebalanced, asked for).", func() float64 { return float64(e.ClusterStats().Released) }},
		"levee_cluster_renew_failures_total":   {"Lease renewals that failed.", func() float64 { return float64(e.ClusterStats().RenewFails) }},
		"levee_cluster_fenced_total":           {"Batches refused at commit because the market moved (fencing).", func() float64 { return float64(e.ClusterStats().Fenced) }},
		"levee_cluster_forwards_total":         {"Orders forwarded to their market's owner.", func() float64 { return float64(n.Stats().Forwards) }},
		"levee_cluster_forward_failures_total": {"Forwarded orders with no answer.", func() float64 { return float64(n.Stats().ForwardFails) }},
		"levee_cluster_forwarded_served_total": {"Orders other instances forwarded here.", func() float64 { return float64(n.Stats().Served) }},
		"levee_cluster_quote_forwards_total":   {"Quotes forwarded to their market's owner.", func() float64 { return float64(n.Stats().Quotes) }},
		"levee_cluster_events_out_total":       {"Market events published on NATS.", func() float64 { return float64(n.Stats().EventsOut) }},
		"levee_cluster_events_in_total":        {"Market events received from other instances.", func() float64 { return float64(n.Stats().EventsIn) }},
		"levee_cluster_nats_reconnects_total":  {"NATS reconnections.", func() float64 { return float64(n.Stats().Reconnects) }},
	}
	for name, g := range gauges {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: g.help}, g.read))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
