// Package pgserver runs a private PostgreSQL server for one Levee data
// directory: found on the machine, initialised on first start, reachable only
// through a unix socket inside the data directory, and stopped with its owner.
package pgserver

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq" // the driver for the readiness probe
)

// Options configure a server.
type Options struct {
	// Dir is the cluster's directory (Levee uses <data>/pg).
	Dir string
	// Durable keeps fsync on. Tests turn it off: they never need a crash to
	// keep their data, and it makes a run several times faster.
	Durable bool
	// MaxConnections is PostgreSQL's max_connections (default 100).
	MaxConnections int
	// Settings are further server settings as "name=value", passed as -c
	// after the ones above (so they may override them): the benchmarks use
	// them to log checkpoints, lock waits and autovacuum runs.
	Settings []string
	// Logger receives progress messages; nil means slog.Default().
	Logger *slog.Logger
}

// MinWALSize is a durable server's min_wal_size. A backend whose commit
// needs the next WAL segment when no old one is waiting to be reused
// creates it: it writes 16 MB of zeros and flushes them while it holds the
// WAL's write lock, so every commit waits behind it. Measured here (make
// orders, session 16): such commits took 10-30 ms, against under 1 ms,
// once every few seconds at 1,000-3,000 orders/s, and they were most of
// the orders over the p99 goals. At a checkpoint PostgreSQL renames old
// segments for reuse rather than removing them while the WAL is under
// min_wal_size (80 MB by default, five segments: a few seconds of a busy
// market); 1 GB keeps about five minutes of 3,000 orders/s ready, for one
// gigabyte of disk. docs/operations.md says the same for a PostgreSQL of
// one's own.
const MinWALSize = "1GB"

// MinWALSizeMB is MinWALSize in megabytes, as pg_settings gives it.
const MinWALSizeMB = 1024

// Server is a running private PostgreSQL.
type Server struct {
	opts    Options
	sockDir string
	cmd     *exec.Cmd
	done    chan struct{}
	logger  *slog.Logger
}

// ErrNotInstalled reports that no PostgreSQL binaries were found.
var ErrNotInstalled = errors.New("PostgreSQL is not installed: run `apt-get install -y postgresql` (as root) or put initdb and postgres on PATH")

// BinDir finds the directory that holds initdb and postgres: PATH first, then
// the newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	return "", ErrNotInstalled
}

// Tool finds one of PostgreSQL's client programs (pg_dump, pg_restore):
// beside the server that BinDir finds first (following a symlink to its real
// directory, so the client matches the server's version), then on PATH, then
// in the newest /usr/lib/postgresql/*/bin.
func Tool(name string) (string, error) {
	var dirs []string
	if bin, err := BinDir(); err == nil {
		dirs = append(dirs, bin)
		if real, err := filepath.EvalSymlinks(filepath.Join(bin, "postgres")); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	for _, dir := range dirs {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Slice(found, func(i, j int) bool { return versionOf(filepath.Dir(found[i])) > versionOf(filepath.Dir(found[j])) })
	for _, p := range found {
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed: run `apt-get install -y postgresql-client` (as root) or put it on PATH", name)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// Initialised reports whether dir holds a PostgreSQL cluster.
func Initialised(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "PG_VERSION"))
	return err == nil
}

// ErrInUse reports that a server another live process started holds the
// cluster (Start refuses to stop it).
var ErrInUse = errors.New("pgserver: the data directory is in use")

// parentOf returns the parent process id of pid (0 if unknown), from
// /proc/<pid>/stat: the fourth field, after the command name in brackets.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	fields := strings.Fields(rest)
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// ErrNotRunning reports that no server runs on a cluster (Attach).
var ErrNotRunning = errors.New("pgserver: no PostgreSQL server is running on this cluster")

// Attach connects to the server that another process (a running `levee
// serve`) runs on the cluster in dir, without touching it: Stop on the
// result does nothing. It returns ErrNotRunning when no live server holds
// the cluster, so the caller may Start one. Start itself would stop a
// server it finds holding the directory, which is right for an orphan and
// wrong for a server that is in use.
func Attach(ctx context.Context, dir string) (*Server, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotRunning
	} else if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	if err := syscall.Kill(pid, 0); pid <= 0 || err != nil && err != syscall.EPERM || !isPostgres(pid) {
		return nil, ErrNotRunning
	}
	s := &Server{opts: Options{Dir: dir}, sockDir: socketDir(dir), logger: slog.Default(), done: make(chan struct{})}
	if err := s.waitReady(ctx, 30*time.Second); err != nil {
		return nil, fmt.Errorf("pgserver: PostgreSQL (pid %d) holds %s but does not answer on its socket: %w", pid, dir, err)
	}
	return s, nil
}

func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// Start initialises the cluster in opts.Dir if needed and starts PostgreSQL.
// The server dies with this process (parent-death signal), so a crashed Levee
// never leaves an orphan holding the data directory.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = 100
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	opts.Dir = dir
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, logger: opts.Logger, done: make(chan struct{})}
	s.sockDir = socketDir(dir)
	if cred != nil {
		// The data directory is ours: let the postgres user pass through it
		// (search only, no listing) to the cluster inside.
		parent := filepath.Dir(dir)
		if err := os.MkdirAll(parent, 0o711); err != nil {
			return nil, fmt.Errorf("pgserver: create %s: %w", parent, err)
		}
		if fi, err := os.Stat(parent); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(parent, fi.Mode().Perm()|0o011)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pgserver: create %s: %w", dir, err)
	}
	if err := os.MkdirAll(s.sockDir, 0o700); err != nil {
		return nil, fmt.Errorf("pgserver: create socket dir: %w", err)
	}
	if cred != nil {
		// PostgreSQL refuses to run as root; the cluster belongs to the
		// unprivileged postgres user, who must be able to reach it.
		for _, d := range []string{dir, s.sockDir} {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("pgserver: chown %s: %w", d, err)
			}
		}
		if err := reachable(dir); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		s.logger.Info("initialising private PostgreSQL cluster", slog.String("dir", dir))
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", dir, "-U", "levee",
			"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("pgserver: initdb: %w: %s", err, out)
		}
	}
	if err := s.clearStaleLock(); err != nil {
		return nil, err
	}
	fsync := "off"
	if opts.Durable {
		fsync = "on"
	}
	args := []string{"-D", dir,
		"-c", "listen_addresses=",
		"-c", "unix_socket_directories=" + s.sockDir,
		"-c", "unix_socket_permissions=0700",
		"-c", "max_connections=" + strconv.Itoa(opts.MaxConnections),
		"-c", "fsync=" + fsync,
		"-c", "full_page_writes=" + fsync,
		"-c", "logging_collector=off",
	}
	if opts.Durable {
		args = append(args, "-c", "min_wal_size="+MinWALSize)
	}
	for _, kv := range opts.Settings {
		args = append(args, "-c", kv)
	}
	logFile, err := os.OpenFile(filepath.Join(filepath.Dir(dir), "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgserver: open log: %w", err)
	}
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("pgserver: start postgres: %w", err)
	}
	go func() {
		s.cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	s.logger.Info("private PostgreSQL ready", slog.String("socket_dir", s.sockDir))
	return s, nil
}

