package web

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v5"

	"levee"
)

var errRateLimited = levee.Errorf(levee.ERATELIMIT, "too many attempts; wait a minute and try again")

// statusOf is the one place where error codes become HTTP statuses.
var statusOf = map[string]int{
	levee.EINVALID:      http.StatusBadRequest,
	levee.EUNAUTHORIZED: http.StatusUnauthorized,
	levee.EFORBIDDEN:    http.StatusForbidden,
	levee.ENOTFOUND:     http.StatusNotFound,
	levee.ECONFLICT:     http.StatusConflict,
	levee.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	levee.ERATELIMIT:    http.StatusTooManyRequests,
	levee.EUNAVAILABLE:  http.StatusServiceUnavailable,
	levee.EINTERNAL:     http.StatusInternalServerError,
}

// codeOfStatus turns echo's own HTTP errors (unknown route, wrong method, body
// too large) into our codes.
func codeOfStatus(status int) string {
	for code, st := range statusOf {
		if st == status {
			return code
		}
	}
	if status >= 500 {
		return levee.EINTERNAL
	}
	return levee.EINVALID
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

// handleError is echo's HTTPErrorHandler: every error leaves through here as
// {"error":{"code","message","field"}}. Uncoded errors are logged and shown
// to the user as "internal error" only.
func (s *Server) handleError(c *echo.Context, err error) {
	if r, _ := echo.UnwrapResponse(c.Response()); r != nil && r.Committed {
		return
	}
	var body errorBody
	// An echo error that wraps one of ours (a body limit, a binder) answers
	// with ours; echo's own errors (no route, wrong method, body too large)
	// answer with their status.
	status := 0
	var he *echo.HTTPError
	if errors.As(err, &he) && (he.Unwrap() == nil || levee.ErrorCode(he.Unwrap()) == levee.EINTERNAL) {
		status = he.Code
		body.Error.Message = he.Message
	} else if levee.ErrorCode(err) == levee.EINTERNAL {
		status = echo.StatusCode(err)
	}
	if status != 0 {
		body.Error.Code = codeOfStatus(status)
		if body.Error.Message == "" {
			body.Error.Message = http.StatusText(status)
		}
	} else {
		body.Error.Code = levee.ErrorCode(err)
		body.Error.Message = levee.ErrorMessage(err)
		body.Error.Field = levee.ErrorField(err)
	}
	status = statusOf[body.Error.Code]
	if body.Error.Code == levee.EINTERNAL {
		s.logger.Error("internal error", slog.String("method", c.Request().Method), slog.String("path", c.Path()), slog.Any("error", err))
	}
	if body.Error.Code == levee.ERATELIMIT && c.Response().Header().Get("Retry-After") == "" {
		c.Response().Header().Set("Retry-After", "60")
	}
	if body.Error.Code == levee.EUNAVAILABLE {
		c.Response().Header().Set("Retry-After", "2")
	}
	if c.Request().Method == http.MethodHead {
		c.NoContent(status)
		return
	}
	c.JSON(status, body)
}
