package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestScrapeJournal reads the journal's figures, the order route's time in
// the server and the orders' engine phases from a /metrics page as the Prometheus client writes it (le last
// among the labels), and takes the difference between two scrapes.
func TestScrapeJournal(t *testing.T) {
	page := func(n int) string {
		return strings.ReplaceAll(`
levee_journal_commits_total{result="ok"} N
levee_journal_orders_total N
levee_journal_commit_seconds_bucket{le="0.001"} 0
levee_journal_commit_seconds_bucket{le="0.002"} N
levee_journal_commit_seconds_bucket{le="+Inf"} N
levee_order_engine_seconds_bucket{phase="book",le="0.001"} N
levee_order_engine_seconds_bucket{phase="book",le="+Inf"} N
levee_order_engine_seconds_bucket{phase="journal",le="0.001"} 0
levee_order_engine_seconds_bucket{phase="journal",le="0.005"} N
levee_order_engine_seconds_bucket{phase="journal",le="+Inf"} N
levee_order_engine_seconds_bucket{phase="commit",le="0.002"} N
levee_order_engine_seconds_bucket{phase="commit",le="+Inf"} N
levee_journal_phase_seconds_sum{phase="begin"} B
levee_journal_phase_seconds_count{phase="begin"} N
levee_journal_phase_seconds_sum{phase="commit"} C
levee_journal_phase_seconds_count{phase="commit"} N
levee_go_sched_wait_seconds_bucket{le="1e-05"} S
levee_go_sched_wait_seconds_bucket{le="0.001"} T
levee_go_sched_wait_seconds_bucket{le="+Inf"} U
`, "N", strconv.Itoa(n))
	}
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	// 20 commits between the scrapes: begin 1 ms each, commit 2 ms; of 100
	// goroutine waits, 80 under 10 µs, 95 under 1 ms.
	// The order route's requests, all within 2.5 ms; a read's are not
	// counted.
	requests := func(n int) string {
		return fmt.Sprintf(`levee_http_request_duration_seconds_bucket{method="POST",route="/api/v1/markets/:id/orders",le="0.001"} 0
levee_http_request_duration_seconds_bucket{method="POST",route="/api/v1/markets/:id/orders",le="0.0025"} %[1]d
levee_http_request_duration_seconds_bucket{method="POST",route="/api/v1/markets/:id/orders",le="+Inf"} %[1]d
levee_http_request_duration_seconds_bucket{method="GET",route="/api/v1/markets/:id",le="0.001"} %[2]d
levee_http_request_duration_seconds_bucket{method="GET",route="/api/v1/markets/:id",le="+Inf"} %[2]d
`, n, 1000*n)
	}
	fill := func(n int, b, c, s, t, u float64) string {
		return strings.NewReplacer("B", fmt.Sprint(b), "C", fmt.Sprint(c), "S", fmt.Sprint(s), "T", fmt.Sprint(t), "U", fmt.Sprint(u)).Replace(page(n)) + requests(n)
	}
	body = fill(10, 0.5, 1, 100, 150, 200)
	c0, h0 := scrapeJournal(addr)
	body = fill(30, 0.52, 1.04, 180, 245, 300)
	c1, h1 := scrapeJournal(addr)
	got := journalBetween(c0, h0, c1, h1).String()
	want := "20 commits, 1.0 orders each, commit p50 ≤ 2ms p99 ≤ 2ms; an order request's p50/p99 in the server ≤ 2.5ms/2.5ms; an order's p50/p99 in book ≤ 1ms/1ms, journal ≤ 5ms/5ms, commit ≤ 2ms/2ms" +
		"; a commit's begin/commit 1.00/2.00 ms (means); goroutines waited for a thread p90 ≤ 1ms p99 ≤ ∞"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
