//go:build race

package web

// raceEnabled skips the allocation guards under the race detector, which
// allocates.
const raceEnabled = true
