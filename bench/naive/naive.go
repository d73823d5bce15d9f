// Package naive is the obvious order path that the engine is measured
// against: one database transaction per order, the market row locked with
// SELECT ... FOR UPDATE, the trader's position and cash read, the order
// priced by the same pure maths (market.State), the trade inserted, the
// position upserted, the market row updated and the money posted to the
// ledger, then COMMIT. No batching, no cache, no goroutine per market.
//
// Markets wraps *engine.Engine and replaces only Submit, so it can be served
// by the real web layer (web.Deps.Markets). The engine must not run a book
// for a market traded through Markets: the book's cached state would not
// see these trades.
package naive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/pgtx"
)

// Markets is an engine whose orders take the naive path.
type Markets struct {
	*engine.Engine
	db    *sqlx.DB
	clock func() time.Time
}

// New returns Markets that trade on db and serve everything but Submit from e.
func New(e *engine.Engine, db *sqlx.DB) *Markets {
	return &Markets{Engine: e, db: db, clock: time.Now}
}

type marketRow struct {
	Liquidity levee.Micros   `db:"liquidity"`
	Q         pq.StringArray `db:"q"`
	Seq       int64          `db:"seq"`
	Volume    levee.Micros   `db:"volume"`
	Status    string         `db:"status"`
	ClosesAt  time.Time      `db:"closes_at"`
}

// Submit executes one order in one transaction and returns once it is
// committed. Errors: as engine.Engine.Submit (EINVALID, ENOTFOUND, ECONFLICT,
// EUNAVAILABLE).
func (n *Markets) Submit(ctx context.Context, account, marketID int64, o market.Order, key string) (engine.Result, error) {
	if len(key) > 200 {
		return engine.Result{}, levee.Invalid("Idempotency-Key", "the idempotency key must be at most 200 characters")
	}
	at := n.clock().UTC().Truncate(time.Microsecond)
	var res engine.Result
	err := pgtx.Run(ctx, n.db, func(tx *sqlx.Tx) error {
		var err error
		res, err = submit(ctx, tx, account, marketID, o, key, at)
		return err
	})
	if err != nil {
		return engine.Result{}, err
	}
	n.Engine.InvalidateCash(account) // cash moved outside the engine
	return res, nil
}

