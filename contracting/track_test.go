package contracting_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"levee"
	"levee/contracting"
	"levee/market"
)

func TestBrierByHand(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   []contracting.TrackForecast
		want string
	}{
		// ((0.7 − 1)² + (0.6 − 0)²) / 2 = (0.09 + 0.36) / 2
		{"two", []contracting.TrackForecast{{PYes: levee.MustMicros("0.7"), Outcome: 1}, {PYes: levee.MustMicros("0.6"), Outcome: 0}}, "0.225000"},
		// (0.5 − 1)² = 0.25, a coin toss
		{"coin", []contracting.TrackForecast{{PYes: levee.MustMicros("0.5"), Outcome: 1}}, "0.250000"},
		// ((0.9 − 1)² + (0.2 − 0)² + (0.333333 − 1)²) / 3
		//   = (0.01 + 0.04 + 0.444444888889) / 3 = 0.164814962963, rounded down
		{"three", []contracting.TrackForecast{{PYes: levee.MustMicros("0.9"), Outcome: 1}, {PYes: levee.MustMicros("0.2"), Outcome: 0},
			{PYes: levee.MustMicros("0.333333"), Outcome: 1}}, "0.164814"},
	} {
		got, ok := contracting.Brier(tc.fs)
		if !ok || got.String() != tc.want {
			t.Errorf("%s: %s %v, want %s", tc.name, got, ok, tc.want)
		}
	}
	if _, ok := contracting.Brier(nil); ok {
		t.Error("a Brier score of no forecasts")
	}
}

// TestTrackRecord runs two contracts for one contractor: the first
// completed by its date (market resolves yes) with milestone 1 claimed 30
// minutes late, the second failed (market resolves no) with milestone 1 also
// 30 minutes late.
func TestTrackRecord(t *testing.T) {
	w := MustWorld(t)
	ctx := context.Background()
	tv1, tv2 := w.tender(t), w.tender(t)
	w.bid(t, tv1, 0, "100")
	w.bid(t, tv2, 0, "100")
	w.clock.Add(time.Hour)
	var ps []levee.Micros
	for i, tv := range []contracting.TenderView{tv1, tv2} {
		if _, err := w.svc.CloseBids(ctx, w.treasurer.AccountID, tv.ID); err != nil {
			t.Fatal(err)
		}
		bs, _ := w.svc.Bids(ctx, nil, tv.ID)
		amount := []string{"5", "2"}[i]
		r, err := w.eng.Submit(ctx, w.residents[i].AccountID, *bs[0].MarketID, market.Order{Outcome: 0, Side: market.Buy, Amount: levee.MustMicros(amount)}, "")
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, r.Prices[0])
	}
	w.clock.Add(10 * time.Hour)
	var cids []int64
	for _, tv := range []contracting.TenderView{tv1, tv2} {
		a, err := w.svc.Award(ctx, w.treasurer.AccountID, tv.ID)
		if err != nil || a.Contract == nil {
			t.Fatalf("award: %v %+v", err, a)
		}
		cids = append(cids, *a.Contract)
	}
	tr, err := w.svc.TrackRecord(ctx, w.orgs[0].AccountID)
	if err != nil || tr.Contracts != 2 || tr.Active != 2 || tr.OnTimeRate != nil || tr.Brier != nil {
		t.Fatalf("before any settlement: %+v %v", tr, err)
	}
	// Milestone dates are completion − 1 h and completion (= decision + 30 days).
	w.clock.Add(30*24*time.Hour - 30*time.Minute)
	for _, c := range []struct {
		id int64
		n  int
	}{{cids[0], 1}, {cids[0], 2}, {cids[1], 1}} {
		if _, err := w.svc.Claim(ctx, w.orgs[0], c.id, c.n, "done"); err != nil {
			t.Fatal(err)
		}
	}
	w.clock.Add(25 * time.Hour)
	tr, err = w.svc.TrackRecord(ctx, w.orgs[0].AccountID)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Name != "dykeworks" || tr.Contracts != 2 || tr.Completed != 1 || tr.Failed != 1 || tr.OnTime != 1 || tr.Active != 0 {
		t.Fatalf("counts: %+v", tr)
	}
	if tr.OnTimeRate == nil || tr.OnTimeRate.String() != "0.500000" {
		t.Fatalf("on-time rate %v", tr.OnTimeRate)
	}
	// 30 + 0 + 30 minutes late over three accepted milestones: 20 minutes,
	// 20 / 1440 days = 0.0138888…
	if tr.AverageLatenessDays == nil || tr.AverageLatenessDays.String() != "0.013888" {
		t.Fatalf("lateness %v", tr.AverageLatenessDays)
	}
	if len(tr.Forecasts) != 2 || tr.Forecasts[0].Outcome != 1 || tr.Forecasts[1].Outcome != 0 ||
		tr.Forecasts[0].PYes != ps[0] || tr.Forecasts[1].PYes != ps[1] {
		t.Fatalf("forecasts %+v, prices %v", tr.Forecasts, ps)
	}
	// By hand: ((p1 − 1)² + (p2 − 0)²) / 2, in micro-units, rounded down.
	d1 := big.NewInt(int64(ps[0]) - levee.Scale)
	d2 := big.NewInt(int64(ps[1]))
	sum := new(big.Int).Add(new(big.Int).Mul(d1, d1), new(big.Int).Mul(d2, d2))
	want := levee.Micros(sum.Quo(sum, big.NewInt(2*levee.Scale)).Int64())
	if tr.Brier == nil || *tr.Brier != want {
		t.Fatalf("Brier %v, want %s (p1 %s, p2 %s)", tr.Brier, want, ps[0], ps[1])
	}
	if f1, f2 := ps[0].Float(), ps[1].Float(); want.Float() < ((1-f1)*(1-f1)+f2*f2)/2-1e-6 || want.Float() > ((1-f1)*(1-f1)+f2*f2)/2 {
		t.Fatalf("Brier %s far from the float value", want)
	}

	if tr, err := w.svc.TrackRecord(ctx, w.orgs[1].AccountID); err != nil || tr.Contracts != 0 || tr.Brier != nil || tr.OnTimeRate != nil {
		t.Fatalf("no contracts: %+v %v", tr, err)
	}
	for _, id := range []int64{w.residents[0].AccountID, 999999} {
		if _, err := w.svc.TrackRecord(ctx, id); levee.ErrorCode(err) != levee.ENOTFOUND {
			t.Fatalf("track record of %d: %v", id, err)
		}
	}
}
