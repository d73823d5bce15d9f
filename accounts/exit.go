package accounts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/pgtx"
)

// Leaving the city (docs/privacy.md) happens in two steps recorded here:
// BeginExit, from which the person's orders and every other new act are
// refused, and FinishExit, once what was theirs has moved to the ledger
// account the treasury owes them from. The money moves elsewhere (package
// residents); this file keeps who is leaving.

// BeginExit marks person id as leaving, at now unless they already were,
// ends their memberships of organisations (an organisation's money stays
// with it), and records both in the audit log. It returns when they began.
// Errors: ENOTFOUND, EFORBIDDEN for an organisation (its money is public
// and stays), ECONFLICT for a disabled account.
func (s *Service) BeginExit(ctx context.Context, id int64, now time.Time) (time.Time, error) {
	var began time.Time
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		var row struct {
			Kind      string     `db:"kind"`
			Disabled  bool       `db:"disabled"`
			ExitingAt *time.Time `db:"exiting_at"`
		}
		err := tx.GetContext(ctx, &row, `SELECT kind, disabled, exiting_at FROM accounts WHERE id = $1 FOR UPDATE`, id)
		if errors.Is(err, sql.ErrNoRows) {
			return levee.Errorf(levee.ENOTFOUND, "no account %d", id)
		} else if err != nil {
			return fmt.Errorf("lock account: %w", err)
		}
		switch {
		case row.Kind != KindPerson:
			return levee.Errorf(levee.EFORBIDDEN, "an organisation cannot leave this way: its money is public and stays with it")
		case row.Disabled:
			return levee.Errorf(levee.ECONFLICT, "this account is disabled")
		case row.ExitingAt != nil:
			began = *row.ExitingAt
			return nil
		}
		began = now
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET exiting_at = $2 WHERE id = $1`, id, now); err != nil {
			return fmt.Errorf("mark leaving: %w", err)
		}
		var orgs []int64
		if err := tx.SelectContext(ctx, &orgs, `DELETE FROM organisation_members WHERE member_id = $1 RETURNING organisation_id`, id); err != nil {
			return fmt.Errorf("end memberships: %w", err)
		}
		return audit(ctx, tx, id, "account.exit_begin", map[string]any{"account_id": id, "memberships_ended": orgs})
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("begin exit of %d: %w", id, err)
	}
	s.tokens.clear() // cached principals do not know they are leaving
	return began, nil
}

// FinishExit closes person id's account for new activity: it must be
// leaving (BeginExit). Calling it again changes nothing. Errors: ECONFLICT
// when the person has not begun to leave.
func (s *Service) FinishExit(ctx context.Context, id int64, now time.Time) error {
	return pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE accounts SET exited_at = $2 WHERE id = $1 AND exiting_at IS NOT NULL AND exited_at IS NULL`, id, now)
		if err != nil {
			return fmt.Errorf("finish exit of %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var leaving bool
			if err := tx.GetContext(ctx, &leaving, `SELECT exiting_at IS NOT NULL FROM accounts WHERE id = $1`, id); err != nil || !leaving {
				return levee.Errorf(levee.ECONFLICT, "account %d has not begun to leave", id)
			}
			return nil
		}
		return audit(ctx, tx, id, "account.exit", map[string]any{"account_id": id})
	})
}

// Leaving returns the accounts that have begun to leave: the market engine
// refuses their orders (engine.Leave) from its start.
func (s *Service) Leaving(ctx context.Context) ([]int64, error) {
	ids := []int64{}
	if err := s.db.SelectContext(ctx, &ids, `SELECT id FROM accounts WHERE exiting_at IS NOT NULL ORDER BY id`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("leaving accounts: %w", err))
	}
	return ids, nil
}

// AuditOf returns the audit entries that concern account id, oldest
// first: its own acts and the acts about it (for its data export).
func (s *Service) AuditOf(ctx context.Context, id int64) ([]AuditEntry, error) {
	es := []AuditEntry{}
	err := s.db.SelectContext(ctx, &es, `SELECT id, at, actor_id, action, detail FROM audit_log
		WHERE actor_id = $1 OR detail->>'account_id' = $1::text OR detail->>'member_id' = $1::text ORDER BY id`, id)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("audit of %d: %w", id, err))
	}
	return es, nil
}

// personalActions are a private person's own acts: their passwords, their
// sessions, their leaving. The public audit log leaves them out.
var personalActions = []string{"password.change", "password.reset", "password.reset_started", "sessions.end_all",
	"account.exit_begin", "account.exit"}

// PublicAudit is the audit log as anyone may read it (GET /api/v1/audit),
// newest first: officials' acts in full, a private person's own acts left
// out, and, in the acts that concern a person (an admission, a change of
// roles, a membership), their name and id left out too. A person's name
// beside their id and the moment of their admission would link them to the
// ledger entry that credited their pseudonym (docs/privacy.md).
// Organisations stay named.
func (s *Service) PublicAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	es := []AuditEntry{}
	if err := s.db.SelectContext(ctx, &es, `SELECT id, at, actor_id, action, detail FROM audit_log
		WHERE action <> ALL($2) ORDER BY id DESC LIMIT $1`, limit, pq.Array(personalActions)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("public audit: %w", err))
	}
	var persons []int64
	if err := s.db.SelectContext(ctx, &persons, `SELECT id FROM accounts WHERE kind = 'person'`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("public audit: %w", err))
	}
	person := make(map[string]bool, len(persons))
	for _, id := range persons {
		person[levee.FormatID(id)] = true
	}
	for i := range es {
		var d map[string]any
		if json.Unmarshal(es[i].Detail, &d) != nil {
			continue
		}
		changed := false
		if id, ok := d["account_id"]; ok && person[fmt.Sprint(id)] {
			delete(d, "account_id")
			delete(d, "name")
			d["kind"] = KindPerson
			changed = true
		}
		if _, ok := d["member_id"]; ok {
			delete(d, "member_id")
			changed = true
		}
		if changed {
			if b, err := json.Marshal(d); err == nil {
				es[i].Detail = b
			}
		}
	}
	return es, nil
}
