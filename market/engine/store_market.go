package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/market"
	"levee/pgtx"
)

const marketColumns = `m.id, m.question, m.outcomes, m.liquidity, m.subsidy, m.q, m.seq, m.volume, m.status, m.conditional,
	m.resolved_outcome, m.district_id, m.closes_at, m.created_at, m.epoch`

// The statements of the order path, exported for tools that explain their
// plans (bench/cmd/levee-bench); the engine runs these same strings, and
// JournalSQL (store_journal.go).
const (
	// LoadMarketSQL reads market $1's row: a book's start and its reload.
	LoadMarketSQL = `SELECT ` + marketColumns + ` FROM markets m WHERE m.id = $1`
	// LoadPositionsSQL reads the positions in market $1 of the accounts $2:
	// traders new to a book.
	LoadPositionsSQL = `SELECT account_id, outcome, shares FROM positions WHERE market_id = $1 AND account_id = ANY($2)`
	// TradesByKeysSQL finds the stored trades of (account $1[i],
	// idempotency key $2[i]) pairs: keyed orders.
	TradesByKeysSQL = `SELECT t.market_id, t.seq, t.account_id, t.outcome, t.side, t.shares, t.amount, t.prices, t.at, k.key AS idempotency_key
		FROM unnest($1::bigint[], $2::text[]) AS w (account_id, key)
		JOIN order_keys k ON k.account_id = w.account_id AND k.key = w.key
		JOIN trades t ON t.market_id = k.market_id AND t.seq = k.seq`
)

// nameDistricts fills in the names of the markets' districts.
func nameDistricts(ctx context.Context, q sqlx.QueryerContext, ms []Market) error {
	var names map[int64]string
	for i := range ms {
		if ms[i].DistrictID == nil {
			continue
		}
		if names == nil {
			var err error
			if names, err = accounts.DistrictNames(ctx, q); err != nil {
				return err
			}
		}
		name := names[*ms[i].DistrictID]
		ms[i].District = &name
	}
	return nil
}

func loadMarket(ctx context.Context, q sqlx.QueryerContext, id int64) (Market, error) {
	var m Market
	err := sqlx.GetContext(ctx, q, &m, LoadMarketSQL, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Market{}, levee.Errorf(levee.ENOTFOUND, "no market %d", id)
	} else if err != nil {
		return Market{}, pgtx.Unavailable(fmt.Errorf("load market %d: %w", id, err))
	}
	one := []Market{m}
	if err := nameDistricts(ctx, q, one); err != nil {
		return Market{}, fmt.Errorf("load market %d: %w", id, err)
	}
	return one[0], nil
}

// Filter selects markets to list.
type Filter struct {
	Status   string // "" for any
	District string // "" for any
	AfterID  int64  // keyset pagination: markets with a smaller id (newest first)
	Limit    int
}

func listMarkets(ctx context.Context, db *sqlx.DB, f Filter) ([]Market, error) {
	ms := []Market{}
	var district int64 // 0: any
	if f.District != "" {
		id, ok, err := accounts.DistrictNamed(ctx, db, f.District)
		if err != nil {
			return nil, fmt.Errorf("list markets: %w", err)
		}
		if !ok {
			return ms, nil // no such district, so no markets in it
		}
		district = id
	}
	err := db.SelectContext(ctx, &ms, `SELECT `+marketColumns+`
		FROM markets m
		WHERE ($1 = '' OR m.status = $1 AND NOT ($1 = 'open' AND m.closes_at <= now())
			OR $1 = 'closed' AND m.status = 'open' AND m.closes_at <= now())
		  AND ($2::bigint = 0 OR m.district_id = $2::bigint) AND ($3::bigint = 0 OR m.id < $3::bigint)
		ORDER BY m.id DESC LIMIT $4`, f.Status, district, f.AfterID, f.Limit)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list markets: %w", err))
	}
	if err := nameDistricts(ctx, db, ms); err != nil {
		return nil, fmt.Errorf("list markets: %w", err)
	}
	return ms, nil
}

