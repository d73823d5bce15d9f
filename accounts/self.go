package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/pgtx"
)

// ChangePassword sets a person's own password after checking the current
// one, and ends every other browser session of theirs: whoever might have
// known the old password loses the sessions it opened. keepSession is the
// caller's own session cookie, kept signed in ("" when the caller used an
// API token). API tokens stay; they are listed and revoked on their own.
// The change is in the audit log, without either password. Errors:
// EINVALID (new: too short or long; current: wrong, or the account has no
// password yet, which an admin reset gives it).
func (s *Service) ChangePassword(ctx context.Context, account int64, current, next, keepSession string) error {
	if err := checkPassword(next); err != nil {
		return levee.Invalid("new", "new %s", levee.ErrorMessage(err))
	}
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		var hash sql.NullString
		if err := tx.GetContext(ctx, &hash, `SELECT password_hash FROM accounts WHERE id = $1 AND NOT disabled FOR UPDATE`, account); errors.Is(err, sql.ErrNoRows) {
			return levee.Errorf(levee.EUNAUTHORIZED, "account disabled")
		} else if err != nil {
			return fmt.Errorf("read password: %w", err)
		}
		if !hash.Valid {
			CheckPassword(dummyHash, current) // the same time as a wrong password
			return levee.Invalid("current", "this account has no password; ask an admin for a reset link")
		}
		if !CheckPassword(hash.String, current) {
			return levee.Invalid("current", "the current password is wrong")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET password_hash = $2 WHERE id = $1`, account, HashPassword(next)); err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		ended, err := endSessions(ctx, tx, account, keepSession)
		if err != nil {
			return err
		}
		return audit(ctx, tx, account, "password.change", map[string]any{"account_id": account, "sessions_ended": ended})
	})
	if err != nil {
		return fmt.Errorf("change password of %d: %w", account, err)
	}
	return nil
}

// SignedOut says what SignOutEverywhere ended.
type SignedOut struct {
	Sessions int64 `json:"sessions_ended"`
	Tokens   int64 `json:"tokens_revoked"`
}

// SignOutEverywhere ends every browser session of the account, the
// caller's own included, and with tokens also revokes every API token of
// it: what a person does after losing a phone or signing in on a shared
// computer. It is in the audit log. An admin keeps its
// LEVEE_ADMIN_TOKEN-configured token only until the next start sets it
// again, as for any revoked token.
func (s *Service) SignOutEverywhere(ctx context.Context, account int64, tokens bool) (SignedOut, error) {
	var out SignedOut
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		out = SignedOut{}
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, account); err != nil {
			return fmt.Errorf("lock account: %w", err)
		}
		if tokens {
			res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL`, account)
			if err != nil {
				return fmt.Errorf("revoke tokens: %w", err)
			}
			out.Tokens, _ = res.RowsAffected()
		}
		n, err := endSessions(ctx, tx, account, "")
		if err != nil {
			return err
		}
		out.Sessions = n
		return audit(ctx, tx, account, "sessions.end_all", map[string]any{"account_id": account,
			"sessions_ended": out.Sessions, "tokens_revoked": out.Tokens})
	})
	if err != nil {
		return SignedOut{}, fmt.Errorf("sign %d out everywhere: %w", account, err)
	}
	s.tokens.clear()
	return out, nil
}

// endSessions deletes the account's browser sessions but the one whose
// cookie is keep ("" keeps none), and returns how many it ended.
func endSessions(ctx context.Context, tx *sqlx.Tx, account int64, keep string) (int64, error) {
	var keepHash []byte
	if keep != "" {
		keepHash = HashToken(keep)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE account_id = $1 AND ($2::bytea IS NULL OR token_hash <> $2)`, account, keepHash)
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
