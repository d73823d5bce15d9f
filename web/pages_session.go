package web

import (
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/market/engine"
)

// signInPage is the data of the sign-in page.
type signInPage struct {
	Next   string // where to go once signed in: a local path
	Reason string // why the page asks, when it stands in for another
}

// pageSignIn shows the sign-in forms; the page's script posts them to
// POST /api/v1/session, which sets the session cookie.
func (s *Server) pageSignIn(c *echo.Context) error {
	p := newPage(c, "Sign in", "signin")
	p.Data = &signInPage{Next: localPath(c.QueryParam("next"))}
	return s.render(c, http.StatusOK, "signin", p)
}

// localPath returns next when it is a path on this site, else the markets
// list, so the sign-in page cannot be used to send people elsewhere. The
// parsed URL is checked, not the string's first characters: browsers drop
// tabs and newlines and read a backslash as a slash, so "/\t/evil.example"
// and "/\\evil.example" both leave the site.
func localPath(next string) string {
	const home = "/markets"
	odd := func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' || unicode.IsSpace(r) }
	if strings.ContainsFunc(next, odd) {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.ContainsFunc(u.Path, odd) {
		return home
	}
	return u.String()
}

// pageSignOut ends the browser session from the header's sign-out form
// (app.js posts it with the X-CSRF-Token header, which checkCSRF has
// verified) and returns to the markets.
func (s *Server) pageSignOut(c *echo.Context) error {
	if ck, err := c.Cookie(SessionCookie); err == nil && ck.Value != "" {
		if err := s.deps.Accounts.Logout(c.Request().Context(), ck.Value); err != nil {
			return s.renderError(c, err)
		}
	}
	c.SetCookie(&http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: c.IsTLS(), SameSite: http.SameSiteLaxMode, MaxAge: -1})
	return c.Redirect(http.StatusSeeOther, "/markets")
}

// sessionInfo is GET /api/v1/session: who is signed in, and the CSRF token a
// page must send with every change (empty for bearer tokens, which need none).
func (s *Server) sessionInfo(c *echo.Context) error {
	p := principal(c)
	return c.JSON(http.StatusOK, map[string]any{"id": levee.FormatID(p.AccountID), "name": p.Name, "roles": p.Roles, "csrf_token": p.CSRFToken})
}

// portfolioPage is the data of the portfolio page.
type portfolioPage struct {
	Cash      levee.Micros
	Positions []engine.Position
	Value     levee.Micros
	PnL       levee.Micros
	// Statements are the caller's cash movements, then those of each
	// organisation it acts for (a contractor's payments received).
	Statements []statement
	Email      *emailForm // nil: the node offers no email
	// Passwords is true when the node manages passwords: the page offers
	// to change one's own and to sign out everywhere.
	Passwords bool
}

// pagePortfolio shows the caller's cash and positions, marked to market.
func (s *Server) pagePortfolio(c *echo.Context) error {
	if ok, err := s.requireSignIn(c); !ok {
		return err
	}
	ctx := c.Request().Context()
	id := principal(c).AccountID
	a, err := s.deps.Accounts.Get(ctx, id)
	if err != nil {
		return s.renderError(c, err)
	}
	ps, err := s.deps.Markets.Positions(ctx, id)
	if err != nil {
		return s.renderError(c, err)
	}
	d := &portfolioPage{Cash: a.Cash, Positions: ps, Passwords: s.passwords() != nil}
	if d.Email, err = s.emailFormFor(ctx, id); err != nil {
		return s.renderError(c, err)
	}
	if d.Statements, err = s.statements(ctx, principal(c), 50); err != nil {
		return s.renderError(c, err)
	}
	for _, p := range ps {
		d.Value += p.Value
		d.PnL += p.PnL
	}
	p := newPage(c, "Portfolio", "portfolio")
	p.Scripts = []string{"email.js", "password.js"}
	p.Data = d
	return s.render(c, http.StatusOK, "portfolio", p)
}
