package load

import (
	"slices"
	"testing"
	"time"
)

// TestDispatcherNeverEarly: SleepUntil never returns before its time, for
// waits below a millisecond (one nanosleep), around the switch to it, and
// longer (Go's sleep first). How late it returns is logged, not asserted:
// this machine's load decides it (levee-bench reports it per step).
func TestDispatcherNeverEarly(t *testing.T) {
	var d Dispatcher
	d.Start()
	defer d.Stop()
	var late []time.Duration
	for _, wait := range []time.Duration{0, 50 * time.Microsecond, 200 * time.Microsecond, 900 * time.Microsecond, 3 * time.Millisecond, 7 * time.Millisecond} {
		for range 20 {
			due := time.Now().Add(wait)
			d.SleepUntil(due)
			now := time.Now()
			if now.Before(due) {
				t.Fatalf("a wait of %s returned %s early", wait, due.Sub(now))
			}
			late = append(late, now.Sub(due))
		}
	}
	slices.Sort(late)
	t.Logf("late: p50 %s, p99 %s, max %s", Percentile(late, .5), Percentile(late, .99), late[len(late)-1])
}
