package load

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeOrders accepts orders as the API does (201) and checks what it gets.
type fakeOrders struct {
	t       *testing.T
	n       atomic.Int64
	keys    sync.Map
	refuse  atomic.Bool
	keyless atomic.Int64
}

func (f *fakeOrders) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Outcome *int   `json:"outcome"`
		Side    string `json:"side"`
		Shares  string `json:"shares"`
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/v1/markets/9/orders" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer tok-") {
		f.t.Errorf("unexpected request %s %s %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Outcome == nil || (body.Side != "buy" && body.Side != "sell") || body.Shares == "" {
		f.t.Errorf("bad body %+v %v", body, err)
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		if _, dup := f.keys.LoadOrStore(k, true); dup {
			f.t.Errorf("key %s sent twice", k)
		}
	} else {
		f.keyless.Add(1)
	}
	f.n.Add(1)
	if f.refuse.Load() {
		w.WriteHeader(http.StatusConflict)
		return
	}
	w.WriteHeader(http.StatusCreated)
	w.Write([]byte(`{"trade_id":"9-1"}`))
}

func TestOpenAndClosedLoop(t *testing.T) {
	f := &fakeOrders{t: t}
	srv := httptest.NewServer(f)
	defer srv.Close()
	r := New(Target{Addr: strings.TrimPrefix(srv.URL, "http://"), MarketID: 9, Outcomes: 2, Tokens: []string{"tok-1", "tok-2", "tok-3", "tok-4"}})
	defer r.Close()
	ctx := context.Background()
	if err := r.Warm(ctx, 2); err != nil {
		t.Fatal(err)
	}

	open := r.Run(ctx, Step{Name: "open", Rate: 400, Duration: 500 * time.Millisecond})
	if open.Due != 200 || open.OK != 200 || open.Errors() != 0 || open.Abandoned != 0 || open.Saturated() || open.P50 <= 0 || open.P99 < open.P50 {
		t.Fatalf("open loop: %+v", open)
	}
	closed := r.Run(ctx, Step{Name: "closed", Duration: 300 * time.Millisecond, IdempotencyKeys: true})
	if closed.OK == 0 || closed.Errors() != 0 || closed.Throughput <= 0 || closed.Saturated() {
		t.Fatalf("closed loop: %+v", closed)
	}
	f.refuse.Store(true)
	refused := r.Run(ctx, Step{Name: "refused", Rate: 100, Duration: 200 * time.Millisecond})
	if refused.OK != 0 || refused.Status[409] != refused.Sent || refused.Sent != 20 || !refused.Saturated() {
		t.Fatalf("refused: %+v", refused)
	}
}

func TestOpenLoopAbandonsWhatItCannotSend(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		w.WriteHeader(http.StatusCreated)
	})
	srv := httptest.NewServer(slow)
	defer srv.Close()
	r := New(Target{Addr: strings.TrimPrefix(srv.URL, "http://"), MarketID: 9, Outcomes: 2, Tokens: []string{"tok-1"}})
	defer r.Close()
	// One client at 20 orders/s can serve 200 offered orders/s for 0.5s only
	// partly; the rest must be abandoned at the drain deadline and the step
	// reported saturated, with latencies counted from when orders were due.
	res := r.Run(context.Background(), Step{Rate: 200, Duration: 500 * time.Millisecond, Drain: 200 * time.Millisecond})
	if !res.Saturated() || res.Abandoned == 0 || res.OK+res.Abandoned != res.Due || res.Max < 100*time.Millisecond {
		t.Fatalf("%+v", res)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 500, 0.99: 990, 0.999: 999, 1: 1000, 0: 1} {
		if got := Percentile(d, q); got != want {
			t.Errorf("q %v: %v, want %v", q, got, want)
		}
	}
	if Percentile(nil, 0.5) != 0 {
		t.Error("no samples")
	}
}
