package web

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"levee"
	"levee/accounts"
)

// SessionCookie names the browser session cookie.
const SessionCookie = "levee_session"

const principalKey = "principal"

// principal returns the signed-in caller, or nil.
func principal(c echo.Context) *accounts.Principal {
	p, _ := c.Get(principalKey).(*accounts.Principal)
	return p
}

// recoverPanic turns a panic into a 500 and a log line with the stack, so one
// bad request never takes the process down.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
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
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		s.metrics.observe(c.Request().Method, route, status, elapsed)
		level := slog.LevelDebug
		if status >= 500 {
			level = slog.LevelWarn
		} else if c.Request().Method != http.MethodGet {
			level = slog.LevelInfo
		}
		s.logger.Log(c.Request().Context(), level, "http request",
			slog.String("method", c.Request().Method), slog.String("route", route),
			slog.Int("status", status), slog.Duration("elapsed", elapsed))
		return nil
	}
}

// securityHeaders sets the headers every response should carry.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
		if c.IsTLS() {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}

// authenticate resolves the caller from a bearer token or a session cookie.
// A bad token is an error at once (a program should know); a stale cookie is
// simply no session.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		if h := c.Request().Header.Get("Authorization"); h != "" {
			token, ok := strings.CutPrefix(h, "Bearer ")
			if !ok || token == "" {
				return levee.Errorf(levee.EUNAUTHORIZED, "Authorization must be \"Bearer <token>\"")
			}
			p, err := s.deps.Accounts.Authenticate(ctx, token)
			if err != nil {
				return err
			}
			c.Set(principalKey, p)
		} else if ck, err := c.Cookie(SessionCookie); err == nil && ck.Value != "" {
			p, err := s.deps.Accounts.Session(ctx, ck.Value)
			if err == nil {
				c.Set(principalKey, p)
			} else if levee.ErrorCode(err) != levee.EUNAUTHORIZED {
				return err
			}
		}
		return next(c)
	}
}

// checkCSRF requires the session's CSRF token on every state-changing request
// made with a cookie. Bearer-token calls cannot be forged cross-site, so they
// need none.
func (s *Server) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := principal(c)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if p == nil || p.Via != "session" {
			return next(c)
		}
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" {
			got = c.FormValue("_csrf")
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRFToken)) != 1 {
			return levee.Errorf(levee.EFORBIDDEN, "missing or wrong CSRF token; reload the page")
		}
		return next(c)
	}
}

// signedIn refuses anonymous callers.
func (s *Server) signedIn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if principal(c) == nil {
			return levee.Errorf(levee.EUNAUTHORIZED, "sign in first: send \"Authorization: Bearer <token>\" or a session cookie")
		}
		return next(c)
	}
}

// requireRole admits callers holding any of roles.
func (s *Server) requireRole(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return s.signedIn(func(c echo.Context) error {
			p := principal(c)
			for _, r := range roles {
				if p.Has(r) {
					return next(c)
				}
			}
			return levee.Errorf(levee.EFORBIDDEN, "this needs the %s role", strings.Join(roles, " or "))
		})
	}
}
