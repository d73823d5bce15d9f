package engine

import (
	"context"
	"fmt"

	"levee"
	"levee/market"
	"levee/pgtx"
)

// Stats are the public census figures of the markets.
type Stats struct {
	// ByStatus counts markets by their effective status (an open market
	// past its closing time counts as closed).
	ByStatus map[string]int64 `json:"by_status"`
	Trades   int64            `json:"trades"`
	Volume   levee.Micros     `json:"volume"`
}

// Stats counts markets by status, trades and volume, for the census.
func (e *Engine) Stats(ctx context.Context) (Stats, error) {
	st := Stats{ByStatus: map[string]int64{market.StatusOpen: 0, market.StatusClosed: 0, market.StatusResolved: 0, market.StatusVoid: 0}}
	var rows []struct {
		Status string       `db:"status"`
		N      int64        `db:"n"`
		Volume levee.Micros `db:"volume"`
	}
	err := e.db.SelectContext(ctx, &rows, `
		SELECT CASE WHEN status = 'open' AND closes_at <= now() THEN 'closed' ELSE status END AS status,
			count(*) AS n, least(coalesce(sum(volume), 0), $1) AS volume
		FROM markets GROUP BY 1`, levee.MaxMoney)
	if err != nil {
		return Stats{}, pgtx.Unavailable(fmt.Errorf("market stats: %w", err))
	}
	for _, r := range rows {
		st.ByStatus[r.Status] += r.N
		st.Volume = st.Volume.Capped(r.Volume) // a statistic: at most MaxMoney
	}
	if err := e.db.GetContext(ctx, &st.Trades, `SELECT count(*) FROM trades`); err != nil {
		return Stats{}, pgtx.Unavailable(fmt.Errorf("count trades: %w", err))
	}
	return st, nil
}

// Resolved returns every resolved market with its final state, oldest
// first, for the census's forecast accuracy.
func (e *Engine) Resolved(ctx context.Context) ([]Market, error) {
	ms := []Market{}
	err := e.db.SelectContext(ctx, &ms, `SELECT `+marketColumns+`
		FROM markets m WHERE m.status = 'resolved' ORDER BY m.id`)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("resolved markets: %w", err))
	}
	if err := nameDistricts(ctx, e.db, ms); err != nil {
		return nil, fmt.Errorf("resolved markets: %w", err)
	}
	return ms, nil
}
