// Command levee-fanout measures web/live's fan-out alone, without the engine
// or PostgreSQL: a Hub in this process, its subscribers in a second process
// (this program with -clients-only), one market, a trade and its quote
// published together at a steady pace with the commit time in "ts", as
// web.Live encodes them. It runs the writer pool (the default) and the write pump per
// connection (Options.WritePumps, "previous") in turn, A B A B ..., so that both see the same
// machine, and prints each round and the medians.
//
//	go run ./bench/cmd/levee-fanout -clients 10000 -events 50 -rounds 4
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"levee/bench/fanout"
	"levee/internal/gctune"
	"levee/web/live"
)

type config struct {
	clients, events, rounds int
	pace                    int // events per second
	profile                 string
	clientsOnly             string // URL: be the client process
	variants                string
	writers                 int
	reader                  string // how the clients read: epoll or gorilla
}

func main() {
	var cfg config
	flag.IntVar(&cfg.clients, "clients", 10000, "subscribers")
	flag.IntVar(&cfg.events, "events", 50, "trades (each with its quote) per round")
	flag.IntVar(&cfg.rounds, "rounds", 2, "rounds of each variant, alternated")
	flag.IntVar(&cfg.pace, "pace", 10, "trades per second")
	flag.StringVar(&cfg.profile, "cpuprofile", "", "write a CPU profile of each round to this prefix (PREFIX-<variant>-<round>.pprof)")
	flag.StringVar(&cfg.clientsOnly, "clients-only", "", "internal: run the subscribers against this URL")
	flag.StringVar(&cfg.variants, "variants", "pool,previous", "variants to alternate: pool, previous, floor (one write(2) per subscriber and event, nothing of web/live but its framing: bench/fanout.Floor)")
	flag.IntVar(&cfg.writers, "writers", 0, "writers of the pool (0: the hub's default)")
	flag.StringVar(&cfg.reader, "reader", "", "how the subscribers read: epoll (the default on Linux) or gorilla (a goroutine per connection)")
	flag.Parse()
	gctune.Server() // the hub collects garbage as levee serve's does
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if cfg.clientsOnly != "" {
		err = clientProcess(ctx, cfg)
	} else {
		err = run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "levee-fanout:", err)
		os.Exit(1)
	}
}

// round is one measured run of one variant.
type round struct {
	Variant   string
	Summary   fanout.Summary
	ServerCPU float64 // CPU seconds of this process while publishing and delivering
	Wall      float64
	Stats     live.Stats
	// Context switches of this process per event: voluntary (it waited)
	// and involuntary (the kernel preempted it).
	Voluntary, Involuntary float64
}

// cpuPerMsg is the server's CPU per delivered (event, client) pair in µs.
func (r round) cpuPerMsg() float64 {
	if r.Summary.Pairs == 0 {
		return 0
	}
	return r.ServerCPU / float64(r.Summary.Pairs) * 1e6
}

func (r round) clientCPUPerMsg() float64 {
	if r.Summary.Pairs == 0 {
		return 0
	}
	return r.Summary.CPUSecs / float64(r.Summary.Pairs) * 1e6
}

