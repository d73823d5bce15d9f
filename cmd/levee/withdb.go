package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"levee/migrations"
	"levee/pgserver"
)

// withDB runs a command with a private, non-durable PostgreSQL for the test
// suite: every test package (a process of its own) shares this one server and
// clones its databases from one migrated template. With DATABASE_URL set it
// uses that server instead.
func withDB(ctx context.Context, cfg Config, logger *slog.Logger, args []string) (int, error) {
	if len(args) == 0 {
		return 2, errors.New("with-db: give a command after --")
	}
	url := cfg.DatabaseURL
	if url == "" {
		dir := filepath.Join(cfg.DataDir, "test-pg")
		if err := pgserver.Reachable(dir); err != nil {
			// A checkout under a private home directory: the test server's
			// data is throwaway, so put it where the postgres user can go.
			tmp, err := os.MkdirTemp("", "levee-test-")
			if err != nil {
				return 1, err
			}
			os.Chmod(tmp, 0o711)
			defer os.RemoveAll(tmp)
			dir = filepath.Join(tmp, "pg")
		}
		srv, err := pgserver.Start(ctx, pgserver.Options{
			Dir: dir, MaxConnections: 400, Logger: logger,
		})
		if err != nil {
			return 1, err
		}
		defer srv.Stop()
		url = srv.URL("postgres")
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), migrations.TestDatabaseURLEnv+"="+url)
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("with-db: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitCode(err), nil
	case <-ctx.Done():
		cmd.Process.Signal(os.Interrupt)
		return exitCode(<-done), nil
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	} else if err != nil {
		return 1
	}
	return 0
}
