package engine

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/pgtx"
	"levee/settlement/ledger"
)

// batch is one market's priced orders, waiting to become durable.
type batch struct {
	marketID int64
	q        microsArray
	seq      int64
	volume   levee.Micros
	trades   []Trade
	// reserved is the cash each buyer had reserved for these trades.
	reserved map[int64]levee.Micros
	done     chan error
}

// journal is the single writer that makes batches durable. It takes every
// batch waiting when it starts a transaction, so under load many markets'
// orders share one commit (group commit), and the commit rate, not the order
// rate, is what PostgreSQL has to sustain.
type journal struct {
	db       *sqlx.DB
	wallets  *wallets
	in       chan *batch
	maxRows  int
	timeout  time.Duration
	logger   *slog.Logger
	observer func(orders int, elapsed time.Duration, err error)
}

func (j *journal) run() {
	pending := make([]*batch, 0, 64)
	for b := range j.in {
		pending = append(pending[:0], b)
		rows := len(b.trades)
	drain:
		for rows < j.maxRows {
			select {
			case b, ok := <-j.in:
				if !ok {
					break drain
				}
				pending = append(pending, b)
				rows += len(b.trades)
			default:
				break drain
			}
		}
		start := time.Now()
		err := j.commit(pending)
		if j.observer != nil {
			j.observer(rows, time.Since(start), err)
		}
		if err != nil {
			j.logger.Error("journal commit failed; affected markets reload", slog.Int("batches", len(pending)), slog.Int("orders", rows), slog.Any("error", err))
			err = levee.Errorf(levee.EUNAVAILABLE, "the order was not executed because the database did not commit it; it is safe to retry")
		}
		for _, b := range pending {
			b.done <- err
		}
	}
}

// commit writes the batches in one transaction and, once it is durable,
// settles the wallets with the balances it read back.
func (j *journal) commit(bs []*batch) error {
	ctx, cancel := context.WithTimeout(context.Background(), j.timeout)
	defer cancel()
	balances, err := j.write(ctx, bs)
	consumed := map[int64]levee.Micros{}
	for _, b := range bs {
		for a, amt := range b.reserved {
			consumed[a] += amt
		}
	}
	if err != nil {
		for a, amt := range consumed {
			j.wallets.release(a, amt)
		}
		for _, b := range bs {
			for _, t := range b.trades {
				j.wallets.Invalidate(t.AccountID)
			}
		}
		return err
	}
	for a, bal := range balances {
		j.wallets.settle(a, consumed[a], bal)
	}
	return nil
}

type positionKey struct {
	market, account int64
	outcome         int
}

type positionDelta struct {
	shares, paid, received levee.Micros
}