func submit(ctx context.Context, tx *sqlx.Tx, account, marketID int64, o market.Order, key string, at time.Time) (engine.Result, error) {
	var m marketRow
	err := tx.GetContext(ctx, &m, `SELECT liquidity, q, seq, volume, status, closes_at FROM markets WHERE id = $1 FOR UPDATE`, marketID)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Result{}, levee.Errorf(levee.ENOTFOUND, "no market %d", marketID)
	} else if err != nil {
		return engine.Result{}, fmt.Errorf("lock market %d: %w", marketID, err)
	}
	if key != "" {
		r, ok, err := byKey(ctx, tx, account, key)
		if err != nil {
			return engine.Result{}, err
		}
		if ok {
			if r.MarketID != marketID || r.Outcome != o.Outcome || r.Side != o.Side {
				return engine.Result{}, levee.Errorf(levee.ECONFLICT, "this idempotency key was already used for a different order")
			}
			return r, nil
		}
	}
	if m.Status == market.StatusOpen && !at.Before(m.ClosesAt) {
		m.Status = market.StatusClosed
	}
	if m.Status != market.StatusOpen {
		return engine.Result{}, levee.Errorf(levee.ECONFLICT, "the market is %s and takes no orders", m.Status)
	}
	q := make([]levee.Micros, len(m.Q))
	for i, s := range m.Q {
		if q[i], err = levee.ParseMicros(s); err != nil {
			return engine.Result{}, fmt.Errorf("market %d q: %w", marketID, err)
		}
	}
	st, err := market.NewState(m.Liquidity, q)
	if err != nil {
		return engine.Result{}, fmt.Errorf("market %d state: %w", marketID, err)
	}
	if o.Outcome < 0 || o.Outcome >= len(q) {
		return engine.Result{}, levee.Invalid("outcome", "outcome must be from 0 to %d", len(q)-1)
	}
	var position, cash levee.Micros
	err = tx.GetContext(ctx, &position, `SELECT shares FROM positions WHERE market_id = $1 AND account_id = $2 AND outcome = $3`,
		marketID, account, o.Outcome)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return engine.Result{}, fmt.Errorf("read position: %w", err)
	}
	if err := tx.GetContext(ctx, &cash, `SELECT balance FROM ledger_accounts WHERE key = $1`, ledger.Cash(account)); err != nil {
		return engine.Result{}, fmt.Errorf("read cash: %w", err)
	}
	fill, err := st.Evaluate(o, position, cash)
	if err != nil {
		return engine.Result{}, err
	}
	st.Apply(fill)
	prices := st.PricesMicros()
	seq := m.Seq + 1
	side, amount, shares := "buy", fill.Cost, fill.Shares
	if fill.Side == market.Sell {
		side, amount = "sell", fill.Proceeds
	}
	var k *string
	if key != "" {
		k = &key
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO trades (market_id, seq, account_id, outcome, side, shares, amount, prices, at, idempotency_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		marketID, seq, account, o.Outcome, side, shares, amount, market.Prices(prices).String(), at, k); err != nil {
		return engine.Result{}, fmt.Errorf("insert trade: %w", err)
	}
	if side == "buy" {
		_, err = tx.ExecContext(ctx, `
			INSERT INTO positions (market_id, account_id, outcome, shares, paid) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (market_id, account_id, outcome) DO UPDATE SET
				shares = positions.shares + EXCLUDED.shares, paid = positions.paid + EXCLUDED.paid`,
			marketID, account, o.Outcome, shares, amount)
	} else {
		_, err = tx.ExecContext(ctx, `
			UPDATE positions SET shares = shares - $4, received = received + $5
			WHERE market_id = $1 AND account_id = $2 AND outcome = $3`,
			marketID, account, o.Outcome, shares, amount)
	}
	if err != nil {
		return engine.Result{}, fmt.Errorf("write position: %w", err)
	}
	volume := m.Volume + amount
	if _, err := tx.ExecContext(ctx, `UPDATE markets SET q = $2::numeric[], seq = $3, volume = $4 WHERE id = $1`,
		marketID, market.Prices(st.Q()).String(), seq, volume); err != nil {
		return engine.Result{}, fmt.Errorf("update market: %w", err)
	}
	if amount != 0 {
		signed := amount
		if side == "sell" {
			signed = -amount
		}
		ref := "market:" + strconv.FormatInt(marketID, 10)
		if _, err := ledger.Post(ctx, tx, ledger.Transfer{
			Kind: "trade", Ref: ref + "/trade:" + strconv.FormatInt(seq, 10), At: at,
			Postings: []ledger.Posting{{Account: ledger.Cash(account), Amount: -signed}, {Account: ledger.Collateral(marketID), Amount: signed}},
		}); err != nil {
			return engine.Result{}, err
		}
	}
	r := engine.Result{MarketID: marketID, Seq: seq, Outcome: o.Outcome, Side: fill.Side, Shares: shares, Prices: prices, At: at}
	if side == "buy" {
		r.Cost = amount
	} else {
		r.Proceeds = amount
	}
	return r, nil
}

// byKey returns the earlier trade of account under key, if any.
func byKey(ctx context.Context, tx *sqlx.Tx, account int64, key string) (engine.Result, bool, error) {
	var t struct {
		MarketID int64          `db:"market_id"`
		Seq      int64          `db:"seq"`
		Outcome  int            `db:"outcome"`
		Side     market.Side    `db:"side"`
		Shares   levee.Micros   `db:"shares"`
		Amount   levee.Micros   `db:"amount"`
		Prices   pq.StringArray `db:"prices"`
		At       time.Time      `db:"at"`
	}
	err := tx.GetContext(ctx, &t, `SELECT market_id, seq, outcome, side, shares, amount, prices, at
		FROM trades WHERE account_id = $1 AND idempotency_key = $2`, account, key)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Result{}, false, nil
	} else if err != nil {
		return engine.Result{}, false, fmt.Errorf("find order by key: %w", err)
	}
	r := engine.Result{MarketID: t.MarketID, Seq: t.Seq, Outcome: t.Outcome, Side: t.Side, Shares: t.Shares, At: t.At}
	for _, s := range t.Prices {
		p, err := levee.ParseMicros(s)
		if err != nil {
			return engine.Result{}, false, fmt.Errorf("trade prices: %w", err)
		}
		r.Prices = append(r.Prices, p)
	}
	if t.Side == market.Buy {
		r.Cost = t.Amount
	} else {
		r.Proceeds = t.Amount
	}
	return r, true, nil
}
