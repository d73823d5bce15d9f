package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"levee"
	"levee/bench/fanout"
	"levee/market"
	"levee/web/live"
)

// FanoutResult is the websocket fan-out measurement, or why it did not run.
type FanoutResult struct {
	Ran         bool
	Why         string // why it could not run
	URL         string
	Clients     int
	Events      int
	Mode        string
	PublishSecs float64
	Summary     fanout.Summary
	Hub         live.Stats // the hub's counters when the last order was acknowledged
	ServerCPU   float64    // cores used by this process while the orders were published
	PGCPU       float64    // and by PostgreSQL
	Err         string
	// Floor is the same clients, in the same place, against fanout.Floor
	// right after: one write(2) per subscriber and event and nothing of
	// Levee, at the same pace; the baseline the hub is compared with.
	Floor    fanout.Summary
	FloorErr string
}

// wsPace is the rate at which the trades of the fan-out are submitted.
const wsPace = 10 // orders/s

// measureFanout subscribes cfg.WSClients clients to the hot market through
// the server's GET /api/v1/ws (in a second process above 1000 clients, so
// that neither process runs out of file descriptors), submits cfg.WSEvents
// orders at a steady pace, and collects every client's latencies.
func (e *env) measureFanout(ctx context.Context, addr string) FanoutResult {
	res := FanoutResult{URL: "ws://" + addr + "/api/v1/ws", Clients: e.cfg.WSClients, Events: e.cfg.WSEvents}
	if e.cfg.WSClients <= 0 {
		res.Why = "disabled (-ws-clients 0)"
		return res
	}
	ok, why, err := fanout.Available(ctx, res.URL)
	if err != nil {
		res.Why = "the server could not be reached: " + err.Error()
		return res
	}
	if !ok {
		res.Why = why + ": the server does not serve the websocket hub"
		return res
	}
	fc := fanout.Config{URL: res.URL, Market: e.hot, Clients: e.cfg.WSClients, Events: e.cfg.WSEvents}
	timeout := time.Duration(e.cfg.WSEvents/wsPace+30) * time.Second
	inProcess := e.cfg.WSInProcess || e.cfg.WSClients <= 1000
	if inProcess {
		res.Mode = "clients in the server's process"
		s, err := fanout.Subscribe(ctx, fc)
		if err != nil {
			res.Err = err.Error()
			return res
		}
		e.say("fan-out: %d clients subscribed in %s; publishing %d trades", e.cfg.WSClients-s.Failed, s.Subscribe.Round(time.Millisecond), e.cfg.WSEvents)
		res.PublishSecs, err = e.publishTrades(ctx, &res)
		res.Summary = s.Collect(timeout)
		if err != nil {
			res.Err = err.Error()
		}
		res.Ran = res.Summary.Pairs > 0
		e.measureFanoutFloor(ctx, &res, true)
		return res
	}

	res.Mode = "clients in a second process"
	wc, ready, err := startWSClients(ctx, res.URL, e.hot, e.cfg.WSClients, e.cfg.WSEvents, 0)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	e.say("fan-out: client process %s; publishing %d trades", ready, e.cfg.WSEvents)
	res.PublishSecs, err = e.publishTrades(ctx, &res)
	if err != nil {
		res.Err = err.Error()
	}
	if res.Summary, err = wc.summary(); err != nil {
		res.Err = err.Error()
		return res
	}
	res.Ran = res.Summary.Pairs > 0
	e.measureFanoutFloor(ctx, &res, false)
	return res
}

