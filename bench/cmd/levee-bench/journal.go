package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/lib/pq"

	"levee"
	"levee/ledger"
)

// JournalAnatomy times, statement by statement, a transaction that writes
// what the engine's journal writes for a batch of orders (market/engine
// market/engine/store_journal.go writes trades, positions and the market row in one statement;
// here they are timed apart, trades by COPY; then ledger.PostBatch, the
// balances read back, COMMIT), committed for real with fsync on, on a
// market of its own that no book runs. It shows the fixed and the per-order
// cost of a group commit, which bound one hot market: a book has one batch
// in flight, so it can never go faster than one order per per-order cost.
type JournalAnatomy struct {
	Batches  []JournalTiming
	Fixed    time.Duration // intercept of a least-squares fit of total over batch size
	PerOrder time.Duration // slope
	Err      string
}

// JournalTiming is the median, over a few repetitions, of each statement
// for one batch size.
type JournalTiming struct {
	Batch int
	Steps []StepTime
	Total time.Duration
}

// StepTime is one statement's wall time as the client sees it.
type StepTime struct {
	Name string
	Dur  time.Duration
}

var anatomySteps = []string{"BEGIN", "COPY trades", "positions upsert", "market row", "ledger.PostBatch", "read balances", "COMMIT"}

func (e *env) journalAnatomy(ctx context.Context) JournalAnatomy {
	var res JournalAnatomy
	var m struct {
		Seq int64  `db:"seq"`
		Q   string `db:"q"`
	}
	if err := e.db.GetContext(ctx, &m, `SELECT seq, q::text AS q FROM markets WHERE id = $1`, e.anatomy); err != nil {
		res.Err = err.Error()
		return res
	}
	seq := m.Seq
	const reps = 5
	for _, n := range []int{1, 16, 64, 128, 256, 512} {
		if n > len(e.traders) {
			break
		}
		samples := make([][]time.Duration, len(anatomySteps))
		for r := 0; r < reps; r++ {
			d, err := e.journalOnce(ctx, n, &seq, m.Q)
			if err != nil {
				res.Err = err.Error()
				return res
			}
			for i := range d {
				samples[i] = append(samples[i], d[i])
			}
		}
		t := JournalTiming{Batch: n}
		for i, name := range anatomySteps {
			sortDurations(samples[i])
			med := samples[i][len(samples[i])/2]
			t.Steps = append(t.Steps, StepTime{name, med})
			t.Total += med
		}
		res.Batches = append(res.Batches, t)
	}
	// Least squares: total = fixed + perOrder * batch.
	var sx, sy, sxx, sxy float64
	for _, b := range res.Batches {
		x, y := float64(b.Batch), float64(b.Total)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	k := float64(len(res.Batches))
	if den := k*sxx - sx*sx; den != 0 {
		slope := (k*sxy - sx*sy) / den
		res.PerOrder = time.Duration(slope)
		res.Fixed = time.Duration((sy - slope*sx) / k)
	}
	for _, t := range e.traders {
		e.eng.InvalidateCash(t.id) // their cash moved outside the engine
	}
	return res
}

// journalOnce commits one batch of n buys, one per trader, on the anatomy
// market and returns the time of each step of anatomySteps.
func (e *env) journalOnce(ctx context.Context, n int, seq *int64, q string) ([]time.Duration, error) {
	d := make([]time.Duration, 0, len(anatomySteps))
	lap := func(t0 time.Time) { d = append(d, time.Since(t0)) }
	now := time.Now().UTC().Truncate(time.Microsecond)
	collateral := ledger.Collateral(e.anatomy)
	amount := levee.MustMicros("0.5")

	t0 := time.Now()
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	lap(t0)

	t0 = time.Now()
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("trades", "market_id", "seq", "account_id", "outcome", "side", "shares", "amount", "prices", "at", "idempotency_key"))
	if err != nil {
		return nil, fmt.Errorf("anatomy copy: %w", err)
	}
	first := *seq + 1
	for i := 0; i < n; i++ {
		*seq++
		if _, err := stmt.ExecContext(ctx, e.anatomy, *seq, e.traders[i].id, i%2, "buy", levee.Units(1), amount, "{0.500000,0.500000}", now, nil); err != nil {
			stmt.Close()
			return nil, fmt.Errorf("anatomy copy: %w", err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		stmt.Close()
		return nil, fmt.Errorf("anatomy copy: %w", err)
	}
	if err := stmt.Close(); err != nil {
		return nil, fmt.Errorf("anatomy copy: %w", err)
	}
	lap(t0)

	t0 = time.Now()
	var mk, ac, oc []int64
	var sh, pd, rc []string
	for i := 0; i < n; i++ {
		mk, ac, oc = append(mk, e.anatomy), append(ac, e.traders[i].id), append(oc, int64(i%2))
		sh, pd, rc = append(sh, "1"), append(pd, amount.String()), append(rc, "0")
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO positions (market_id, account_id, outcome, shares, paid, received)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::smallint[], $4::numeric[], $5::numeric[], $6::numeric[])
		ON CONFLICT (market_id, account_id, outcome) DO UPDATE SET
			shares = positions.shares + EXCLUDED.shares,
			paid = positions.paid + EXCLUDED.paid,
			received = positions.received + EXCLUDED.received`,
		pq.Array(mk), pq.Array(ac), pq.Array(oc), pq.Array(sh), pq.Array(pd), pq.Array(rc)); err != nil {
		return nil, fmt.Errorf("anatomy positions: %w", err)
	}
	lap(t0)

	t0 = time.Now()
	if _, err := tx.ExecContext(ctx, `
		UPDATE markets m SET q = v.q::numeric[], seq = v.seq, volume = v.volume
		FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::numeric[]) AS v(id, q, seq, volume)
		WHERE m.id = v.id`,
		pq.Array([]int64{e.anatomy}), pq.Array([]string{q}), pq.Array([]int64{*seq}), pq.Array([]string{"0"})); err != nil {
		return nil, fmt.Errorf("anatomy market: %w", err)
	}
	lap(t0)

	t0 = time.Now()
	ts := make([]ledger.Transfer, n)
	keys := make([]string, n)
	for i := range ts {
		keys[i] = ledger.Cash(e.traders[i].id)
		ts[i] = ledger.Transfer{Kind: "trade", Ref: "market:" + strconv.FormatInt(e.anatomy, 10) + "/trade:" + strconv.FormatInt(first+int64(i), 10), At: now,
			Postings: []ledger.Posting{{Account: keys[i], Amount: -amount}, {Account: collateral, Amount: amount}}}
	}
	if _, err := ledger.PostBatch(ctx, tx, ts); err != nil {
		return nil, fmt.Errorf("anatomy ledger: %w", err)
	}
	lap(t0)

	t0 = time.Now()
	var rows []struct {
		Key     string       `db:"key"`
		Balance levee.Micros `db:"balance"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT key, balance FROM ledger_accounts WHERE key = ANY($1)`, pq.Array(keys)); err != nil {
		return nil, fmt.Errorf("anatomy balances: %w", err)
	}
	lap(t0)

	t0 = time.Now()
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("anatomy commit: %w", err)
	}
	lap(t0)
	return d, nil
}
