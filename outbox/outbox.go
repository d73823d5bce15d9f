// Package outbox writes notifications: a seat, a deadline, a verdict, a
// quorum request, an emergency or a payment to tell someone about. A
// notification is written in the same transaction as what it reports, so it
// exists exactly when that happened; the app shows it at once and the mail
// worker (package mail) delivers it later to those who asked for mail.
//
// The table is settlement's notifications (settlement writes its own rows);
// this package lets the packages settlement does not sit above (contracting)
// and those beside it (crisis) write rows of the same shape.
package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
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

// AddAll writes n for every distinct account_id the query (with args)
// returns, inside tx.
func AddAll(ctx context.Context, tx sqlx.ExecerContext, query string, args []any, n Notice) error {
	k := len(args)
	_, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO notifications (account_id, case_id, kind, message, deadline, link, created_at)
		SELECT DISTINCT account_id, $%d::bigint, $%d, $%d, $%d::timestamptz, $%d, $%d::timestamptz FROM (%s) AS who`, k+1, k+2, k+3, k+4, k+5, k+6, query),
		append(args, n.CaseID, n.Kind, n.Message, n.Deadline, nullable(n.Link), n.At)...)
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
