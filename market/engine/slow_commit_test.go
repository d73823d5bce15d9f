package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"levee"
	"levee/market/engine"
)

// lockedBuffer is a log destination the journal's goroutine and the test
// can share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A commit at least Options.SlowCommit long is logged with when it started
// and how long it took, which the benchmark reads back (bench/cmd/levee-bench
// stalls.go: a Duration as nanoseconds, a Time in RFC 3339); below it,
// nothing is logged.
func TestSlowCommitLogged(t *testing.T) {
	for _, c := range []struct {
		name   string
		opts   engine.Options
		logged bool
	}{
		{"every commit over 1ns", engine.Options{SlowCommit: time.Nanosecond}, true},
		{"the default, 500ms", engine.Options{}, false},
		{"in one statement, over 1ns", engine.Options{SlowCommit: time.Nanosecond, OneStatementFrom: 1}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out lockedBuffer
			opts := c.opts
			opts.Logger = slog.New(slog.NewJSONHandler(&out, nil))
			f := mustFixtureWith(t, opts)
			m := f.MustMarket(levee.Units(50), "yes", "no")
			a := f.MustAccount("ana", levee.Units(100))
			before := time.Now()
			if _, err := f.e.Submit(context.Background(), a, m.ID, buy(0, "1"), ""); err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, l := range strings.Split(out.String(), "\n") {
				var line struct {
					Msg     string    `json:"msg"`
					Started time.Time `json:"started"`
					Total   int64     `json:"total"`
					Orders  int       `json:"orders"`
				}
				if json.Unmarshal([]byte(l), &line) != nil || line.Msg != "slow journal commit" {
					continue
				}
				found = true
				if line.Started.Before(before) || line.Started.After(time.Now()) || line.Total <= 0 || line.Orders != 1 {
					t.Errorf("slow commit logged as %s", l)
				}
			}
			if found != c.logged {
				t.Errorf("logged %v, want %v:\n%s", found, c.logged, out.String())
			}
		})
	}
}
