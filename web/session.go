package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
)

type loginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Token    string `json:"token"`
}

// login opens a browser session from a name and password, or from an API
// token, and sets the session cookie. The response carries the CSRF token the
// page must send back on every change.
func (s *Server) login(c *echo.Context) error {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var sid string
	var p *accounts.Principal
	var err error
	switch {
	case req.Token != "":
		sid, p, err = s.deps.Accounts.LoginWithToken(ctx, req.Token)
	case req.Name == "":
		return levee.Invalid("name", "name is required (or send a token)")
	case req.Password == "":
		return levee.Invalid("password", "password is required")
	default:
		sid, p, err = s.deps.Accounts.Login(ctx, req.Name, req.Password)
	}
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{
		Name: SessionCookie, Value: sid, Path: "/", HttpOnly: true, Secure: c.IsTLS(),
		SameSite: http.SameSiteLaxMode, Expires: time.Now().Add(accounts.SessionTTL),
	})
	return c.JSON(http.StatusCreated, map[string]any{"id": levee.FormatID(p.AccountID), "name": p.Name, "roles": p.Roles, "csrf_token": p.CSRFToken})
}

// logout ends the session and clears the cookie.
func (s *Server) logout(c *echo.Context) error {
	if ck, err := c.Cookie(SessionCookie); err == nil && ck.Value != "" {
		if err := s.deps.Accounts.Logout(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	c.SetCookie(&http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: c.IsTLS(), SameSite: http.SameSiteLaxMode, MaxAge: -1})
	return c.NoContent(http.StatusNoContent)
}
