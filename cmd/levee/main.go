// Command levee runs Levee: `levee serve`, `levee migrate`, `levee demo`,
// `levee ledger verify`, `levee jury verify CASE`, `levee routes`, and `levee with-db -- CMD` for the test suite.
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

	"levee"
)

const usage = `usage:
  levee serve [--addr 127.0.0.1:8080] [--data ./var] [--demo]   run the API and UI
  levee migrate [--data ./var]                                   apply database migrations
  levee demo [--data ./var]                                      seed the demo city and print its sign-ins
  levee ledger verify [--data ./var]                             recompute the ledger's hash chain and balances
  levee jury verify [--data ./var] [--url URL] CASE              recompute a case's jury draws (docs/juries.md)
  levee drill [--data DIR]                                       run the hurricane drill on a fresh demo city (docs/crisis.md)
  levee with-db [--data DIR] -- CMD [ARGS...]                    run CMD with a private PostgreSQL (make test)

environment: DATABASE_URL (use this PostgreSQL instead of a private one), LEVEE_ADMIN_TOKEN,
LEVEE_ADDR, LEVEE_DATA, LEVEE_LOG_LEVEL, LEVEE_LOG_FORMAT`

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
	if cmd == "jury" {
		if len(args) == 0 || args[0] != "verify" {
			fmt.Fprintln(stderr, usage)
			return 2, nil
		}
		cmd, args = "jury verify", args[1:]
	}
	fs := flag.NewFlagSet("levee "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.bindFlags(fs, cmd == "serve")
	juryURL := new(string)
	if cmd == "jury verify" {
		fs.StringVar(juryURL, "url", "", "fetch the draws from the Levee server at this URL instead of the database")
	}
	switch cmd {
	case "serve", "migrate", "demo", "ledger verify", "jury verify", "with-db", "drill", "routes":
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
	case "drill":
		return drill(ctx, cfg, stdout)
	case "jury verify":
		return juryVerify(ctx, m, *juryURL, fs.Args(), stdout, stderr)
	case "routes":
		return printRoutes(m, stdout)
	}
	defer m.Close()
	if err := m.Open(ctx); err != nil {
		return 1, err
	}
	switch cmd {
	case "migrate":
		fmt.Fprintln(stdout, "migrations applied")
	case "demo":
		m.startServices(nil)
		if err := m.SeedDemo(ctx); err != nil {
			return 1, err
		}
	case "ledger verify":
		r, err := m.Ledger.Verify(ctx)
		if err != nil {
			return 1, err
		}
		if !r.OK {
			if r.FirstBrokenSeq == 0 {
				fmt.Fprintf(stdout, "ledger BROKEN at account %s: %s\n", r.BrokenAccount, r.Problem)
			} else {
				fmt.Fprintf(stdout, "ledger BROKEN at entry %d: %s\n", r.FirstBrokenSeq, r.Problem)
			}
			return 1, nil
		}
		fmt.Fprintf(stdout, "ledger OK: %d entries, head %d %s, trial balance %s\n", r.Entries, r.HeadSeq, r.HeadHash, r.TrialBalance)
	}
	return 0, nil
}

func serve(ctx context.Context, m *Main) (int, error) {
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
