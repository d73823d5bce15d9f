// Package outbox writes notifications: a seat, a deadline, a verdict, a
// quorum request, an emergency or a payment to tell someone about. A
// notification is written in the same transaction as what it reports, so it
// exists exactly when that happened; the app shows it at once and the mail
// worker (package mail) delivers it later to those who asked for mail.
//
// The package owns the notifications table: settlement, contracting and
// crisis write through Add and AddTo, settlement lists them (List), and the
// mail worker takes them one at a time (Claim) and records their delivery.
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Notice is one notification's content.
type Notice struct {
	Kind     string     // e.g. quorum_request; package mail maps it to a category
	Message  string     // plain text: what happened, what to do and by when
	Link     string     // the page's path, e.g. /quorum; empty: the case's page or /jury
	CaseID   *int64     // the case it is about, if any
	Deadline *time.Time // by when to act, if anything is to be done
	At       time.Time
}

// Add writes n for one account inside tx.
func Add(ctx context.Context, tx sqlx.ExecerContext, account int64, n Notice) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO notifications (account_id, case_id, kind, message, deadline, link, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, account, n.CaseID, n.Kind, n.Message, n.Deadline, nullable(n.Link), n.At)
	if err != nil {
		return fmt.Errorf("notify %d of %s: %w", account, n.Kind, err)
	}
	return nil
}

// AddTo writes n once for each distinct account among accounts, inside tx.
func AddTo(ctx context.Context, tx sqlx.ExecerContext, accounts []int64, n Notice) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO notifications (account_id, case_id, kind, message, deadline, link, created_at)
		SELECT DISTINCT account_id, $2::bigint, $3, $4, $5::timestamptz, $6, $7::timestamptz FROM unnest($1::bigint[]) AS who (account_id)`,
		pq.Array(accounts), n.CaseID, n.Kind, n.Message, n.Deadline, nullable(n.Link), n.At)
	if err != nil {
		return fmt.Errorf("notify of %s: %w", n.Kind, err)
	}
	return nil
}

// Addressed is one reader of a notice and the message meant for them, when
// each reader's differs (what they were paid).
type Addressed struct {
	Account int64
	Message string
}

// AddEach writes n once for each reader in rs, with the reader's own
// message (n.Message is not used), inside tx, in one statement however
// many readers there are.
func AddEach(ctx context.Context, tx sqlx.ExecerContext, rs []Addressed, n Notice) error {
	if len(rs) == 0 {
		return nil
	}
	accounts, messages := make([]int64, len(rs)), make([]string, len(rs))
	for i, r := range rs {
		accounts[i], messages[i] = r.Account, r.Message
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO notifications (account_id, case_id, kind, message, deadline, link, created_at)
		SELECT who.account_id, $3::bigint, $4, who.message, $5::timestamptz, $6, $7::timestamptz
		FROM unnest($1::bigint[], $2::text[]) AS who (account_id, message)`,
		pq.Array(accounts), pq.Array(messages), n.CaseID, n.Kind, n.Deadline, nullable(n.Link), n.At)
	if err != nil {
		return fmt.Errorf("notify of %s: %w", n.Kind, err)
	}
	return nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Notification is one notice as its reader sees it in the app.
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

// List returns an account's newest notifications, newest first.
func List(ctx context.Context, q sqlx.QueryerContext, account int64, limit int) ([]Notification, error) {
	var ns []Notification
	err := sqlx.SelectContext(ctx, q, &ns, `SELECT id, case_id, kind, message, deadline, created_at, sent_at, delivery FROM notifications
		WHERE account_id = $1 ORDER BY id DESC LIMIT $2`, account, limit)
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	return ns, nil
}

// Due is a notification the mail worker has claimed.
type Due struct {
	ID        int64      `db:"id"`
	Account   int64      `db:"account_id"`
	Kind      string     `db:"kind"`
	Message   string     `db:"message"`
	Deadline  *time.Time `db:"deadline"`
	CaseID    *int64     `db:"case_id"`
	Link      *string    `db:"link"`
	Attempts  int        `db:"attempts"`
	CreatedAt time.Time  `db:"created_at"`
}

// Claim locks the oldest notification still undecided and due at now,
// skipping those another worker holds; false when there is none. The lock
// lasts until tx ends, and the worker records the outcome with Kept, Sent,
// Failed or Retry inside tx.
func Claim(ctx context.Context, tx *sqlx.Tx, now time.Time) (Due, bool, error) {
	var d Due
	err := tx.GetContext(ctx, &d, `SELECT id, account_id, kind, message, deadline, case_id, link, attempts, created_at
		FROM notifications
		WHERE delivery IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
		ORDER BY id LIMIT 1
		FOR UPDATE SKIP LOCKED`, now)
	if errors.Is(err, sql.ErrNoRows) {
		return Due{}, false, nil
	}
	if err != nil {
		return Due{}, false, err
	}
	return d, true, nil
}

// Kept records that notification id stays in the app only, and why.
func Kept(ctx context.Context, tx *sqlx.Tx, id int64, why string) error {
	_, err := tx.ExecContext(ctx, `UPDATE notifications SET delivery = 'kept', last_error = $2 WHERE id = $1`, id, why)
	return err
}

// Sent records that notification id was mailed at at, on attempt attempts.
func Sent(ctx context.Context, tx *sqlx.Tx, id int64, at time.Time, attempts int) error {
	_, err := tx.ExecContext(ctx, `UPDATE notifications SET delivery = 'sent', sent_at = $2, attempts = $3, last_error = NULL, next_attempt_at = NULL
			WHERE id = $1`, id, at, attempts)
	return err
}

// Failed records that notification id will not be mailed, after attempts.
func Failed(ctx context.Context, tx *sqlx.Tx, id int64, attempts int, why string) error {
	_, err := tx.ExecContext(ctx, `UPDATE notifications SET delivery = 'failed', attempts = $2, last_error = $3, next_attempt_at = NULL
			WHERE id = $1`, id, attempts, why)
	return err
}

// Retry records a failed attempt at mailing notification id and when to try
// again.
func Retry(ctx context.Context, tx *sqlx.Tx, id int64, attempts int, why string, next time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE notifications SET attempts = $2, last_error = $3, next_attempt_at = $4 WHERE id = $1`,
		id, attempts, why, next)
	return err
}
