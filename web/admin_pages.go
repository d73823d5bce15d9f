package web

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/crisis"
)

// AdminAccounts is what the admin's pages need from the accounts service
// beyond Accounts: the list of accounts and changes to them.
type AdminAccounts interface {
	List(ctx context.Context) ([]accounts.Listed, error)
	ChangeAccount(ctx context.Context, actor, id int64, ch accounts.AccountChange) (accounts.Listed, error)
}

// adminAccounts is deps.Accounts as AdminAccounts, or nil when the service
// does not offer them (tests with a smaller fake).
func (s *Server) adminAccounts() AdminAccounts {
	a, _ := s.deps.Accounts.(AdminAccounts)
	return a
}

// listAccounts is GET /api/v1/admin/accounts: every account, by id.
func (s *Server) listAccounts(c *echo.Context) error {
	as, err := s.adminAccounts().List(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"accounts": as})
}

// changeAccount is PATCH /api/v1/admin/accounts/{id} {"roles"?, "district"?,
// "disabled"?}: fields left out stay as they are.
func (s *Server) changeAccount(c *echo.Context) error {
	id, err := pathID(c, "id", "account")
	if err != nil {
		return err
	}
	var req struct {
		Roles    *[]string `json:"roles"`
		District *string   `json:"district"`
		Disabled *bool     `json:"disabled"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.adminAccounts().ChangeAccount(c.Request().Context(), principal(c).AccountID, id,
		accounts.AccountChange{Roles: req.Roles, District: req.District, Disabled: req.Disabled})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

// IsAdmin says whether the signed-in user runs the node.
func (p *page) IsAdmin() bool { return p.User.Has(accounts.RoleAdmin) }

// adminPage is the data of the admin's page.
type adminPage struct {
	Accounts      []accounts.Listed
	People        []accounts.Listed
	Organisations []accounts.Listed
	Districts     []accounts.District
	Roles         []string
	// Charter is nil when this node runs without crisis mode.
	Charter *crisis.Charter
	Founded bool
}

// requireAdmin lets only an admin through to a page.
func (s *Server) requireAdmin(c *echo.Context) (bool, error) {
	if ok, err := s.requireSignIn(c); !ok {
		return false, err
	}
	if !principal(c).Has(accounts.RoleAdmin) {
		return false, s.renderError(c, levee.Errorf(levee.EFORBIDDEN, "only an admin can open the admin pages"))
	}
	return true, nil
}

// pageAdmin is the admin's page: accounts and their changes, admissions,
// organisation members, districts, issuing money and the charter.
func (s *Server) pageAdmin(c *echo.Context) error {
	if ok, err := s.requireAdmin(c); !ok {
		return err
	}
	ctx := c.Request().Context()
	as, err := s.adminAccounts().List(ctx)
	if err != nil {
		return s.renderError(c, err)
	}
	ds, err := s.deps.Accounts.Districts(ctx)
	if err != nil {
		return s.renderError(c, err)
	}
	d := &adminPage{Accounts: as, Districts: ds, Roles: accounts.AllRoles}
	for _, a := range as {
		if a.Kind == accounts.KindOrganisation {
			d.Organisations = append(d.Organisations, a)
		} else {
			d.People = append(d.People, a)
		}
	}
	if s.deps.Crisis != nil {
		ch, err := s.deps.Crisis.Charter(ctx)
		if err != nil {
			return s.renderError(c, err)
		}
		d.Charter, d.Founded = &ch, len(ch.Changes) > 0
	}
	p := newPage(c, "Admin", "admin")
	p.Scripts = []string{"admin.js"}
	p.Data = d
	return s.render(c, http.StatusOK, "admin", p)
}

// auditRow is one audit entry with its actor's name.
type auditRow struct {
	accounts.AuditEntry
	Actor string
}

// pageAdminAudit is the audit log of admin and official actions, newest
// first.
func (s *Server) pageAdminAudit(c *echo.Context) error {
	if ok, err := s.requireAdmin(c); !ok {
		return err
	}
	ctx := c.Request().Context()
	limit, err := queryInt(c, "limit", 200, 1, 1000)
	if err != nil {
		return s.renderError(c, err)
	}
	es, err := s.deps.Accounts.Audit(ctx, int(limit))
	if err != nil {
		return s.renderError(c, err)
	}
	as, err := s.adminAccounts().List(ctx)
	if err != nil {
		return s.renderError(c, err)
	}
	names := map[int64]string{}
	for _, a := range as {
		names[a.ID] = a.Name
	}
	rows := make([]auditRow, 0, len(es))
	for _, e := range es {
		r := auditRow{AuditEntry: e, Actor: "Levee (the node itself)"}
		if e.ActorID.Valid {
			r.Actor = names[e.ActorID.Int64]
			if r.Actor == "" {
				r.Actor = "account " + strconv.FormatInt(e.ActorID.Int64, 10)
			}
		}
		rows = append(rows, r)
	}
	p := newPage(c, "Audit log", "admin")
	p.Data = rows
	return s.render(c, http.StatusOK, "admin_audit", p)
}
