package settlement

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/outbox"
)

// Settlement's notices (a seat, a deadline, a verdict) go to the outbox in
// the transaction that does what they report.

func notify(ctx context.Context, tx *sqlx.Tx, account, caseID int64, kind, msg string, deadline *time.Time, now time.Time) error {
	return outbox.Add(ctx, tx, account, outbox.Notice{Kind: kind, Message: msg, CaseID: &caseID, Deadline: deadline, At: now})
}

// notifyAll writes the same notification for every account the query (with
// args) returns; the query reads settlement's own tables.
func notifyAll(ctx context.Context, tx *sqlx.Tx, query string, args []any, caseID int64, kind, msg string, deadline *time.Time, now time.Time) error {
	var who []int64
	if err := tx.SelectContext(ctx, &who, query, args...); err != nil {
		return fmt.Errorf("notify case %d: %w", caseID, err)
	}
	return outbox.AddTo(ctx, tx, who, outbox.Notice{Kind: kind, Message: msg, CaseID: &caseID, Deadline: deadline, At: now})
}

// Notifications returns an account's newest notifications, newest first.
func (s *Service) Notifications(ctx context.Context, account int64, limit int) ([]outbox.Notification, error) {
	return outbox.List(ctx, s.db, account, limit)
}
