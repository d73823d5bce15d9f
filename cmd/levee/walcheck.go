package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"

	"levee/pgserver"
)

// warnSmallWAL warns when the PostgreSQL serving Levee keeps too few WAL
// segments for reuse: a commit that has to create one waits for 16 MB of
// zeros to be written and flushed, and so does every order behind it
// (docs/operations.md, "PostgreSQL's WAL"). Levee's private PostgreSQL has
// enough (pgserver.MinWALSize); an external one is the operator's to set.
func warnSmallWAL(ctx context.Context, db *sqlx.DB, l *slog.Logger) {
	var s struct {
		Fsync      string `db:"fsync"`
		MinWALSize int64  `db:"min_wal_size"`
	}
	err := db.GetContext(ctx, &s, `SELECT current_setting('fsync') AS fsync,
		(SELECT setting::bigint FROM pg_settings WHERE name = 'min_wal_size' AND unit = 'MB') AS min_wal_size`)
	if err != nil {
		l.Debug("could not read PostgreSQL's WAL settings", slog.Any("error", err))
		return
	}
	if advice := walAdvice(s.Fsync, s.MinWALSize); advice != "" {
		l.Warn(advice, slog.Int64("min_wal_size_mb", s.MinWALSize), slog.Int64("advised_mb", pgserver.MinWALSizeMB))
	}
}

// walAdvice is warnSmallWAL's judgement: nothing to say for a server that
// does not flush (fsync off: tests), or that keeps enough WAL.
func walAdvice(fsync string, minWALSizeMB int64) string {
	if fsync != "on" || minWALSizeMB >= pgserver.MinWALSizeMB {
		return ""
	}
	return fmt.Sprintf("PostgreSQL's min_wal_size is %d MB: under load, commits that create WAL segments will stall orders for 10-30 ms; set it to %d MB or more (docs/operations.md)",
		minWALSizeMB, pgserver.MinWALSizeMB)
}