// loadPositions returns each account's shares per outcome in a market;
// accounts without a position get zeros.
func loadPositions(ctx context.Context, q sqlx.QueryerContext, marketID int64, accounts []int64, outcomes int) (map[int64][]levee.Micros, error) {
	var rows []struct {
		Account int64        `db:"account_id"`
		Outcome int          `db:"outcome"`
		Shares  levee.Micros `db:"shares"`
	}
	err := sqlx.SelectContext(ctx, q, &rows, LoadPositionsSQL, marketID, pq.Array(accounts))
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("load positions: %w", err))
	}
	out := make(map[int64][]levee.Micros, len(accounts))
	for _, a := range accounts {
		out[a] = make([]levee.Micros, outcomes)
	}
	for _, r := range rows {
		if r.Outcome >= 0 && r.Outcome < outcomes {
			out[r.Account][r.Outcome] = r.Shares
		}
	}
	return out, nil
}

// tradesByKeys finds the stored trades of (account, idempotency key) pairs.
func tradesByKeys(ctx context.Context, q sqlx.QueryerContext, accounts []int64, keys []string) ([]market.Trade, error) {
	var ts []market.Trade
	err := sqlx.SelectContext(ctx, q, &ts, TradesByKeysSQL, pq.Array(accounts), pq.Array(keys))
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("find orders by key: %w", err))
	}
	return ts, nil
}

// Trades lists a market's trades, newest first, before seq (0 = latest).
func (e *Engine) Trades(ctx context.Context, marketID, beforeSeq int64, limit int) ([]market.Trade, error) {
	ts := []market.Trade{}
	err := e.db.SelectContext(ctx, &ts, `SELECT market_id, seq, account_id, outcome, side, shares, amount, prices, at, idempotency_key
		FROM trades WHERE market_id = $1 AND ($2::bigint = 0 OR seq < $2::bigint) ORDER BY seq DESC LIMIT $3`, marketID, beforeSeq, limit)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list trades: %w", err))
	}
	return ts, nil
}

// TradesOf returns every trade of account, oldest first: for its owner's
// data export, never for anyone else (a trade's trader is private).
func (e *Engine) TradesOf(ctx context.Context, account int64) ([]market.Trade, error) {
	ts := []market.Trade{}
	err := e.db.SelectContext(ctx, &ts, `SELECT market_id, seq, account_id, outcome, side, shares, amount, prices, at, idempotency_key
		FROM trades WHERE account_id = $1 ORDER BY at, market_id, seq`, account)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("trades of %d: %w", account, err))
	}
	return ts, nil
}

// Point is one point of a price-history series.
type Point struct {
	At     time.Time   `json:"at" db:"at"`
	Seq    int64       `json:"seq" db:"seq"`
	Prices microsArray `json:"prices" db:"prices"`
}

// History returns the price series of a market between from and to,
// downsampled to at most points buckets: the last trade of each bucket, so a
// chart of a year of trading is as light as one of an hour.
func (e *Engine) History(ctx context.Context, marketID int64, from, to time.Time, points int) ([]Point, error) {
	span := to.Sub(from)
	if span <= 0 {
		return nil, levee.Invalid("from", "from must be before to")
	}
	bucket := span.Seconds() / float64(points)
	ps := []Point{}
	err := e.db.SelectContext(ctx, &ps, `
		SELECT DISTINCT ON (floor(extract(epoch FROM at - $2::timestamptz) / $4)) at, seq, prices
		FROM trades WHERE market_id = $1 AND at >= $2 AND at <= $3
		ORDER BY floor(extract(epoch FROM at - $2::timestamptz) / $4), seq DESC`, marketID, from, to, bucket)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("price history: %w", err))
	}
	return ps, nil
}

