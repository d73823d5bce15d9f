package contracting

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/outbox"
	"levee/pgtx"
)

// ReminderAhead is how long before a milestone's due date its contractor
// is reminded of it.
const ReminderAhead = 48 * time.Hour

// Advance does for every active contract what time has made due, as a read
// of the contract would (claims past their dispute window accepted and
// paid, contracts past their completion date settled), so that nobody has
// to open a contract page for its contractor to be paid; and it reminds
// contractors, once, of milestones due within ReminderAhead. The
// background loop calls it every LEVEE_ADVANCE_EVERY. One contract that
// fails does not stop the others; their errors are returned together.
//
// Several instances run it at once (docs/cluster.md): the advisory lock
// makes them take turns, and each contract's step re-reads it under its row
// lock, so a claim is paid and a reminder sent once.
func (s *Service) Advance(ctx context.Context) error {
	unlock, lerr := s.serial.Lock(ctx, s.db)
	if lerr != nil {
		return lerr
	}
	defer unlock()
	now := s.now()
	var due []int64
	err := s.db.SelectContext(ctx, &due, `
		SELECT c.id FROM contracts c JOIN tenders t ON t.id = c.tender_id
		WHERE c.status = 'active' AND (c.completion_at < $1 OR EXISTS (
			SELECT 1 FROM contract_milestones m WHERE m.contract_id = c.id AND m.status = 'claimed'
			  AND m.claimed_at + t.dispute_window_us * interval '1 microsecond' <= $1))
		ORDER BY c.id`, now)
	if err != nil {
		return pgtx.Unavailable(fmt.Errorf("advance contracts: %w", err))
	}
	var errs []error
	for _, id := range due {
		if err := s.advance(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.remind(ctx, now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// remind tells each contractor (the organisation and its members) of its
// milestones due within ReminderAhead that are not yet claimed, once each.
func (s *Service) remind(ctx context.Context, now time.Time) error {
	return pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		var ms []struct {
			Contract   int64     `db:"contract_id"`
			N          int       `db:"n"`
			Title      string    `db:"title"`
			Due        time.Time `db:"due_at"`
			Contractor int64     `db:"contractor_id"`
			Status     string    `db:"status"`
		}
		err := tx.SelectContext(ctx, &ms, `
			UPDATE contract_milestones m SET reminded_at = $1
			FROM contracts c
			WHERE c.id = m.contract_id AND c.status = 'active' AND m.reminded_at IS NULL
			  AND m.status IN ('pending', 'rejected') AND m.due_at <= $2
			RETURNING m.contract_id, m.n, m.title, m.due_at, c.contractor_id, m.status`, now, now.Add(ReminderAhead))
		if err != nil {
			return fmt.Errorf("remind of milestones: %w", err)
		}
		for _, m := range ms {
			members, err := accounts.Members(ctx, tx, m.Contractor)
			if err != nil {
				return err
			}
			msg := fmt.Sprintf("Contract %d: milestone %d (%s) is due on %s.", m.Contract, m.N, m.Title, m.Due.Format("Mon 2 Jan 2006 15:04 UTC"))
			if !m.Due.After(now) {
				msg = fmt.Sprintf("Contract %d: milestone %d (%s) was due on %s and is not claimed.", m.Contract, m.N, m.Title, m.Due.Format("Mon 2 Jan 2006 15:04 UTC"))
			}
			due := m.Due
			if err := outbox.AddTo(ctx, tx, append([]int64{m.Contractor}, members...), outbox.Notice{Kind: "milestone_due", Message: msg,
				Link: "/contracts/" + levee.FormatID(m.Contract), Deadline: &due, At: now}); err != nil {
				return err
			}
		}
		return nil
	})
}
