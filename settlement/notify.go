package settlement

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Notification is one message in the outbox: a deadline set or changed, a
// seat, a verdict. Delivery by email or SMS can be added by a worker that
// sends unsent rows; the UI shows them already.
type Notification struct {
	ID        int64      `json:"id,string" db:"id"`
	CaseID    *int64     `json:"case,omitempty,string" db:"case_id"`
	Kind      string     `json:"kind" db:"kind"`
	Message   string     `json:"message" db:"message"`
	Deadline  *time.Time `json:"deadline,omitempty" db:"deadline"`
	CreatedAt time.Time  `json:"created_at" db:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty" db:"sent_at"`
	// Delivery is how the mail worker dealt with it: sent, kept (in the
	// app only) or failed; absent while undecided or when mail is off.
	Delivery *string `json:"delivery,omitempty" db:"delivery"`
}

func notify(ctx context.Context, tx *sqlx.Tx, account, caseID int64, kind, msg string, deadline *time.Time, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO notifications (account_id, case_id, kind, message, deadline, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, account, caseID, kind, msg, deadline, now)
	if err != nil {
		return fmt.Errorf("notify %d: %w", account, err)
	}
	return nil
}

// notifyAll writes the same notification for every account the query
// (with args) returns.
func notifyAll(ctx context.Context, tx *sqlx.Tx, query string, args []any, caseID int64, kind, msg string, deadline *time.Time, now time.Time) error {
	n := len(args)
	_, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO notifications (account_id, case_id, kind, message, deadline, created_at)
		SELECT account_id, $%d, $%d, $%d, $%d, $%d FROM (%s) AS who`, n+1, n+2, n+3, n+4, n+5, query),
		append(args, caseID, kind, msg, deadline, now)...)
	if err != nil {
		return fmt.Errorf("notify case %d: %w", caseID, err)
	}
	return nil
}

// Notifications returns an account's newest notifications, newest first.
func (s *Service) Notifications(ctx context.Context, account int64, limit int) ([]Notification, error) {
	var ns []Notification
	err := s.db.SelectContext(ctx, &ns, `SELECT id, case_id, kind, message, deadline, created_at, sent_at, delivery FROM notifications
		WHERE account_id = $1 ORDER BY id DESC LIMIT $2`, account, limit)
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	return ns, nil
}
