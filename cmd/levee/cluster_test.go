package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee/cluster"
	"levee/migrations/dbtest"
)

// testCluster is three `levee serve` processes of one city on one database
// and an embedded NATS server (docs/cluster.md).
type testCluster struct {
	t     *testing.T
	url   string
	nats  *cluster.NATSServer
	nodes []*childServer
	down  []atomic.Bool
	ttl   time.Duration
}

func startTestCluster(t *testing.T, instances int, ttl time.Duration) *testCluster {
	t.Helper()
	ns, err := cluster.StartNATS(0)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, url: dbtest.NewURL(t), nats: ns, down: make([]atomic.Bool, instances), ttl: ttl}
	for i := range instances {
		c.nodes = append(c.nodes, c.start(i))
	}
	t.Cleanup(func() {
		for i, n := range c.nodes {
			if !c.down[i].Load() {
				n.kill()
			}
		}
		ns.Shutdown()
	})
	return c
}

func (c *testCluster) start(i int) *childServer {
	return startChild(c.t, c.url, "LEVEE_NATS_URL="+c.nats.URL(), fmt.Sprintf("LEVEE_INSTANCE=n%d", i+1), "LEVEE_LEASE_TTL="+c.ttl.String())
}

func (c *testCluster) base(i int) string { return "http://" + c.nodes[i].addr }

// live returns the base URL of a live instance, round robin from i: what a
// load balancer in front of the cluster does.
func (c *testCluster) live(i int) string {
	for k := range len(c.nodes) {
		j := (i + k) % len(c.nodes)
		if !c.down[j].Load() {
			return c.base(j)
		}
	}
	return ""
}

func (c *testCluster) kill(i int) {
	c.down[i].Store(true)
	c.nodes[i].kill()
}

// clusterLoad sends keyed orders over many markets through every live
// instance in turn; an order not acknowledged is retried, with its key, on
// the next instance until it is.
type clusterLoad struct {
	c      *testCluster
	token  string
	paths  []string
	mu     sync.Mutex
	acked  map[string]ackedOrder
	sent   map[string]int // key -> market index
	n      atomic.Int64
	stop   atomic.Bool
	wg     sync.WaitGroup
	errors atomic.Int64 // answers other than 201 (503s while a market moves)
}

type ackedOrder struct {
	market int
	seq    float64
	at     time.Time
}

