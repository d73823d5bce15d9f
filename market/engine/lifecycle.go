package engine

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/pgtx"
	"levee/settlement/ledger"
)

// maxPostings bounds the postings of one settlement entry; a market with
// more holders settles in several entries of the same transaction.
const maxPostings = 1000

// CloseMarket stops trading before the closing time. Errors: ENOTFOUND, ECONFLICT.
func (e *Engine) CloseMarket(ctx context.Context, marketID int64) error {
	_, err := e.send(ctx, marketID, &command{kind: cmdClose})
	return err
}

// ExtendClose keeps an open market trading until a later time: a decision
// market whose bid won goes on asking whether the awarded work will be
// accepted by its promised date. Errors: ENOTFOUND, EINVALID (until),
// ECONFLICT (closed by hand, resolved or void).
func (e *Engine) ExtendClose(ctx context.Context, marketID int64, until time.Time) error {
	_, err := e.send(ctx, marketID, &command{kind: cmdExtend, until: until.UTC().Truncate(time.Microsecond)})
	return err
}

// Resolve settles a market on a winning outcome: each winning share is paid
// 1.000000 from the collateral, and what is left returns to the market's
// funder (the treasury by default).
// Errors: ENOTFOUND, EINVALID (outcome), ECONFLICT (already settled).
func (e *Engine) Resolve(ctx context.Context, marketID int64, outcome int) error {
	_, err := e.send(ctx, marketID, &command{kind: cmdResolve, outcome: outcome})
	return err
}

// Void cancels a market: every trader gets back their net cost (paid minus
// received, never negative), and what is left returns to the market's funder.
// Errors: ENOTFOUND, ECONFLICT (already settled).
func (e *Engine) Void(ctx context.Context, marketID int64) error {
	_, err := e.send(ctx, marketID, &command{kind: cmdVoid})
	return err
}

// SettleWith resolves a market on outcome, or voids it when outcome is -1,
// and runs within inside the same transaction, first: if within fails,
// nothing is settled. A jury's verdict uses it so that the market's
// settlement and the record that the verdict was applied commit together.
// Errors: as Resolve and Void, and within's.
func (e *Engine) SettleWith(ctx context.Context, marketID int64, outcome int, within func(ctx context.Context, tx *sqlx.Tx) error) error {
	c := &command{kind: cmdResolve, outcome: outcome, within: within}
	if outcome == -1 {
		c.kind = cmdVoid
	}
	_, err := e.send(ctx, marketID, c)
	return err
}

