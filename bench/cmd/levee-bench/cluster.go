package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lib/pq"

	"levee/bench/faults"
	"levee/cluster"
	"levee/ledger"
)

// The cluster scenarios (docs/cluster.md): several `levee serve` processes
// of one city on one PostgreSQL and an embedded NATS server.
//
//   - cluster-faults (make faults): keyed orders over many markets through
//     every instance in turn, while instances are SIGKILLed and restarted and
//     paused past their leases (SIGSTOP, SIGCONT); then every order is
//     looked up in the database.
//   - cluster (make bench): orders/s over 1,000 markets with 1, 2 and 3
//     instances, the CPU per order of each, a forwarded order against a local
//     one, and websocket fan-out with subscribers spread over the instances.

// clusterNodes is a running cluster of child instances.
type clusterNodes struct {
	e     *env
	bin   string
	nats  *cluster.NATSServer
	addrs []string
	kids  []*child
	down  []atomic.Bool
	ttl   time.Duration
}

func (e *env) startCluster(ctx context.Context, bin string, ns *cluster.NATSServer, n int, ttl time.Duration) (*clusterNodes, error) {
	c := &clusterNodes{e: e, bin: bin, nats: ns, down: make([]atomic.Bool, n), ttl: ttl}
	for i := range n {
		addr, err := freeAddr()
		if err != nil {
			return c, err
		}
		c.addrs = append(c.addrs, addr)
		c.kids = append(c.kids, nil)
		if err := c.start(ctx, i); err != nil {
			return c, err
		}
	}
	return c, nil
}

// start (re)starts instance i at its address, under the same node name.
func (c *clusterNodes) start(ctx context.Context, i int) error {
	var env []string
	if c.nats != nil {
		env = []string{"LEVEE_NATS_URL=" + c.nats.URL(), fmt.Sprintf("LEVEE_INSTANCE=n%d", i+1), "LEVEE_LEASE_TTL=" + c.ttl.String()}
	}
	k, err := c.e.startChildEnv(ctx, c.bin, c.addrs[i], env)
	if err != nil {
		return fmt.Errorf("instance n%d: %w", i+1, err)
	}
	c.kids[i] = k
	c.down[i].Store(false)
	return nil
}

func (c *clusterNodes) stop() {
	for i, k := range c.kids {
		if k != nil {
			if c.down[i].Load() {
				k.cmd.Process.Signal(syscall.SIGCONT)
			}
			k.stop()
		}
	}
}

// live is the address of a live instance, round robin from i.
func (c *clusterNodes) live(i int) string {
	for k := range len(c.addrs) {
		j := (i + k) % len(c.addrs)
		if !c.down[j].Load() {
			return c.addrs[j]
		}
	}
	return c.addrs[0]
}

// cpu is the CPU time the instances used so far.
func (c *clusterNodes) cpu() time.Duration {
	var d time.Duration
	for _, k := range c.kids {
		if k != nil {
			d += procCPU(k.cmd.Process.Pid)
		}
	}
	return d
}

// keyedLoad sends keyed orders to random markets through the instances in
// turn, one worker per trader; an order not acknowledged within a second (a
// load balancer's timeout) is retried with its key on the next instance.
type keyedLoad struct {
	c       *clusterNodes
	tokens  []string
	markets []int64
	prefix  string
	pick    func(worker int) (addr string, market int64) // nil: round robin, random market

	mu     sync.Mutex
	acked  map[string]int64 // key -> acknowledged seq
	sent   map[string]sentOrder
	lat    []time.Duration // of acknowledged first attempts
	orders atomic.Int64
	retry  atomic.Int64
	stop   atomic.Bool
	wg     sync.WaitGroup
}