// measureFanoutFloor runs the fan-out's clients again, the same number in
// the same place, against fanout.Floor (one write(2) per subscriber and
// event, nothing of Levee), publishing a trade and its quote at the same
// pace (fanout.TradeAndQuote).
func (e *env) measureFanoutFloor(ctx context.Context, res *FanoutResult, inProcess bool) {
	fail := func(err error) { res.FloorErr = err.Error() }
	f := &fanout.Floor{Snapshot: func() []byte {
		return fmt.Appendf(nil, `{"type":"snapshot","market":"%d","seq":0}`, e.hot)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
		return
	}
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	defer srv.Close()
	url := "ws://" + ln.Addr().String() + "/"
	clients, events := e.cfg.WSClients, e.cfg.WSEvents
	var collect func() (fanout.Summary, error)
	if inProcess {
		s, err := fanout.Subscribe(ctx, fanout.Config{URL: url, Market: e.hot, Clients: clients, Events: events})
		if err != nil {
			fail(err)
			return
		}
		collect = func() (fanout.Summary, error) { return s.Collect(time.Duration(events/wsPace+30) * time.Second), nil }
	} else {
		wc, _, err := startWSClients(ctx, url, e.hot, clients, events, 0)
		if err != nil {
			fail(err)
			return
		}
		collect = wc.summary
	}
	e.say("fan-out floor: %d clients subscribed; publishing %d trades", clients, events)
	tick := time.NewTicker(time.Second / wsPace)
	defer tick.Stop()
	for seq := 1; seq <= events; seq++ {
		evs := fanout.TradeAndQuote(e.hot, int64(seq))
		f.PublishBatch(evs[:])
		if seq < events {
			select {
			case <-tick.C:
			case <-ctx.Done():
				fail(ctx.Err())
				return
			}
		}
	}
	sum, err := collect()
	if err != nil {
		fail(err)
		return
	}
	res.Floor = sum
	if err := f.Close(); err != nil {
		fail(err)
	}
}

// wsClients is the websocket client process (this program with -ws-url).
type wsClients struct {
	cmd *exec.Cmd
	br  *bufio.Reader
}

// startWSClients starts the client process, subscribing clients to market,
// and returns once they are subscribed, with the process's READY line. They
// wait for events trades each, or for wsFor if it is set.
func startWSClients(ctx context.Context, url string, market int64, clients, events int, wsFor time.Duration) (*wsClients, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.CommandContext(ctx, exe, "-ws-url", url, "-ws-market", strconv.FormatInt(market, 10),
		"-ws-clients", strconv.Itoa(clients), "-ws-events", strconv.Itoa(events), "-ws-for", wsFor.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY") {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, "", fmt.Errorf("client process did not get ready: %q %v", line, err)
	}
	return &wsClients{cmd: cmd, br: br}, strings.TrimSpace(line), nil
}

// stop asks the clients to stop waiting and report now.
func (w *wsClients) stop() { w.cmd.Process.Signal(os.Interrupt) }

// summary waits for the clients to finish and returns what they measured.
func (w *wsClients) summary() (fanout.Summary, error) {
	defer w.cmd.Wait()
	var sum fanout.Summary
	b, err := io.ReadAll(w.br)
	if err != nil {
		return sum, err
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		return sum, fmt.Errorf("client process summary: %v: %q", err, firstLines(string(b), 5))
	}
	return sum, nil
}

// publishTrades submits cfg.WSEvents orders on the hot market at wsPace and
// records the CPU the server side used meanwhile.
func (e *env) publishTrades(ctx context.Context, res *FanoutResult) (float64, error) {
	c0 := sampleCPU(e.pgPID)
	defer func() { res.ServerCPU, res.PGCPU = cores(c0, sampleCPU(e.pgPID)) }()
	tr := e.traders[len(e.traders)-1]
	start := time.Now()
	tick := time.NewTicker(time.Second / wsPace)
	defer tick.Stop()
	for i := 0; i < e.cfg.WSEvents; i++ {
		o := market.Order{Outcome: 0, Side: market.Buy, Shares: levee.Units(1)}
		if i%2 == 1 {
			o.Side = market.Sell
		}
		if _, err := e.eng.Submit(ctx, tr.id, e.hot, o, ""); err != nil {
			return time.Since(start).Seconds(), fmt.Errorf("fan-out order %d: %w", i, err)
		}
		if i == e.cfg.WSEvents-1 {
			res.Hub = e.live.Stats() // before the clients, having every event, leave
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return time.Since(start).Seconds(), ctx.Err()
		}
	}
	return time.Since(start).Seconds(), nil
}

// wsClientProcess is the second process: it subscribes the clients, says
// READY, and prints their summary as JSON once they have every event (or
// time is up).
func wsClientProcess(ctx context.Context, cfg Config, stdout io.Writer) error {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	s, err := fanout.Subscribe(ctx, fanout.Config{URL: cfg.WSURL, Market: cfg.WSMarket, Clients: cfg.WSClients, Events: cfg.WSEvents})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "READY %d subscribed, %d failed, in %s\n", cfg.WSClients-s.Failed, s.Failed, s.Subscribe.Round(time.Millisecond))
	timeout := time.Duration(cfg.WSEvents/wsPace+30) * time.Second
	if cfg.WSFor > 0 {
		timeout = cfg.WSFor // the soak: as long as the orders run
	}
	sum := s.CollectContext(ctx, timeout) // the soak ends it with SIGINT
	return json.NewEncoder(stdout).Encode(sum)
}
