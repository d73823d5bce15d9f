package settlement

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee/pgtx"
)

// Trading is what settlement needs of the market engine to keep those who
// judge a case out of its markets: from seating until the case is settled,
// its jurors and its parties (whom the draw leaves out) may not trade in
// the markets tied to it.
type Trading interface {
	// Bar refuses accounts' orders in a market from now on, saying why.
	Bar(marketID int64, accounts []int64, why string)
	// RefreshBars reloads a market's bars from BarredTraders.
	RefreshBars(ctx context.Context, marketID int64) error
}

// BarredTraders says who may not trade in a market now, and why: the
// jurors and the parties of every unsettled case tied to it. The
// market engine reads it when a market's book starts and on RefreshBars.
func (s *Service) BarredTraders(ctx context.Context, marketID int64) (map[int64]string, error) {
	var rows []struct {
		Account int64 `db:"account_id"`
		Case    int64 `db:"case_id"`
		Juror   bool  `db:"juror"`
	}
	err := s.db.SelectContext(ctx, &rows, `
		SELECT j.account_id, c.id AS case_id, true AS juror
		FROM case_markets cm JOIN cases c ON c.id = cm.case_id AND c.status <> 'settled'
		JOIN jurors j ON j.case_id = c.id
		WHERE cm.market_id = $1
		UNION ALL
		SELECT p.account_id, c.id, false
		FROM case_markets cm JOIN cases c ON c.id = cm.case_id AND c.status <> 'settled'
		JOIN case_parties p ON p.case_id = c.id
		WHERE cm.market_id = $1`, marketID)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("barred traders of market %d: %w", marketID, err))
	}
	out := make(map[int64]string, len(rows))
	for _, r := range rows {
		out[r.Account] = barReason(r.Case, r.Juror)
	}
	return out, nil
}

func barReason(caseID int64, juror bool) string {
	if juror {
		return fmt.Sprintf("you sit on the jury of case %d, which judges it; you may trade in it again once the case is settled", caseID)
	}
	return fmt.Sprintf("you are a party to case %d, which judges it; you may trade in it again once the case is settled", caseID)
}

// bar refuses the orders of accounts in every market tied to a case, inside
// the transaction that seats them, before it commits: no order slips in
// between the seat and the bar. If tx then fails, the phantom bar lasts
// until the market's bars are next refreshed (a case settled, a restart).
func (s *Service) bar(ctx context.Context, tx *sqlx.Tx, caseID int64, accounts []int64, juror bool) error {
	if s.opts.Trading == nil || len(accounts) == 0 {
		return nil
	}
	markets, err := caseMarkets(ctx, tx, caseID)
	if err != nil {
		return err
	}
	for _, m := range markets {
		s.opts.Trading.Bar(m, accounts, barReason(caseID, juror))
	}
	return nil
}

// unbar lifts a settled case's bars (after its settlement committed).
func (s *Service) unbar(ctx context.Context, caseID int64) {
	if s.opts.Trading == nil {
		return
	}
	markets, err := caseMarkets(ctx, s.db, caseID)
	if err == nil {
		for _, m := range markets {
			if err = s.opts.Trading.RefreshBars(ctx, m); err != nil {
				break
			}
		}
	}
	if err != nil { // the bars stay until the markets' books restart
		s.opts.Logger.Warn("lifting a settled case's trading bars", "case", caseID, "err", err)
	}
}

// tieMarkets records the markets tied to a case.
func tieMarkets(ctx context.Context, tx *sqlx.Tx, caseID int64, markets []int64) error {
	if len(markets) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO case_markets (case_id, market_id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING`,
		caseID, pq.Int64Array(markets))
	if err != nil {
		return fmt.Errorf("case %d markets: %w", caseID, err)
	}
	return nil
}

func caseMarkets(ctx context.Context, q sqlx.QueryerContext, caseID int64) ([]int64, error) {
	var ms []int64
	if err := sqlx.SelectContext(ctx, q, &ms, `SELECT market_id FROM case_markets WHERE case_id = $1 ORDER BY market_id`, caseID); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("case %d markets: %w", caseID, err))
	}
	return ms, nil
}
