package web

import (
	"net/http"

	"github.com/labstack/echo/v5"
)

// requestURI is the absolute URL of the request, the uri of an OCDS
// package served on demand.
func requestURI(c *echo.Context) string {
	return c.Scheme() + "://" + c.Request().Host + c.Request().URL.RequestURI()
}

// ocdsReleases serves a tender as an OCDS 1.1 release package. Bids appear
// only once the bid window has closed (the service reads them through the
// sealed query).
func (s *Server) ocdsReleases(c *echo.Context) error {
	id, err := pathID(c, "id", "tender")
	if err != nil {
		return err
	}
	p, err := s.deps.Contracting.OCDSReleasePackage(c.Request().Context(), id, requestURI(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// ocdsRecords serves a tender as an OCDS 1.1 record package.
func (s *Server) ocdsRecords(c *echo.Context) error {
	id, err := pathID(c, "id", "tender")
	if err != nil {
		return err
	}
	p, err := s.deps.Contracting.OCDSRecordPackage(c.Request().Context(), id, requestURI(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// trackRecord serves a contractor organisation's track record.
func (s *Server) trackRecord(c *echo.Context) error {
	id, err := pathID(c, "id", "contractor")
	if err != nil {
		return err
	}
	tr, err := s.deps.Contracting.TrackRecord(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tr)
}
