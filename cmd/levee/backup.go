package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/ledger"
	"levee/migrations"
	"levee/pgserver"
)

// backupInfo is what a backup holds, read in the snapshot pg_dump dumps.
type backupInfo struct {
	File          string
	Bytes         int64
	SchemaVersion int
	HeadSeq       int64
	HeadHash      string
	Took          time.Duration
}

// backup writes a consistent copy of Levee's database to out while Levee may
// be running: pg_dump in its custom format, reading one snapshot, through the
// private cluster's socket (attached to the running server, or started for
// the backup when Levee is down) or DATABASE_URL. pg_dump's output is
// streamed into a file we create, so the file is ours even when the cluster
// runs as the postgres user, and it appears under its name only once it is
// complete and pg_restore can read it.
func backup(ctx context.Context, cfg Config, logger *slog.Logger, out string) (backupInfo, error) {
	start := time.Now()
	info := backupInfo{File: out}
	if out == "" {
		return info, errors.New("backup: --out FILE is required")
	}
	pgDump, err := pgserver.Tool("pg_dump")
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	pgRestore, err := pgserver.Tool("pg_restore")
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	dbURL, stop, err := backupSource(ctx, cfg, logger)
	if err != nil {
		return info, err
	}
	defer stop()

	db, err := sqlx.Open("postgres", dbURL)
	if err != nil {
		return info, fmt.Errorf("backup: open database: %w", err)
	}
	defer db.Close()
	// Export the snapshot pg_dump will read, and read in it what the backup
	// holds, so that the line we print describes exactly the file.
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return info, fmt.Errorf("backup: connect to the database: %w", err)
	}
	defer tx.Rollback()
	var snapshot string
	if err := tx.GetContext(ctx, &snapshot, `SELECT pg_export_snapshot()`); err != nil {
		return info, fmt.Errorf("backup: export snapshot: %w", err)
	}
	if err := tx.GetContext(ctx, &info.SchemaVersion, `SELECT coalesce(max(version), 0) FROM schema_migrations`); err != nil {
		return info, fmt.Errorf("backup: the database holds no Levee schema (run `levee migrate` first?): %w", err)
	}
	seq, hash, err := ledger.Head(ctx, tx)
	if err != nil {
		return info, fmt.Errorf("backup: read the ledger's head: %w", err)
	}
	info.HeadSeq, info.HeadHash = seq, hex.EncodeToString(hash)

	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".partial-*")
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	partial := f.Name()
	defer os.Remove(partial) // a no-op once renamed
	conninfo, password, err := libpqConninfo(dbURL)
	if err != nil {
		f.Close()
		return info, fmt.Errorf("backup: DATABASE_URL: %w", err)
	}
	err = runPG(ctx, pgDump, password, f,
		"--format=custom", "--no-password", "--lock-wait-timeout=60s", "--snapshot="+snapshot, "--dbname="+conninfo)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	tx.Rollback()
	// A file pg_restore cannot list is not a backup.
	if err := runPG(ctx, pgRestore, "", io.Discard, "--list", partial); err != nil {
		return info, fmt.Errorf("backup: the written file does not read back: %w", err)
	}
	if err := os.Rename(partial, out); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	if d, err := os.Open(filepath.Dir(out)); err == nil {
		d.Sync()
		d.Close()
	}
	if fi, err := os.Stat(out); err == nil {
		info.Bytes = fi.Size()
	}
	info.Took = time.Since(start)
	logger.Info("backup written", slog.String("file", out), slog.Int64("bytes", info.Bytes),
		slog.Int("schema_version", info.SchemaVersion), slog.Int64("ledger_head_seq", info.HeadSeq),
		slog.String("ledger_head_hash", info.HeadHash), slog.Duration("elapsed", info.Took))
	return info, nil
}

