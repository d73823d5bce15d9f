package web

import (
	"encoding/json"
	"testing"
	"time"

	"levee"
	"levee/market"
	"levee/market/engine"
)

// TestOrderResultJSON holds the hand-written answer of an order to what
// encoding/json made of the map it replaced, byte for byte.
func TestOrderResultJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    engine.Result
	}{
		{"buy", engine.Result{MarketID: 7, Seq: 1234, Outcome: 1, Side: market.Buy, Shares: levee.MustMicros("2.5"),
			Cost: levee.MustMicros("1.312345"), Prices: []levee.Micros{levee.MustMicros("0.4"), levee.MustMicros("0.6")}, At: time.Now()}},
		{"sell", engine.Result{MarketID: 9007199254740993, Seq: 1, Outcome: 0, Side: market.Sell, Shares: levee.MustMicros("0.000001"),
			Proceeds: 0, Prices: []levee.Micros{1, 2, 999_998}}},
		{"four outcomes, zero cost", engine.Result{MarketID: 1, Seq: 99, Outcome: 3, Side: market.Buy, Shares: levee.MustMicros("1000000"),
			Prices: []levee.Micros{levee.MustMicros("0.25"), levee.MustMicros("0.25"), levee.MustMicros("0.25"), levee.MustMicros("0.25")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			body := map[string]any{"trade_id": r.TradeID(), "market": levee.FormatID(r.MarketID), "outcome": r.Outcome, "side": r.Side,
				"shares": r.Shares, "prices": r.Prices, "seq": r.Seq}
			if r.Side == market.Buy {
				body["cost"] = r.Cost
			} else {
				body["proceeds"] = r.Proceeds
			}
			want, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(appendOrderResult(nil, r)); got != string(want)+"\n" {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestOrderResultJSONDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := engine.Result{MarketID: 7, Seq: 1234, Outcome: 1, Side: market.Buy, Shares: levee.MustMicros("2.5"),
		Cost: levee.MustMicros("1.312345"), Prices: []levee.Micros{levee.MustMicros("0.4"), levee.MustMicros("0.6")}}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = appendOrderResult(buf[:0], r) }); n != 0 {
		t.Fatalf("%v allocations per answer, want 0", n)
	}
}
