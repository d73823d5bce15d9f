package web

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/residents"
)

// Residents is what the web layer needs for a person's own records and
// their exit (docs/privacy.md).
type Residents interface {
	Export(ctx context.Context, who *accounts.Principal) (residents.Export, error)
	Exit(ctx context.Context, who *accounts.Principal, positions string, preview bool) (residents.ExitPlan, error)
	Owed(ctx context.Context) ([]ledger.Owed, error)
	PayOut(ctx context.Context, treasurer *accounts.Principal, pseudonym, reference string) (residents.Payout, error)
}

// myExport is everything Levee holds about the caller, as one JSON
// document to keep (a download, hence the file name).
func (s *Server) myExport(c *echo.Context) error {
	x, err := s.deps.Residents.Export(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", `attachment; filename="levee-export.json"`)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, x)
}

// exitRequest is the body of POST /api/v1/me/exit.
type exitRequest struct {
	Positions string `json:"positions"`
	Preview   bool   `json:"preview"`
}

// exit starts (or, with preview, only describes) the caller's leaving the
// city.
func (s *Server) exit(c *echo.Context) error {
	var req exitRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	plan, err := s.deps.Residents.Exit(c.Request().Context(), principal(c), req.Positions, req.Preview)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, plan)
}

// exitsOwed lists, for treasurers, what the treasury owes people who left,
// by pseudonym.
func (s *Server) exitsOwed(c *echo.Context) error {
	owed, err := s.deps.Residents.Owed(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"exits": owed})
}

// payOut records a treasurer's payout of what was owed to a person who
// left.
func (s *Server) payOut(c *echo.Context) error {
	p := c.Param("pseudonym")
	if !ledger.ValidPseudonym(p) {
		return levee.Errorf(levee.ENOTFOUND, "no resident has the pseudonym %q", p)
	}
	var req struct {
		Reference string `json:"reference"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	out, err := s.deps.Residents.PayOut(c.Request().Context(), principal(c), p, req.Reference)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

// notLeaving refuses the caller who has asked to leave the city: they may
// read what is theirs, take their records and serve the jury seats they
// hold, and start nothing new.
func (s *Server) notLeaving(next echo.HandlerFunc) echo.HandlerFunc {
	return s.signedIn(func(c *echo.Context) error {
		if principal(c).Leaving {
			return levee.Errorf(levee.EFORBIDDEN, "you have left the city: this account is closed for new activity")
		}
		return next(c)
	})
}