// backupSource returns the database to back up and a function that releases
// it: DATABASE_URL, the running private cluster of --data, or that cluster
// started for the backup (and stopped after it) when Levee is not running.
func backupSource(ctx context.Context, cfg Config, logger *slog.Logger) (string, func(), error) {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, func() {}, nil
	}
	dir := filepath.Join(cfg.DataDir, "pg")
	if !pgserver.Initialised(dir) {
		return "", nil, fmt.Errorf("backup: no Levee database in %s (no PostgreSQL cluster in %s): give --data the directory `levee serve` uses, or set DATABASE_URL", cfg.DataDir, dir)
	}
	srv, err := pgserver.Attach(ctx, dir)
	if errors.Is(err, pgserver.ErrNotRunning) {
		logger.Info("levee is not running: starting its PostgreSQL for the backup", slog.String("dir", dir))
		srv, err = pgserver.Start(ctx, pgserver.Options{Dir: dir, Durable: true, Logger: logger})
	}
	if err != nil {
		return "", nil, fmt.Errorf("backup: %w", err)
	}
	return srv.URL("postgres"), func() { srv.Stop() }, nil
}

// restoreInfo is what a restore found.
type restoreInfo struct {
	Dir    string
	Report ledger.Report
	Took   time.Duration
}

// restoreStaging is where a restore builds its cluster inside the new data
// directory; it becomes <data>/pg only once the ledger verifies, so that
// `levee serve` never runs on a restore that failed.
const restoreStaging = "pg-restoring"

