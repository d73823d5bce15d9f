package engine

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee/pgtx"
)

// KeyRetention is how long an order's Idempotency-Key is remembered: a retry
// with the same key within it returns the original result, whatever
// happened to the process meanwhile. Keys live in order_keys, apart from the
// trades, so the index that finds them holds one retention's worth of keys
// and not every key ever used (issue 18: that index had grown to millions of
// entries and throughput fell as it grew). Older keys are pruned; a retry
// after that executes as a new order. Stripe keeps keys for 24 hours too.
const KeyRetention = 24 * time.Hour

// pruneEvery is how often the engine deletes expired keys.
const pruneEvery = 10 * time.Minute

// pruneChunk bounds one DELETE, so that pruning never holds many row locks or
// a long transaction next to the journal's commits.
const pruneChunk = 5000

// pruneKeys runs until quit closes, deleting the keys of orders older than
// KeyRetention every pruneEvery (and once soon after the start).
func (e *Engine) pruneKeys(quit <-chan struct{}) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		n, err := PruneKeys(context.Background(), e.db, e.opts.Clock().Add(-KeyRetention))
		if err != nil {
			e.logger.Warn("prune idempotency keys", slog.Any("error", err))
		} else if n > 0 {
			e.logger.Info("pruned idempotency keys", slog.Int64("keys", n))
		}
		t.Reset(pruneEvery)
	}
}

// PruneKeys deletes the idempotency keys of orders placed before cutoff, in
// chunks, and returns how many it deleted.
func PruneKeys(ctx context.Context, db *sqlx.DB, cutoff time.Time) (int64, error) {
	var total int64
	for {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res, err := db.ExecContext(ctx, `
			DELETE FROM order_keys WHERE ctid = ANY (ARRAY(
				SELECT ctid FROM order_keys WHERE at < $1 LIMIT $2))`, cutoff, pruneChunk)
		cancel()
		if err != nil {
			return total, pgtx.Unavailable(fmt.Errorf("prune order keys: %w", err))
		}
		n, _ := res.RowsAffected()
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}

// takenKeys returns, as replayKey(account, key), the idempotency keys of the
// batches' trades that order_keys already holds.
func takenKeys(ctx context.Context, db *sqlx.DB, bs []*batch) (map[string]bool, error) {
	var accounts []int64
	var keys []string
	for _, b := range bs {
		for i := range b.trades {
			if k := b.trades[i].Key; k != nil {
				accounts, keys = append(accounts, b.trades[i].AccountID), append(keys, *k)
			}
		}
	}
	var rows []struct {
		Account int64  `db:"account_id"`
		Key     string `db:"key"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT k.account_id, k.key
		FROM unnest($1::bigint[], $2::text[]) AS w (account_id, key)
		JOIN order_keys k ON k.account_id = w.account_id AND k.key = w.key`, pq.Array(accounts), pq.Array(keys)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("find stored idempotency keys: %w", err))
	}
	taken := make(map[string]bool, len(rows))
	for _, r := range rows {
		taken[replayKey(r.Account, r.Key)] = true
	}
	return taken, nil
}
