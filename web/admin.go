package web

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
)

func (s *Server) createDistrict(c *echo.Context) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	d, err := s.deps.Accounts.CreateDistrict(c.Request().Context(), principal(c).AccountID, req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, d)
}

func (s *Server) listDistricts(c *echo.Context) error {
	ds, err := s.deps.Accounts.Districts(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"districts": ds})
}

type createAccountRequest struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Roles    []string `json:"roles"`
	District string   `json:"district"`
	Credit   string   `json:"credit"`
	Password string   `json:"password"`
}

// createAccount opens an account and returns its first API token, once.
func (s *Server) createAccount(c *echo.Context) error {
	var req createAccountRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	credit, err := parseAmount("credit", req.Credit, false)
	if err != nil {
		return err
	}
	a, token, err := s.deps.Accounts.CreateAccount(c.Request().Context(), principal(c).AccountID, accounts.NewAccount{
		Name: req.Name, Kind: req.Kind, Roles: req.Roles, District: req.District, Credit: credit, Password: req.Password,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"id": levee.FormatID(a.ID), "name": a.Name, "kind": a.Kind, "roles": a.Roles,
		"district": a.District, "cash": a.Cash, "token": token})
}

func (s *Server) addMember(c *echo.Context) error {
	org, err := pathID(c, "id", "organisation")
	if err != nil {
		return err
	}
	var req struct {
		Account string `json:"account"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	member, err := parseID("account", req.Account)
	if err != nil {
		return err
	}
	if err := s.deps.Accounts.AddMember(c.Request().Context(), principal(c).AccountID, org, member); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) audit(c *echo.Context) error {
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	es, err := s.deps.Accounts.Audit(c.Request().Context(), int(limit))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"entries": es})
}

// issueToTreasury creates money in the treasury (admin only, audited).
func (s *Server) issueToTreasury(c *echo.Context) error {
	var req struct {
		Amount string `json:"amount"`
		Memo   string `json:"memo"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	amount, err := parseAmount("amount", req.Amount, true)
	if err != nil {
		return err
	}
	issue := s.deps.Accounts.IssueToTreasury
	if s.deps.Crisis != nil { // after founding, money is issued only by the quorum
		issue = s.deps.Crisis.AdminIssue
	}
	e, err := issue(c.Request().Context(), principal(c).AccountID, amount, req.Memo)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, e)
}
