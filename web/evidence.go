package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"levee"
	"levee/accounts"
	"levee/contracting"
)

// Evidence is what the web layer needs to store and serve milestone evidence.
type Evidence interface {
	AttachEvidence(ctx context.Context, who *accounts.Principal, contractID int64, n int, name string, data []byte) (contracting.EvidenceFile, error)
	Evidence(ctx context.Context, contractID int64, n int) ([]contracting.EvidenceFile, error)
	EvidenceContent(ctx context.Context, id int64) (contracting.EvidenceFile, []byte, error)
}

// uploadLimit is the body limit of an evidence upload: the file plus its
// multipart envelope.
const uploadLimit = contracting.MaxEvidenceBytes + 64<<10

// isUpload reports whether a request is an evidence upload, which gets a
// larger body limit than the 1 MB every other request has.
func isUpload(c echo.Context) bool {
	return c.Request().Method == http.MethodPost && strings.HasSuffix(c.Request().URL.Path, "/evidence")
}

// evidenceRoutes registers the evidence endpoints.
func (s *Server) evidenceRoutes(api *echo.Group) {
	if s.deps.Evidence == nil {
		return
	}
	api.POST("/contracts/:id/milestones/:n/evidence", s.uploadEvidence, s.signedIn,
		middleware.BodyLimit(strconv.Itoa(uploadLimit/1024)+"K"))
	api.GET("/contracts/:id/milestones/:n/evidence", s.listEvidence)
	api.GET("/evidence/:id", s.downloadEvidence)
}

func milestoneFromPath(c echo.Context) (int64, int, error) {
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

// uploadEvidence takes one file in the multipart field "file".
func (s *Server) uploadEvidence(c echo.Context) error {
	id, n, err := milestoneFromPath(c)
	if err != nil {
		return err
	}
	fh, err := c.FormFile("file")
	var tooBig *http.MaxBytesError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &tooBig), errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge:
		return &levee.Error{Code: levee.ETOOLARGE, Field: "file", Message: "evidence files are limited to 5 MiB"}
	case err != nil:
		return levee.Invalid("file", "send the file as multipart/form-data in the field \"file\"")
	}
	f, err := fh.Open()
	if err != nil {
		return levee.Invalid("file", "the file could not be read")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, contracting.MaxEvidenceBytes+1))
	if err != nil {
		return levee.Invalid("file", "the file could not be read")
	}
	ef, err := s.deps.Evidence.AttachEvidence(c.Request().Context(), principal(c), id, n, fh.Filename, data)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, ef)
}

func (s *Server) listEvidence(c echo.Context) error {
	id, n, err := milestoneFromPath(c)
	if err != nil {
		return err
	}
	fs, err := s.deps.Evidence.Evidence(c.Request().Context(), id, n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"files": fs})
}

// downloadEvidence serves a file as an attachment with the type detected at
// upload, so a browser never renders uploaded content as a page of ours.
func (s *Server) downloadEvidence(c echo.Context) error {
	id, err := pathID(c, "id", "evidence file")
	if err != nil {
		return err
	}
	f, data, err := s.deps.Evidence.EvidenceContent(c.Request().Context(), id)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("X-Evidence-SHA256", f.SHA256)
	return c.Blob(http.StatusOK, f.ContentType, data)
}
