package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/pgtx"
)

// Listed is an account as the admin's list shows it.
type Listed struct {
	ID       int64          `json:"id,string" db:"id"`
	Name     string         `json:"name" db:"name"`
	Kind     string         `json:"kind" db:"kind"`
	Roles    pq.StringArray `json:"roles" db:"roles"`
	District string         `json:"district,omitempty" db:"district"`
	Disabled bool           `json:"disabled" db:"disabled"`
	Cash     levee.Micros   `json:"cash" db:"cash"`
	// Members are an organisation's members; for a person, the
	// organisations it acts for.
	Members pq.StringArray `json:"members" db:"members"`
}

const listedSelect = `SELECT a.id, a.name, a.kind, a.roles, coalesce(d.name, '') AS district, a.disabled, coalesce(l.balance, 0) AS cash,
		coalesce((SELECT array_agg(o.name ORDER BY o.name) FROM organisation_members m JOIN accounts o
			ON o.id = CASE WHEN a.kind = 'organisation' THEN m.member_id ELSE m.organisation_id END
			WHERE CASE WHEN a.kind = 'organisation' THEN m.organisation_id ELSE m.member_id END = a.id), '{}') AS members
	FROM accounts a
	LEFT JOIN districts d ON d.id = a.district_id
	LEFT JOIN ledger_accounts l ON l.key = 'cash:' || a.id`

// List returns every account, by id, for the admin's pages.
func (s *Service) List(ctx context.Context) ([]Listed, error) {
	out := []Listed{}
	if err := s.db.SelectContext(ctx, &out, listedSelect+` ORDER BY a.id`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list accounts: %w", err))
	}
	return out, nil
}

func getListed(ctx context.Context, q sqlx.QueryerContext, id int64) (Listed, error) {
	var a Listed
	err := sqlx.GetContext(ctx, q, &a, listedSelect+` WHERE a.id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Listed{}, levee.Errorf(levee.ENOTFOUND, "no account %d", id)
	}
	return a, pgtx.Unavailable(err)
}

// AccountChange is what an admin may change about an account; nil fields
// stay as they are.
type AccountChange struct {
	Roles    *[]string
	District *string // a district name; "" removes the district
	Disabled *bool
}

// ChangeAccount changes an account's roles, district or whether it is
// disabled, and records the change, before and after, in the audit log. A
// disabled account's tokens and sessions stop working at once; its money
// stays where it is. An admin cannot disable itself or give up its own
// admin role, so the node always keeps one. Errors: EINVALID (a field),
// ENOTFOUND, ECONFLICT (the caller's own admin).
func (s *Service) ChangeAccount(ctx context.Context, actor, id int64, ch AccountChange) (Listed, error) {
	if ch.Roles == nil && ch.District == nil && ch.Disabled == nil {
		return Listed{}, levee.Invalid("body", "nothing to change: give roles, district or disabled")
	}
	var after Listed
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, id); err != nil {
			return fmt.Errorf("lock account: %w", err)
		}
		before, err := getListed(ctx, tx, id)
		if err != nil {
			return err
		}
		n := NewAccount{Name: before.Name, Kind: before.Kind, Roles: before.Roles, District: before.District}
		if ch.Roles != nil {
			n.Roles = *ch.Roles
		}
		if ch.District != nil {
			n.District = *ch.District
		}
		if err := n.Validate(); err != nil {
			return err
		}
		disabled := before.Disabled
		if ch.Disabled != nil {
			disabled = *ch.Disabled
		}
		if id == actor && (disabled || !slices.Contains(n.Roles, RoleAdmin)) {
			return levee.Errorf(levee.ECONFLICT, "you cannot disable yourself or give up your own admin role; another admin can")
		}
		var districtID sql.NullInt64
		if n.District != "" {
			if err := tx.GetContext(ctx, &districtID, `SELECT id FROM districts WHERE name = $1`, n.District); errors.Is(err, sql.ErrNoRows) {
				return levee.Invalid("district", "unknown district %q", n.District)
			} else if err != nil {
				return fmt.Errorf("find district: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET roles = $2, district_id = $3, disabled = $4 WHERE id = $1`,
			id, pq.Array(n.Roles), districtID, disabled); err != nil {
			return fmt.Errorf("change account %d: %w", id, err)
		}
		if after, err = getListed(ctx, tx, id); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "account.change", map[string]any{"account_id": id, "name": before.Name,
			"before": map[string]any{"roles": before.Roles, "district": before.District, "disabled": before.Disabled},
			"after":  map[string]any{"roles": after.Roles, "district": after.District, "disabled": after.Disabled}})
	})
	if err != nil {
		return Listed{}, fmt.Errorf("change account: %w", err)
	}
	s.tokens.clear() // cached principals carry the old roles
	return after, nil
}

// SetPasswordHash sets an account's password from a hash HashPassword made,
// for accounts that share one password (the demo city's residents), so it
// is hashed once rather than once per account. Errors: EINVALID (not an
// argon2id hash).
func (s *Service) SetPasswordHash(ctx context.Context, accountID int64, hash string) error {
	if !strings.HasPrefix(hash, "$argon2id$") {
		return levee.Invalid("password_hash", "not an argon2id hash")
	}
	_, err := s.db.ExecContext(ctx, `UPDATE accounts SET password_hash = $2 WHERE id = $1`, accountID, hash)
	return pgtx.Unavailable(err)
}
