package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"levee/cluster"
)

// ClusterConfigResult is the order load on one configuration of instances.
type ClusterConfigResult struct {
	Name          string
	Orders        int64
	Wall          time.Duration
	LeveeCPU      time.Duration // all instances
	PGCPU         time.Duration
	P50, P99      time.Duration
	Retries       int64
	OrdersPerSec  float64
	LeveePerOrder time.Duration
	PGPerOrder    time.Duration
}

// ClusterBenchReport is one run of the cluster scenario.
type ClusterBenchReport struct {
	Command           string
	Started, Finished time.Time
	Machine           Machine
	Markets, Clients  int
	Configs           []ClusterConfigResult
	Local, Forwarded  ClusterConfigResult
	Subscribers       int
	FanoutEvents      int
	FanoutOwner       [2]time.Duration // p50, p99 of subscribers on the owner
	FanoutOthers      [2]time.Duration // p50, p99 of subscribers on the other instances
	Failures          []string
}

// runClusterBench is `-scenario cluster` (make bench).
func runClusterBench(ctx context.Context, cfg Config, stdout io.Writer) (err error) {
	begin := time.Now()
	clients := min(cfg.Clients, 64)
	rep := &ClusterBenchReport{Started: begin, Command: "go run ./bench/cmd/levee-bench " + strings.Join(cfg.Args, " "), Markets: cfg.ClusterMarkets, Clients: clients}
	defer func() {
		rep.Finished = time.Now()
		err = finishScenario(cfg, stdout, "cluster", clusterBenchSection(rep), rep.Failures, err)
	}()
	sc := cfg
	sc.Markets, sc.Traders, sc.Clients = cfg.ClusterMarkets, clients, clients
	e, bin, err := setupForChild(ctx, sc, stdout, begin)
	if e != nil {
		defer e.close()
	}
	if err != nil {
		return err
	}
	rep.Machine = describeMachine(ctx, e.db)
	ns, err := cluster.StartNATS(0)
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	var ids []int64
	for _, m := range e.markets {
		ids = append(ids, m.ID)
	}
	tokens := e.tokens(clients)
	for i, conf := range []struct {
		name string
		n    int
		nats bool
	}{{"1 instance, no NATS (as before)", 1, false}, {"1 instance on NATS", 1, true}, {"2 instances", 2, true}, {"3 instances", 3, true}} {
		var nsUsed *cluster.NATSServer
		if conf.nats {
			nsUsed = ns
		}
		c, err := e.startCluster(ctx, bin, nsUsed, conf.n, 2*time.Second)
		if err != nil {
			c.stop()
			return err
		}
		l := &keyedLoad{c: c, tokens: tokens, markets: ids, prefix: fmt.Sprintf("cb%d", i)}
		r := measure(ctx, c, e, l, conf.name, cfg.ClusterDuration)
		rep.Configs = append(rep.Configs, r)
		fmt.Fprintf(stdout, "cluster bench: %s: %.0f orders/s, %s levee CPU and %s PostgreSQL CPU per order\n", r.Name, r.OrdersPerSec, r.LeveePerOrder, r.PGPerOrder)
		switch conf.n {
		case 2:
			rep.Local, rep.Forwarded = forwardCost(ctx, c, e, tokens, cfg.ClusterDuration/2)
		case 3:
			if err := clusterFanout(ctx, c, e, tokens, cfg, rep); err != nil {
				rep.Failures = append(rep.Failures, "fan-out: "+err.Error())
			}
		}
		c.stop()
	}
	return nil
}

// measure runs l on c for d and takes its rate and CPU.
func measure(ctx context.Context, c *clusterNodes, e *env, l *keyedLoad, name string, d time.Duration) ClusterConfigResult {
	l.start()
	time.Sleep(time.Second) // books start, leases spread
	n0, cpu0, pg0, t0 := l.orders.Load(), c.cpu(), pgCPU(e.pgPID), time.Now()
	l.mu.Lock()
	l.lat = l.lat[:0]
	l.mu.Unlock()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	r := ClusterConfigResult{Name: name, Orders: l.orders.Load() - n0, Wall: time.Since(t0), LeveeCPU: c.cpu() - cpu0, PGCPU: pgCPU(e.pgPID) - pg0}
	l.finish()
	r.Retries = l.retry.Load()
	lat := append([]time.Duration(nil), l.lat...)
	sortDurations(lat)
	if len(lat) > 0 {
		r.P50, r.P99 = pct(lat, 0.5), pct(lat, 0.99)
	}
	if r.Orders > 0 {
		r.OrdersPerSec = float64(r.Orders) / r.Wall.Seconds()
		r.LeveePerOrder = r.LeveeCPU / time.Duration(r.Orders)
		r.PGPerOrder = r.PGCPU / time.Duration(r.Orders)
	}
	return r
}

// forwardCost sends orders for the markets n1 owns to n1 (local) and then
// to n2 (forwarded over NATS), and compares them.
func forwardCost(ctx context.Context, c *clusterNodes, e *env, tokens []string, d time.Duration) (local, forwarded ClusterConfigResult) {
	owned, err := heldBy(ctx, e, "n1")
	if err != nil || len(owned) == 0 {
		return
	}
	workers := tokens[:min(16, len(tokens))]
	for i, to := range []int{0, 1} {
		l := &keyedLoad{c: c, tokens: workers, prefix: fmt.Sprintf("fw%d", i)}
		l.pick = func(w int) (string, int64) { return c.addrs[to], owned[(w+int(l.orders.Load()))%len(owned)] }
		r := measure(ctx, c, e, l, map[int]string{0: "local (sent to the owner)", 1: "forwarded (sent to another instance)"}[to], d)
		if to == 0 {
			local = r
		} else {
			forwarded = r
		}
	}
	return local, forwarded
}

