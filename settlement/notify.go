package settlement

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/outbox"
	"levee/pgtx"
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

// Ballot is one jury seat of a juror, with their sealed and revealed vote:
// for the juror's own data export.
type Ballot struct {
	CaseID      int64         `json:"case,string" db:"case_id"`
	Round       int           `json:"round" db:"round"`
	Commitment  *string       `json:"commitment,omitempty" db:"commitment"`
	CommittedAt *time.Time    `json:"committed_at,omitempty" db:"committed_at"`
	Verdict     *string       `json:"verdict,omitempty" db:"verdict"`
	Salt        *string       `json:"salt,omitempty" db:"salt"`
	RevealedAt  *time.Time    `json:"revealed_at,omitempty" db:"revealed_at"`
	Paid        *levee.Micros `json:"paid,omitempty" db:"paid"`
	NoShow      bool          `json:"no_show" db:"no_show"`
}

// BallotsOf returns every seat account has held, oldest case first.
func (s *Service) BallotsOf(ctx context.Context, account int64) ([]Ballot, error) {
	bs := []Ballot{}
	if err := s.db.SelectContext(ctx, &bs, `SELECT case_id, round, commitment, committed_at, verdict, salt, revealed_at, paid, no_show
		FROM jurors WHERE account_id = $1 ORDER BY case_id, round`, account); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("ballots of %d: %w", account, err))
	}
	return bs, nil
}