// Position is an account's holding in one outcome of one market.
type Position struct {
	MarketID    int64        `json:"market_id,string" db:"market_id"`
	Question    string       `json:"question" db:"question"`
	Outcome     int          `json:"outcome" db:"outcome"`
	OutcomeName string       `json:"outcome_name" db:"outcome_name"`
	Shares      levee.Micros `json:"shares" db:"shares"`
	Paid        levee.Micros `json:"paid" db:"paid"`
	Received    levee.Micros `json:"received" db:"received"`
	Status      string       `json:"status" db:"status"`
	// Conditional is set for a decision market: the money a trader puts in
	// stays in the market until it settles. PutIn is the cash the trader
	// has put into the market and Held their balance inside it (from sales,
	// usable only for buying there), both per market, repeated on each of
	// the market's positions.
	Conditional bool         `json:"conditional" db:"conditional"`
	PutIn       levee.Micros `json:"put_in" db:"put_in"`
	Held        levee.Micros `json:"held" db:"held"`
	// CostBasis is paid - received: what the position cost net.
	CostBasis levee.Micros `json:"cost_basis" db:"-"`
	// Value marks the shares to market: at the current price while trading,
	// at 1 or 0 once resolved, at the refund once void.
	Value levee.Micros `json:"value" db:"-"`
	PnL   levee.Micros `json:"pnl" db:"-"`
}

func positionsOf(ctx context.Context, db *sqlx.DB, account int64) ([]Position, error) {
	ps := []Position{}
	err := db.SelectContext(ctx, &ps, `
		SELECT p.market_id, m.question, p.outcome, m.outcomes[p.outcome + 1] AS outcome_name, p.shares, p.paid, p.received, m.status,
			m.conditional, coalesce(s.put_in, 0) AS put_in, coalesce(s.held, 0) AS held
		FROM positions p JOIN markets m ON m.id = p.market_id
		LEFT JOIN market_stakes s ON s.market_id = p.market_id AND s.account_id = p.account_id
		WHERE p.account_id = $1 ORDER BY p.market_id DESC, p.outcome`, account)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("positions: %w", err))
	}
	return ps, nil
}

// Facts is what a case about a market needs to know of it.
type Facts struct {
	Market   Market
	FundedBy string  // the treasury, or the budget line of a decision market
	Holders  []int64 // everyone who ever held a position (every trader)
}

// MarketFacts reads a market and everyone who traded in it through q.
// Errors: ENOTFOUND.
func MarketFacts(ctx context.Context, q sqlx.QueryerContext, id int64) (Facts, error) {
	m, err := loadMarket(ctx, q, id)
	if err != nil {
		return Facts{}, err
	}
	f := Facts{Market: m}
	if err := sqlx.GetContext(ctx, q, &f.FundedBy, `SELECT funded_by FROM markets WHERE id = $1`, id); err != nil {
		return Facts{}, pgtx.Unavailable(fmt.Errorf("market %d funder: %w", id, err))
	}
	if f.Holders, err = HoldersOf(ctx, q, []int64{id}); err != nil {
		return Facts{}, pgtx.Unavailable(fmt.Errorf("market %d holders: %w", id, err))
	}
	return f, nil
}

// Stake is a trader's money in a conditional market: the cash they put in
// and their balance inside the market.
type Stake struct {
	PutIn levee.Micros `db:"put_in"`
	Held  levee.Micros `db:"held"`
}

// loadStakes returns the stakes of accounts in a conditional market;
// accounts without one get zeros.
func loadStakes(ctx context.Context, q sqlx.QueryerContext, marketID int64, accounts []int64) (map[int64]Stake, error) {
	var rows []struct {
		Account int64 `db:"account_id"`
		Stake
	}
	err := sqlx.SelectContext(ctx, q, &rows, `SELECT account_id, put_in, held FROM market_stakes WHERE market_id = $1 AND account_id = ANY($2)`,
		marketID, pq.Array(accounts))
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("load stakes: %w", err))
	}
	out := make(map[int64]Stake, len(rows))
	for _, r := range rows {
		out[r.Account] = r.Stake
	}
	return out, nil
}

// HoldersOf returns everyone who ever held a position in any of markets
// (every trader), in id order.
func HoldersOf(ctx context.Context, q sqlx.QueryerContext, markets []int64) ([]int64, error) {
	var ids []int64
	if err := sqlx.SelectContext(ctx, q, &ids, `SELECT DISTINCT account_id FROM positions WHERE market_id = ANY($1) ORDER BY account_id`, pq.Array(markets)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("holders: %w", err))
	}
	return ids, nil
}