// fanout spreads websocket subscribers of one market over the instances and
// times each trade from its commit (the message's ts) to its arrival.
func clusterFanout(ctx context.Context, c *clusterNodes, e *env, tokens []string, cfg Config, rep *ClusterBenchReport) error {
	hot := e.markets[0].ID
	if _, ok := sendKeyed(&http.Client{Timeout: 5 * time.Second}, c.addrs[0], tokens[0], hot, "fanout-warm"); !ok {
		return fmt.Errorf("no order on the hot market")
	}
	var owner string
	if err := e.db.GetContext(ctx, &owner, `SELECT owner FROM market_leases WHERE market_id = $1`, hot); err != nil {
		return err
	}
	subs := min(300, max(30, cfg.WSClients/10))
	rep.Subscribers = subs
	var mu sync.Mutex
	delays := map[bool][]time.Duration{} // on the owner?
	var conns []*websocket.Conn
	var wg sync.WaitGroup
	for i := range subs {
		inst := i % len(c.addrs)
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+c.addrs[inst]+"/api/v1/ws", nil)
		if err != nil {
			return err
		}
		conns = append(conns, ws)
		sub, _ := json.Marshal(map[string]any{"op": "subscribe", "markets": []string{fmt.Sprint(hot)}})
		ws.WriteMessage(websocket.TextMessage, sub)
		onOwner := fmt.Sprintf("n%d", inst+1) == owner
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, frame, err := ws.ReadMessage()
				if err != nil {
					return
				}
				at := time.Now()
				var m struct {
					Type string    `json:"type"`
					TS   time.Time `json:"ts"`
				}
				if json.Unmarshal(frame, &m) == nil && m.Type == "trade" {
					mu.Lock()
					delays[onOwner] = append(delays[onOwner], at.Sub(m.TS))
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	l := &keyedLoad{c: c, tokens: tokens[:min(8, len(tokens))], prefix: "fo"}
	l.pick = func(w int) (string, int64) { return c.live(w + int(l.orders.Load())), hot }
	l.start()
	time.Sleep(cfg.ClusterDuration / 2)
	l.finish()
	time.Sleep(500 * time.Millisecond)
	for _, ws := range conns {
		ws.Close()
	}
	wg.Wait()
	for _, on := range []bool{true, false} {
		d := delays[on]
		sortDurations(d)
		rep.FanoutEvents += len(d)
		if len(d) == 0 {
			continue
		}
		q := [2]time.Duration{pct(d, 0.5), pct(d, 0.99)}
		if on {
			rep.FanoutOwner = q
		} else {
			rep.FanoutOthers = q
		}
	}
	return nil
}

func clusterBenchSection(rep *ClusterBenchReport) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## Several instances: orders over %d markets with 1, 2 and 3 instances\n\n", rep.Markets)
	w("`%s`, %s, %s (load average at the end: %s). %d closed-loop clients (one trader each) send keyed orders to random markets through the instances in turn (docs/cluster.md); every instance is a `levee serve` process on the same durable PostgreSQL, on an embedded NATS server. **The machine has %d cores and was shared with other work while this ran**: more instances cannot add cores here, so the CPU per order is the figure to compare; the rate shows the cost of coordination, not the gain a second machine would bring.\n\n",
		rep.Command, rep.Started.UTC().Format(time.RFC3339), rep.Finished.Sub(rep.Started).Round(time.Second), loadAvg(), rep.Clients, rep.Machine.NProc)
	w("| configuration | orders/s | levee CPU per order | PostgreSQL CPU per order | p50 | p99 | retries |\n|---|---|---|---|---|---|---|\n")
	row := func(r ClusterConfigResult) {
		w("| %s | %.0f | %s | %s | %s | %s | %d |\n", r.Name, r.OrdersPerSec, r.LeveePerOrder.Round(time.Microsecond), r.PGPerOrder.Round(time.Microsecond),
			r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Retries)
	}
	for _, r := range rep.Configs {
		row(r)
	}
	w("\nA forwarded order against a local one (2 instances, 16 clients, the markets n1 owns, sent to n1 or to n2; CPU of both instances):\n\n")
	w("| path | orders/s | levee CPU per order | PostgreSQL CPU per order | p50 | p99 | retries |\n|---|---|---|---|---|---|---|\n")
	row(rep.Local)
	row(rep.Forwarded)
	w("\nFan-out across instances: %d websocket subscribers of one market spread evenly over 3 instances, 8 clients trading on it; delay from the commit (the message's `ts`) to arrival, %d trade messages:\n\n", rep.Subscribers, rep.FanoutEvents)
	w("| subscribers | p50 | p99 |\n|---|---|---|\n")
	w("| on the market's owner (local hub) | %s | %s |\n", rep.FanoutOwner[0].Round(10*time.Microsecond), rep.FanoutOwner[1].Round(10*time.Microsecond))
	w("| on the other instances (through NATS) | %s | %s |\n\n", rep.FanoutOthers[0].Round(10*time.Microsecond), rep.FanoutOthers[1].Round(10*time.Microsecond))
	writeFailures(&b, rep.Failures, "")
	return b.String()
}
