package contracting

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"levee"
	"levee/accounts"
	"levee/market"
	"levee/pgtx"
)

// TrackForecast is how one resolved winning-bid market forecast a contract.
type TrackForecast struct {
	Contract int64        `json:"contract,string"`
	Market   int64        `json:"market,string"`
	PYes     levee.Micros `json:"p_yes"`   // the last yes-price before resolution
	Outcome  int          `json:"outcome"` // 1: delivered by the promised date, 0: not
}

// TrackRecord is a contractor organisation's record on Levee contracts.
// Rates and averages are nil until there is something to average.
type TrackRecord struct {
	Contractor int64  `json:"contractor,string"`
	Name       string `json:"name"`
	Contracts  int    `json:"contracts"`
	Active     int    `json:"active"`
	Completed  int    `json:"completed"`
	Failed     int    `json:"failed"`
	// OnTime counts completed contracts whose every milestone was claimed by
	// the promised completion date (what the decision market asked).
	OnTime int `json:"on_time"`
	// OnTimeRate is OnTime over settled (completed or failed) contracts.
	OnTimeRate *levee.Micros `json:"on_time_rate"`
	// AverageLatenessDays is the mean, over the accepted milestones of
	// settled contracts, of how long after its promised date each milestone
	// was claimed (0 when on time), in days, rounded down.
	AverageLatenessDays *levee.Micros `json:"average_lateness_days"`
	// Brier is the mean of (p_yes − outcome)² over the resolved winning-bid
	// markets (0 is a perfect forecast, 0.25 a coin toss), rounded down.
	Brier     *levee.Micros   `json:"brier_score"`
	Forecasts []TrackForecast `json:"forecasts"`
}

// Brier is the mean squared error of forecasts, rounded down to the
// micro-unit; ok is false when there are none.
func Brier(fs []TrackForecast) (levee.Micros, bool) {
	if len(fs) == 0 {
		return 0, false
	}
	sum := new(big.Int)
	for _, f := range fs {
		d := big.NewInt(int64(f.PYes) - int64(f.Outcome)*levee.Scale)
		sum.Add(sum, d.Mul(d, d)) // micro² units
	}
	sum.Quo(sum, big.NewInt(int64(len(fs))*levee.Scale))
	return levee.Micros(sum.Int64()), true
}

// TrackRecord computes a contractor organisation's track record from its
// contracts (each brought up to date first, as on any read) and the
// decision markets of its winning bids. Errors: ENOTFOUND (no such
// contractor).
func (s *Service) TrackRecord(ctx context.Context, contractor int64) (TrackRecord, error) {
	tr := TrackRecord{Contractor: contractor, Forecasts: []TrackForecast{}}
	var err error
	tr.Name, err = accounts.ContractorName(ctx, s.db, contractor)
	if levee.ErrorCode(err) == levee.ENOTFOUND {
		return TrackRecord{}, err
	} else if err != nil {
		return TrackRecord{}, fmt.Errorf("track record %d: %w", contractor, err)
	}
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, `SELECT id FROM contracts WHERE contractor_id = $1 ORDER BY id`, contractor); err != nil {
		return TrackRecord{}, pgtx.Unavailable(fmt.Errorf("track record %d: %w", contractor, err))
	}
	var lateUS int64
	var milestones int64
	for _, id := range ids {
		c, err := s.Contract(ctx, id)
		if err != nil {
			return TrackRecord{}, fmt.Errorf("track record %d: %w", contractor, err)
		}
		tr.Contracts++
		switch c.Status {
		case ContractActive:
			tr.Active++
			continue
		case ContractCompleted:
			tr.Completed++
			onTime := true
			for _, m := range c.Milestones {
				onTime = onTime && m.ClaimedAt != nil && !m.ClaimedAt.After(c.CompletionAt)
			}
			if onTime {
				tr.OnTime++
			}
		case ContractFailed:
			tr.Failed++
		}
		for _, m := range c.Milestones {
			if m.Status != MilestoneAccepted || m.ClaimedAt == nil {
				continue
			}
			milestones++
			if late := m.ClaimedAt.Sub(m.DueAt); late > 0 {
				lateUS += late.Microseconds()
			}
		}
		if c.MarketID == nil {
			continue // a direct award: no forecast to score
		}
		snap, err := s.markets.Snapshot(ctx, *c.MarketID)
		if err != nil {
			return TrackRecord{}, fmt.Errorf("track record %d: market %d: %w", contractor, *c.MarketID, err)
		}
		if snap.Market.Status != market.StatusResolved || snap.Market.ResolvedOutcome == nil {
			continue
		}
		p, err := s.finalYes(ctx, *c.MarketID, snap.Market.Liquidity)
		if err != nil {
			return TrackRecord{}, fmt.Errorf("track record %d: market %d: %w", contractor, *c.MarketID, err)
		}
		outcome := 0
		if *snap.Market.ResolvedOutcome == yesOutcome {
			outcome = 1
		}
		tr.Forecasts = append(tr.Forecasts, TrackForecast{Contract: c.ID, Market: *c.MarketID, PYes: p, Outcome: outcome})
	}
	if settled := tr.Completed + tr.Failed; settled > 0 {
		r := levee.Micros(int64(tr.OnTime) * levee.Scale / int64(settled))
		tr.OnTimeRate = &r
	}
	if milestones > 0 {
		// micro-days = µs · 10⁶ / (n · 86 400 · 10⁶) = µs / (n · 86 400)
		d := new(big.Int).Quo(big.NewInt(lateUS), big.NewInt(milestones*int64(24*time.Hour/time.Second)))
		v := levee.Micros(d.Int64())
		tr.AverageLatenessDays = &v
	}
	if b, ok := Brier(tr.Forecasts); ok {
		tr.Brier = &b
	}
	return tr, nil
}

// finalYes is a market's yes-price after its last trade, or its initial
// price if it never traded.
func (s *Service) finalYes(ctx context.Context, marketID int64, liquidity levee.Micros) (levee.Micros, error) {
	ts, err := s.markets.Trades(ctx, marketID, 0, 1)
	if err != nil {
		return 0, err
	}
	if len(ts) == 1 && len(ts[0].Prices) > yesOutcome {
		return ts[0].Prices[yesOutcome], nil
	}
	return initialYes(liquidity)
}
