package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"levee/bench/load"
	"levee/migrations/dbtest"
)

// TestRowsFloorWritesAnOrdersRows runs the rows' floor on a real PostgreSQL:
// it writes whole batches, checks that every row it counts was written
// (checkRowsFloor), and leaves none of its tables behind.
func TestRowsFloorWritesAnOrdersRows(t *testing.T) {
	db := dbtest.New(t)
	e := &env{db: db, dir: t.TempDir(), cfg: Config{Clients: 8}}
	if err := db.Get(&e.hot, `INSERT INTO markets (question, outcomes, liquidity, subsidy, q, closes_at)
		VALUES ('Will the pump be fixed?', '{yes,no}', 100, 70, '{0,0}', now() + interval '1 day') RETURNING id`); err != nil {
		t.Fatal(err)
	}
	var f CPUFloor
	if err := e.measureRowsFloor(context.Background(), 300*time.Millisecond, &f); err != nil {
		t.Fatal(err)
	}
	if f.Rows < floorBatch || f.Rows%floorBatch != 0 || f.RowsRate <= 0 {
		t.Fatalf("%+v", f)
	}
	for _, tb := range floorTables {
		var left bool
		db.Get(&left, `SELECT to_regclass($1) IS NOT NULL`, tb.copy)
		if left {
			t.Errorf("%s left behind", tb.copy)
		}
	}
}

// TestHTTPFloorReplaysTheAnswer: the HTTP floor's server answers an order
// with the status, headers and body captured from a server's answer to one,
// and anything else with 404.
func TestHTTPFloorReplaysTheAnswer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	levee := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-1" || r.URL.Path != "/api/v1/markets/7/orders" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"market":"7","seq":1}`)
	}))
	defer levee.Close()
	a, err := captureAnswer(ctx, strings.TrimPrefix(levee.URL, "http://"), 7, "tok-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Header.Get("Date") != "" || a.Header.Get("Content-Length") != "" || a.size() < len(a.Body)+40 {
		t.Fatalf("captured %+v (%d bytes)", a, a.size())
	}
	file := filepath.Join(t.TempDir(), "answer.json")
	b, _ := json.Marshal(a)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- httpFloorProcess(ctx, file, pw) }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	m := servingRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("the floor's server said %q", line)
	}
	// The load generator's own client, as the floor is measured.
	r := load.New(load.Target{Addr: m[1], MarketID: 7, Outcomes: 2, Tokens: []string{"tok-1", "tok-2"}})
	defer r.Close()
	if res := r.Run(ctx, load.Step{Name: "closed", Duration: 100 * time.Millisecond}); res.OK == 0 || res.Errors() != 0 {
		t.Fatalf("%+v", res)
	}
	resp, err := http.Post("http://"+m[1]+"/api/v1/markets/7/orders", "application/json", strings.NewReader(`{"outcome":0,"side":"buy","shares":"1"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("an order without a token: %s", resp.Status)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+m[1]+"/api/v1/markets/7/orders", strings.NewReader(`{"outcome":0,"side":"buy","shares":"1"}`))
	req.Header.Set("Authorization", "Bearer tok-1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || string(body) != `{"market":"7","seq":1}` || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCPUFloorTable: the floor's table sums the halves and sets the current
// path's closed loop beside them, and says why a half is missing.
func TestCPUFloorTable(t *testing.T) {
	f := CPUFloor{HTTP: load.Result{Throughput: 40000}, HTTPServer: 1.0, Rows: 1280, RowsRate: 25000, RowsPG: 0.75, Answer: 467}
	cur := &OrdersStep{Result: load.Result{Step: load.Step{Name: "closed loop, 256 clients"}, Throughput: 10000, Clients: 256}, CPUServer: 0.5, CPUPG: 0.5}
	md := cpuFloorMD(f, cur)
	for _, want := range []string{"| HTTP floor (answer of 467 bytes) | 40000 | 0.0250 |", "| rows floor (1280 orders) | 25000 | - | 0.0300 |",
		"| **the floor** | | 0.0250 | 0.0300 | **0.0550** |", "| current, closed loop, 256 clients | 10000 | 0.0500 | 0.0500 | **0.1000** |",
		"| current / the floor | | 2.00× | 1.67× | 1.82× |"} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in\n%s", want, md)
		}
	}
	f.HTTPErr = "no order's answer to replay"
	if md := cpuFloorMD(f, nil); !strings.Contains(md, "not measured: no order's answer") || strings.Contains(md, "the floor**") {
		t.Errorf("without the HTTP half:\n%s", md)
	}
}
