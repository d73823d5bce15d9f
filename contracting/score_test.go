package contracting

import (
	"testing"
	"time"

	"levee"
)

func TestTWAP(t *testing.T) {
	t0 := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	m := levee.MustMicros
	for _, tc := range []struct {
		name string
		path []PricePoint
		want levee.Micros
	}{
		{"no trades: the initial price throughout", nil, m("0.5")},
		{"one trade before the window is carried in", []PricePoint{{at(-5), m("0.7")}}, m("0.7")},
		{"the last trade before the window wins", []PricePoint{{at(-5), m("0.7")}, {at(-1), m("0.2")}}, m("0.2")},
		{"a trade at the window's start counts as carried in", []PricePoint{{at(0), m("0.9")}}, m("0.9")},
		// 0.5 for 25 s, 0.9 for 50 s, 0.1 for 25 s: (12.5 + 45 + 2.5) / 100.
		{"half way", []PricePoint{{at(25), m("0.9")}, {at(75), m("0.1")}}, m("0.6")},
		{"trades after the window are ignored", []PricePoint{{at(50), m("1")}, {at(150), m("0")}}, m("0.75")},
		{"unsorted input", []PricePoint{{at(75), m("0.1")}, {at(25), m("0.9")}}, m("0.6")},
		// 0.3 for 1 s of 3 s, then 0.4: (0.3 + 0.8) / 3 = 0.3666…, rounded down.
		{"rounds down", []PricePoint{{at(-1), m("0.3")}, {at(1), m("0.4")}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to := at(100)
			if tc.want == 0 {
				to, tc.want = at(3), m("0.366666")
			}
			if got := TWAP(m("0.5"), tc.path, at(0), to); got != tc.want {
				t.Fatalf("TWAP = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	m := levee.MustMicros
	for _, tc := range []struct {
		name    string
		bids    []ScoredBid
		minConf levee.Micros
		want    int
	}{
		{"lowest score wins", []ScoredBid{{Bid: 1, Price: m("100"), TWAP: m("0.7")}, {Bid: 2, Price: m("90"), TWAP: m("0.5")}}, m("0.5"), 0},
		{"below the minimum confidence does not qualify", []ScoredBid{{Bid: 1, Price: m("100"), TWAP: m("0.7")}, {Bid: 2, Price: m("50"), TWAP: m("0.49")}}, m("0.5"), 0},
		{"tie goes to the earlier bid", []ScoredBid{{Bid: 1, Price: m("100"), TWAP: m("0.5")}, {Bid: 2, Price: m("200"), TWAP: m("1")}}, 0, 0},
		{"tie, earlier bid listed second", []ScoredBid{{Bid: 5, Price: m("200"), TWAP: m("1")}, {Bid: 3, Price: m("100"), TWAP: m("0.5")}}, 0, 1},
		{"none qualifies", []ScoredBid{{Bid: 1, Price: m("100"), TWAP: m("0.2")}}, m("0.6"), -1},
		{"zero TWAP never wins", []ScoredBid{{Bid: 1, Price: m("100"), TWAP: 0}}, 0, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.bids, tc.minConf); got != tc.want {
				t.Fatalf("Decide = %d, want %d (%+v)", got, tc.want, tc.bids)
			}
		})
	}
	bs := []ScoredBid{{Bid: 1, Price: m("100"), TWAP: m("0.7")}}
	Decide(bs, 0)
	if *bs[0].Score != m("142.857142") || !bs[0].Qualifies {
		t.Fatalf("score %s", bs[0].Score)
	}
}

func TestSplitPrice(t *testing.T) {
	m := levee.MustMicros
	got := splitPrice(m("100.000001"), []levee.Micros{m("0.333333"), m("0.333333"), m("0.333334")})
	if got[0] != m("33.333300") || got[1] != m("33.333300") || got[0]+got[1]+got[2] != m("100.000001") {
		t.Fatalf("split %v", got)
	}
}
