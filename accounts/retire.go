package accounts

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// retiredSetting records that the founder stepped back (levee admin
// retire); from then on no admin token is made or restored at start.
const retiredSetting = "admins_retired_at"

// RetireAdmins revokes every token and session of every admin account and
// takes the admin role away, inside tx (crisis records the retirement in
// the charter in the same transaction). It returns how many tokens it
// revoked. The caller clears the token cache (Service.ForgetTokens).
func RetireAdmins(ctx context.Context, tx *sqlx.Tx, at time.Time) (int, error) {
	var admins []int64
	if err := tx.SelectContext(ctx, &admins, `UPDATE accounts SET roles = array_remove(roles, 'admin') WHERE 'admin' = ANY (roles) RETURNING id`); err != nil {
		return 0, fmt.Errorf("retire admins: %w", err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $2 WHERE account_id = ANY ($1) AND revoked_at IS NULL`, pq.Array(admins), at)
	if err != nil {
		return 0, fmt.Errorf("retire admins: tokens: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE account_id = ANY ($1)`, pq.Array(admins)); err != nil {
		return 0, fmt.Errorf("retire admins: sessions: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
		retiredSetting, at.UTC().Format(time.RFC3339)); err != nil {
		return 0, fmt.Errorf("retire admins: %w", err)
	}
	for _, id := range admins {
		if err := audit(ctx, tx, id, "admin.retire", map[string]any{"account_id": id, "tokens_revoked": n}); err != nil {
			return 0, err
		}
	}
	return int(n), nil
}

// ForgetTokens drops the cache of verified tokens, so revocations made in
// another package's transaction take effect at once.
func (s *Service) ForgetTokens() { s.tokens.clear() }

// foundedSetting records that the charter is founded: from then on no admin
// creates money (crisis writes it in the founding transaction).
const foundedSetting = "charter_founded_at"

// MarkFounded records, inside the founding transaction, that the charter
// is founded.
func MarkFounded(ctx context.Context, tx *sqlx.Tx, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, foundedSetting, at.UTC().Format(time.RFC3339))
	return err
}

func isFounded(ctx context.Context, tx *sqlx.Tx) (bool, error) {
	var ok bool
	err := tx.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM settings WHERE key = $1)`, foundedSetting)
	return ok, err
}
