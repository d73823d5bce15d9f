package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/pgserver"
)

// TestDatabaseOutageDuringLoad stops PostgreSQL for a few seconds while
// residents trade: orders fail fast with 503, nothing acknowledged is lost,
// the service recovers by itself when the database is back, and retries with
// the same Idempotency-Key trade exactly once.
func TestDatabaseOutageDuringLoad(t *testing.T) {
	base, err := os.MkdirTemp("", "levee-fault-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o711)
	t.Cleanup(func() { os.RemoveAll(base) })
	ctx := context.Background()
	opts := pgserver.Options{Dir: filepath.Join(base, "pg"), Logger: slog.New(slog.DiscardHandler)}
	srv, err := pgserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Stop() }()
	url := srv.URL("postgres")
	m := NewMain(Config{Addr: "127.0.0.1:0", DatabaseURL: url, AdminToken: testAdminToken, DataDir: base, LogFormat: "text"},
		slog.New(slog.DiscardHandler), io.Discard)
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tess, alice, _ := MustCity(t, m)
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	_, mk := tess.do("POST", "/api/v1/markets", `{"question":"q?","outcomes":["y","n"],"liquidity":"100","closes_at":"`+closes+`"}`)
	path := "/api/v1/markets/" + mk["id"].(string) + "/orders"

	type outcome struct {
		key    string
		status int
		seq    float64
		took   time.Duration
	}
	var (
		mu       sync.Mutex
		results  []outcome
		stop     atomic.Bool
		wg       sync.WaitGroup
		sequence atomic.Int64
	)
	order := func(key string) outcome {
		c := alice.withHeader("Idempotency-Key", key)
		start := time.Now()
		st, r := c.do("POST", path, `{"outcome":0,"side":"buy","shares":"0.1"}`)
		seq, _ := r["seq"].(float64)
		return outcome{key: key, status: st, seq: seq, took: time.Since(start)}
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				o := order(fmt.Sprintf("k%d", sequence.Add(1)))
				mu.Lock()
				results = append(results, o)
				mu.Unlock()
				if o.status != 201 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	outageStart := time.Now()
	time.Sleep(2500 * time.Millisecond)
	srv, err = pgserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	outage := time.Since(outageStart)
	// Recovery without a restart: orders succeed again within a few seconds.
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		last := results[len(results)-1]
		mu.Unlock()
		if last.status == 201 && time.Since(outageStart) > outage {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful order within 15s of the database's return; last: %+v", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	var acked, failed int
	for _, o := range results {
		switch {
		case o.status == 201:
			acked++
		case o.status == http.StatusServiceUnavailable:
			failed++
			if o.took > 7*time.Second {
				t.Errorf("an order hung for %s during the outage", o.took)
			}
		default:
			t.Errorf("order %s: status %d during the outage, want 201 or 503", o.key, o.status)
		}
	}
	if failed == 0 || acked == 0 {
		t.Fatalf("acked %d, failed %d: the outage was not observed", acked, failed)
	}
	// Retry every failed order with its key: each trades at most once.
	for _, o := range results {
		if o.status == 201 {
			continue
		}
		if r := order(o.key); r.status != 201 {
			t.Fatalf("retry of %s after recovery: %d", o.key, r.status)
		}
	}
	db := sqlx.MustOpen("postgres", url)
	defer db.Close()
	var stored []struct {
		Key string  `db:"idempotency_key"`
		Seq float64 `db:"seq"`
	}
	if err := db.Select(&stored, `SELECT idempotency_key, seq FROM trades WHERE idempotency_key IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	byKey := map[string]float64{}
	for _, s := range stored {
		byKey[s.Key] = s.Seq
	}
	if len(byKey) != len(results) || len(stored) != len(results) {
		t.Fatalf("%d orders, %d stored trades (%d distinct keys): not exactly once", len(results), len(stored), len(byKey))
	}
	for _, o := range results {
		if o.status == 201 && byKey[o.key] != o.seq {
			t.Fatalf("acknowledged order %s (seq %v) stored as seq %v", o.key, o.seq, byKey[o.key])
		}
	}
	_, v := anonymous(t, m).do("GET", "/api/v1/ledger/verify", "")
	if v["ok"] != true {
		t.Fatalf("ledger after the outage: %v", v)
	}
	t.Logf("%d orders: %d acknowledged at once, %d refused with 503 during a %s outage and retried", len(results), acked, failed, outage.Round(time.Millisecond))
}
