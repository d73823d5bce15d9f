package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/migrations/dbtest"
)

// MustGoroutinesBackTo polls until the process runs at most base+slack
// goroutines, and fails the test with a dump of them if it does not within
// 10 s.
func MustGoroutinesBackTo(t *testing.T, base, slack int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		n := runtime.NumGoroutine()
		if n <= base+slack {
			return n
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, %d before: a leak?\n%s", n, base, buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClientsDisconnectMidRequest sends orders whose clients go away before
// the answer: with the body cut short, right after the request, a moment
// later, and with a TCP reset. Each order is then stored once or not at all
// (and not at all when the server never had the whole body), a retry with
// the same key settles it exactly once, the server keeps serving, and the
// goroutines of the abandoned requests are gone.
func TestClientsDisconnectMidRequest(t *testing.T) {
	url := dbtest.NewURL(t)
	m := MustRunMainAt(t, url)
	tess, alice, _ := MustCity(t, m)
	_, path := MustMarket(t, tess)
	if st, r := alice.do("POST", path, `{"outcome":0,"side":"buy","shares":"1"}`); st != 201 {
		t.Fatalf("first order: %d %v", st, r)
	}
	base := MustGoroutinesBackTo(t, runtime.NumGoroutine(), 0)

	body := `{"outcome":0,"side":"buy","shares":"0.1"}`
	request := func(key string, cut int) []byte {
		b := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s",
			path, m.Addr(), alice.token, key, len(body), body)
		return []byte(b[:len(b)-cut])
	}
	modes := []struct {
		name     string
		cut      int           // bytes of the body never sent
		wait     time.Duration // up to this long before going away
		reset    bool          // RST instead of FIN
		neverSee bool          // the server cannot have executed it
	}{
		{name: "body cut short", cut: len(body) / 2, neverSee: true},
		{name: "closed right after the request"},
		{name: "closed while waiting", wait: 5 * time.Millisecond},
		{name: "reset while waiting", wait: 5 * time.Millisecond, reset: true},
	}
	const perMode = 60
	l := startOrderLoad("http://"+m.Addr(), alice.token, path, "gone", 0)
	var results []orderOutcome
	cutKeys := map[string]bool{}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, perMode)
			for i := 0; i < perMode; i++ {
				key := fmt.Sprintf("gone-%s-%d", strings.ReplaceAll(mode.name, " ", "_"), i)
				results = append(results, orderOutcome{key: key})
				if mode.neverSee {
					cutKeys[key] = true
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := net.Dial("tcp", m.Addr())
					if err != nil {
						errs <- fmt.Errorf("dial: %w", err)
						return
					}
					if _, err := c.Write(request(key, mode.cut)); err != nil {
						errs <- fmt.Errorf("write %s: %w", key, err)
					}
					if mode.wait > 0 {
						time.Sleep(time.Duration(rand.Int64N(int64(mode.wait))))
					}
					if mode.reset {
						c.(*net.TCPConn).SetLinger(0)
					}
					c.Close()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
	// The server keeps working meanwhile and after.
	if st, r := alice.do("POST", path, `{"outcome":1,"side":"buy","shares":"1"}`); st != 201 {
		t.Fatalf("order after the disconnects: %d %v", st, r)
	}
	// Let the requests still running finish before looking at the database.
	n := MustGoroutinesBackTo(t, base, 5)

	db := sqlx.MustOpen("postgres", url)
	defer db.Close()
	var cutStored []string
	if err := db.Select(&cutStored, `SELECT idempotency_key FROM trades WHERE idempotency_key LIKE 'gone-body_cut_short-%'`); err != nil {
		t.Fatal(err)
	}
	if len(cutStored) > 0 {
		t.Fatalf("orders whose body never arrived were executed: %v", cutStored)
	}
	var storedBefore int
	if err := db.Get(&storedBefore, `SELECT count(*) FROM trades WHERE idempotency_key LIKE 'gone-%'`); err != nil {
		t.Fatal(err)
	}
	inflight := MustStoredExactlyOnce(t, db, l, alice, results)
	if inflight != storedBefore {
		t.Fatalf("%d orders stored before the retries, %d counted", storedBefore, inflight)
	}
	t.Logf("%d abandoned orders (%d with the body cut short): %d had been executed before their retry, each exactly once; goroutines %d before, %d after",
		len(results), len(cutKeys), inflight, base, n)
}
