// Package gctune sets the Go garbage collector's pace for a Levee server.
package gctune

import (
	"os"
	"runtime/debug"
)

// ServerPercent is the GOGC a server runs with unless GOGC is set.
//
// A Levee server's live heap is small (5-15 MB under a closed loop of
// 256 clients, gctrace) while an order allocates about 10 KB, so at Go's
// default (GOGC=100, a heap goal of twice the live heap) it collected five
// times a second: 16% of the server's CPU at 256 clients (perf), and, with
// two cores, mark work beside the order path at low load. 400 lets the heap
// grow to five times the live heap (tens of MB) between collections.
// bench/RESULTS.md §12 compares it with Go's default in the same run.
const ServerPercent = 400

// Server sets the collector to ServerPercent, unless the environment sets
// GOGC, and returns the percentage in force and whether it came from GOGC.
// GOMEMLIMIT, when set, still bounds the heap as usual.
func Server() (percent int, fromEnv bool) {
	if os.Getenv("GOGC") != "" {
		return Percent(), true
	}
	debug.SetGCPercent(ServerPercent)
	return ServerPercent, false
}

// Percent is the GOGC in force (-1: off).
func Percent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}