func (l *keyedLoad) start() {
	l.acked, l.sent = map[string]int64{}, map[string]sentOrder{}
	for w := range l.tokens {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			defer hc.CloseIdleConnections()
			for n := 0; !l.stop.Load(); n++ {
				key := fmt.Sprintf("%s-%d-%d", l.prefix, w, n)
				addr, mk := "", int64(0)
				if l.pick != nil {
					addr, mk = l.pick(w)
				} else {
					mk = l.markets[rand.IntN(len(l.markets))]
				}
				l.mu.Lock()
				l.sent[key] = sentOrder{market: mk, worker: w}
				l.mu.Unlock()
				for try := w + n; !l.stop.Load(); try++ {
					a := addr
					if a == "" {
						a = l.c.live(try)
					}
					t0 := time.Now()
					if seq, ok := sendKeyed(hc, a, l.tokens[w], mk, key); ok {
						l.mu.Lock()
						l.acked[key] = seq
						if try == w+n {
							l.lat = append(l.lat, time.Since(t0))
						}
						l.mu.Unlock()
						l.orders.Add(1)
						break
					}
					l.retry.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
}

// sentOrder is an order's market and the worker (account) that sent it: a
// key is the account's, and its retry must come from the same account.
type sentOrder struct {
	market int64
	worker int
}

func (l *keyedLoad) finish() {
	l.stop.Store(true)
	l.wg.Wait()
}

// sendKeyed buys a tenth of a share of outcome 0 under key.
func sendKeyed(hc *http.Client, addr, token string, market int64, key string) (int64, bool) {
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://%s/api/v1/markets/%d/orders", addr, market), strings.NewReader(`{"outcome":0,"side":"buy","shares":"0.1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var body struct {
		Seq int64 `json:"seq"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	return body.Seq, resp.StatusCode == http.StatusCreated
}

// ClusterFaultReport is one run of cluster-faults.
type ClusterFaultReport struct {
	Command           string
	Started, Finished time.Time
	Machine           Machine
	Kills, Pauses     int
	Takeovers         []time.Duration // per fault: until every market of the victim was held by another live instance
	Orders, Acked     int
	Retries           int64
	Lost, WrongSeq    int
	Duplicates        int
	NotOnceAfter      int
	SeqHoles          int
	PositionMismatch  int
	LedgerOK          bool
	Failures          []string
}

// runClusterFaults is `-scenario cluster-faults`.
func runClusterFaults(ctx context.Context, cfg Config, stdout io.Writer) (err error) {
	begin := time.Now()
	rep := &ClusterFaultReport{Started: begin, Command: "go run ./bench/cmd/levee-bench " + strings.Join(cfg.Args, " ")}
	defer func() {
		rep.Finished = time.Now()
		err = finishScenario(cfg, stdout, "cluster-faults", clusterFaultSection(rep), rep.Failures, err)
	}()
	sc := cfg
	sc.Markets, sc.Traders, sc.Clients = cfg.ClusterFaultMarkets, cfg.FaultWorkers, 1
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
	c, err := e.startCluster(ctx, bin, ns, 3, 2*time.Second)
	defer c.stop()
	if err != nil {
		return err
	}
	var ids []int64
	for _, m := range e.markets {
		ids = append(ids, m.ID)
	}
	l := &keyedLoad{c: c, tokens: e.tokens(cfg.FaultWorkers), markets: ids, prefix: "cf"}
	l.start()
	wait := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := wait(cfg.FaultEvery); err != nil {
		return err
	}
	faultsRun := 0
	for round := 0; round < cfg.Kills+cfg.ClusterPauses; round++ {
		victim := round % 3
		pause := round%((cfg.Kills+cfg.ClusterPauses)/max(1, cfg.ClusterPauses)) == 1 && rep.Pauses < cfg.ClusterPauses
		held, err := heldBy(ctx, e, fmt.Sprintf("n%d", victim+1))
		if err != nil {
			return err
		}
		t0 := time.Now()
		taken := make(chan time.Duration, 1)
		go func() { taken <- takeoverOf(ctx, e, held, fmt.Sprintf("n%d", victim+1), t0) }()
		if pause {
			c.down[victim].Store(true)
			c.kids[victim].cmd.Process.Signal(syscall.SIGSTOP)
			err = wait(c.ttl + 1500*time.Millisecond)
			c.kids[victim].cmd.Process.Signal(syscall.SIGCONT)
			c.down[victim].Store(false)
			rep.Pauses++
		} else {
			c.down[victim].Store(true)
			c.kids[victim].kill()
			err = wait(c.ttl + time.Second)
			if err == nil {
				err = c.start(ctx, victim)
			}
			rep.Kills++
		}
		rep.Takeovers = append(rep.Takeovers, <-taken)
		if err != nil {
			l.finish()
			return err
		}
		faultsRun++
		fmt.Fprintf(stdout, "cluster fault %d/%d (%s n%d): markets taken over in %s\n", faultsRun, cfg.Kills+cfg.ClusterPauses,
			map[bool]string{true: "pause", false: "kill"}[pause], victim+1, rep.Takeovers[len(rep.Takeovers)-1].Round(time.Millisecond))
		if err := wait(cfg.FaultEvery); err != nil {
			l.finish()
			return err
		}
	}
	l.finish()
	rep.Retries = l.retry.Load()
	// Retry every order not acknowledged, with its key, until it is.
	hc := &http.Client{Timeout: 5 * time.Second}
	for key, o := range l.sent {
		if _, ok := l.acked[key]; ok {
			continue
		}
		for try := 0; ; try++ {
			if seq, ok := sendKeyed(hc, c.live(try), l.tokens[o.worker], o.market, key); ok {
				l.acked[key] = seq
				break
			}
			if try > 100 {
				rep.NotOnceAfter++
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return auditCluster(ctx, e, l, rep)
}

func heldBy(ctx context.Context, e *env, node string) ([]int64, error) {
	var ids []int64
	err := e.db.SelectContext(ctx, &ids, `SELECT market_id FROM market_leases WHERE owner = $1 AND expires_at > now()`, node)
	return ids, err
}

// takeoverOf waits until every market in held is held by another live
// instance, and returns how long after t0 (-1 after 15 s).
func takeoverOf(ctx context.Context, e *env, held []int64, node string, t0 time.Time) time.Duration {
	for time.Since(t0) < 15*time.Second && ctx.Err() == nil {
		var n int
		if err := e.db.GetContext(ctx, &n, `SELECT count(*) FROM market_leases WHERE market_id = ANY($1) AND owner <> $2 AND expires_at > now()`,
			pq.Array(held), node); err == nil && n == len(held) {
			return time.Since(t0)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

func auditCluster(ctx context.Context, e *env, l *keyedLoad, rep *ClusterFaultReport) error {
	stored, err := faults.StoredByKey(ctx, e.db, l.prefix+"-%")
	if err != nil {
		return err
	}
	rep.Orders, rep.Acked = len(l.sent), len(l.acked)
	for key := range l.sent {
		seqs := stored[key]
		acked, ok := l.acked[key]
		switch {
		case len(seqs) > 1:
			rep.Duplicates++
		case ok && len(seqs) == 0:
			rep.Lost++
		case ok && seqs[0] != acked:
			rep.WrongSeq++
		}
	}
	var holes int
	if err := e.db.GetContext(ctx, &holes, `SELECT count(*) FROM (SELECT market_id, count(*) AS n, max(seq) AS top FROM trades GROUP BY market_id) t
		WHERE n <> top`); err != nil {
		return err
	}
	rep.SeqHoles = holes
	if rep.PositionMismatch, err = faults.PositionMismatches(ctx, e.db); err != nil {
		return err
	}
	r, err := ledger.New(e.db).Verify(ctx)
	if err != nil {
		return err
	}
	rep.LedgerOK = r.OK
	for _, tk := range rep.Takeovers {
		if tk < 0 || tk > 3*time.Second {
			rep.Failures = append(rep.Failures, fmt.Sprintf("a takeover took %s (want at most 3 s)", tk))
			break
		}
	}
	if rep.Lost+rep.WrongSeq+rep.Duplicates+rep.NotOnceAfter+rep.SeqHoles+rep.PositionMismatch > 0 || !rep.LedgerOK {
		rep.Failures = append(rep.Failures, fmt.Sprintf("audit: %d lost, %d wrong seq, %d duplicated, %d never acknowledged, %d markets with seq holes, %d positions off, ledger ok %v",
			rep.Lost, rep.WrongSeq, rep.Duplicates, rep.NotOnceAfter, rep.SeqHoles, rep.PositionMismatch, rep.LedgerOK))
	}
	return nil
}

func clusterFaultSection(rep *ClusterFaultReport) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## Cluster faults: %d SIGKILLs and %d SIGSTOP/SIGCONT rounds of three instances\n\n", rep.Kills, rep.Pauses)
	w("`%s`, %s, %s (load average at the end: %s). Three `levee serve` instances, an embedded NATS server, keyed orders over many markets through every instance in turn (one-second client timeout, retried with the same key on the next instance). Each fault: an instance SIGKILLed and restarted under its name after the lease TTL plus a second, or paused with SIGSTOP for the TTL plus 1.5 s and resumed with SIGCONT. The machine was shared with other work.\n\n",
		rep.Command, rep.Started.UTC().Format(time.RFC3339), rep.Finished.Sub(rep.Started).Round(time.Second), loadAvg())
	var ts []time.Duration
	for _, t := range rep.Takeovers {
		ts = append(ts, t)
	}
	sortDurations(ts)
	if len(ts) > 0 {
		w("Takeover (until every market of the victim is held by another live instance): median %s, max %s over %d faults.\n\n",
			pct(ts, 0.5).Round(time.Millisecond), ts[len(ts)-1].Round(time.Millisecond), len(ts))
	}
	w("| audit | count |\n|---|---|\n")
	w("| keyed orders sent | %d |\n| acknowledged (after the final keyed retries) | %d |\n| retries during the faults | %d |\n", rep.Orders, rep.Acked, rep.Retries)
	w("| acknowledged and lost | %d %s |\n| stored at another seq than acknowledged | %d %s |\n| stored more than once | %d %s |\n",
		rep.Lost, mark(rep.Lost == 0), rep.WrongSeq, mark(rep.WrongSeq == 0), rep.Duplicates, mark(rep.Duplicates == 0))
	w("| never acknowledged | %d %s |\n| markets whose seqs have holes | %d %s |\n| positions that are not the sum of their trades | %d %s |\n| ledger verifies | %v %s |\n\n",
		rep.NotOnceAfter, mark(rep.NotOnceAfter == 0), rep.SeqHoles, mark(rep.SeqHoles == 0), rep.PositionMismatch, mark(rep.PositionMismatch == 0), rep.LedgerOK, mark(rep.LedgerOK))
	writeFailures(&b, rep.Failures, "nothing acknowledged was lost, nothing was stored twice, every takeover within 3 s")
	return b.String()
}
