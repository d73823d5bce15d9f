package web

import (
	"net/http"

	"github.com/labstack/echo/v5"
	"levee"
)

// me shows the caller's own account and cash.
func (s *Server) me(c *echo.Context) error {
	a, err := s.deps.Accounts.Get(c.Request().Context(), principal(c).AccountID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

func (s *Server) listTokens(c *echo.Context) error {
	ts, err := s.deps.Accounts.Tokens(c.Request().Context(), principal(c).AccountID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"tokens": ts})
}

// createToken issues a new API token for the caller; it is shown only here.
func (s *Server) createToken(c *echo.Context) error {
	var req struct {
		Label string `json:"label"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	t, token, err := s.deps.Accounts.CreateToken(c.Request().Context(), principal(c).AccountID, req.Label)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"id": levee.FormatID(t.ID), "label": t.Label, "token": token})
}

// revokeToken revokes one of the caller's own tokens.
func (s *Server) revokeToken(c *echo.Context) error {
	id, err := pathID(c, "id", "token")
	if err != nil {
		return err
	}
	if err := s.deps.Accounts.RevokeToken(c.Request().Context(), principal(c).AccountID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
