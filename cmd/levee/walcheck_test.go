package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"levee/pgserver"
)

func TestWALAdvice(t *testing.T) {
	for _, c := range []struct {
		fsync string
		mb    int64
		warn  bool
	}{
		{"on", 80, true},    // PostgreSQL's default
		{"on", 1023, true},  // just under
		{"on", 1024, false}, // pgserver.MinWALSize
		{"on", 4096, false}, // more
		{"off", 80, false},  // a test server: nothing is flushed
	} {
		got := walAdvice(c.fsync, c.mb)
		if (got != "") != c.warn {
			t.Errorf("fsync=%s min_wal_size=%dMB: %q", c.fsync, c.mb, got)
		}
		if c.warn && !strings.Contains(got, "docs/operations.md") {
			t.Errorf("the warning does not say where to read more: %q", got)
		}
	}
}

// warnSmallWAL reads the settings of a real durable PostgreSQL: Levee's
// own says nothing; one at PostgreSQL's default min_wal_size gets the
// warning.
func TestWarnSmallWALReadsTheServer(t *testing.T) {
	for _, c := range []struct {
		name     string
		settings []string
		warn     bool
	}{
		{"levee's private PostgreSQL", nil, false},
		{"PostgreSQL's default", []string{"min_wal_size=80MB"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			base, err := os.MkdirTemp("", "walcheck-")
			if err != nil {
				t.Fatal(err)
			}
			os.Chmod(base, 0o711) // the postgres user must reach it when tests run as root
			t.Cleanup(func() { os.RemoveAll(base) })
			srv, err := pgserver.Start(context.Background(), pgserver.Options{Dir: filepath.Join(base, "pg"), Durable: true,
				Settings: c.settings, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Stop() })
			db, err := sqlx.Open("postgres", srv.URL("postgres"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var out strings.Builder
			warnSmallWAL(context.Background(), db, slog.New(slog.NewTextHandler(&out, nil)))
			if got := strings.Contains(out.String(), "level=WARN") && strings.Contains(out.String(), "min_wal_size"); got != c.warn {
				t.Errorf("warned %v, want %v: %s", got, c.warn, out.String())
			}
		})
	}
}
