package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/contracting"
	"levee/input"
)

// Evidence is what the web layer needs to store and serve milestone evidence.
type Evidence interface {
	AttachEvidence(ctx context.Context, who *accounts.Principal, contractID int64, n int, name string, data []byte) (contracting.EvidenceFile, error)
	Evidence(ctx context.Context, contractID int64, n int) ([]contracting.EvidenceFile, error)
	EvidenceContent(ctx context.Context, id int64) (contracting.EvidenceFile, []byte, error)
	AttachToBid(ctx context.Context, who *accounts.Principal, bidID int64, name string, data []byte) (contracting.Attachment, error)
	BidAttachments(ctx context.Context, viewer *accounts.Principal, bidID int64) ([]contracting.Attachment, error)
	BidAttachment(ctx context.Context, viewer *accounts.Principal, id int64) (contracting.Attachment, []byte, error)
}

// uploadLimit is the body limit of an evidence upload: the file plus its
// multipart envelope.
const uploadLimit = contracting.MaxEvidenceBytes + 64<<10

// uploadEvidence takes one file in the multipart field "file".
func (s *Server) uploadEvidence(c *echo.Context) error {
	id, n, err := milestonePath(c)
	if err != nil {
		return err
	}
	name, data, err := formFile(c)
	if err != nil {
		return err
	}
	ef, err := s.deps.Evidence.AttachEvidence(c.Request().Context(), principal(c), id, n, name, data)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, ef)
}

func (s *Server) listEvidence(c *echo.Context) error {
	id, n, err := milestonePath(c)
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
func (s *Server) downloadEvidence(c *echo.Context) error {
	id, err := pathID(c, "id", "evidence file")
	if err != nil {
		return err
	}
	f, data, err := s.deps.Evidence.EvidenceContent(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return sendFile(c, f.Name, f.ContentType, f.SHA256, data)
}

// sendFile serves an uploaded file as an attachment with the type detected
// at upload, so a browser never renders uploaded content as a page of ours.
func sendFile(c *echo.Context, name, contentType, sum string, data []byte) error {
	h := c.Response().Header()
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("X-Content-SHA256", sum)
	return c.Blob(http.StatusOK, contentType, data)
}

// formFile reads the one file sent as multipart/form-data in the field "file".
func formFile(c *echo.Context) (string, []byte, error) {
	fh, err := c.FormFile("file")
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig), echo.StatusCode(err) == http.StatusRequestEntityTooLarge:
		return "", nil, &levee.Error{Code: levee.ETOOLARGE, Field: "file", Message: "files are limited to 5 MiB"}
	case err != nil:
		return "", nil, levee.Invalid("file", "send the file as multipart/form-data in the field \"file\"")
	}
	if err := input.Text("file", fh.Filename, false); err != nil { // the name is stored and shown
		return "", nil, err
	}
	f, err := fh.Open()
	if err != nil {
		return "", nil, levee.Invalid("file", "the file could not be read")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, contracting.MaxEvidenceBytes+1))
	if err != nil {
		return "", nil, levee.Invalid("file", "the file could not be read")
	}
	return fh.Filename, data, nil
}

// uploadBidAttachment adds a file to the caller's own bid while bidding is open.
func (s *Server) uploadBidAttachment(c *echo.Context) error {
	id, err := pathID(c, "id", "bid")
	if err != nil {
		return err
	}
	name, data, err := formFile(c)
	if err != nil {
		return err
	}
	a, err := s.deps.Evidence.AttachToBid(c.Request().Context(), principal(c), id, name, data)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, a)
}

// listBidAttachments lists a bid's files for whoever may see the bid.
func (s *Server) listBidAttachments(c *echo.Context) error {
	id, err := pathID(c, "id", "bid")
	if err != nil {
		return err
	}
	as, err := s.deps.Evidence.BidAttachments(c.Request().Context(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"files": as})
}

func (s *Server) downloadBidAttachment(c *echo.Context) error {
	id, err := pathID(c, "id", "attachment")
	if err != nil {
		return err
	}
	a, data, err := s.deps.Evidence.BidAttachment(c.Request().Context(), principal(c), id)
	if err != nil {
		return err
	}
	return sendFile(c, a.Name, a.ContentType, a.SHA256, data)
}
