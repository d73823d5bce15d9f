package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
)

// Passwords is what the web layer needs for people's own passwords and
// sessions and for an admin's reset (accounts.Service).
type Passwords interface {
	ChangePassword(ctx context.Context, account int64, current, next, keepSession string) error
	SignOutEverywhere(ctx context.Context, account int64, tokens bool) (accounts.SignedOut, error)
	StartReset(ctx context.Context, actor, account int64) (accounts.Reset, string, error)
	ResetPassword(ctx context.Context, token, password string) (string, error)
}

// ResetMail mails password reset links (mail.Mailer).
type ResetMail interface {
	SendPasswordReset(ctx context.Context, to, name, token string, expires time.Time) error
	ResetLink(token string) string
	Delivering() bool
}

// passwords is deps.Accounts as Passwords, or nil when the service does
// not offer them (tests with a smaller fake); routes.go registers the
// password routes only when it is not nil.
func (s *Server) passwords() Passwords {
	p, _ := s.deps.Accounts.(Passwords)
	return p
}

// sessionCookie is the caller's session cookie, "" when there is none.
func sessionCookie(c *echo.Context) string {
	if ck, err := c.Cookie(SessionCookie); err == nil {
		return ck.Value
	}
	return ""
}

func clearSessionCookie(c *echo.Context) {
	c.SetCookie(&http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: c.IsTLS(), SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// changePassword is PUT /api/v1/me/password {"current","new"} → 204. The
// caller's own browser session stays signed in; every other session ends.
func (s *Server) changePassword(c *echo.Context) error {
	pw := s.passwords()
	var req struct {
		Current string `json:"current"`
		New     string `json:"new"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Current == "" {
		return levee.Invalid("current", "current password is required")
	}
	p := principal(c)
	keep := ""
	if p.Via == "session" {
		keep = sessionCookie(c)
	}
	if err := pw.ChangePassword(c.Request().Context(), p.AccountID, req.Current, req.New, keep); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// signOutEverywhere is POST /api/v1/me/sign-out-everywhere {"tokens"?}:
// every browser session of the caller ends, this one included, and with
// "tokens": true every API token is revoked too.
func (s *Server) signOutEverywhere(c *echo.Context) error {
	pw := s.passwords()
	var req struct {
		Tokens bool `json:"tokens"`
	}
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	out, err := pw.SignOutEverywhere(c.Request().Context(), principal(c).AccountID, req.Tokens)
	if err != nil {
		return err
	}
	clearSessionCookie(c)
	return c.JSON(http.StatusOK, out)
}

// resetStarted is the answer to an admin's reset: where the link went.
type resetStarted struct {
	accounts.Reset
	// Mailed says the link went to the person's confirmed address; the
	// admin does not see it.
	Mailed bool `json:"mailed"`
	// Link is the one-time link for the admin to hand over in person, only
	// when it could not be mailed (no confirmed address, or no mail).
	Link string `json:"link,omitempty"`
}

// resetPassword is POST /api/v1/admin/accounts/{id}/password-reset → 201:
// the person's old password and sessions stop working, and they get a
// one-time link to choose a new one (mailed when they have a confirmed
// address and the node sends mail, else shown to the admin once).
func (s *Server) resetPassword(c *echo.Context) error {
	pw := s.passwords()
	id, err := pathID(c, "id", "account")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	r, token, err := pw.StartReset(ctx, principal(c).AccountID, id)
	if err != nil {
		return err
	}
	out := resetStarted{Reset: r}
	m, _ := s.deps.Mail.(ResetMail)
	if r.Address != "" && m != nil && m.Delivering() {
		// The reset already happened: if the mail fails the admin gets
		// the error and resets again, which voids this link.
		if err := m.SendPasswordReset(ctx, r.Address, r.Name, token, r.ExpiresAt); err != nil {
			return err
		}
		out.Mailed = true
	} else {
		out.Link = s.resetLink(m, token)
	}
	return c.JSON(http.StatusCreated, out)
}

// resetLink is the page a reset token opens, absolute when the node knows
// its public address.
func (s *Server) resetLink(m ResetMail, token string) string {
	if m != nil {
		return m.ResetLink(token)
	}
	return "/password/reset?token=" + token
}

// usePasswordReset is POST /api/v1/password/reset {"token","password"} →
// 200 {"name"}: no sign-in needed, the link's token is the proof. It signs
// nobody in: the person signs in with the new password next.
func (s *Server) usePasswordReset(c *echo.Context) error {
	pw := s.passwords()
	var req struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Token == "" {
		return levee.Invalid("token", "token is required: open the link you were given")
	}
	name, err := pw.ResetPassword(c.Request().Context(), req.Token, req.Password)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"name": name})
}

// resetPage is the data of /password/reset.
type resetPage struct{ Token string }

// pagePasswordReset is where a reset link lands: a form for the new
// password. Opening it changes nothing, so a mail scanner that follows the
// link does not use it up.
func (s *Server) pagePasswordReset(c *echo.Context) error {
	p := newPage(c, "Choose a new password", "")
	p.Scripts = []string{"password.js"}
	p.Data = &resetPage{Token: c.QueryParam("token")}
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	return s.render(c, http.StatusOK, "password_reset", p)
}
