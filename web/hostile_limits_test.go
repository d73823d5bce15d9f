package web

import (
	"fmt"
	"net"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestLimiterStoreIsBounded sends 200,000 distinct addresses through one
// limiter: it never holds more than its cap, and the heap after the flood is
// what the cap allows, not what the flood asked for.
func TestLimiterStoreIsBounded(t *testing.T) {
	s := newLimiterStore(1, 2, time.Hour)
	s.max = 10_000
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 200_000 {
		if !s.allow(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&0xff, i&0xff)) {
			t.Fatalf("address %d refused on its first request", i)
		}
		if n := s.len(); n > s.max {
			t.Fatalf("after %d addresses the store holds %d keys, cap %d", i+1, n, s.max)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
		t.Errorf("heap grew %d bytes for a store capped at %d keys", grew, s.max)
	}
	// The most recent caller keeps its bucket: one more request spends its
	// burst of 2.
	last := "10.3.13.63" // address 199,999
	if !s.allow(last) || s.allow(last) {
		t.Errorf("the most recent address got a third request in its burst of 2")
	}
}

// TestLimiterStoreForgetsIdleKeys: a key idle past the ttl is dropped when
// room is made, so a quiet table shrinks back.
func TestLimiterStoreForgetsIdleKeys(t *testing.T) {
	s := newLimiterStore(rate.Inf, 1, time.Millisecond)
	for i := range 100 {
		s.allow(fmt.Sprint("a", i))
	}
	time.Sleep(5 * time.Millisecond)
	s.allow("fresh")
	if n := s.len(); n != 1 {
		t.Fatalf("after the ttl one new key leaves %d keys, want 1", n)
	}
}

// TestClientAddress: X-Forwarded-For is believed only from a trusted proxy,
// and then only its rightmost untrusted address; IPv6 callers are keyed by
// their /64.
func TestClientAddress(t *testing.T) {
	_, proxy, _ := net.ParseCIDR("10.0.0.0/8")
	for _, tc := range []struct {
		name    string
		trusted []*net.IPNet
		remote  string
		xff     string
		want    string
	}{
		{"no proxies: header ignored", nil, "203.0.113.7:5000", "198.51.100.1", "203.0.113.7"},
		{"no proxies: loopback not trusted", nil, "127.0.0.1:5000", "198.51.100.1", "127.0.0.1"},
		{"untrusted peer: header ignored", []*net.IPNet{proxy}, "203.0.113.7:5000", "198.51.100.1", "203.0.113.7"},
		{"private peer not trusted by default", []*net.IPNet{proxy}, "192.168.1.1:5000", "198.51.100.1", "192.168.1.1"},
		{"trusted proxy: client from header", []*net.IPNet{proxy}, "10.1.2.3:5000", "198.51.100.1", "198.51.100.1"},
		{"rightmost untrusted wins over a forged left", []*net.IPNet{proxy}, "10.1.2.3:5000", "6.6.6.6, 198.51.100.1, 10.9.9.9", "198.51.100.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := ipExtractor(tc.trusted)(r); got != tc.want {
				t.Errorf("client address %q, want %q", got, tc.want)
			}
		})
	}
	if a, b := addressKey("2001:db8:1:2:aaaa::1"), addressKey("2001:db8:1:2:bbbb::9"); a != b {
		t.Errorf("two addresses in one /64 have keys %q and %q", a, b)
	}
	if a, b := addressKey("2001:db8:1:2::1"), addressKey("2001:db8:1:3::1"); a == b {
		t.Errorf("two /64s share key %q", a)
	}
	if k := addressKey("::ffff:192.0.2.1"); k != "192.0.2.1" {
		t.Errorf("a v4-mapped address keys as %q", k)
	}
}
