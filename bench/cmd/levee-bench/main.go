// Command levee-bench measures Levee side by side in one run and writes
// bench/RESULTS.md: a private, durable PostgreSQL loaded with a million
// trades through the real engine; restart time; the query plans of the order
// path; the pricing maths; the engine's book loop in memory; durable orders
// over the real HTTP API against a naive one-transaction-per-order baseline
// and the raw commit rate of the same PostgreSQL; and the websocket fan-out.
//
//	go run ./bench/cmd/levee-bench -out bench/RESULTS.md      (make bench)
//	go run ./bench/cmd/levee-bench -quick -out /tmp/r.md      (a smoke test)
//
// With -ws-url it is instead the websocket client process that the fan-out
// measurement starts (10,000 connections need a process of their own).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"levee/bench/load"
	"levee/internal/gctune"
)

// Config is everything the flags say, read once.
type Config struct {
	// Variants and Rounds: -scenario orders' server configurations, by key, and rounds of them.
	Variants string
	Rounds   int
	// StatStatements loads pg_stat_statements and, in -scenario orders,
	// prints each step's costliest statements (a diagnosis; it costs a
	// little CPU per statement, so the figures of such a run are not kept).
	StatStatements bool
	Out            string
	History        int
	Markets        int
	Traders        int
	Clients        int
	StepDuration   time.Duration
	Rates          []float64
	Quick          bool
	DatabaseURL    string // use this database instead of a private durable server (tests)
	GoBench        bool
	BenchTime      string
	MemDuration    time.Duration
	WSClients      int
	WSEvents       int
	WSInProcess    bool
	CPUProfile     string
	Keep           bool
	Args           []string // as given, for the report

	// Scenario is "bench" (every measurement above), "faults", "soak" or
	// "hostile"; the last three write their own section of the report.
	Scenario     string
	Kills        int           // faults: SIGKILL + restart cycles
	PGStops      int           // faults: PostgreSQL stop + start cycles
	Exhaustions  int           // faults: connection exhaustion cycles
	FaultDown    time.Duration // faults: how long PostgreSQL stays down or full
	FaultEvery   time.Duration // faults: load between two faults
	FaultWorkers int           // faults: residents sending keyed orders
	// cluster-faults and cluster (docs/cluster.md)
	ClusterPauses       int           // cluster-faults: SIGSTOP/SIGCONT rounds (Kills is the SIGKILL rounds)
	ClusterFaultMarkets int           // cluster-faults: markets the orders spread over
	ClusterMarkets      int           // cluster: markets the orders spread over
	ClusterDuration     time.Duration // cluster: load per configuration
	Soak                time.Duration // soak: length
	SoakSubs            int           // soak: websocket subscribers
	SoakClients         int           // soak: HTTP clients of the order load
	Sample              time.Duration // soak: sampling interval
	HostileN            int           // hostile: generated requests
	HostileWorkers      int           // hostile: concurrent senders
	HostileSeed         uint64        // hostile: the generator's seed (0: from the clock, printed)
	HostileTimeout      time.Duration // hostile: an answer later than this is a hang

	// The websocket client process.
	WSURL    string
	WSMarket int64
	WSFor    time.Duration // how long it stays subscribed (0: until it has -ws-events events)
	// HTTPFloorAnswer runs levee-bench as the HTTP floor's server, which
	// answers every order with the answer in this file (cpufloor.go).
	HTTPFloorAnswer string
	// PauseMeter runs levee-bench as the meter of the machine's pauses and
	// its disk's flushes in this directory (load.MeasurePauses), which the
	// orders scenario starts.
	PauseMeter string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "levee-bench: %v\n", err)
		os.Exit(2)
	}
	// The in-process server collects garbage as levee serve does (and so
	// does the load generator beside it).
	gctune.Server()
	switch {
	case cfg.WSURL != "":
		err = wsClientProcess(ctx, cfg, os.Stdout)
	case cfg.PauseMeter != "":
		err = load.MeasurePauses(ctx, os.Stdout, cfg.PauseMeter)
	case cfg.HTTPFloorAnswer != "":
		err = httpFloorProcess(ctx, cfg.HTTPFloorAnswer, os.Stdout)
	case cfg.Scenario == "faults":
		err = runFaults(ctx, cfg, os.Stdout)
	case cfg.Scenario == "cluster-faults":
		err = runClusterFaults(ctx, cfg, os.Stdout)
	case cfg.Scenario == "cluster":
		err = runClusterBench(ctx, cfg, os.Stdout)
	case cfg.Scenario == "soak":
		err = runSoak(ctx, cfg, os.Stdout)
	case cfg.Scenario == "hostile":
		err = runHostile(ctx, cfg, os.Stdout)
	case cfg.Scenario == "reads":
		err = runReads(ctx, cfg, os.Stdout)
	case cfg.Scenario == "orders":
		err = runOrders(ctx, cfg, os.Stdout)
	default:
		err = run(ctx, cfg, os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "levee-bench: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	cfg := Config{Args: args}
	fs := flag.NewFlagSet("levee-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rates string
	fs.StringVar(&cfg.Out, "out", "bench/RESULTS.md", "where to write the report")
	fs.IntVar(&cfg.History, "history", 1_000_000, "trades loaded through the engine before any measurement")
	fs.IntVar(&cfg.Markets, "markets", 50, "markets the history is spread over")
	fs.IntVar(&cfg.Traders, "traders", 2000, "traders in the history")
	fs.IntVar(&cfg.Clients, "clients", 256, "concurrent HTTP clients per order path, each with its own token")
	fs.DurationVar(&cfg.StepDuration, "step-duration", 10*time.Second, "length of each HTTP load step")
	fs.StringVar(&rates, "rates", "2000,5000,10000,20000,40000", "open-loop offered loads (orders/s), comma-separated")
	fs.BoolVar(&cfg.Quick, "quick", false, "small everything: a smoke test of the harness")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "use this (migrated or empty) database instead of starting a private durable PostgreSQL")
	fs.BoolVar(&cfg.GoBench, "go-bench", true, "run the market package's Go benchmarks")
	fs.StringVar(&cfg.BenchTime, "benchtime", "1s", "-benchtime for the market package's Go benchmarks")
	fs.DurationVar(&cfg.MemDuration, "mem-duration", 3*time.Second, "length of each in-memory book loop run")
	fs.IntVar(&cfg.WSClients, "ws-clients", 10_000, "websocket subscribers of one market (0 skips the fan-out)")
	fs.IntVar(&cfg.WSEvents, "ws-events", 50, "trades published during the fan-out measurement")
	fs.BoolVar(&cfg.WSInProcess, "ws-inprocess", false, "run the websocket clients in this process (default: a second process when above 1000)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "where to keep the CPU profile of the durable closed-loop step (default: beside -out)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temporary directory (database, logs)")
	fs.StringVar(&cfg.WSURL, "ws-url", "", "internal: run as the websocket client process against this URL")
	fs.Int64Var(&cfg.WSMarket, "ws-market", 0, "internal: the market the client process subscribes to")
	fs.DurationVar(&cfg.WSFor, "ws-for", 0, "internal: how long the client process stays subscribed")
	fs.StringVar(&cfg.PauseMeter, "pause-meter", "", "internal: run as the meter of the machine's pauses, probing the disk's flushes in this directory (load.MeasurePauses)")
	fs.StringVar(&cfg.HTTPFloorAnswer, "http-floor-answer", "", "internal: run as the HTTP floor's server, answering every order with this file's answer")
	fs.StringVar(&cfg.Scenario, "scenario", "bench", "bench (every measurement), faults (make faults), soak (make soak), hostile (make hostile), reads (make reads: orders while public reads are flooded) or orders (make orders: the order path alone, server in a child process, against the previous journal)")
	fs.StringVar(&cfg.Variants, "variants", "", "orders: the server configurations to compare, comma-separated keys ("+variantKeys()+", or bin=PATH: another build of levee; default "+defaultVariants+")")
	fs.IntVar(&cfg.Rounds, "rounds", 2, "orders: rounds of the variants, alternated")
	fs.BoolVar(&cfg.StatStatements, "pg-stat-statements", false, "orders: load pg_stat_statements and print each step's costliest statements")
	fs.IntVar(&cfg.Kills, "kills", 20, "faults: SIGKILL + restart cycles of the server")
	fs.IntVar(&cfg.PGStops, "pg-stops", 5, "faults: PostgreSQL stop + start cycles")
	fs.IntVar(&cfg.Exhaustions, "exhaustions", 5, "faults: PostgreSQL connection exhaustion cycles")
	fs.DurationVar(&cfg.FaultDown, "fault-down", 3*time.Second, "faults: how long PostgreSQL stays stopped or its connections taken")
	fs.DurationVar(&cfg.FaultEvery, "fault-every", 1500*time.Millisecond, "faults: orders flow this long between two faults")
	fs.IntVar(&cfg.FaultWorkers, "fault-workers", 16, "faults: residents sending keyed orders one after the other")
	fs.IntVar(&cfg.ClusterPauses, "cluster-pauses", 5, "cluster-faults: SIGSTOP/SIGCONT rounds of an instance past its lease (with -kills SIGKILL rounds)")
	fs.IntVar(&cfg.ClusterFaultMarkets, "cluster-fault-markets", 50, "cluster-faults: markets the keyed orders spread over")
	fs.IntVar(&cfg.ClusterMarkets, "cluster-markets", 1000, "cluster: markets the orders spread over")
	fs.DurationVar(&cfg.ClusterDuration, "cluster-duration", 10*time.Second, "cluster: load per configuration (1, 2, 3 instances)")
	fs.DurationVar(&cfg.Soak, "soak", 5*time.Minute, "soak: how long the orders and subscribers run")
	fs.IntVar(&cfg.SoakSubs, "soak-subscribers", 3000, "soak: websocket subscribers (in a second process)")
	fs.IntVar(&cfg.SoakClients, "soak-clients", 64, "soak: HTTP clients of the order load")
	fs.DurationVar(&cfg.Sample, "sample", 10*time.Second, "soak: interval between samples of memory, goroutines and latency")
	fs.IntVar(&cfg.HostileN, "hostile-requests", 100_000, "hostile: generated hostile requests over every route")
	fs.IntVar(&cfg.HostileWorkers, "hostile-workers", 16, "hostile: concurrent senders")
	fs.Uint64Var(&cfg.HostileSeed, "hostile-seed", 0, "hostile: the generator's seed (0: from the clock; the report prints it)")
	fs.DurationVar(&cfg.HostileTimeout, "hostile-timeout", 30*time.Second, "hostile: a request unanswered for this long counts as a hang")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.Quick {
		quick := map[string]func(){
			"history":               func() { cfg.History = 2000 },
			"markets":               func() { cfg.Markets = 4 },
			"traders":               func() { cfg.Traders = 40 },
			"clients":               func() { cfg.Clients = 8 },
			"step-duration":         func() { cfg.StepDuration = time.Second },
			"rates":                 func() { rates = "100,300" },
			"benchtime":             func() { cfg.BenchTime = "2000x" },
			"mem-duration":          func() { cfg.MemDuration = 200 * time.Millisecond },
			"ws-clients":            func() { cfg.WSClients = 200 },
			"ws-events":             func() { cfg.WSEvents = 10 },
			"kills":                 func() { cfg.Kills = 3 },
			"pg-stops":              func() { cfg.PGStops = 1 },
			"exhaustions":           func() { cfg.Exhaustions = 1 },
			"fault-down":            func() { cfg.FaultDown = time.Second },
			"fault-workers":         func() { cfg.FaultWorkers = 4 },
			"soak":                  func() { cfg.Soak = 20 * time.Second },
			"soak-subscribers":      func() { cfg.SoakSubs = 200 },
			"soak-clients":          func() { cfg.SoakClients = 8 },
			"sample":                func() { cfg.Sample = 2 * time.Second },
			"hostile-requests":      func() { cfg.HostileN = 3000 },
			"hostile-workers":       func() { cfg.HostileWorkers = 8 },
			"cluster-pauses":        func() { cfg.ClusterPauses = 1 },
			"cluster-markets":       func() { cfg.ClusterMarkets = 50 },
			"cluster-duration":      func() { cfg.ClusterDuration = 3 * time.Second },
			"cluster-fault-markets": func() { cfg.ClusterFaultMarkets = 12 },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	for _, f := range strings.Split(rates, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return cfg, fmt.Errorf("-rates: %q is not a positive number", f)
		}
		cfg.Rates = append(cfg.Rates, r)
	}
	switch {
	case cfg.History < 0:
		return cfg, errors.New("-history must not be negative")
	case cfg.Markets < 2:
		return cfg, errors.New("-markets must be at least 2 (one hot market for the engine, one for the naive path)")
	case cfg.Clients < 1:
		return cfg, errors.New("-clients must be at least 1")
	case cfg.Traders < 1:
		return cfg, errors.New("-traders must be at least 1")
	case cfg.StepDuration <= 0:
		return cfg, errors.New("-step-duration must be positive")
	case cfg.WSURL != "" && cfg.WSMarket <= 0:
		return cfg, errors.New("-ws-url needs -ws-market")
	case cfg.Scenario != "bench" && cfg.Scenario != "faults" && cfg.Scenario != "soak" && cfg.Scenario != "hostile" && cfg.Scenario != "reads" &&
		cfg.Scenario != "orders" && cfg.Scenario != "cluster" && cfg.Scenario != "cluster-faults":
		return cfg, fmt.Errorf("-scenario %q: want bench, faults, soak, hostile, reads, orders, cluster or cluster-faults", cfg.Scenario)
	case cfg.HostileN < 1 || cfg.HostileWorkers < 1 || cfg.HostileTimeout <= 0:
		return cfg, errors.New("-hostile-requests and -hostile-workers must be at least 1, -hostile-timeout positive")
	case cfg.FaultWorkers < 1 || cfg.SoakClients < 1:
		return cfg, errors.New("-fault-workers and -soak-clients must be at least 1")
	case cfg.Soak <= 0 || cfg.Sample <= 0 || cfg.FaultDown <= 0 || cfg.FaultEvery <= 0:
		return cfg, errors.New("-soak, -sample, -fault-down and -fault-every must be positive")
	}
	return cfg, nil
}
