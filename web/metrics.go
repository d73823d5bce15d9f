package web

import (
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// The series of each (method, route, status) seen, so that a request
	// costs a map look-up instead of formatting the status, a variadic
	// slice and two hashed look-ups in the vectors (issue 18: allocations
	// per order). Routes are patterns, so the map is as bounded as the
	// labels.
	mu     sync.RWMutex
	series map[seriesKey]*series
}

type seriesKey struct {
	method, route string
	status        int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "levee_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "levee_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration, collectors.NewGoCollector(), newSchedWait(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe records one request; route is the route pattern, never the raw
// path, so label cardinality stays bounded.
func (m *httpMetrics) observe(method, route string, status int, elapsed time.Duration) {
	k := seriesKey{method, route, status}
	m.mu.RLock()
	s := m.series[k]
	m.mu.RUnlock()
	if s == nil {
		s = &series{requests: m.requests.WithLabelValues(method, route, strconv.Itoa(status)), duration: m.duration.WithLabelValues(method, route)}
		m.mu.Lock()
		if m.series == nil {
			m.series = map[seriesKey]*series{}
		}
		m.series[k] = s
		m.mu.Unlock()
	}
	s.requests.Inc()
	s.duration.Observe(elapsed.Seconds())
}

func (s *Server) metricsHandler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
}
