package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/pgtx"
)

// ResetTTL is how long a password reset link works.
const ResetTTL = 24 * time.Hour

// Reset is a password reset an admin started: who it is for, until when its
// link works, and where the link can go.
type Reset struct {
	AccountID int64     `json:"account_id,string"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
	// Address is the person's confirmed email address, if any: the link is
	// mailed there and the admin never sees it. Empty: the admin hands
	// the link over in person.
	Address string `json:"-"`
}

// StartReset is an admin's reset of someone's password. At once the old
// password stops working and every browser session of the account ends
// (a reset is what an admin does when a password is forgotten or
// stolen); API tokens stay, as they are the person's to revoke. It returns
// the one-time token of the link with which the person chooses a new
// password, valid for ResetTTL; an earlier link of the same account stops
// working. The admin never learns a password: the person types it behind
// the link. Everything is in the audit log, without the token. An admin
// resets its own password by changing it instead. Errors: ENOTFOUND,
// ECONFLICT (an organisation, which has no password, or the caller).
func (s *Service) StartReset(ctx context.Context, actor, account int64) (Reset, string, error) {
	if actor == account {
		return Reset{}, "", levee.Errorf(levee.ECONFLICT, "change your own password on your portfolio page instead")
	}
	token, hash := NewToken()
	var r Reset
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		var row struct {
			Name     string `db:"name"`
			Kind     string `db:"kind"`
			Disabled bool   `db:"disabled"`
		}
		if err := tx.GetContext(ctx, &row, `SELECT name, kind, disabled FROM accounts WHERE id = $1 FOR UPDATE`, account); errors.Is(err, sql.ErrNoRows) {
			return levee.Errorf(levee.ENOTFOUND, "no account %d", account)
		} else if err != nil {
			return fmt.Errorf("lock account: %w", err)
		}
		if row.Kind != KindPerson {
			return levee.Errorf(levee.ECONFLICT, "%s is an organisation: its members sign in, it has no password", row.Name)
		}
		box, err := MailboxOf(ctx, tx, account)
		if err != nil {
			return err
		}
		r = Reset{AccountID: account, Name: row.Name, ExpiresAt: time.Now().UTC().Add(ResetTTL).Truncate(time.Second)}
		if box.Address != nil && box.Confirmed {
			r.Address = *box.Address
		}
		if _, err := tx.ExecContext(ctx, `UPDATE password_resets SET voided_at = now() WHERE account_id = $1 AND used_at IS NULL AND voided_at IS NULL`, account); err != nil {
			return fmt.Errorf("void earlier links: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO password_resets (account_id, token_hash, created_by, expires_at) VALUES ($1, $2, $3, $4)`,
			account, hash, actor, r.ExpiresAt); err != nil {
			return fmt.Errorf("store link: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET password_hash = NULL WHERE id = $1`, account); err != nil {
			return fmt.Errorf("clear password: %w", err)
		}
		ended, err := endSessions(ctx, tx, account, "")
		if err != nil {
			return err
		}
		delivery := "handed over by the admin"
		if r.Address != "" {
			delivery = "mailed to the confirmed address"
		}
		return audit(ctx, tx, actor, "password.reset_started", map[string]any{"account_id": account, "name": row.Name,
			"link": delivery, "expires_at": r.ExpiresAt, "sessions_ended": ended, "disabled": row.Disabled})
	})
	if err != nil {
		return Reset{}, "", fmt.Errorf("reset password of %d: %w", account, err)
	}
	s.tokens.clear()
	return r, token, nil
}

// ResetPassword sets a new password through a reset link; the link works
// once. It returns the account's name, so the page can say who is to sign
// in. Errors: EINVALID (password), ENOTFOUND (an unknown, used, voided or
// expired link: all alike, so a link reveals nothing but that it does not
// work).
func (s *Service) ResetPassword(ctx context.Context, token, password string) (string, error) {
	if err := checkPassword(password); err != nil {
		return "", err
	}
	var name string
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		var r struct {
			ID      int64 `db:"id"`
			Account int64 `db:"account_id"`
		}
		err := tx.GetContext(ctx, &r, `SELECT id, account_id FROM password_resets
			WHERE token_hash = $1 AND used_at IS NULL AND voided_at IS NULL AND expires_at > now() FOR UPDATE`, HashToken(token))
		if errors.Is(err, sql.ErrNoRows) {
			return levee.Errorf(levee.ENOTFOUND, "this reset link does not work: it was used, replaced by a newer one or is over %d hours old; ask an admin for a new one",
				int(ResetTTL/time.Hour))
		} else if err != nil {
			return fmt.Errorf("find link: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE password_resets SET used_at = now() WHERE id = $1`, r.ID); err != nil {
			return fmt.Errorf("use link: %w", err)
		}
		if err := tx.GetContext(ctx, &name, `UPDATE accounts SET password_hash = $2 WHERE id = $1 RETURNING name`, r.Account, HashPassword(password)); err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if _, err := endSessions(ctx, tx, r.Account, ""); err != nil {
			return err
		}
		return audit(ctx, tx, r.Account, "password.reset", map[string]any{"account_id": r.Account, "name": name})
	})
	if err != nil {
		return "", fmt.Errorf("reset password: %w", err)
	}
	return name, nil
}