// insertMarket stores a new market's row, created at at, and returns its id.
func insertMarket(ctx context.Context, tx *sqlx.Tx, n NewMarket, subsidy levee.Micros, q []levee.Micros, districtID, createdBy *int64, at time.Time) (int64, error) {
	var id int64
	err := tx.GetContext(ctx, &id, `
			INSERT INTO markets (question, outcomes, liquidity, subsidy, q, district_id, closes_at, created_by, funded_by, conditional, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		n.Question, pq.Array(n.Outcomes), n.Liquidity, subsidy, microsArray(q), districtID, n.ClosesAt, createdBy, n.FundedBy, n.Conditional, at)
	if err != nil {
		return 0, fmt.Errorf("insert market: %w", err)
	}
	return id, nil
}

// setStatus records a market's new status (and, resolved, its outcome);
// a final status also records when it was settled.
func setStatus(ctx context.Context, tx *sqlx.Tx, id int64, status string, outcome *int) error {
	_, err := tx.ExecContext(ctx, `UPDATE markets SET status = $2, resolved_outcome = $3,
			settled_at = CASE WHEN $2 IN ('resolved', 'void') THEN now() END WHERE id = $1`, id, status, outcome)
	return err
}

// fence locks market id's row and checks that its epoch is still the one
// the book holds: inside a lifecycle transaction, before any money moves, so
// a book whose instance lost the market's lease (docs/cluster.md) cannot
// settle it. The lock also makes a takeover wait for this transaction.
func fence(ctx context.Context, tx *sqlx.Tx, id, epoch int64) error {
	var now int64
	if err := tx.GetContext(ctx, &now, `SELECT epoch FROM markets WHERE id = $1 FOR UPDATE`, id); err != nil {
		return fmt.Errorf("fence market %d: %w", id, err)
	}
	if now != epoch {
		return errFenced
	}
	return nil
}

// setClosesAt moves an open market's closing time.
func setClosesAt(ctx context.Context, db *sqlx.DB, id, epoch int64, until time.Time) error {
	res, err := db.ExecContext(ctx, `UPDATE markets SET closes_at = $2 WHERE id = $1 AND status = 'open' AND epoch = $3`, id, until, epoch)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if cur, err := epochOf(ctx, db, id); err == nil && cur != epoch {
			return errFenced
		}
	}
	return nil
}

// fundedBy returns the ledger account that funded a market.
func fundedBy(ctx context.Context, tx *sqlx.Tx, id int64) (string, error) {
	var funder string
	err := tx.GetContext(ctx, &funder, `SELECT funded_by FROM markets WHERE id = $1`, id)
	return funder, err
}

// clearHeld empties the traders' balances inside a settled conditional
// market (the ledger moved the money out of market:<id>:held).
func clearHeld(ctx context.Context, tx *sqlx.Tx, id int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE market_stakes SET held = 0 WHERE market_id = $1 AND held <> 0`, id)
	return err
}

// tradersMoney reads every trader's net cost, held balance and, when
// winner >= 0, winning shares.
func tradersMoney(ctx context.Context, tx *sqlx.Tx, marketID int64, winner int) ([]traderMoney, error) {
	var rows []traderMoney
	err := tx.SelectContext(ctx, &rows, `
		SELECT account_id, sum(shares) AS shares, sum(net) AS net, sum(held) AS held FROM (
			SELECT account_id, CASE WHEN outcome = $2 THEN shares ELSE 0 END AS shares, paid - received AS net, 0 AS held
			FROM positions WHERE market_id = $1
			UNION ALL
			SELECT account_id, 0, 0, held FROM market_stakes WHERE market_id = $1
		) t GROUP BY account_id ORDER BY account_id`, marketID, winner)
	if err != nil {
		return nil, fmt.Errorf("traders' money in market %d: %w", marketID, err)
	}
	return rows, nil
}
