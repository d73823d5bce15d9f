package web

import (
	"net/http"

	"github.com/labstack/echo/v5"
)

// pageExport shows everything Levee holds about the caller, readably, with
// the JSON to download and how to check it against the public ledger, and
// how to leave (docs/privacy.md).
func (s *Server) pageExport(c *echo.Context) error {
	if ok, err := s.requireSignIn(c); !ok {
		return err
	}
	x, err := s.deps.Residents.Export(c.Request().Context(), principal(c))
	if err != nil {
		return s.renderError(c, err)
	}
	p := newPage(c, "Your data", "portfolio")
	p.Scripts = []string{"export.js"}
	p.Data = x
	c.Response().Header().Set("Cache-Control", "no-store")
	return s.render(c, http.StatusOK, "export", p)
}