// URL returns a connection string for database name on this server.
func (s *Server) URL(dbname string) string {
	return fmt.Sprintf("host=%s port=5432 user=levee dbname=%s sslmode=disable", s.sockDir, dbname)
}

// Stop shuts PostgreSQL down (fast shutdown: active transactions roll back,
// committed ones are safe) and waits for it to exit.
func (s *Server) Stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
		return nil
	case <-time.After(30 * time.Second):
	}
	s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	return fmt.Errorf("pgserver: postgres did not stop within 30s")
}

// Done is closed when the server process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	db, err := sql.Open("postgres", s.URL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("pgserver: postgres exited during start; see %s", filepath.Join(filepath.Dir(s.opts.Dir), "postgres.log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgserver: not ready after %s: %w", timeout, err)
		}
	}
}

// clearStaleLock handles a postmaster.pid left by a server that died with a
// crashed Levee: if its process is gone the file is removed; if it is still
// shutting down, we wait for it.
func (s *Server) clearStaleLock() error {
	pidFile := filepath.Join(s.opts.Dir, "postmaster.pid")
	for i := 0; ; i++ {
		b, err := os.ReadFile(pidFile)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		} else if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		pid, _ := strconv.Atoi(strings.TrimSpace(first))
		if pid <= 0 || syscall.Kill(pid, 0) != nil || !isPostgres(pid) {
			s.logger.Warn("removing stale postmaster.pid", slog.Int("pid", pid))
			return os.Remove(pidFile)
		}
		if i == 0 {
			if parent := parentOf(pid); parent > 1 && processAlive(parent) {
				// Not an orphan: another process (a running levee) started
				// it and still uses it. Stopping it would take that
				// process's database away.
				return fmt.Errorf("%w: PostgreSQL pid %d, started by process %d, holds %s; stop that levee first (levee ledger verify, migrate and backup can run beside it)",
					ErrInUse, pid, parent, s.opts.Dir)
			}
			// An orphan of an earlier run: ask it to stop, then wait.
			s.logger.Warn("stopping a PostgreSQL left running on this data directory", slog.Int("pid", pid))
			syscall.Kill(pid, syscall.SIGINT)
		}
		if i > 300 {
			return fmt.Errorf("pgserver: PostgreSQL pid %d still holds %s", pid, s.opts.Dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func isPostgres(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return true // cannot tell: be careful and treat it as alive
	}
	return strings.HasPrefix(strings.TrimSpace(string(b)), "postgres")
}

// credential returns the postgres user's credential when we run as root, nil otherwise.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgserver: running as root and there is no postgres user to run PostgreSQL as (create one with `useradd -r postgres`): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// Reachable reports whether a cluster in dir can be run: always when we are
// not root; as root, when the postgres user can pass through every ancestor
// of dir (the data directory itself is made passable by Start).
func Reachable(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	return reachable(filepath.Dir(abs))
}

// reachable checks that every ancestor of dir lets other users pass, so that
// the postgres user can reach a cluster created by root.
func reachable(dir string) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pgserver: the postgres user cannot reach %s because %s is not searchable by others; choose another --data directory or run `chmod o+x %s`", dir, d, d)
		}
		if d == "/" {
			return nil
		}
	}
}

// socketDir returns where the socket lives: inside the cluster directory,
// unless that path is too long for a unix socket (108 bytes), in which case a
// short private directory under /tmp named for the cluster is used.
func socketDir(dir string) string {
	if len(dir)+len("/.s.PGSQL.5432") < 100 {
		return dir
	}
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(os.TempDir(), "levee-pg-"+hex.EncodeToString(sum[:6]))
}
