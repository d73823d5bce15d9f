package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
)

// healthz says the process is alive; it touches nothing else.
func (s *Server) healthz(c *echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether to send traffic here: the database answers and its
// schema is the one this binary expects.
func (s *Server) readyz(c *echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	body := map[string]any{"status": "ready"}
	if s.deps.ReadyInfo != nil {
		for k, v := range s.deps.ReadyInfo() {
			body[k] = v
		}
	}
	if err := s.deps.Ready(ctx); err != nil {
		body["status"], body["reason"] = "unavailable", levee.ErrorMessage(err)
		return c.JSON(http.StatusServiceUnavailable, body)
	}
	return c.JSON(http.StatusOK, body)
}
