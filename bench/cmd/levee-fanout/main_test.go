package main

import (
	"context"
	"os"
	"slices"
	"testing"
)

// TestMain lets the test binary be the client process, as levee-fanout
// re-executes itself with -clients-only.
func TestMain(m *testing.M) {
	if slices.Contains(os.Args, "-clients-only") {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestEveryVariantDeliversEverything runs a small round of each variant,
// the floor too, with each reader: every client gets every trade, in order.
func TestEveryVariantDeliversEverything(t *testing.T) {
	for _, reader := range []string{"epoll", "gorilla"} {
		for _, variant := range []string{"pool", "previous", "floor"} {
			t.Run(reader+"/"+variant, func(t *testing.T) {
				cfg := config{clients: 20, events: 5, rounds: 1, pace: 50, reader: reader}
				r, err := measure(context.Background(), cfg, variant, 0)
				if err != nil {
					t.Fatal(err)
				}
				s := r.Summary
				if s.Subscribed != 20 || s.Pairs != 100 || s.Events != 5 || s.Missing != 0 || s.Gaps != 0 || s.Reader != reader {
					t.Fatalf("summary %+v", s)
				}
				if r.ServerCPU <= 0 || s.CPUSecs <= 0 || s.P99ms <= 0 {
					t.Fatalf("nothing measured: %+v", r)
				}
			})
		}
	}
}
