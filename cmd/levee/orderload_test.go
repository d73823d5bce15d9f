package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/bench/faults"
	"levee/ledger"
)

// MustRunMainAt starts the real program on port 0 against the database at
// url, with rate limits high enough that a fault test's load is never
// answered 429 (the faults, not the limiter, must explain every refusal).
func MustRunMainAt(t *testing.T, url string) *Main {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", DatabaseURL: url, AdminToken: testAdminToken, DataDir: t.TempDir(), LogFormat: "text",
		RatePerAccount: 1e6, RatePerAddress: 1e6}
	m := NewMain(cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// MustMarket opens a binary market that closes in an hour and returns the
// path of its orders.
func MustMarket(t *testing.T, treasurer *client) (id, ordersPath string) {
	t.Helper()
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	st, mk := treasurer.do("POST", "/api/v1/markets", `{"question":"Will the pumps keep up?","outcomes":["yes","no"],"liquidity":"100","closes_at":"`+closes+`"}`)
	if st != 201 {
		t.Fatalf("open market: %d %v", st, mk)
	}
	id = mk["id"].(string)
	return id, "/api/v1/markets/" + id + "/orders"
}

// orderOutcome is one answer to a keyed order.
type orderOutcome struct {
	key     string
	status  int    // 0: no HTTP answer at all
	code    string // the error's code, for a refusal
	message string
	seq     int64
	sent    time.Time
	took    time.Duration
}

// orderLoad keeps a few residents' worth of keyed buy orders flowing and
// records every answer, so that a fault test can check afterwards that what
// was acknowledged is stored exactly once and what was not is not.
type orderLoad struct {
	base, token, path, prefix string
	http                      *http.Client

	mu      sync.Mutex
	results []orderOutcome
	n       atomic.Int64
	stop    atomic.Bool
	wg      sync.WaitGroup
}

// startOrderLoad starts workers goroutines sending orders one after the
// other; a refused order is followed by a short pause, as a polite client
// would, so an outage is not a busy loop.
func startOrderLoad(base, token, path, prefix string, workers int) *orderLoad {
	// The client's timeout is above the server's request timeout (15 s): a
	// hang the server does not bound shows up as status 0, not as a 503.
	l := &orderLoad{base: base, token: token, path: path, prefix: prefix,
		http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.stop.Load() {
				o := l.send(fmt.Sprintf("%s-%d", prefix, l.n.Add(1)))
				l.mu.Lock()
				l.results = append(l.results, o)
				l.mu.Unlock()
				if o.status != 201 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return l
}

// send buys 0.1 shares of outcome 0 under key and decodes the answer.
func (l *orderLoad) send(key string) orderOutcome {
	o := orderOutcome{key: key, sent: time.Now()}
	req, err := http.NewRequest("POST", l.base+l.path, strings.NewReader(`{"outcome":0,"side":"buy","shares":"0.1"}`))
	if err != nil {
		o.message = err.Error()
		return o
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := l.http.Do(req)
	o.took = time.Since(o.sent)
	if err != nil {
		o.message = err.Error()
		return o
	}
	defer resp.Body.Close()
	var body struct {
		Seq   int64 `json:"seq"`
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	o.status, o.seq, o.code, o.message = resp.StatusCode, body.Seq, body.Error.Code, body.Error.Message
	return o
}

// sentAfter returns the answers to orders sent at or after t0.
func (l *orderLoad) sentAfter(t0 time.Time) []orderOutcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []orderOutcome
	for _, o := range l.results {
		if !o.sent.Before(t0) {
			out = append(out, o)
		}
	}
	return out
}

// waitFor polls until an order sent at or after t0 is answered with status
// (or a refusal with it, for a 5xx) and returns how long after t0 that was.
func (l *orderLoad) waitFor(t *testing.T, t0 time.Time, status int, within time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, o := range l.sentAfter(t0) {
			if o.status == status {
				return o.sent.Add(o.took).Sub(t0)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := map[int]int{}
	for _, o := range l.sentAfter(t0) {
		got[o.status]++
	}
	t.Fatalf("no order answered %d within %s (answers by status since: %v)", status, within, got)
	return 0
}

// finish stops the workers and returns every answer.
func (l *orderLoad) finish() []orderOutcome {
	l.stop.Store(true)
	l.wg.Wait()
	l.http.CloseIdleConnections() // their goroutines would look like a leak
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.results
}

// MustStoredExactlyOnce retries every order that was not acknowledged with
// its own key (the documented way to find out), then checks the database:
// every acknowledged order is stored once with the sequence number it was
// acknowledged with, every order is stored exactly once after the retries,
// positions and the trader's cash agree with the trades, and the ledger
// verifies. It returns how many unacknowledged orders had in fact been
// stored before their retry (the crash-in-flight case: allowed, once).
func MustStoredExactlyOnce(t *testing.T, db *sqlx.DB, l *orderLoad, trader *client, results []orderOutcome) (storedUnacked int) {
	t.Helper()
	ctx := context.Background()
	stored := func() map[string][]int64 {
		by, err := faults.StoredByKey(ctx, db, l.prefix+"-%")
		if err != nil {
			t.Fatal(err)
		}
		return by
	}
	before := stored()
	for _, o := range results {
		seqs := before[o.key]
		switch {
		case o.status == 201 && (len(seqs) != 1 || seqs[0] != o.seq):
			t.Fatalf("acknowledged order %s (seq %d) is stored as %v", o.key, o.seq, seqs)
		case o.status != 201 && len(seqs) > 1:
			t.Fatalf("unacknowledged order %s stored %d times", o.key, len(seqs))
		case o.status != 201 && len(seqs) == 1:
			storedUnacked++
		}
		if o.status != 201 {
			if r := l.send(o.key); r.status != 201 {
				t.Fatalf("retry of %s after recovery: %d %s %s", o.key, r.status, r.code, r.message)
			} else if len(seqs) == 1 && r.seq != seqs[0] {
				t.Fatalf("retry of %s answered seq %d, but it was stored as %d: it traded twice", o.key, r.seq, seqs[0])
			}
		}
	}
	after := stored()
	if len(after) != len(results) {
		t.Fatalf("%d orders, %d distinct keys stored", len(results), len(after))
	}
	for k, seqs := range after {
		if len(seqs) != 1 {
			t.Fatalf("order %s stored %d times", k, len(seqs))
		}
	}
	// Positions are the sum of the trades; nothing half-written survives a fault.
	if n, err := faults.PositionMismatches(ctx, db); err != nil || n != 0 {
		t.Fatalf("%d positions disagree with the trades (%v)", n, err)
	}
	// The trader started with 1000.000000 (cityAt) and only traded since.
	st, me := trader.do("GET", "/api/v1/me", "")
	if st != 200 {
		t.Fatalf("me after the faults: %d %v", st, me)
	}
	id, _ := strconv.ParseInt(me["id"].(string), 10, 64)
	spent, err := faults.NetSpent(ctx, db, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := (levee.Units(1000) - levee.MustMicros(spent)).String(); me["cash"] != want {
		t.Fatalf("cash after the faults: %v, want %s from the trades", me["cash"], want)
	}
	r, err := ledger.New(db).Verify(ctx)
	if err != nil || !r.OK {
		t.Fatalf("ledger after the faults: %+v %v", r, err)
	}
	return storedUnacked
}

// refusals checks that every answer is a success or a clear, fast 503 with
// the code "unavailable", and counts them.
func refusals(t *testing.T, results []orderOutcome, limit time.Duration) (acked, refused int, slowest time.Duration) {
	t.Helper()
	for _, o := range results {
		switch {
		case o.status == 201:
			acked++
		case o.status == http.StatusServiceUnavailable && o.code == string(levee.EUNAVAILABLE):
			refused++

			slowest = max(slowest, o.took)
			if o.took > limit {
				t.Errorf("order %s took %s to be refused (limit %s)", o.key, o.took, limit)
			}
		default:
			t.Errorf("order %s: status %d code %q %q, want 201 or 503 unavailable", o.key, o.status, o.code, o.message)
		}
	}
	return acked, refused, slowest
}