// restore builds a new data directory from a backup: a fresh private
// cluster, pg_restore into it in one transaction, migrations up to this
// binary's schema (a newer schema is refused), then the ledger's full
// verification. Only a verified restore is moved into place as <data>/pg.
func restore(ctx context.Context, cfg Config, logger *slog.Logger, in string) (restoreInfo, error) {
	start := time.Now()
	info := restoreInfo{Dir: cfg.DataDir}
	switch {
	case in == "":
		return info, errors.New("restore: --in FILE is required")
	case cfg.DatabaseURL != "":
		return info, errors.New("restore: DATABASE_URL is set, but restore builds a private PostgreSQL in --data; unset it (to restore into another server, use pg_restore there, then `levee migrate` and `levee ledger verify`)")
	case cfg.DataDir == "":
		return info, errors.New("restore: --data NEWDIR is required")
	}
	if entries, err := os.ReadDir(cfg.DataDir); err == nil && len(entries) > 0 {
		return info, fmt.Errorf("restore: %s is not empty: restore only into a new data directory, never over one that holds data", cfg.DataDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return info, fmt.Errorf("restore: %w", err)
	}
	if _, err := os.Stat(in); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	pgRestore, err := pgserver.Tool("pg_restore")
	if err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	if err := runPG(ctx, pgRestore, "", io.Discard, "--list", in); err != nil {
		return info, fmt.Errorf("restore: %s does not read as a backup (a file written by `levee backup`): %w", in, err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	staging := filepath.Join(cfg.DataDir, restoreStaging)
	// Until the ledger has been checked, a failure removes what the restore
	// made, so that the same command can simply be run again.
	keep := false
	var srv *pgserver.Server
	defer func() {
		if srv != nil {
			srv.Stop()
		}
		if !keep {
			os.RemoveAll(staging)
			os.Remove(filepath.Join(cfg.DataDir, "postgres.log"))
		}
	}()
	srv, err = pgserver.Start(ctx, pgserver.Options{Dir: staging, Durable: true, Logger: logger})
	if err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	// One transaction: a restore that fails leaves nothing half done.
	if err := runPG(ctx, pgRestore, "", io.Discard, "--no-password", "--exit-on-error", "--single-transaction",
		"--no-owner", "--no-privileges", "--dbname="+srv.URL("postgres"), in); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	db, err := sqlx.Open("postgres", srv.URL("postgres"))
	if err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	defer db.Close()
	if err := migrations.Migrate(ctx, db); err != nil {
		return info, fmt.Errorf("restore: bring the schema up to date: %w", err)
	}
	if err := migrations.Check(ctx, db); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	r, err := ledger.New(db).Verify(ctx)
	if err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	info.Report = r
	if !r.OK {
		keep = true
		return info, fmt.Errorf("restore: the restored ledger does not verify (%s); the restored cluster is kept in %s for inspection, and `levee serve` will not use it", brokenLedger(r), staging)
	}
	db.Close()
	if err := srv.Stop(); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	srv = nil
	if err := os.Rename(staging, filepath.Join(cfg.DataDir, "pg")); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	keep = true
	info.Took = time.Since(start)
	logger.Info("backup restored", slog.String("file", in), slog.String("dir", cfg.DataDir),
		slog.Int64("ledger_entries", r.Entries), slog.Int64("ledger_head_seq", r.HeadSeq),
		slog.String("ledger_head_hash", r.HeadHash), slog.Duration("elapsed", info.Took))
	return info, nil
}

// brokenLedger says where a failed verification broke, as `levee ledger verify` does.
func brokenLedger(r ledger.Report) string {
	if r.FirstBrokenSeq == 0 {
		return fmt.Sprintf("ledger BROKEN at account %s: %s", r.BrokenAccount, r.Problem)
	}
	return fmt.Sprintf("ledger BROKEN at entry %d: %s", r.FirstBrokenSeq, r.Problem)
}

// okLedger is the line `levee ledger verify` prints for a ledger that verifies.
func okLedger(r ledger.Report) string {
	return fmt.Sprintf("ledger OK: %d entries, head %d %s, trial balance %s", r.Entries, r.HeadSeq, r.HeadHash, r.TrialBalance)
}

// runPG runs a PostgreSQL client program with its standard output going to
// stdout; a failure carries the end of what it wrote to standard error. The
// password, if any, goes in the environment, never on the command line.
func runPG(ctx context.Context, path, password string, stdout io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = os.Environ()
	if password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+password)
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		if msg == "" {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		return fmt.Errorf("%s: %w: %s", filepath.Base(path), err, msg)
	}
	return nil
}

// libpqConninfo turns a lib/pq connection string (a postgres:// URL or
// key=value pairs) into one for libpq's programs without its password, which
// it returns apart so that it need not appear on a command line.
func libpqConninfo(s string) (conninfo, password string, err error) {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", "", errors.New("not a valid URL")
		}
		if u.User != nil {
			password, _ = u.User.Password()
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		if p := q.Get("password"); p != "" {
			password = p
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		return u.String(), password, nil
	}
	pairs, err := splitConninfo(s)
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	for _, kv := range pairs {
		switch kv[0] {
		case "password":
			password = kv[1]
			continue
		case "binary_parameters", "disable_prepared_binary_result": // lib/pq's own
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[0] + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(kv[1]) + "'")
	}
	return b.String(), password, nil
}

// splitConninfo reads libpq's key=value connection string: values may be
// single-quoted, and a backslash escapes the next character.
func splitConninfo(s string) ([][2]string, error) {
	var pairs [][2]string
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return pairs, nil
		}
		k := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' {
			i++
		}
		key := s[k:i]
		skip()
		if i >= len(s) || s[i] != '=' || key == "" {
			return nil, fmt.Errorf("connection string: %q is not key=value", key)
		}
		i++
		skip()
		var v strings.Builder
		quoted := i < len(s) && s[i] == '\''
		if quoted {
			i++
		}
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				v.WriteByte(s[i])
				continue
			}
			if quoted && c == '\'' || !quoted && c == ' ' {
				break
			}
			v.WriteByte(c)
		}
		if quoted {
			if i >= len(s) {
				return nil, fmt.Errorf("connection string: unterminated quote in %s", key)
			}
			i++
		}
		pairs = append(pairs, [2]string{key, v.String()})
	}
}
