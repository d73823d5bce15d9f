package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/pgtx"
)

// The directory: what other packages read of accounts, districts and
// memberships. They take q so that a caller reads inside its own
// transaction when it must; the tables stay this package's.

// Members returns the people who act for organisation org.
func Members(ctx context.Context, q sqlx.QueryerContext, org int64) ([]int64, error) {
	var members []int64
	if err := sqlx.SelectContext(ctx, q, &members, `SELECT member_id FROM organisation_members WHERE organisation_id = $1`, org); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("members of %d: %w", org, err))
	}
	return members, nil
}

// OrganisationIDs returns the organisations member acts for.
func OrganisationIDs(ctx context.Context, q sqlx.QueryerContext, member int64) ([]int64, error) {
	orgs := []int64{}
	if err := sqlx.SelectContext(ctx, q, &orgs, `SELECT organisation_id FROM organisation_members WHERE member_id = $1 ORDER BY organisation_id`, member); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("organisations of %d: %w", member, err))
	}
	return orgs, nil
}

// ActsFor reports whether account who is organisation org itself or one of
// its members.
func ActsFor(ctx context.Context, q sqlx.QueryerContext, who, org int64) (bool, error) {
	var ok bool
	err := sqlx.GetContext(ctx, q, &ok, `SELECT $1::bigint = $2::bigint
		OR EXISTS (SELECT 1 FROM organisation_members WHERE organisation_id = $1 AND member_id = $2)`, org, who)
	if err != nil {
		return false, pgtx.Unavailable(fmt.Errorf("does %d act for %d: %w", who, org, err))
	}
	return ok, nil
}

// IsContractor reports whether id is a contractor organisation.
func IsContractor(ctx context.Context, q sqlx.QueryerContext, id int64) (bool, error) {
	var ok bool
	err := sqlx.GetContext(ctx, q, &ok, `SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1 AND kind = 'organisation' AND 'contractor' = ANY (roles))`, id)
	if err != nil {
		return false, pgtx.Unavailable(fmt.Errorf("is %d a contractor: %w", id, err))
	}
	return ok, nil
}

// ContractorName returns the name of contractor organisation id.
// Errors: ENOTFOUND (no such contractor).
func ContractorName(ctx context.Context, q sqlx.QueryerContext, id int64) (string, error) {
	var name string
	err := sqlx.GetContext(ctx, q, &name, `SELECT name FROM accounts WHERE id = $1 AND 'contractor' = ANY(roles)`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", levee.Errorf(levee.ENOTFOUND, "no contractor %d", id)
	} else if err != nil {
		return "", pgtx.Unavailable(fmt.Errorf("contractor %d: %w", id, err))
	}
	return name, nil
}

// Names returns the names of the accounts among ids, by id.
func (s *Service) Names(ctx context.Context, ids []int64) (map[int64]string, error) {
	return Names(ctx, s.db, ids)
}

// Names returns the names of the accounts among ids, by id, as q sees them.
func Names(ctx context.Context, q sqlx.QueryerContext, ids []int64) (map[int64]string, error) {
	var rows []struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT id, name FROM accounts WHERE id = ANY($1)`, pq.Array(ids)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("account names: %w", err))
	}
	names := make(map[int64]string, len(rows))
	for _, r := range rows {
		names[r.ID] = r.Name
	}
	return names, nil
}

// DistrictNames returns the name of every district, by id. Districts are
// few, so readers that show names read them all at once.
func DistrictNames(ctx context.Context, q sqlx.QueryerContext) (map[int64]string, error) {
	var rows []District
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT id, name FROM districts`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("district names: %w", err))
	}
	names := make(map[int64]string, len(rows))
	for _, d := range rows {
		names[d.ID] = d.Name
	}
	return names, nil
}

// DistrictsNamed returns the ids of the districts among names, in id order;
// unknown names are left out.
func DistrictsNamed(ctx context.Context, q sqlx.QueryerContext, names []string) ([]int64, error) {
	var ids []int64
	if err := sqlx.SelectContext(ctx, q, &ids, `SELECT id FROM districts WHERE name = ANY($1) ORDER BY id`, pq.Array(names)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("districts: %w", err))
	}
	return ids, nil
}

// DistrictNamed returns the id of the district called name, and false if
// there is none.
func DistrictNamed(ctx context.Context, q sqlx.QueryerContext, name string) (int64, bool, error) {
	var id int64
	err := sqlx.GetContext(ctx, q, &id, `SELECT id FROM districts WHERE name = $1`, name)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, pgtx.Unavailable(fmt.Errorf("district %q: %w", name, err))
	}
	return id, true, nil
}

// NamesOfDistricts returns the names of the districts among ids, in id order.
func NamesOfDistricts(ctx context.Context, q sqlx.QueryerContext, ids []int64) ([]string, error) {
	names := []string{}
	if err := sqlx.SelectContext(ctx, q, &names, `SELECT name FROM districts WHERE id = ANY($1) ORDER BY id`, pq.Array(ids)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("district names: %w", err))
	}
	return names, nil
}

// DistrictResidents is the number of residents of one district.
type DistrictResidents struct {
	District  string `json:"district" db:"district"`
	Residents int64  `json:"residents" db:"residents"`
}

