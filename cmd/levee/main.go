// Command levee runs Levee: `levee serve`, `levee migrate`, `levee demo`,
// `levee ledger verify`, `levee jury verify CASE`, `levee backup`, `levee restore`, `levee routes`,
// and `levee with-db -- CMD` for the test suite.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"levee"
	"levee/internal/gctune"
)

const usage = `usage:
  levee serve [--addr 127.0.0.1:8080] [--data ./var] [--demo]   run the API and UI
  levee cluster [--instances 3] [--addr 127.0.0.1:8080] [--data ./var]
                                                                 several instances of the demo city on embedded NATS behind a proxy (docs/cluster.md)
  levee migrate [--data ./var]                                   apply database migrations
  levee demo [--data ./var]                                      seed the demo city and print its sign-ins
  levee ledger verify [--data ./var] [--witnesses]               recompute the ledger's hash chain and balances; with --witnesses also check it against every head the neighbours cosigned
  levee node show [--data ./var]                                 this node's name, URL, public key and its fingerprint (docs/federation.md)
  levee admin retire [--data ./var]                              after founding: revoke every admin token; the charter then changes only by the quorum
  levee jury verify [--data ./var] [--url URL] CASE              recompute a case's jury draws (docs/juries.md)
  levee backup --out FILE [--data ./var]                         write a consistent backup while Levee runs (docs/operations.md)
  levee restore --in FILE --data NEWDIR                          restore a backup into a new data directory and verify its ledger
  levee drill [--data DIR] [--federated]                         run the hurricane drill on a fresh demo city (docs/crisis.md); --federated: on four node processes, two of them SIGKILLed (docs/federation.md)
  levee with-db [--data DIR] -- CMD [ARGS...]                    run CMD with a private PostgreSQL (make test)

environment: DATABASE_URL (use this PostgreSQL instead of a private one), LEVEE_ADMIN_TOKEN,
LEVEE_ADDR, LEVEE_DATA, LEVEE_LOG_LEVEL, LEVEE_LOG_FORMAT, LEVEE_PUBLIC_URL; the network of cities: LEVEE_NODE_NAME,
LEVEE_NODE_KEY_FILE, LEVEE_WITNESS_EVERY, LEVEE_DELIVER_EVERY, LEVEE_DELIVERY_MAX_BACKOFF; several instances: LEVEE_NATS_URL,
LEVEE_INSTANCE, LEVEE_LEASE_TTL`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "levee: %s\n", describeError(err))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func describeError(err error) string {
	if levee.ErrorCode(err) != levee.EINTERNAL {
		return levee.ErrorMessage(err)
	}
	return err.Error()
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2, nil
	}
	cfg := defaultConfig()
	cmd, args := args[0], args[1:]
	if cmd == "ledger" {
		if len(args) == 0 || args[0] != "verify" {
			fmt.Fprintln(stderr, usage)
			return 2, nil
		}
		cmd, args = "ledger verify", args[1:]
	}
	for _, two := range [][2]string{{"node", "show"}, {"admin", "retire"}} {
		if cmd == two[0] {
			if len(args) == 0 || args[0] != two[1] {
				fmt.Fprintln(stderr, usage)
				return 2, nil
			}
			cmd, args = two[0]+" "+two[1], args[1:]
		}
	}
	if cmd == "jury" {
		if len(args) == 0 || args[0] != "verify" {
			fmt.Fprintln(stderr, usage)
			return 2, nil
		}
		cmd, args = "jury verify", args[1:]
	}
	fs := flag.NewFlagSet("levee "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.bindFlags(fs, cmd == "serve" || cmd == "cluster")
	instances := new(int)
	if cmd == "cluster" {
		fs.IntVar(instances, "instances", 3, "how many instances to run")
	}
	juryURL := new(string)
	if cmd == "jury verify" {
		fs.StringVar(juryURL, "url", "", "fetch the draws from the Levee server at this URL instead of the database")
	}
	federated := new(bool)
	if cmd == "drill" {
		fs.BoolVar(federated, "federated", false, "run the drill on four node processes (docs/federation.md)")
	}
	witnesses := new(bool)
	if cmd == "ledger verify" {
		fs.BoolVar(witnesses, "witnesses", false, "also check the ledger against every head the neighbours cosigned")
	}
	backupFile := new(string)
	switch cmd {
	case "backup":
		fs.StringVar(backupFile, "out", "", "write the backup to this file (replaced only by a complete backup)")
	case "restore":
		fs.StringVar(backupFile, "in", "", "the backup to restore")
	}
	switch cmd {
	case "serve", "migrate", "demo", "ledger verify", "jury verify", "with-db", "drill", "routes", "backup", "restore", "cluster", "node show", "admin retire":
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0, nil
	default:
		fmt.Fprintf(stderr, "unknown command %q\n%s\n", cmd, usage)
		return 2, nil
	}
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if err := cfg.Validate(); err != nil {
		return 2, err
	}
	logger := newLogger(cfg, stderr)
	m := NewMain(cfg, logger, stdout)
	switch cmd {
	case "serve":
		return serve(ctx, m)
	case "with-db":
		return withDB(ctx, cfg, logger, fs.Args())
	case "cluster":
		return runCluster(ctx, cfg, *instances, logger, stdout)
	case "drill":
		if *federated {
			return drillFederated(ctx, cfg, stdout)
		}
		return drill(ctx, cfg, stdout)
	case "jury verify":
		return juryVerify(ctx, m, *juryURL, fs.Args(), stdout, stderr)
	case "routes":
		return printRoutes(m, stdout)
	case "backup":
		if *backupFile == "" {
			fmt.Fprintln(stderr, "levee backup: --out FILE is required")
			return 2, nil
		}
		b, err := backup(ctx, cfg, logger, *backupFile)
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(stdout, "backup written to %s: %d bytes, schema version %d, ledger head %d %s, in %s\n",
			b.File, b.Bytes, b.SchemaVersion, b.HeadSeq, b.HeadHash, b.Took.Round(time.Millisecond))
		return 0, nil
	case "restore":
		named := false // a restore names its new directory, never falls back on LEVEE_DATA or ./var
		fs.Visit(func(f *flag.Flag) { named = named || f.Name == "data" })
		if *backupFile == "" || !named {
			fmt.Fprintln(stderr, "levee restore: --in FILE and --data NEWDIR are required")
			return 2, nil
		}
		r, err := restore(ctx, cfg, logger, *backupFile)
		if err != nil {
			if r.Report.Problem != "" {
				fmt.Fprintln(stdout, brokenLedger(r.Report))
			}
			return 1, err
		}
		fmt.Fprintln(stdout, okLedger(r.Report))
		fmt.Fprintf(stdout, "restored %s into %s in %s: start it with `levee serve --data %s`\n",
			*backupFile, r.Dir, r.Took.Round(time.Millisecond), r.Dir)
		return 0, nil
	}
	m.Config.Attach = cmd == "ledger verify" || cmd == "migrate" || cmd == "node show" || cmd == "admin retire"
	defer m.Close()
	if err := m.Open(ctx); err != nil {
		return 1, err
	}
	switch cmd {
	case "migrate":
		fmt.Fprintln(stdout, "migrations applied")
	case "demo":
		if err := m.startServices(nil); err != nil {
			return 1, err
		}
		if err := m.SeedDemo(ctx); err != nil {
			return 1, err
		}
	case "ledger verify":
		r, err := m.Ledger.Verify(ctx)
		if err != nil {
			return 1, err
		}
		if !r.OK {
			fmt.Fprintln(stdout, brokenLedger(r))
			return 1, nil
		}
		fmt.Fprintln(stdout, okLedger(r))
		if *witnesses {
			return verifyWitnesses(ctx, m, stdout)
		}
	case "node show":
		return nodeShow(ctx, m, stdout)
	case "admin retire":
		return retire(ctx, m, stdout)
	}
	return 0, nil
}

func serve(ctx context.Context, m *Main) (int, error) {
	gogc, fromEnv := gctune.Server()
	m.logger.Info("garbage collector", slog.Int("gogc", gogc), slog.Bool("from_env", fromEnv))
	if err := m.Run(ctx); err != nil {
		m.Close()
		return 1, err
	}
	select {
	case <-ctx.Done():
		m.logger.Info("shutting down")
	case err := <-m.Failed():
		m.logger.Error("stopping after a fatal error", slog.Any("error", err))
		m.Close()
		return 1, err
	}
	if err := m.Close(); err != nil {
		return 1, err
	}
	return 0, nil
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if strings.EqualFold(cfg.LogFormat, "text") {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
