package main

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// ProfileResult is the CPU profile of this process (server and load
// generator) during the durable closed-loop step, summarized.
type ProfileResult struct {
	Path     string
	Header   string // pprof's duration and total samples
	Top      string // go tool pprof -top, flat
	TopCum   string // go tool pprof -top -cum
	Packages []Share
	Focus    []Share
	Err      string
}

// Share is a part of the profile: a package's flat time, or a function's
// cumulative time, as a percentage of all samples.
type Share struct {
	Name    string
	Percent float64
}

// focus lists the functions whose cumulative share says where an order's
// time goes in this process.
var focus = []string{
	"net/http.(*conn).serve",
	"levee/web.(*Server).placeOrder",
	"levee/accounts.(*Service).Authenticate",
	"levee/market/engine.(*Engine).Submit",
	"levee/market/engine.(*book).run",
	"levee/market/engine.(*book).preload",
	"levee/market/engine.(*book).price",
	"levee/market/engine.(*book).flush",
	"levee/market/engine.(*book).publishSnapshot",
	"levee/market/engine.(*journal).run",
	"levee/market/engine.(*journal).write",
	"levee/ledger.PostBatch",
	"levee/market.(*State).Evaluate",
	"log/slog.(*Logger).log",
	"encoding/json.(*Decoder).Decode",
	"github.com/labstack/echo/v5.(*Echo).serveHTTP",
	"levee/bench/load.(*client).do",
	"runtime.gcBgMarkWorker",
	"runtime.mallocgc",
	"runtime.schedule",
	"internal/runtime/syscall.Syscall6",
	"syscall.Syscall",
	"syscall.Syscall6",
	"syscall.RawSyscall6",
}

// summarizeProfile runs go tool pprof on the profile.
func summarizeProfile(ctx context.Context, path string) ProfileResult {
	res := ProfileResult{Path: path}
	top := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, goTool(), append([]string{"tool", "pprof"}, append(args, path)...)...)
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return "", fmt.Errorf("go tool pprof: %v: %s", err, ee.Stderr)
			}
			return "", fmt.Errorf("go tool pprof: %w", err)
		}
		return string(out), nil
	}
	flat, err := top("-top", "-nodecount=35")
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.Top = flat
	res.TopCum, _ = top("-top", "-cum", "-nodecount=35")
	all, err := top("-top", "-nodecount=1000000")
	if err != nil {
		res.Err = err.Error()
		return res
	}
	var header []string
	pkgs := map[string]float64{}
	cum := map[string]float64{}
	for _, line := range strings.Split(all, "\n") {
		if strings.HasPrefix(line, "Duration:") || strings.HasPrefix(line, "Showing nodes") {
			header = append(header, strings.TrimSpace(line))
		}
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") || !strings.HasSuffix(f[4], "%") {
			continue
		}
		flatPct, err1 := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		cumPct, err2 := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		name := f[5]
		pkgs[packageOf(name)] += flatPct
		cum[name] = max(cum[name], cumPct)
	}
	if len(header) > 0 {
		res.Header = header[0]
	}
	for p, v := range pkgs {
		if v >= 0.05 {
			res.Packages = append(res.Packages, Share{p, v})
		}
	}
	slices.SortFunc(res.Packages, func(a, b Share) int {
		if a.Percent != b.Percent {
			if a.Percent > b.Percent {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(res.Packages) > 20 {
		res.Packages = res.Packages[:20]
	}
	for _, name := range focus {
		if v, ok := cum[name]; ok {
			res.Focus = append(res.Focus, Share{name, v})
		}
	}
	return res
}

// packageOf returns the import path of a function name such as
// "github.com/lib/pq.(*conn).recv1" or "runtime.mallocgc".
func packageOf(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	if dot := strings.IndexByte(fn[slash+1:], '.'); dot >= 0 {
		return fn[:slash+1+dot]
	}
	return fn
}