func (j *journal) write(ctx context.Context, bs []*batch) (map[int64]levee.Micros, error) {
	tx, err := j.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("journal begin: %w", err))
	}
	defer tx.Rollback()

	// Trades, by COPY: the fastest way into PostgreSQL.
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("trades", "market_id", "seq", "account_id", "outcome", "side", "shares", "amount", "prices", "at", "idempotency_key"))
	if err != nil {
		return nil, fmt.Errorf("journal copy trades: %w", err)
	}
	deltas := map[positionKey]*positionDelta{}
	var transfers []ledger.Transfer
	cashAccounts := map[int64]bool{}
	for _, b := range bs {
		for i := range b.trades {
			t := &b.trades[i]
			if _, err := stmt.ExecContext(ctx, t.MarketID, t.Seq, t.AccountID, t.Outcome, t.Side, t.Shares, t.Amount, t.Prices, t.At, t.Key); err != nil {
				stmt.Close()
				return nil, fmt.Errorf("journal copy trade: %w", err)
			}
			k := positionKey{t.MarketID, t.AccountID, t.Outcome}
			d := deltas[k]
			if d == nil {
				d = &positionDelta{}
				deltas[k] = d
			}
			cashAccounts[t.AccountID] = true
			collateral := collateralKey(t.MarketID)
			if t.Side == "buy" {
				d.shares += t.Shares
				d.paid += t.Amount
			} else {
				d.shares -= t.Shares
				d.received += t.Amount
			}
			if t.Amount == 0 {
				continue // nothing moved, nothing to post
			}
			amt := t.Amount
			if t.Side == "sell" {
				amt = -amt
			}
			transfers = append(transfers, ledger.Transfer{
				Kind: "trade", Ref: "market:" + itoa(t.MarketID) + "/trade:" + itoa(t.Seq), At: t.At,
				Postings: []ledger.Posting{{Account: cashKey(t.AccountID), Amount: -amt}, {Account: collateral, Amount: amt}},
			})
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		stmt.Close()
		return nil, fmt.Errorf("journal copy trades: %w", err)
	}
	if err := stmt.Close(); err != nil {
		return nil, fmt.Errorf("journal copy trades: %w", err)
	}

	// Positions. PostgreSQL checks shares >= 0 on the row an upsert would
	// insert before it finds the conflict, so net sells (negative deltas,
	// always on an existing position) go through an UPDATE instead.
	var grow, shrink positionArrays
	for k, d := range deltas {
		if d.shares >= 0 {
			grow.add(k, d)
		} else {
			shrink.add(k, d)
		}
	}
	if len(grow.markets) > 0 {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO positions (market_id, account_id, outcome, shares, paid, received)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::smallint[], $4::numeric[], $5::numeric[], $6::numeric[])
			ON CONFLICT (market_id, account_id, outcome) DO UPDATE SET
				shares = positions.shares + EXCLUDED.shares,
				paid = positions.paid + EXCLUDED.paid,
				received = positions.received + EXCLUDED.received`, grow.args()...); err != nil {
			return nil, fmt.Errorf("journal positions: %w", err)
		}
	}
	if len(shrink.markets) > 0 {
		if _, err := tx.ExecContext(ctx, `
			UPDATE positions p SET shares = p.shares + v.shares, paid = p.paid + v.paid, received = p.received + v.received
			FROM unnest($1::bigint[], $2::bigint[], $3::smallint[], $4::numeric[], $5::numeric[], $6::numeric[])
				AS v(market_id, account_id, outcome, shares, paid, received)
			WHERE p.market_id = v.market_id AND p.account_id = v.account_id AND p.outcome = v.outcome`, shrink.args()...); err != nil {
			return nil, fmt.Errorf("journal positions: %w", err)
		}
	}

	// Market state: the row a restart loads.
	ids, qs, seqs, vols := make([]int64, len(bs)), make([]string, len(bs)), make([]int64, len(bs)), make([]string, len(bs))
	for i, b := range bs {
		v, _ := b.q.Value()
		ids[i], qs[i], seqs[i], vols[i] = b.marketID, v.(string), b.seq, b.volume.String()
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE markets m SET q = v.q::numeric[], seq = v.seq, volume = v.volume
		FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::numeric[]) AS v(id, q, seq, volume)
		WHERE m.id = v.id`,
		pq.Array(ids), pq.Array(qs), pq.Array(seqs), pq.Array(vols)); err != nil {
		return nil, fmt.Errorf("journal markets: %w", err)
	}

	// Money, last: the ledger's head lock is held until commit.
	if len(transfers) > 0 {
		if _, err := ledger.PostBatch(ctx, tx, transfers); err != nil {
			return nil, fmt.Errorf("journal ledger: %w", err)
		}
	}
	keys := make([]string, 0, len(cashAccounts))
	for a := range cashAccounts {
		keys = append(keys, cashKey(a))
	}
	var rows []struct {
		Key     string       `db:"key"`
		Balance levee.Micros `db:"balance"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT key, balance FROM ledger_accounts WHERE key = ANY($1)`, pq.Array(keys)); err != nil {
		return nil, fmt.Errorf("journal read balances: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("journal commit: %w", err))
	}
	balances := make(map[int64]levee.Micros, len(rows))
	for _, r := range rows {
		var id int64
		fmt.Sscanf(r.Key, "cash:%d", &id)
		balances[id] = r.Balance
	}
	return balances, nil
}

func collateralKey(marketID int64) string { return "market:" + itoa(marketID) + ":collateral" }

// positionArrays holds position deltas column by column for unnest().
type positionArrays struct {
	markets, accounts, outcomes []int64
	shares, paid, received      []string
}

func (a *positionArrays) add(k positionKey, d *positionDelta) {
	a.markets, a.accounts, a.outcomes = append(a.markets, k.market), append(a.accounts, k.account), append(a.outcomes, int64(k.outcome))
	a.shares, a.paid, a.received = append(a.shares, d.shares.String()), append(a.paid, d.paid.String()), append(a.received, d.received.String())
}

func (a *positionArrays) args() []any {
	return []any{pq.Array(a.markets), pq.Array(a.accounts), pq.Array(a.outcomes), pq.Array(a.shares), pq.Array(a.paid), pq.Array(a.received)}
}
