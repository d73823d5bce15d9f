package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/bench/faults"
	"levee/pgserver"
)

// TestConnectionExhaustion lets another client take every connection
// PostgreSQL has while residents trade. Levee's pooled connections would
// carry on serving for as long as they live, so the hog also closes them
// from the server side (as a restarted pooler or an idle timeout would) and
// takes their slots: Levee must then ask for connections it cannot get.
// Orders must be refused quickly with 503 "unavailable" (not a 500, not a
// hang until the request timeout), nothing acknowledged may be lost, and
// once the hog lets go the service recovers without a restart.
func TestConnectionExhaustion(t *testing.T) {
	// A server of its own: emptying the shared test server of connections
	// would fail the tests other packages run meanwhile.
	base, err := os.MkdirTemp("", "levee-conns-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o711) // the postgres user passes through to the cluster
	t.Cleanup(func() { os.RemoveAll(base) })
	srv, err := pgserver.Start(context.Background(), pgserver.Options{Dir: filepath.Join(base, "pg"), MaxConnections: 20,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	url := srv.URL("postgres")
	m := MustRunMainAt(t, url)
	tess, alice, _ := MustCity(t, m)
	_, path := MustMarket(t, tess)

	l := startOrderLoad("http://"+m.Addr(), alice.token, path, "conns", 4)
	l.waitFor(t, time.Now(), 201, 10*time.Second)

	ctx := context.Background()
	hog, err := faults.NewHog(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hog.Release)
	start := time.Now()
	var evicted int
	reads := map[int]int{} // a read that needs a connection: 200 or 503, never 500
	for time.Since(start) < 1500*time.Millisecond {
		n, err := hog.EvictOthers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		evicted += n
		for i := 0; i < 5; i++ {
			st, body := alice.do("GET", "/api/v1/me", "")
			if code, _ := errField(body); st != 200 && (st != 503 || code != "unavailable") {
				t.Errorf("GET /api/v1/me while the connections are taken: %d %v", st, body)
			}
			reads[st]++
		}
		time.Sleep(200 * time.Millisecond)
	}
	firstRefusal := l.waitFor(t, start, 503, 5*time.Second)
	held := hog.Held()
	hog.Release()
	released := time.Now()
	recovery := l.waitFor(t, released, 201, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	results := l.finish()

	acked, refused, slowest := refusals(t, results, 5*time.Second)
	if refused == 0 {
		t.Fatal("no order was refused: the exhaustion was not observed")
	}
	db := sqlx.MustOpen("postgres", url)
	defer db.Close()
	inflight := MustStoredExactlyOnce(t, db, l, alice, results)
	t.Logf("hog held %d connections, evicted %d of Levee's; GET /me answers by status %v; %d orders: %d acknowledged, %d refused with 503 (first after %s, slowest %s), "+
		"%d stored though unacknowledged (answered by their retry); orders succeeded again %s after the hog let go",
		held, evicted, reads, len(results), acked, refused, firstRefusal.Round(time.Millisecond), slowest.Round(time.Millisecond), inflight,
		recovery.Round(time.Millisecond))
}
