package settlement

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/ledger"
	"levee/pgtx"
)

// errSettled tells an owner's transaction that the verdict was applied
// before (the record exists): it rolls back and settle counts it done.
var errSettled = errors.New("already settled")

// settle applies a final verdict to its subject exactly once. The owner
// runs one transaction that changes the subject and calls mark, which writes
// the case's settlement record (its primary key is the case id), moves the
// case's money and closes the case. A crash or error anywhere in it leaves
// nothing applied; the next Advance retries, and a second attempt after a
// success finds the record and does nothing.
func (s *Service) settle(ctx context.Context, id int64) error {
	c, err := getCase(ctx, s.db, id, "")
	if err != nil || c.Status != StatusFinal {
		return err
	}
	owner, _, ref, err := s.owner(c.Subject)
	if err != nil {
		return err
	}
	var paid []int64
	mark := func(ctx context.Context, tx *sqlx.Tx) error {
		var err error
		paid, err = s.mark(ctx, tx, id)
		return err
	}
	err = owner.Settle(ctx, ref, deref(c.Verdict), mark)
	if levee.ErrorCode(err) == levee.ECONFLICT && !errors.Is(err, errSettled) {
		// The subject was settled some other way (it can no longer take a
		// verdict); close the case and its money anyway, and say so.
		s.opts.Logger.Warn("case subject could not take the verdict", "case", id, "subject", c.Subject, "err", err)
		err = pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error { return mark(ctx, tx) })
	}
	if errors.Is(err, errSettled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("settle case %d: %w", id, err)
	}
	s.invalidate(paid...)
	s.unbar(ctx, id)
	s.opts.Logger.Info("case settled", "case", id, "subject", c.Subject, "verdict", deref(c.Verdict))
	return nil
}

// mark records a case's settlement inside the owner's transaction: the
// disputer's bond comes back if the verdict overturned the proposal (from
// the fee pool, the treasury making up what jurors were paid), what is left
// of the fee pool goes to the treasury, and the case closes.
func (s *Service) mark(ctx context.Context, tx *sqlx.Tx, id int64) ([]int64, error) {
	c, err := getCase(ctx, tx, id, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	if c.Status == StatusSettled {
		return nil, errSettled
	}
	now := s.now()
	res, err := tx.ExecContext(ctx, `INSERT INTO case_settlements (case_id, verdict, settled_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, id, deref(c.Verdict), now)
	if err != nil {
		return nil, fmt.Errorf("settlement record: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, errSettled
	}
	if f := s.opts.FailAfterMark; f != nil {
		if err := f(id); err != nil {
			return nil, err
		}
	}
	var paid []int64
	pool, err := ledger.Balance(ctx, tx, ledger.CaseFees(id))
	if err != nil {
		return nil, err
	}
	var ps []ledger.Posting
	if c.OpenedBy != nil && c.Bond > 0 && c.Proposed != nil && *c.Proposed != deref(c.Verdict) {
		ps = append(ps, ledger.Posting{Account: ledger.Cash(*c.OpenedBy), Amount: c.Bond})
		paid = append(paid, *c.OpenedBy)
		if err := notify(ctx, tx, *c.OpenedBy, id, "payment", fmt.Sprintf("Case %d: the verdict %q overturned the proposal you disputed, so your bond of %s is returned to your account.",
			id, deref(c.Verdict), c.Bond), nil, now); err != nil {
			return nil, err
		}
		if pool != c.Bond {
			ps = append(ps, ledger.Posting{Account: ledger.Treasury, Amount: pool - c.Bond})
		}
	} else if pool > 0 {
		ps = append(ps, ledger.Posting{Account: ledger.Treasury, Amount: pool})
	}
	if pool > 0 {
		ps = append(ps, ledger.Posting{Account: ledger.CaseFees(id), Amount: -pool})
	}
	if len(ps) >= 2 {
		if _, err := ledger.Post(ctx, tx, ledger.Transfer{Kind: "case_settlement", Ref: caseRef(id), At: now, Postings: ps}); err != nil {
			return nil, fmt.Errorf("case %d money: %w", id, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE cases SET status = 'settled', settled_at = $2 WHERE id = $1`, id, now); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE proposals SET status = 'settled' WHERE case_id = $1`, id); err != nil {
		return nil, err
	}
	c.Status = StatusSettled
	err = notifyAll(ctx, tx, `SELECT account_id FROM case_parties WHERE case_id = $1 UNION SELECT account_id FROM jurors WHERE case_id = $1`,
		[]any{id}, id, "settled", fmt.Sprintf("Case %d is settled: %q.", id, deref(c.Verdict)), nil, now)
	return paid, err
}
