package engine

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestKeyedOrdersForgetTheOldest: the memory holds the last recentCap keys
// that succeeded, and a key claimed again while known is the same entry.
func TestKeyedOrdersForgetTheOldest(t *testing.T) {
	var o keyedOrders
	now := time.Now()
	for i := range recentCap + 10 {
		f, own := o.claim(fmt.Sprint(i), now)
		if !own {
			t.Fatalf("key %d: claimed before", i)
		}
		o.settle(f, Result{Seq: int64(i), At: now}, nil)
		if again, own := o.claim(fmt.Sprint(i), now); own || again != f {
			t.Fatalf("key %d claimed again: own %v, same entry %v", i, own, again == f)
		}
	}
	for _, tc := range []struct {
		key   int
		known bool
	}{{0, false}, {9, false}, {10, true}, {recentCap + 9, true}} {
		f, own := o.claim(fmt.Sprint(tc.key), now)
		if own == tc.known || !own && (!f.ended() || f.res.Seq != int64(tc.key)) {
			t.Errorf("key %d: own %v, entry %+v; want known %v with seq %d", tc.key, own, f.res, tc.known, tc.key)
		}
	}
	if len(o.ring) != recentCap {
		t.Fatalf("ring %d, want %d", len(o.ring), recentCap)
	}
}

// TestKeyedOrdersAttempts: a claim of a key in flight waits for the same
// attempt; a failed attempt is forgotten, so that the next claim tries
// again; a success older than KeyRetention is forgotten too, and the entry
// that replaces it is not evicted with the old one's place in the ring.
func TestKeyedOrdersAttempts(t *testing.T) {
	var o keyedOrders
	now := time.Now()
	f, own := o.claim("a", now)
	if !own {
		t.Fatal("a new key is not the caller's")
	}
	g, own := o.claim("a", now)
	if own || g != f || g.ended() {
		t.Fatalf("a key in flight: own %v, same %v, ended %v", own, g == f, g.ended())
	}
	o.settle(f, Result{}, errors.New("no cash"))
	if !g.ended() || g.err == nil {
		t.Fatal("the waiter does not see the failure")
	}
	if _, own := o.claim("a", now); !own {
		t.Fatal("a failed attempt is remembered")
	}

	f, _ = o.claim("b", now)
	o.settle(f, Result{Seq: 1, At: now}, nil)
	if g, own := o.claim("b", now.Add(KeyRetention-time.Second)); own || g != f {
		t.Fatal("a success within the retention is forgotten")
	}
	later := now.Add(KeyRetention)
	g, own = o.claim("b", later)
	if !own || g == f {
		t.Fatal("a success past the retention is remembered")
	}
	o.settle(g, Result{Seq: 2, At: later}, nil)
	// Push "b"'s first success out of the ring: the second stays.
	for i := range recentCap - 1 {
		h, _ := o.claim(fmt.Sprint(i), later)
		o.settle(h, Result{At: later}, nil)
	}
	if h, own := o.claim("b", later); own || h != g {
		t.Fatalf("the second success of b was forgotten with the first: own %v", own)
	}
}
