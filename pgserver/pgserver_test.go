package pgserver_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"levee/pgserver"
)

const childEnv = "PGSERVER_TEST_CHILD_DIR"

// TestChildProcess is not a test on its own: TestRestartAfterOwnerIsKilled
// runs the test binary again with childEnv set, and this starts a server and
// waits to be killed, as a crashing levee would be.
func TestChildProcess(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		return
	}
	if _, err := pgserver.Start(context.Background(), pgserver.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("ready\n")
	time.Sleep(time.Minute)
	os.Exit(0)
}

func newDir(t *testing.T) string {
	// The postgres user must reach the directory when tests run as root.
	base, err := os.MkdirTemp("", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o711)
	t.Cleanup(func() { os.RemoveAll(base) })
	return filepath.Join(base, "pg")
}

func mustQuery(t *testing.T, srv *pgserver.Server, q string) string {
	t.Helper()
	db, err := sql.Open("postgres", srv.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s string
	if err := db.QueryRow(q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

func TestStartStopRestartKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := newDir(t)
	opts := pgserver.Options{Dir: dir, Durable: true, Logger: slog.New(slog.DiscardHandler)}
	srv, err := pgserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	mustQuery(t, srv, `CREATE TABLE kept (x text); INSERT INTO kept VALUES ('still here'); SELECT 'ok'`)
	if got := mustQuery(t, srv, `SHOW listen_addresses`); got != "" {
		t.Fatalf("listens on TCP: %q", got)
	}
	// Old WAL segments are kept for reuse (pgserver.MinWALSize).
	if got := mustQuery(t, srv, `SHOW min_wal_size`); got != pgserver.MinWALSize {
		t.Fatalf("min_wal_size %q, want %s", got, pgserver.MinWALSize)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	srv, err = pgserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer srv.Stop()
	if got := mustQuery(t, srv, `SELECT x FROM kept`); got != "still here" {
		t.Fatalf("after restart: %q", got)
	}
}

func TestRestartAfterOwnerIsKilled(t *testing.T) {
	dir := newDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		t.Fatalf("child: %q", line)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	start := time.Now()
	srv, err := pgserver.Start(context.Background(), pgserver.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start after the owner was killed: %v", err)
	}
	defer srv.Stop()
	if got := mustQuery(t, srv, `SELECT 'up'`); got != "up" {
		t.Fatal(got)
	}
	t.Logf("clean start after a crash took %s", time.Since(start))
}

func TestBinDir(t *testing.T) {
	dir, err := pgserver.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("%s missing in %s", b, dir)
		}
	}
}

func TestTool(t *testing.T) {
	for _, name := range []string{"pg_dump", "pg_restore"} {
		p, err := pgserver.Tool(name)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(p) != name {
			t.Fatalf("Tool(%q) = %s", name, p)
		}
	}
	if _, err := pgserver.Tool("pg_no_such_program"); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Fatalf("a missing program: %v", err)
	}
}

func TestAttachLeavesTheServerAlone(t *testing.T) {
	ctx := context.Background()
	dir := newDir(t)
	if _, err := pgserver.Attach(ctx, dir); err != pgserver.ErrNotRunning {
		t.Fatalf("attach to nothing: %v", err)
	}
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if !pgserver.Initialised(dir) {
		t.Fatal("a started cluster is not initialised")
	}
	att, err := pgserver.Attach(ctx, dir)
	if err != nil {
		t.Fatalf("attach to a running server: %v", err)
	}
	if got := mustQuery(t, att, `SELECT 'attached'`); got != "attached" {
		t.Fatal(got)
	}
	if err := att.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := mustQuery(t, srv, `SELECT 'still up'`); got != "still up" {
		t.Fatalf("the owner's server after the attached one was stopped: %q", got)
	}
	// A second Start would take the running server away from its owner
	// (a levee serving): it refuses instead.
	if _, err := pgserver.Start(ctx, pgserver.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}); !errors.Is(err, pgserver.ErrInUse) {
		t.Fatalf("a second start on a server in use: %v", err)
	}
	if got := mustQuery(t, srv, `SELECT 'still up'`); got != "still up" {
		t.Fatalf("the owner's server after a refused second start: %q", got)
	}
	srv.Stop()
	if _, err := pgserver.Attach(ctx, dir); err != pgserver.ErrNotRunning {
		t.Fatalf("attach after stop: %v", err)
	}
}