// lifecycle runs a status change in the market's goroutine, after its
// pending trades are durable, in a transaction of its own.
func (b *book) lifecycle(c *command) error {
	if c.kind == cmdExtend {
		return b.extend(c)
	}
	switch b.m.Status {
	case StatusResolved, StatusVoid:
		return levee.Errorf(levee.ECONFLICT, "the market is already %s", b.m.Status)
	}
	if c.kind == cmdClose && b.m.Status == StatusClosed {
		return levee.Errorf(levee.ECONFLICT, "the market is already closed")
	}
	if c.kind == cmdResolve && (c.outcome < 0 || c.outcome >= len(b.m.Outcomes)) {
		return levee.Invalid("outcome", "outcome must be from 0 to %d", len(b.m.Outcomes)-1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*b.e.opts.DBTimeout)
	defer cancel()
	var paid []int64
	status := map[cmdKind]string{cmdClose: StatusClosed, cmdResolve: StatusResolved, cmdVoid: StatusVoid}[c.kind]
	err := pgtx.Run(ctx, b.e.db, func(tx *sqlx.Tx) error {
		paid = nil
		if c.within != nil {
			if err := c.within(ctx, tx); err != nil {
				return err
			}
		}
		var err error
		switch c.kind {
		case cmdResolve:
			paid, err = b.settle(ctx, tx, resolvePayouts(c.outcome), "market_resolution")
		case cmdVoid:
			paid, err = b.settle(ctx, tx, voidRefunds, "market_void")
		}
		if err != nil {
			return err
		}
		var outcome *int
		if c.kind == cmdResolve {
			outcome = &c.outcome
		}
		_, err = tx.ExecContext(ctx, `UPDATE markets SET status = $2, resolved_outcome = $3,
			settled_at = CASE WHEN $2 IN ('resolved', 'void') THEN now() END WHERE id = $1`, b.id, status, outcome)
		return err
	})
	if err != nil {
		b.broken = true
		return err
	}
	for _, a := range paid {
		b.e.wallets.Invalidate(a)
	}
	if err := b.reload(); err != nil {
		return nil // committed; the next command reloads
	}
	if pub := b.e.opts.Publisher; pub != nil {
		s := b.snap.Load()
		pub.Publish(Event{Type: EventStatus, MarketID: b.id, Seq: s.Market.Seq, Status: status, Prices: s.Prices, Shares: s.Market.Q, At: b.e.opts.Clock().UTC()})
	}
	return nil
}

// extend moves the closing time of an open market later.
func (b *book) extend(c *command) error {
	if b.m.Status != StatusOpen {
		return levee.Errorf(levee.ECONFLICT, "the market is %s; only an open market can be extended", b.m.Status)
	}
	if !c.until.After(c.at) {
		return levee.Invalid("until", "the new closing time must be in the future")
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.e.opts.DBTimeout)
	defer cancel()
	if _, err := b.e.db.ExecContext(ctx, `UPDATE markets SET closes_at = $2 WHERE id = $1 AND status = 'open'`, b.id, c.until); err != nil {
		b.broken = true
		return pgtx.Unavailable(fmt.Errorf("extend market %d: %w", b.id, err))
	}
	if err := b.reload(); err != nil {
		return nil // committed; the next command reloads
	}
	if pub := b.e.opts.Publisher; pub != nil {
		s := b.snap.Load()
		pub.Publish(Event{Type: EventStatus, MarketID: b.id, Seq: s.Market.Seq, Status: StatusOpen, Prices: s.Prices, Shares: s.Market.Q, At: b.e.opts.Clock().UTC()})
	}
	return nil
}

// payoutRule computes what each account receives when a market settles.
type payoutRule func(ctx context.Context, tx *sqlx.Tx, marketID int64) (map[int64]levee.Micros, error)

func resolvePayouts(outcome int) payoutRule {
	return func(ctx context.Context, tx *sqlx.Tx, marketID int64) (map[int64]levee.Micros, error) {
		var rows []struct {
			Account int64        `db:"account_id"`
			Shares  levee.Micros `db:"shares"`
		}
		err := tx.SelectContext(ctx, &rows, `SELECT account_id, shares FROM positions WHERE market_id = $1 AND outcome = $2 AND shares > 0`, marketID, outcome)
		out := map[int64]levee.Micros{}
		for _, r := range rows {
			out[r.Account] = r.Shares // 1.000000 per share
		}
		return out, err
	}
}

func voidRefunds(ctx context.Context, tx *sqlx.Tx, marketID int64) (map[int64]levee.Micros, error) {
	var rows []struct {
		Account int64        `db:"account_id"`
		Net     levee.Micros `db:"net"`
	}
	err := tx.SelectContext(ctx, &rows, `SELECT account_id, sum(paid) - sum(received) AS net FROM positions WHERE market_id = $1 GROUP BY account_id`, marketID)
	out := map[int64]levee.Micros{}
	for _, r := range rows {
		if r.Net > 0 {
			out[r.Account] = r.Net
		}
	}
	return out, err
}

// settle pays each account from the market's collateral and returns the
// remainder to the account that funded the market (markets.funded_by, the
// treasury unless the market was opened with NewMarket.FundedBy). If the
// collateral falls short (a void can refund more than it holds when some
// traders sold at a profit), the funder covers the difference in the same
// entry.
func (b *book) settle(ctx context.Context, tx *sqlx.Tx, rule payoutRule, kind string) ([]int64, error) {
	pay, err := rule(ctx, tx, b.id)
	if err != nil {
		return nil, fmt.Errorf("settle market %d: %w", b.id, err)
	}
	collateral := collateralKey(b.id)
	var funder string
	if err := tx.GetContext(ctx, &funder, `SELECT funded_by FROM markets WHERE id = $1`, b.id); err != nil {
		return nil, fmt.Errorf("settle market %d: funder: %w", b.id, err)
	}
	held, err := ledger.Balance(ctx, tx, collateral)
	if err != nil {
		return nil, fmt.Errorf("settle market %d: %w", b.id, err)
	}
	accounts := make([]int64, 0, len(pay))
	var total levee.Micros
	for a, amt := range pay {
		accounts = append(accounts, a)
		total += amt
	}
	sort.Slice(accounts, func(i, j int) bool { return accounts[i] < accounts[j] })
	ref := "market:" + itoa(b.id)
	var ts []ledger.Transfer
	for start := 0; start < len(accounts) || start == 0; start += maxPostings {
		end := min(start+maxPostings, len(accounts))
		var ps []ledger.Posting
		var sum levee.Micros
		for _, a := range accounts[start:end] {
			ps = append(ps, ledger.Posting{Account: cashKey(a), Amount: pay[a]})
			sum += pay[a]
		}
		last := end == len(accounts)
		if last {
			// The last entry also empties the collateral into the funder
			// (or draws the shortfall from it).
			rest := held - total
			if rest != 0 {
				ps = append(ps, ledger.Posting{Account: funder, Amount: rest})
			}
			sum += rest
		}
		if sum != 0 {
			ps = append(ps, ledger.Posting{Account: collateral, Amount: -sum})
		}
		if len(ps) >= 2 {
			ts = append(ts, ledger.Transfer{Kind: kind, Ref: ref, Postings: ps})
		}
		if last {
			break
		}
	}
	if len(ts) > 0 {
		if _, err := ledger.PostBatch(ctx, tx, ts); err != nil {
			return nil, fmt.Errorf("settle market %d: %w", b.id, err)
		}
	}
	return accounts, nil
}
