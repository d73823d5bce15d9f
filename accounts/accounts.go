// Package accounts is who is who in Levee: the city's districts, the people
// and organisations that hold accounts, their roles, and the credentials they
// sign in with (API tokens, passwords, browser sessions).
package accounts

import (
	"regexp"
	"slices"

	"levee"
)

// Roles an account can hold. Jurors are residents drawn for a case, not a role.
const (
	RoleResident   = "resident"
	RoleContractor = "contractor"
	RoleTreasurer  = "treasurer"
	RoleSteward    = "steward"
	RoleAdmin      = "admin"
)

// AllRoles lists every role in a stable order.
var AllRoles = []string{RoleResident, RoleContractor, RoleTreasurer, RoleSteward, RoleAdmin}

// Account kinds.
const (
	KindPerson       = "person"
	KindOrganisation = "organisation"
)

// District is a part of the city; every resident lives in one.
type District struct {
	ID   int64  `json:"id,string" db:"id"`
	Name string `json:"name" db:"name"`
}

// Named is an account or district by id and name, for lists.
type Named struct {
	ID   int64  `json:"id,string" db:"id"`
	Name string `json:"name" db:"name"`
}

// Account is a person or an organisation.
type Account struct {
	ID       int64        `json:"id,string"`
	Name     string       `json:"name"`
	Kind     string       `json:"kind"`
	Roles    []string     `json:"roles"`
	District string       `json:"district,omitempty"`
	Cash     levee.Micros `json:"cash"`
}

// Principal is the authenticated caller of a request.
type Principal struct {
	AccountID  int64
	Name       string
	Kind       string
	Roles      []string
	DistrictID int64 // 0 when the account has no district
	// Via says how the caller signed in: "token" or "session".
	Via string
	// CSRFToken is the session's CSRF token (sessions only).
	CSRFToken string
	// TokenID is the API token the caller signed in with, directly or by
	// opening the session with it; 0 for a password session.
	TokenID int64
}

// Has reports whether p holds role.
func (p *Principal) Has(role string) bool { return p != nil && slices.Contains(p.Roles, role) }

// NewAccount is what an admin supplies to open an account.
type NewAccount struct {
	Name     string
	Kind     string // optional: person (default) or organisation
	Roles    []string
	District string // district name; required for residents
	Credit   levee.Micros
	Password string // optional; enables signing in to the web UI
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Validate checks n field by field and fills in defaults.
func (n *NewAccount) Validate() error {
	if !nameRE.MatchString(n.Name) {
		return levee.Invalid("name", "name must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
	}
	if len(n.Roles) == 0 {
		return levee.Invalid("roles", "at least one role is required (one of %v)", AllRoles)
	}
	seen := map[string]bool{}
	for _, r := range n.Roles {
		if !slices.Contains(AllRoles, r) {
			return levee.Invalid("roles", "unknown role %q (known: %v)", r, AllRoles)
		}
		if seen[r] {
			return levee.Invalid("roles", "role %q listed twice", r)
		}
		seen[r] = true
	}
	switch n.Kind {
	case "":
		n.Kind = KindPerson
		if slices.Equal(n.Roles, []string{RoleContractor}) {
			n.Kind = KindOrganisation
		}
	case KindPerson, KindOrganisation:
	default:
		return levee.Invalid("kind", "kind must be %q or %q", KindPerson, KindOrganisation)
	}
	if n.Kind == KindOrganisation && slices.ContainsFunc(n.Roles, func(r string) bool { return r != RoleContractor }) {
		return levee.Invalid("roles", "an organisation can only hold the contractor role")
	}
	if slices.Contains(n.Roles, RoleResident) && n.District == "" {
		return levee.Invalid("district", "a resident must belong to a district")
	}
	if n.Credit < 0 {
		return levee.Invalid("credit", "credit cannot be negative")
	}
	if n.Password != "" {
		if err := checkPassword(n.Password); err != nil {
			return err
		}
	}
	return nil
}

// ValidateDistrictName checks a district name.
func ValidateDistrictName(name string) error {
	if !nameRE.MatchString(name) {
		return levee.Invalid("name", "district name must be 1-63 characters of a-z, 0-9, '.', '_' or '-'")
	}
	return nil
}