// ResidentsByDistrict counts the enabled resident people of every
// district, by district name.
func (s *Service) ResidentsByDistrict(ctx context.Context) ([]DistrictResidents, error) {
	out := []DistrictResidents{}
	if err := s.db.SelectContext(ctx, &out, `
		SELECT d.name AS district, count(a.id) AS residents
		FROM districts d LEFT JOIN accounts a ON a.district_id = d.id AND 'resident' = ANY (a.roles) AND a.kind = 'person' AND NOT a.disabled
		GROUP BY d.name ORDER BY d.name`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("residents by district: %w", err))
	}
	return out, nil
}

// NamedAccounts returns the accounts among ids with their names, by name.
func NamedAccounts(ctx context.Context, q sqlx.QueryerContext, ids []int64) ([]Named, error) {
	out := []Named{}
	if err := sqlx.SelectContext(ctx, q, &out, `SELECT id, name FROM accounts WHERE id = ANY ($1) ORDER BY name`, pq.Array(ids)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("named accounts: %w", err))
	}
	return out, nil
}

// NamedDistricts returns the districts among ids with their names, by name.
func NamedDistricts(ctx context.Context, q sqlx.QueryerContext, ids []int64) ([]Named, error) {
	out := []Named{}
	if err := sqlx.SelectContext(ctx, q, &out, `SELECT id, name FROM districts WHERE id = ANY ($1) ORDER BY name`, pq.Array(ids)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("named districts: %w", err))
	}
	return out, nil
}

// AccountNamed returns account id with its name. Errors: ENOTFOUND.
func AccountNamed(ctx context.Context, q sqlx.QueryerContext, id int64) (Named, error) {
	var n Named
	err := sqlx.GetContext(ctx, q, &n, `SELECT id, name FROM accounts WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Named{}, levee.Errorf(levee.ENOTFOUND, "no account %d", id)
	} else if err != nil {
		return Named{}, pgtx.Unavailable(err)
	}
	return n, nil
}

// HasActiveRole reports whether account id is enabled and has role.
func HasActiveRole(ctx context.Context, q sqlx.QueryerContext, id int64, role string) (bool, error) {
	var ok bool
	if err := sqlx.GetContext(ctx, q, &ok, `SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1 AND $2 = ANY (roles) AND NOT disabled)`, id, role); err != nil {
		return false, pgtx.Unavailable(err)
	}
	return ok, nil
}

// Resident is a resident person who may be drawn for a jury.
type Resident struct {
	ID         int64 `db:"id"`
	DistrictID int64 `db:"district_id"`
}

// Residents returns every enabled resident person with their district.
func Residents(ctx context.Context, q sqlx.QueryerContext) ([]Resident, error) {
	var rs []Resident
	if err := sqlx.SelectContext(ctx, q, &rs, `SELECT id, district_id FROM accounts
		WHERE 'resident' = ANY (roles) AND NOT disabled AND kind = 'person'`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("residents: %w", err))
	}
	return rs, nil
}

// FillNames sets the account names of items: account returns each item's
// account id and where its name goes. Callers list their own rows and let
// accounts name them, rather than joining the accounts table.
func FillNames[T any](ctx context.Context, q sqlx.QueryerContext, items []T, account func(*T) (int64, *string)) error {
	ids := make([]int64, len(items))
	for i := range items {
		ids[i], _ = account(&items[i])
	}
	names, err := Names(ctx, q, ids)
	if err != nil {
		return err
	}
	for i := range items {
		id, name := account(&items[i])
		*name = names[id]
	}
	return nil
}

// ResidentsOf returns the enabled residents of districts (empty: every
// district), people or not: everyone an emergency there concerns.
func ResidentsOf(ctx context.Context, q sqlx.QueryerContext, districts []int64) ([]int64, error) {
	var ids []int64
	if err := sqlx.SelectContext(ctx, q, &ids, `SELECT id FROM accounts
		WHERE NOT disabled AND 'resident' = ANY (roles) AND (cardinality($1::bigint[]) = 0 OR district_id = ANY ($1::bigint[]))`,
		pq.Array(districts)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("residents of %v: %w", districts, err))
	}
	return ids, nil
}

// Mailbox is where an account's mail goes: its name, and its address with
// whether it is confirmed and the categories it muted (no address: nil).
type Mailbox struct {
	Name      string         `db:"name"`
	Address   *string        `db:"address"`
	Confirmed bool           `db:"confirmed"`
	Muted     pq.StringArray `db:"muted"`
}

// MailboxOf returns account's mailbox as q sees it. Errors: ENOTFOUND.
func MailboxOf(ctx context.Context, q sqlx.QueryerContext, account int64) (Mailbox, error) {
	var m Mailbox
	err := sqlx.GetContext(ctx, q, &m, `SELECT a.name, e.address, e.confirmed_at IS NOT NULL AS confirmed, coalesce(e.muted, '{}') AS muted
		FROM accounts a LEFT JOIN account_emails e ON e.account_id = a.id WHERE a.id = $1`, account)
	if errors.Is(err, sql.ErrNoRows) {
		return Mailbox{}, levee.Errorf(levee.ENOTFOUND, "no account %d", account)
	}
	return m, err
}

// WithAnyRole returns the enabled accounts that have any of roles: on a
// node, the people who answer for the city to its neighbours.
func WithAnyRole(ctx context.Context, q sqlx.QueryerContext, roles []string) ([]int64, error) {
	var ids []int64
	if err := sqlx.SelectContext(ctx, q, &ids, `SELECT id FROM accounts WHERE NOT disabled AND roles && $1::text[] ORDER BY id`, pq.Array(roles)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("accounts with roles %v: %w", roles, err))
	}
	return ids, nil
}
