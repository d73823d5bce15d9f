package engine

import (
	"fmt"
	"testing"
)

// TestRecentKeysForgetTheOldest: the window holds the last recentCap keys,
// and a key put twice is one entry.
func TestRecentKeysForgetTheOldest(t *testing.T) {
	var r recentKeys
	for i := range recentCap + 10 {
		r.put(fmt.Sprint(i), Result{Seq: int64(i)})
		r.put(fmt.Sprint(i), Result{Seq: -1}) // again: the first answer stays
	}
	for _, tc := range []struct {
		key  int
		want bool
	}{{0, false}, {9, false}, {10, true}, {recentCap + 9, true}} {
		res, ok := r.get(fmt.Sprint(tc.key))
		if ok != tc.want || ok && res.Seq != int64(tc.key) {
			t.Errorf("key %d: %+v %v, want present %v with seq %d", tc.key, res, ok, tc.want, tc.key)
		}
	}
	if len(r.m) != recentCap || len(r.ring) != recentCap {
		t.Fatalf("%d entries, ring %d, want %d", len(r.m), len(r.ring), recentCap)
	}
}
