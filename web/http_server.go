package web

import (
	"log/slog"
	"net/http"
	"time"
)

// NewHTTPServer returns the http.Server levee serve runs h in, with its
// limits: a slow client cannot hold a connection open by trickling its
// headers or body, nor sit idle on it for long; headers are bounded. The
// benchmark's servers use it too, so that they measure what levee serve
// does. Errors net/http logs itself go to logger at warn.
func NewHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
