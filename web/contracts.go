package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"levee"
)

// milestonePath reads a contract id and milestone number from the path.
func milestonePath(c echo.Context) (int64, int, error) {
	id, err := pathID(c, "id", "contract")
	if err != nil {
		return 0, 0, err
	}
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 1 {
		return 0, 0, levee.Errorf(levee.ENOTFOUND, "no such milestone")
	}
	return id, n, nil
}

func (s *Server) getContract(c echo.Context) error {
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

func (s *Server) claimMilestone(c echo.Context) error {
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
