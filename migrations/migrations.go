// Package migrations holds Levee's schema as numbered plain SQL files and
// applies them: each file in its own transaction, recorded in
// schema_migrations, serialized across concurrent starters by an advisory lock.
package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"levee"
)

//go:embed *.sql
var files embed.FS

// lockKey is the advisory lock that serializes migration runs ("levee mig").
const lockKey = 0x6c65766565_6d6967

// TestDatabaseURLEnv names the variable through which `levee with-db` hands
// the test suite its PostgreSQL server (see package dbtest).
const TestDatabaseURLEnv = "LEVEE_TEST_DATABASE_URL"

// Migration is one numbered SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// All returns the embedded migrations in version order.
func All() ([]Migration, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, name := range names {
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %q: name must start with a number and '_'", name)
		}
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("two migrations numbered %d", ms[i].Version)
		}
	}
	return ms, nil
}

// Latest returns the highest version this binary knows.
func Latest() int {
	ms, err := All()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// Fingerprint identifies the exact set of migrations (used to name test templates).
func Fingerprint() string {
	ms, _ := All()
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "%s\n%s\n", m.Name, m.SQL)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Migrate applies every migration the database has not seen. It refuses a
// database whose schema is newer than this binary knows (EINVALID-free
// conflict error), because running old code on a new schema corrupts data.
func Migrate(ctx context.Context, db *sqlx.DB) error {
	ms, err := All()
	if err != nil {
		return err
	}
	conn, err := db.Connx(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(lockKey)); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(lockKey))

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var current int
	if err := conn.GetContext(ctx, &current, `SELECT coalesce(max(version), 0) FROM schema_migrations`); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if latest := Latest(); current > latest {
		return levee.Errorf(levee.ECONFLICT, "database schema is at version %d but this levee knows only up to %d: upgrade levee", current, latest)
	}
	for _, m := range ms {
		if m.Version <= current {
			continue
		}
		tx, err := conn.BeginTxx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: record: %w", m.Name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: commit: %w", m.Name, err)
		}
	}
	return nil
}

// Check reports whether the database is exactly at this binary's latest
// version: an error says what is wrong. /readyz and start-up use it.
func Check(ctx context.Context, db *sqlx.DB) error {
	var current int
	if err := db.GetContext(ctx, &current, `SELECT coalesce(max(version), 0) FROM schema_migrations`); err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	switch latest := Latest(); {
	case current > latest:
		return levee.Errorf(levee.ECONFLICT, "database schema is at version %d but this levee knows only up to %d: upgrade levee", current, latest)
	case current < latest:
		return levee.Errorf(levee.EUNAVAILABLE, "database schema is at version %d, expected %d: run `levee migrate`", current, latest)
	}
	return nil
}
