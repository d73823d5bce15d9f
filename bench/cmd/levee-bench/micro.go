package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"levee"
	"levee/market"
)

// GoBench is one line of `go test -bench` output.
type GoBench struct {
	Name     string
	N        int64
	NsPerOp  float64
	BPerOp   int64
	AllocsOp int64
}

// MicroResult is the market package's own benchmarks.
type MicroResult struct {
	Command string
	Benches []GoBench
	Raw     string
	Err     string
}

// goTool returns the go command: PATH first, then this toolchain's GOROOT.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// runGoBench runs the pricing benchmarks that live beside the maths.
func runGoBench(ctx context.Context, root, benchtime string) MicroResult {
	args := []string{"test", "-run", "XXX", "-bench", ".", "-benchmem", "-benchtime", benchtime, "./market"}
	res := MicroResult{Command: "go " + strings.Join(args, " ")}
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	res.Raw = string(out)
	if err != nil {
		res.Err = fmt.Sprintf("%v: %s", err, firstLines(string(out), 20))
	}
	for _, line := range strings.Split(res.Raw, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		b := GoBench{Name: f[0]}
		b.N, _ = strconv.ParseInt(f[1], 10, 64)
		for i := 2; i+1 < len(f); i += 2 {
			switch f[i+1] {
			case "ns/op":
				b.NsPerOp, _ = strconv.ParseFloat(f[i], 64)
			case "B/op":
				b.BPerOp, _ = strconv.ParseInt(f[i], 10, 64)
			case "allocs/op":
				b.AllocsOp, _ = strconv.ParseInt(f[i], 10, 64)
			}
		}
		res.Benches = append(res.Benches, b)
	}
	return res
}

// MemRun is one run of the book loop in memory.
type MemRun struct {
	Name       string
	Goroutines int
	Trades     int64
	Refused    int64
	Elapsed    time.Duration
	Rate       float64 // trades/s, all goroutines
	PerCore    float64 // Rate / min(goroutines, GOMAXPROCS)
}

// MemoryResult is the engine's pure book loop without a database.
type MemoryResult struct {
	Single       MemRun // one binary market, one goroutine: Evaluate + Apply
	SinglePrices MemRun // the same plus the rounded prices the engine computes per trade
	Multi        MemRun // GOMAXPROCS binary markets, a goroutine each
}

// runMemory measures market.State.Evaluate + Apply on a stream of random
// valid orders (the history's mix: buys of shares or of an amount, sells of
// part or all of a position) from 16 traders per market.
func runMemory(d time.Duration) MemoryResult {
	procs := runtime.GOMAXPROCS(0)
	return MemoryResult{
		Single:       memRun("1 binary market, 1 goroutine: Evaluate + Apply", 1, d, false),
		SinglePrices: memRun("1 binary market, 1 goroutine: Evaluate + Apply + prices", 1, d, true),
		Multi:        memRun(fmt.Sprintf("%d binary markets, a goroutine each: Evaluate + Apply", procs), procs, d, false),
	}
}

func memRun(name string, goroutines int, d time.Duration, prices bool) MemRun {
	var stop atomic.Bool
	var trades, refused atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, r := bookLoop(uint64(g), &stop, prices)
			trades.Add(t)
			refused.Add(r)
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	el := time.Since(start)
	run := MemRun{Name: name, Goroutines: goroutines, Trades: trades.Load(), Refused: refused.Load(), Elapsed: el}
	run.Rate = float64(run.Trades) / el.Seconds()
	run.PerCore = run.Rate / float64(min(goroutines, runtime.GOMAXPROCS(0)))
	return run
}

// bookLoop is what a book does per order once the database is out of the
// picture: pick the trader's position, evaluate, apply.
func bookLoop(seed uint64, stop *atomic.Bool, prices bool) (trades, refused int64) {
	st, err := market.NewState(levee.Units(1000), []levee.Micros{0, 0})
	if err != nil {
		panic(err) // constant, valid arguments
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	const traders = 16
	var held [traders][]levee.Micros
	for i := range held {
		held[i] = make([]levee.Micros, 2)
	}
	buf := make([]levee.Micros, 0, 2)
	for i := 0; ; i++ {
		if i&255 == 0 && stop.Load() {
			return trades, refused
		}
		h := held[i%traders]
		o := pickOrder(rng, h)
		f, err := st.Evaluate(o, h[o.Outcome], levee.MaxMoney)
		if err != nil {
			refused++
			continue
		}
		st.Apply(f)
		if f.Side == market.Buy {
			h[o.Outcome] += f.Shares
		} else {
			h[o.Outcome] -= f.Shares
		}
		if prices {
			buf = st.AppendPricesMicros(buf[:0])
		}
		trades++
	}
}