func (c *testCluster) startLoad(token string, paths []string, workers int) *clusterLoad {
	l := &clusterLoad{c: c, token: token, paths: paths, acked: map[string]ackedOrder{}, sent: map[string]int{}}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; !l.stop.Load(); i++ {
				key := fmt.Sprintf("k%d", l.n.Add(1))
				mk := rand.IntN(len(paths))
				l.mu.Lock()
				l.sent[key] = mk
				l.mu.Unlock()
				for try := i; !l.stop.Load(); try++ {
					if l.order(c.live(try), key, mk) {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return l
}

// order sends one keyed order and records its acknowledgement.
func (l *clusterLoad) order(base, key string, mk int) bool {
	// A client (or load balancer) that gives up after a second and
	// retries the key elsewhere, as it would with a paused instance.
	st, seq := tryOrderWithin(time.Second, base, l.token, l.paths[mk], key)
	if st != http.StatusCreated {
		l.errors.Add(1)
		return false
	}
	l.mu.Lock()
	l.acked[key] = ackedOrder{market: mk, seq: seq, at: time.Now()}
	l.mu.Unlock()
	return true
}

// finish stops the load and retries every order not acknowledged until it
// is, as a client with a key does.
func (l *clusterLoad) finish(t *testing.T) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	for key, mk := range l.sent {
		if _, ok := l.acked[key]; ok {
			continue
		}
		deadline := time.Now().Add(15 * time.Second)
		for try := 0; !l.order(l.c.live(try), key, mk); try++ {
			if time.Now().After(deadline) {
				t.Fatalf("order %s was never acknowledged", key)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// mustStoredExactlyOnce checks the database against every acknowledgement:
// each key traded once, at the seq it was acknowledged with, and every
// market's seqs 1..N without a gap.
func (l *clusterLoad) mustStoredExactlyOnce(t *testing.T, ids []string) {
	t.Helper()
	db := sqlx.MustOpen("postgres", l.c.url)
	defer db.Close()
	var stored []struct {
		Market string  `db:"market_id"`
		Key    string  `db:"idempotency_key"`
		Seq    float64 `db:"seq"`
	}
	if err := db.Select(&stored, `SELECT market_id::text, idempotency_key, seq FROM trades WHERE idempotency_key IS NOT NULL ORDER BY market_id, seq`); err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(l.sent) {
		t.Fatalf("%d orders sent, %d trades stored", len(l.sent), len(stored))
	}
	next := map[string]float64{}
	for _, s := range stored {
		next[s.Market]++
		if s.Seq != next[s.Market] {
			t.Fatalf("market %s: trade seq %v where %v was due", s.Market, s.Seq, next[s.Market])
		}
		a, ok := l.acked[s.Key]
		if !ok || ids[a.market] != s.Market || a.seq != s.Seq {
			t.Fatalf("order %s acknowledged as %+v, stored in market %s at seq %v", s.Key, a, s.Market, s.Seq)
		}
	}
}

// watcher is a websocket client of one instance subscribed to every market:
// per market, each trade must follow the previous one's seq or come after a
// gap message that says where trades resume.
type watcher struct {
	ws     *websocket.Conn
	mu     sync.Mutex
	last   map[string]float64
	trades int
	gaps   int
	bad    []string
	done   chan struct{}
}

func watch(t *testing.T, base string, ids []string) *watcher {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+base[len("http"):]+"/api/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := json.Marshal(map[string]any{"op": "subscribe", "markets": ids})
	if err := ws.WriteMessage(websocket.TextMessage, sub); err != nil {
		t.Fatal(err)
	}
	w := &watcher{ws: ws, last: map[string]float64{}, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			_, frame, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var m struct {
				Type, Market string
				Seq          float64
			}
			if json.Unmarshal(frame, &m) != nil {
				continue
			}
			w.mu.Lock()
			switch m.Type {
			case "snapshot", "gap":
				w.last[m.Market] = m.Seq
				if m.Type == "gap" {
					w.gaps++
				}
			case "trade":
				if m.Seq != w.last[m.Market]+1 {
					w.bad = append(w.bad, fmt.Sprintf("market %s: trade %v after %v without a gap", m.Market, m.Seq, w.last[m.Market]))
				}
				w.last[m.Market] = m.Seq
				w.trades++
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *watcher) close(t *testing.T) (trades, gaps int) {
	t.Helper()
	w.ws.Close()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.bad) > 0 {
		t.Fatalf("a websocket client saw silent seq jumps: %v", w.bad[:min(5, len(w.bad))])
	}
	return w.trades, w.gaps
}

// TestClusterSurvivesFaults runs three instances and an embedded NATS server
// under keyed load over many markets, websocket clients on the instances that
// stay up, and then a fault: an instance SIGKILLed, or the NATS server
// restarted, or an instance paused (SIGSTOP) past its lease and resumed
// (SIGCONT) under load. Every acknowledged order is stored exactly once, every order is
// eventually acknowledged, a killed instance's markets are served again
// within 3 s, and the websocket clients see gap-free seqs or explicit gaps.
func TestClusterSurvivesFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	for _, tc := range []struct {
		name   string
		fault  func(c *testCluster) (killed string)
		victim string // the instance whose markets must be taken over
	}{
		{"kill an instance", func(c *testCluster) string { c.kill(0); return "n1" }, "n1"},
		{"pause an instance past its lease", func(c *testCluster) string {
			// Its markets are taken over while it sleeps; when it wakes,
			// what it still holds is fenced or forwarded, never committed.
			c.pause(0)
			time.Sleep(c.ttl + 1500*time.Millisecond)
			c.resume(0)
			return "n1"
		}, "n1"},
		{"restart NATS", func(c *testCluster) string {
			if err := c.nats.Restart(300 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			return ""
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startTestCluster(t, 3, 2*time.Second)
			tess, alice, _ := cityAt(t, c.base(0))
			closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
			var ids, paths []string
			for range 12 {
				_, mk := tess.do("POST", "/api/v1/markets", `{"question":"q?","outcomes":["y","n"],"liquidity":"100","closes_at":"`+closes+`"}`)
				ids = append(ids, mk["id"].(string))
				paths = append(paths, "/api/v1/markets/"+mk["id"].(string)+"/orders")
			}
			watchers := []*watcher{watch(t, c.base(1), ids), watch(t, c.base(2), ids)}
			load := c.startLoad(alice.token, paths, 6)
			time.Sleep(1500 * time.Millisecond)

			db := sqlx.MustOpen("postgres", c.url)
			defer db.Close()
			var owners []struct {
				Market string `db:"market_id"`
				Owner  string `db:"owner"`
			}
			if err := db.Select(&owners, `SELECT market_id::text, owner FROM market_leases WHERE expires_at > now()`); err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			taken := make(chan time.Duration, 1)
			go func() {
				if tc.victim == "" {
					taken <- 0
					return
				}
				taken <- c.takeover(db, owners, tc.victim, t0)
			}()
			killed := tc.fault(c)
			time.Sleep(4 * time.Second)
			load.finish(t)
			takeover := <-taken
			load.mustStoredExactlyOnce(t, ids)

			// Takeover: the first acknowledgement after the kill of each
			// market the killed instance owned.
			var victims []string
			slowest := time.Duration(0)
			for _, o := range owners {
				if o.Owner != killed || killed == "" {
					continue
				}
				victims = append(victims, o.Market)
				first := time.Duration(-1)
				for _, a := range load.acked {
					if ids[a.market] == o.Market && a.at.After(t0) && (first < 0 || a.at.Sub(t0) < first) {
						first = a.at.Sub(t0)
					}
				}
				slowest = max(slowest, first)
			}
			if killed != "" && len(victims) == 0 {
				t.Fatalf("%s owned none of the markets: %v", killed, owners)
			}
			if killed != "" && (takeover < 0 || takeover > 3*time.Second) {
				t.Errorf("the markets of %s were taken over %s after the fault, want at most 3s", killed, takeover)
			}
			for i, w := range watchers {
				trades, gaps := w.close(t)
				if trades == 0 {
					t.Errorf("websocket client on instance %d saw no trades", i+2)
				}
				t.Logf("websocket client on n%d: %d trades, %d gaps", i+2, trades, gaps)
			}
			_, v := (&client{t: t, base: c.live(1), http: &http.Client{}}).do("GET", "/api/v1/ledger/verify", "")
			if v["ok"] != true {
				t.Fatalf("ledger after the fault: %v", v)
			}
			t.Logf("%d keyed orders over %d markets, all stored once (%d refusals retried); %d markets of %q taken over in %s, trading again within %s",
				len(load.sent), len(ids), load.errors.Load(), len(victims), killed, takeover, slowest)
		})
	}
}

// pause stops instance i with SIGSTOP (a long GC pause, a frozen VM).
func (c *testCluster) pause(i int) { c.nodes[i].cmd.Process.Signal(syscall.SIGSTOP) }

// resume continues it with SIGCONT.
func (c *testCluster) resume(i int) { c.nodes[i].cmd.Process.Signal(syscall.SIGCONT) }

// takeover waits until every market node held is held by another live
// instance, and returns how long after t0 that was (-1 after 10 s).
func (c *testCluster) takeover(db *sqlx.DB, owners []struct {
	Market string `db:"market_id"`
	Owner  string `db:"owner"`
}, node string, t0 time.Time) time.Duration {
	var held []string
	for _, o := range owners {
		if o.Owner == node {
			held = append(held, o.Market)
		}
	}
	for time.Since(t0) < 10*time.Second {
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM market_leases WHERE market_id::text = ANY($1) AND owner <> $2 AND expires_at > now()`,
			pq.Array(held), node); err == nil && n == len(held) {
			return time.Since(t0)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}
