package web

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
)

// SessionCookie names the browser session cookie.
const SessionCookie = "levee_session"

const principalKey = "principal"

// principal returns the signed-in caller, or nil.
func principal(c *echo.Context) *accounts.Principal {
	p, _ := c.Get(principalKey).(*accounts.Principal)
	return p
}

// recoverPanic turns a panic into a 500 and a log line with the stack, so one
// bad request never takes the process down.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				s.logger.Error("panic in handler", slog.String("path", c.Path()), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

// accessLog logs one line per request and feeds the metrics. It never logs
// headers or bodies: they carry tokens, passwords and sealed bids.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Echo().HTTPErrorHandler(c, err)
		}
		status := http.StatusOK
		if r, _ := echo.UnwrapResponse(c.Response()); r != nil && r.Status != 0 {
			status = r.Status
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		s.metrics.observe(c.Request().Method, route, status, elapsed)
		level := slog.LevelDebug
		if status >= 500 {
			level = slog.LevelWarn
		} else if c.Request().Method != http.MethodGet && !(status == http.StatusCreated && route == orderRoute) {
			// An acknowledged order is at debug like a read: its trade
			// and ledger entry are its record, and a line per order was
			// a write to the log per order at thousands a second.
			level = slog.LevelInfo
		}
		// LogAttrs: Log's ...any would box every attribute, even at a
		// level that is off.
		s.logger.LogAttrs(c.Request().Context(), level, "http request",
			slog.String("method", c.Request().Method), slog.String("route", route),
			slog.Int("status", status), slog.Duration("elapsed", elapsed))
		return nil
	}
}

// The security headers' values, made once: Header.Set makes a new slice
// per header per response. They are shared by every response, so nothing
// may change them in place (Set and Add replace or copy, which is safe).
var (
	headerNoSniff  = []string{"nosniff"}
	headerDeny     = []string{"DENY"}
	headerReferrer = []string{"same-origin"}
	headerCSP      = []string{"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"}
	headerHSTS     = []string{"max-age=31536000"}
	headerJSON     = []string{echo.MIMEApplicationJSON}
)

// securityHeaders sets the headers every response should carry.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		h := c.Response().Header()
		h["X-Content-Type-Options"] = headerNoSniff[:1:1]
		h["X-Frame-Options"] = headerDeny[:1:1]
		h["Referrer-Policy"] = headerReferrer[:1:1]
		h["Content-Security-Policy"] = headerCSP[:1:1]
		if c.IsTLS() {
			h["Strict-Transport-Security"] = headerHSTS[:1:1]
		}
		return next(c)
	}
}

// authenticate resolves the caller from a bearer token or a session cookie.
// A bad token is an error at once (a program should know); a stale cookie is
// simply no session, and is cleared.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		ctx := c.Request().Context()
		if h := c.Request().Header.Get("Authorization"); h != "" {
			token, ok := strings.CutPrefix(h, "Bearer ")
			if p, cached := s.deps.Accounts.CachedToken(token); ok && cached {
				// A token in use costs no query: serve it even from an
				// address throttled for someone else's guesses (many
				// people can share one address).
				c.Set(principalKey, p)
				return next(c)
			}
			// Bad tokens are throttled per address like bad passwords, and
			// checked before the lookup, so guessing costs no query.
			addr := addressKey(c.RealIP())
			if !s.badTokens.has(addr) {
				c.Response().Header().Set("Retry-After", "60")
				return errRateLimited
			}
			if !ok || token == "" {
				s.badTokens.allow(addr)
				return levee.Errorf(levee.EUNAUTHORIZED, "Authorization must be \"Bearer <token>\"")
			}
			p, err := s.deps.Accounts.Authenticate(ctx, token)
			if levee.ErrorCode(err) == levee.EUNAUTHORIZED {
				s.badTokens.allow(addr)
			}
			if err != nil {
				return err
			}
			c.Set(principalKey, p)
		} else if ck, err := c.Cookie(SessionCookie); err == nil && ck.Value != "" {
			// Stale cookies count against the address like bad tokens; past
			// the budget a cookie is not looked up at all and the request
			// is served as anonymous (the cookie is kept: it may be good),
			// so guessing session ids costs no query.
			addr := addressKey(c.RealIP())
			if !s.badTokens.has(addr) {
				return next(c)
			}
			p, err := s.deps.Accounts.Session(ctx, ck.Value)
			switch {
			case err == nil:
				c.Set(principalKey, p)
			case levee.ErrorCode(err) == levee.EUNAUTHORIZED:
				// Expired or ended elsewhere: the browser forgets it, so
				// its next requests cost nothing either.
				s.badTokens.allow(addr)
				clearSessionCookie(c)
			default:
				return err
			}
		}
		return next(c)
	}
}

// checkCSRF requires the session's CSRF token on every state-changing request
// made with a cookie. Bearer-token calls cannot be forged cross-site, so they
// need none. The token is read from the X-CSRF-Token header only: a form
// field would mean parsing the body here, before the handler's body limit
// and for routes that take no body at all.
func (s *Server) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		p := principal(c)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if p == nil || p.Via != "session" {
			return next(c)
		}
		got := c.Request().Header.Get("X-CSRF-Token")
		if subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRFToken)) != 1 {
			return levee.Errorf(levee.EFORBIDDEN, "missing or wrong CSRF token; reload the page")
		}
		return next(c)
	}
}

// sameOriginJSON guards requests that carry no credentials yet, such as
// signing in: a cross-site page can post a text/plain form without a
// preflight and sign the victim into the attacker's account (login CSRF).
// Browsers cannot send application/json cross-site without a preflight we
// never grant, and they send Origin with every cross-site POST.
func sameOriginJSON(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != echo.MIMEApplicationJSON {
			return levee.Invalid("Content-Type", "send the request as Content-Type: application/json")
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, c.Scheme(), r.Host) {
			return levee.Errorf(levee.EFORBIDDEN, "cross-site request refused (Origin %q)", o)
		}
		return next(c)
	}
}

// sameOrigin reports whether the Origin header names this site.
func sameOrigin(origin, scheme, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host) && strings.EqualFold(u.Scheme, scheme) &&
		u.User == nil && (u.Path == "" || u.Path == "/")
}

// signedIn refuses anonymous callers.
func (s *Server) signedIn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		if principal(c) == nil {
			return levee.Errorf(levee.EUNAUTHORIZED, "sign in first: send \"Authorization: Bearer <token>\" or a session cookie")
		}
		return next(c)
	}
}

// requireRole admits callers holding any of roles.
func (s *Server) requireRole(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return s.signedIn(func(c *echo.Context) error {
			p := principal(c)
			if p.Leaving { // no new acts in any role once leaving (docs/privacy.md)
				return levee.Errorf(levee.EFORBIDDEN, "you have left the city: this account is closed for new activity")
			}
			for _, r := range roles {
				if p.Has(r) {
					return next(c)
				}
			}
			return levee.Errorf(levee.EFORBIDDEN, "this needs the %s role", strings.Join(roles, " or "))
		})
	}
}
