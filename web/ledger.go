package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// ledgerEntries is the public export of the treasury ledger: amounts and
// ledger account ids only, enough to recompute every hash (docs/ledger.md).
func (s *Server) ledgerEntries(c echo.Context) error {
	after, err := queryInt(c, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	page, err := s.deps.Ledger.Page(c.Request().Context(), after, int(limit))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

// ledgerVerify recomputes the hash chain and the trial balance.
func (s *Server) ledgerVerify(c echo.Context) error {
	r, err := s.deps.Ledger.Verify(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}