func run(ctx context.Context, cfg config) error {
	variants := strings.Split(cfg.variants, ",")
	var rounds []round
	for i := range cfg.rounds {
		for _, v := range variants {
			r, err := measure(ctx, cfg, v, i)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", v, i+1, err)
			}
			rounds = append(rounds, r)
			s := r.Summary
			fmt.Printf("%-9s round %d: p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  last-client p99 %6.1f ms  pairs %d missing %d gaps %d  server %.1f µs/msg (%.2f cores)  clients %.1f µs/msg (%.2f cores)  switches/event %.0f vol %.0f invol  threads %d  load %s\n",
				v, i+1, s.P50ms, s.P99ms, s.MaxMs, s.LastP99ms, s.Pairs, s.Missing, s.Gaps, r.cpuPerMsg(), r.ServerCPU/r.Wall, r.clientCPUPerMsg(), s.CPUSecs/max(s.WallSecs, 1e-9), r.Voluntary, r.Involuntary, pprof.Lookup("threadcreate").Count(), loadavg())
			time.Sleep(2 * time.Second)
		}
	}
	fmt.Println()
	med := map[string][5]float64{}
	for _, v := range variants {
		var p50, p99, mx, cpu, ccpu []float64
		for _, r := range rounds {
			if r.Variant == v {
				p50, p99, mx = append(p50, r.Summary.P50ms), append(p99, r.Summary.P99ms), append(mx, r.Summary.MaxMs)
				cpu, ccpu = append(cpu, r.cpuPerMsg()), append(ccpu, r.clientCPUPerMsg())
			}
		}
		m := [5]float64{median(p50), median(p99), median(mx), median(cpu), median(ccpu)}
		med[v] = m
		fmt.Printf("median %-9s p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  server %.2f µs/msg  clients %.2f µs/msg\n", v, m[0], m[1], m[2], m[3], m[4])
	}
	if a, b := med["pool"], med["previous"]; len(variants) == 2 && b[1] > 0 {
		fmt.Printf("ratio pool/previous: p50 %.2f  p99 %.2f  max %.2f  server CPU/msg %.2f  client CPU/msg %.2f\n",
			a[0]/b[0], a[1]/b[1], a[2]/b[2], a[3]/b[3], a[4]/b[4])
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// snapshots serves the market's seq as its snapshot.
type snapshots struct {
	mu  sync.Mutex
	seq int64
}

func (s *snapshots) SnapshotJSON(ctx context.Context, id int64) (json.RawMessage, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Appendf(nil, `{"type":"snapshot","market":"%d","seq":%d,"status":"open","prices":["0.5","0.5"]}`, id, s.seq), s.seq, nil
}

const market = 1

// publisher is what a round publishes to and serves the subscribers from.
type publisher interface {
	http.Handler
	PublishBatch([]live.Event)
}

func measure(ctx context.Context, cfg config, variant string, i int) (round, error) {
	r := round{Variant: variant}
	opts := live.Options{Logger: slog.New(slog.DiscardHandler)}
	name, n, _ := strings.Cut(variant, ":") // pool:16 is a pool of 16 writers
	switch name {
	case "pool":
		opts.Writers = cfg.writers
		if n != "" {
			w, err := strconv.Atoi(n)
			if err != nil {
				return r, fmt.Errorf("variant %q: %w", variant, err)
			}
			opts.Writers = w
		}
	case "previous":
		opts.WritePumps = true
	case "floor":
	default:
		return r, fmt.Errorf("unknown variant %q", variant)
	}
	snap := &snapshots{}
	var pub publisher
	switch name {
	case "floor":
		f := &fanout.Floor{Snapshot: func() []byte {
			b, _, _ := snap.SnapshotJSON(context.Background(), market)
			return b
		}}
		defer func() {
			if err := f.Close(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}()
		pub = f
	default:
		hub := live.NewHub(snap, opts)
		defer hub.Close()
		pub = hub
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	srv := &http.Server{Handler: pub}
	go srv.Serve(ln)
	defer srv.Close()
	url := "ws://" + ln.Addr().String() + "/"

	exe, err := os.Executable()
	if err != nil {
		return r, err
	}
	cmd := exec.CommandContext(ctx, exe, "-clients-only", url, "-clients", strconv.Itoa(cfg.clients), "-events", strconv.Itoa(cfg.events), "-pace", strconv.Itoa(cfg.pace), "-reader", cfg.reader)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer cmd.Wait()
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY") {
		cmd.Process.Kill()
		return r, fmt.Errorf("client process: %q %v", line, err)
	}
	time.Sleep(500 * time.Millisecond) // let the subscribe burst settle

	if cfg.profile != "" {
		f, err := os.Create(fmt.Sprintf("%s-%s-%d.pprof", cfg.profile, variant, i+1))
		if err != nil {
			return r, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return r, err
		}
	}
	cpu0, t0 := processCPU(), time.Now()
	vol0, invol0 := contextSwitches()
	tick := time.NewTicker(time.Second / time.Duration(cfg.pace))
	for seq := int64(1); seq <= int64(cfg.events); seq++ {
		snap.mu.Lock()
		snap.seq = seq
		snap.mu.Unlock()
		evs := fanout.TradeAndQuote(market, seq)
		pub.PublishBatch(evs[:])
		if seq < int64(cfg.events) {
			<-tick.C
		}
	}
	tick.Stop()
	if hub, ok := pub.(*live.Hub); ok {
		r.Stats = hub.Stats()
	}
	// The clients have every event (or gave up): the server's work is done,
	// before the clients close their connections.
	done, err := br.ReadString('\n')
	if err != nil || done != "DONE\n" {
		return r, fmt.Errorf("client process: %q %v", done, err)
	}
	r.ServerCPU, r.Wall = (processCPU() - cpu0).Seconds(), time.Since(t0).Seconds()
	vol1, invol1 := contextSwitches()
	r.Voluntary, r.Involuntary = float64(vol1-vol0)/float64(cfg.events), float64(invol1-invol0)/float64(cfg.events)
	if cfg.profile != "" {
		pprof.StopCPUProfile()
	}
	sumLine, err := io.ReadAll(br)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(sumLine, &r.Summary); err != nil {
		return r, fmt.Errorf("client summary %q: %w", sumLine, err)
	}
	return r, nil
}

// clientProcess subscribes the clients, says READY, says DONE once they
// have every event, and then prints their summary as JSON.
func clientProcess(ctx context.Context, cfg config) error {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	s, err := fanout.Subscribe(ctx, fanout.Config{URL: cfg.clientsOnly, Market: market, Clients: cfg.clients, Events: cfg.events, Reader: cfg.reader})
	if err != nil {
		return err
	}
	if s.Failed > 0 {
		return errors.New("some clients could not subscribe: " + s.FirstErr)
	}
	fmt.Printf("READY %d in %s\n", cfg.clients, s.Subscribe.Round(time.Millisecond))
	s.Wait(ctx, time.Duration(cfg.events/cfg.pace+30)*time.Second)
	fmt.Println("DONE")
	return json.NewEncoder(os.Stdout).Encode(s.Collect(0))
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func contextSwitches() (voluntary, involuntary int64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return ru.Nvcsw, ru.Nivcsw
}
