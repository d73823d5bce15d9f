// Package dbtest gives each test its own real PostgreSQL database, cloned in
// milliseconds from a template that was migrated once per run.
//
// The server is the one named by LEVEE_TEST_DATABASE_URL (make test starts a
// private one for the whole run and sets it), or else a private server this
// test process starts for itself and which dies with it.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"levee/migrations"
	"levee/pgserver"
)

// EnvURL names the variable holding the test server's connection string.
const EnvURL = migrations.TestDatabaseURLEnv

var (
	once     sync.Once
	baseURL  string
	template string
	setupErr error
)

// New returns a fresh, migrated database for t, dropped when t ends.
func New(t testing.TB) *sqlx.DB {
	t.Helper()
	url := NewURL(t)
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatalf("dbtest: open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// NewURL creates a fresh, migrated database for t and returns its connection
// string, for tests that start the whole program against it.
func NewURL(t testing.TB) string {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		t.Fatalf("dbtest: %v", setupErr)
	}
	name := "levee_test_" + randomHex(8)
	admin, err := sqlx.Open("postgres", WithDBName(baseURL, "postgres"))
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	defer admin.Close()
	ctx := context.Background()
	// CREATE DATABASE ... TEMPLATE fails while another session is connected to
	// the template; that only happens briefly, so retry.
	for i := 0; ; i++ {
		_, err = admin.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, template))
		if err == nil || i > 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sqlx.Open("postgres", WithDBName(baseURL, "postgres"))
		if err != nil {
			return
		}
		defer a.Close()
		a.Exec(fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name))
	})
	return WithDBName(baseURL, name)
}

func setup() {
	baseURL = os.Getenv(EnvURL)
	if baseURL == "" {
		dir, err := os.MkdirTemp("", "levee-test-pg-")
		if err != nil {
			setupErr = err
			return
		}
		os.Chmod(dir, 0o755)
		srv, err := pgserver.Start(context.Background(), pgserver.Options{
			Dir: filepath.Join(dir, "pg"), MaxConnections: 300,
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			setupErr = err
			return
		}
		baseURL = srv.URL("postgres")
	}
	template = "levee_tmpl_" + migrations.Fingerprint()
	setupErr = ensureTemplate(context.Background())
}

// ensureTemplate builds the migrated template database once per server and
// set of migrations; concurrent test processes wait on an advisory lock.
func ensureTemplate(ctx context.Context) error {
	admin, err := sqlx.Open("postgres", WithDBName(baseURL, "postgres"))
	if err != nil {
		return err
	}
	defer admin.Close()
	conn, err := admin.Connx(ctx)
	if err != nil {
		return fmt.Errorf("connect to test server: %w", err)
	}
	defer conn.Close()
	const key = 0x6c65766565_746d70
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(key)); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, int64(key))
	var exists bool
	if err := conn.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, template); err != nil {
		return err
	}
	if exists {
		return nil
	}
	building := template + "_building"
	if _, err := conn.ExecContext(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+building); err != nil {
		return err
	}
	db, err := sqlx.Open("postgres", WithDBName(baseURL, building))
	if err != nil {
		return err
	}
	err = migrations.Migrate(ctx, db)
	db.Close()
	if err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	_, err = conn.ExecContext(ctx, `ALTER DATABASE `+building+` RENAME TO `+template)
	return err
}

// WithDBName returns connStr (a postgres:// URL or key=value string) pointing
// at database name.
func WithDBName(connStr, name string) string {
	if strings.HasPrefix(connStr, "postgres://") || strings.HasPrefix(connStr, "postgresql://") {
		u, err := url.Parse(connStr)
		if err == nil {
			u.Path = "/" + name
			return u.String()
		}
	}
	return connStr + " dbname=" + name // later keys win in lib/pq
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
