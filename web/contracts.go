package web

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"levee/input"
)

// milestonePath reads a contract id and milestone number from the path.
func milestonePath(c *echo.Context) (int64, int, error) {
	id, err := pathID(c, "id", "contract")
	if err != nil {
		return 0, 0, err
	}
	n, err := pathNumber(c, "n", "milestone", input.MaxInteger) // milestones.n is an integer column
	if err != nil {
		return 0, 0, err
	}
	return id, int(n), nil
}

func (s *Server) getContract(c *echo.Context) error {
	id, err := pathID(c, "id", "contract")
	if err != nil {
		return err
	}
	k, err := s.deps.Contracting.Contract(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}

func (s *Server) claimMilestone(c *echo.Context) error {
	id, n, err := milestonePath(c)
	if err != nil {
		return err
	}
	var req struct {
		Evidence string `json:"evidence"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	k, err := s.deps.Contracting.Claim(c.Request().Context(), principal(c), id, n, req.Evidence)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}
