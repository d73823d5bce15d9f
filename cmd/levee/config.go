package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything levee reads from flags and the environment, read once
// and validated as a whole.
type Config struct {
	Addr        string // HTTP listen address (LEVEE_ADDR, --addr)
	DataDir     string // where the private database and demo credentials live (LEVEE_DATA, --data)
	DatabaseURL string // an external PostgreSQL; empty runs the private one (DATABASE_URL)
	AdminToken  string // bootstrap admin's bearer token (LEVEE_ADMIN_TOKEN); generated if empty
	Demo        bool   // seed the demo city on first start (--demo)
	// Attach uses the private PostgreSQL of a levee already running on the
	// data directory, if there is one, instead of refusing to start
	// (levee ledger verify and migrate run beside a server).
	Attach    bool
	LogLevel  slog.Level // LEVEE_LOG_LEVEL: debug, info, warn, error
	LogFormat string     // LEVEE_LOG_FORMAT: json (default) or text
	// RatePerAccount and RatePerAddress are requests/s allowed to one
	// signed-in account and one anonymous address (LEVEE_RATE_PER_ACCOUNT,
	// LEVEE_RATE_PER_ADDRESS); 0 takes web.DefaultLimits.
	RatePerAccount, RatePerAddress float64
	// AdvanceEvery is how often deadlines are checked in the background
	// (LEVEE_ADVANCE_EVERY, a Go duration; default 5s).
	AdvanceEvery time.Duration
	// PreviousJournal runs the engine's previous journal, five round trips
	// per commit instead of two (LEVEE_JOURNAL=previous): for the
	// benchmark's same-run comparison (levee-bench -scenario orders).
	PreviousJournal bool
	// FourTrips is engine.Options.FourTrips (LEVEE_JOURNAL=four-trips):
	// each commit in four round trips, the journal of sessions 7 to 9, for
	// the benchmark's comparison.
	FourTrips bool
	// TwoTrips is engine.Options.TwoTrips (LEVEE_JOURNAL=two-trips): each
	// commit in two round trips, never one from the journal's memory (the
	// journal of sessions 10 to 12), for the benchmark's comparison.
	TwoTrips bool
	// BookIdleAfter is how long a market's book waits unused before it
	// stops and frees its goroutine and caches (LEVEE_BOOK_IDLE_AFTER, a Go
	// duration; 0: the engine's default, 2m; negative: never).
	BookIdleAfter time.Duration
	// SlowCommit is engine.Options.SlowCommit (LEVEE_SLOW_COMMIT, a Go
	// duration; 0: the engine's default, 500ms): a journal commit this
	// long is logged at warn with its phases.
	SlowCommit time.Duration
	// WSWritePumps wakes a write pump per websocket connection for every
	// event (LEVEE_WS_WRITER_POOL=off, live.Options.WritePumps) instead of
	// delivering events through the shared pool of writers (the default:
	// 0.6-0.8x the server's CPU per message and a lower fan-out p99,
	// bench/RESULTS.md §7a).
	WSWritePumps bool
	// OneStatementFrom is engine.Options.OneStatementFrom: 1 with
	// LEVEE_JOURNAL=one-statement (every group commit as one statement),
	// for the benchmark's comparison; 0 otherwise.
	OneStatementFrom int
	// JournalInFlight is engine.Options.InFlight: 2 with
	// LEVEE_JOURNAL=pipelined (two journal transactions in flight), 0
	// (the engine's default, one) otherwise.
	JournalInFlight int
	// JournalOverlapFrom is engine.Options.OverlapFrom
	// (LEVEE_JOURNAL_OVERLAP_FROM, a positive integer; 0: the engine's
	// default): with two in flight, how many orders the batch in flight
	// must carry before the next one goes beside it.
	JournalOverlapFrom int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the
	// client (LEVEE_TRUSTED_PROXIES, comma-separated CIDRs or addresses).
	// Empty: every client is the address of its connection.
	TrustedProxies []*net.IPNet
	// trustedProxiesErr is a bad LEVEE_TRUSTED_PROXIES, reported by Validate.
	trustedProxiesErr error
	// envErrs are settings of the environment that could not be read (a
	// duration that is not one, a switch with an unknown value), reported
	// by Validate rather than silently replaced by the default.
	envErrs []error
	// SMTPURL is where notifications are mailed (LEVEE_SMTP_URL,
	// smtp://user:pass@host:port or smtps://…); empty keeps them in the app.
	SMTPURL string
	// MailFrom is the From of every mail (LEVEE_MAIL_FROM); needed with SMTPURL.
	MailFrom string
	// PublicURL starts the links in mails (LEVEE_PUBLIC_URL); empty:
	// http://<the address levee listens on>.
	PublicURL string
	// MailPoll is how often the outbox is checked for mail to send; 0: 2 s.
	MailPoll time.Duration
	// NodeKeyFile is this node's Ed25519 private key (LEVEE_NODE_KEY_FILE;
	// default <data>/node.key), made on first start, mode 0600.
	NodeKeyFile string
	// NodeName is this city's name as neighbours see it (LEVEE_NODE_NAME;
	// default "Levee").
	NodeName string
	// WitnessEvery is how often the ledger head is sent to the neighbours
	// to cosign (LEVEE_WITNESS_EVERY; default 10m).
	WitnessEvery time.Duration
	// DeliverEvery is how often the statement outbox is checked
	// (LEVEE_DELIVER_EVERY; default 1s); DeliveryMaxBackoff caps the wait
	// between attempts to a neighbour that does not answer
	// (LEVEE_DELIVERY_MAX_BACKOFF; default 10m).
	DeliverEvery, DeliveryMaxBackoff time.Duration
	// NATSURL makes this one of several instances of the city, sharing the
	// database and coordinating through this NATS server (LEVEE_NATS_URL;
	// docs/cluster.md). Empty: one instance, exactly as without it.
	NATSURL string
	// Node names this instance in the cluster (LEVEE_INSTANCE); default
	// <hostname>-<port>. Letters, digits, '-' and '_'.
	Node string
	// LeaseTTL is how long a market's lease lasts unrenewed (LEVEE_LEASE_TTL;
	// default 2s, so a takeover comes within 3 s).
	LeaseTTL time.Duration
}

// defaultConfig reads the environment.
func defaultConfig() Config {
	c := Config{
		Addr:        envOr("LEVEE_ADDR", "127.0.0.1:8080"),
		DataDir:     envOr("LEVEE_DATA", "./var"),
		DatabaseURL: os.Getenv("DATABASE_URL"),
		AdminToken:  os.Getenv("LEVEE_ADMIN_TOKEN"),
		LogFormat:   envOr("LEVEE_LOG_FORMAT", "json"),
		SMTPURL:     os.Getenv("LEVEE_SMTP_URL"),
		MailFrom:    os.Getenv("LEVEE_MAIL_FROM"),
		PublicURL:   os.Getenv("LEVEE_PUBLIC_URL"),
		NATSURL:     os.Getenv("LEVEE_NATS_URL"),
		Node:        os.Getenv("LEVEE_INSTANCE"),
	}
	c.envDuration("LEVEE_LEASE_TTL", &c.LeaseTTL, false)
	c.LogLevel.UnmarshalText([]byte(envOr("LEVEE_LOG_LEVEL", "info")))
	c.RatePerAccount, _ = strconv.ParseFloat(os.Getenv("LEVEE_RATE_PER_ACCOUNT"), 64)
	c.RatePerAddress, _ = strconv.ParseFloat(os.Getenv("LEVEE_RATE_PER_ADDRESS"), 64)
	c.AdvanceEvery = 5 * time.Second
	switch j := os.Getenv("LEVEE_JOURNAL"); j {
	case "", "current":
	case "previous":
		c.PreviousJournal = true
	case "four-trips":
		c.FourTrips = true
	case "two-trips":
		c.TwoTrips = true
	case "one-statement":
		c.OneStatementFrom = 1
	case "pipelined":
		c.JournalInFlight = 2
	default:
		c.envErrs = append(c.envErrs, fmt.Errorf("LEVEE_JOURNAL must be previous, four-trips, two-trips, one-statement or pipelined (or unset), not %q", j))
	}
	if v := os.Getenv("LEVEE_JOURNAL_OVERLAP_FROM"); v != "" {
		switch n, err := strconv.Atoi(v); {
		case err != nil || n <= 0:
			c.envErrs = append(c.envErrs, fmt.Errorf("LEVEE_JOURNAL_OVERLAP_FROM must be a positive number of orders, not %q", v))
		case c.JournalInFlight != 2:
			c.envErrs = append(c.envErrs, fmt.Errorf("LEVEE_JOURNAL_OVERLAP_FROM applies only with LEVEE_JOURNAL=pipelined"))
		default:
			c.JournalOverlapFrom = n
		}
	}
	switch p := os.Getenv("LEVEE_WS_WRITER_POOL"); p {
	case "", "on":
	case "off":
		c.WSWritePumps = true
	default:
		c.envErrs = append(c.envErrs, fmt.Errorf("LEVEE_WS_WRITER_POOL must be on or off, not %q", p))
	}
	c.TrustedProxies, c.trustedProxiesErr = parseCIDRs(os.Getenv("LEVEE_TRUSTED_PROXIES"))
	c.envDuration("LEVEE_BOOK_IDLE_AFTER", &c.BookIdleAfter, false)
	c.envDuration("LEVEE_ADVANCE_EVERY", &c.AdvanceEvery, true)
	c.envDuration("LEVEE_SLOW_COMMIT", &c.SlowCommit, true)
	c.NodeKeyFile, c.NodeName = os.Getenv("LEVEE_NODE_KEY_FILE"), envOr("LEVEE_NODE_NAME", "Levee")
	c.envDuration("LEVEE_WITNESS_EVERY", &c.WitnessEvery, true)
	c.envDuration("LEVEE_DELIVER_EVERY", &c.DeliverEvery, true)
	c.envDuration("LEVEE_DELIVERY_MAX_BACKOFF", &c.DeliveryMaxBackoff, true)
	return c
}

// envDuration sets *dst from the environment variable key when it is set:
// a Go duration such as 5s or 2m, and more than zero if positive. Anything
// else is an error for Validate, not a silent default.
func (c *Config) envDuration(key string, dst *time.Duration, positive bool) {
	v := os.Getenv(key)
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		c.envErrs = append(c.envErrs, fmt.Errorf("%s must be a duration such as 5s or 2m, not %q", key, v))
	case positive && d <= 0:
		c.envErrs = append(c.envErrs, fmt.Errorf("%s must be a positive duration such as 5s, not %q", key, v))
	default:
		*dst = d
	}
}

// parseCIDRs reads a comma-separated list of CIDRs; a bare address stands
// for itself alone.
func parseCIDRs(s string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			ip := net.ParseIP(f)
			if ip == nil {
				return nil, fmt.Errorf("LEVEE_TRUSTED_PROXIES: %q is not an address or CIDR", f)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(f)
		if err != nil {
			return nil, fmt.Errorf("LEVEE_TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// bindFlags adds the flags that override the environment.
func (c *Config) bindFlags(fs *flag.FlagSet, serve bool) {
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (private PostgreSQL in <data>/pg)")
	if serve {
		fs.StringVar(&c.Addr, "addr", c.Addr, "HTTP listen address")
		fs.BoolVar(&c.Demo, "demo", c.Demo, "seed the demo city on first start and print its sign-ins")
	}
}

// Validate checks the fields together.
func (c *Config) Validate() error {
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fmt.Errorf("--addr %q: want host:port, e.g. 127.0.0.1:8080", c.Addr)
		}
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		return fmt.Errorf("--data is required when DATABASE_URL is unset")
	}
	if c.AdminToken != "" && len(c.AdminToken) < 20 {
		return fmt.Errorf("LEVEE_ADMIN_TOKEN must be at least 20 characters")
	}
	if c.RatePerAccount < 0 || c.RatePerAddress < 0 {
		return fmt.Errorf("LEVEE_RATE_PER_ACCOUNT and LEVEE_RATE_PER_ADDRESS must be positive")
	}
	if c.trustedProxiesErr != nil {
		return c.trustedProxiesErr
	}
	if err := errors.Join(c.envErrs...); err != nil {
		return err
	}
	if c.AdvanceEvery <= 0 {
		return fmt.Errorf("LEVEE_ADVANCE_EVERY must be a positive duration such as 5s")
	}
	if err := c.validateMail(); err != nil {
		return err
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	switch strings.ToLower(c.LogFormat) {
	case "json", "text":
	default:
		return fmt.Errorf("LEVEE_LOG_FORMAT must be json or text")
	}
	return nil
}

// validateCluster checks LEVEE_INSTANCE and fills in its default.
func (c *Config) validateCluster() error {
	if c.NATSURL == "" {
		return nil
	}
	if c.Node == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(c.Addr)
		c.Node = nodeName(host + "-" + port)
	}
	if c.Node == "" || len(c.Node) > 100 || nodeName(c.Node) != c.Node {
		return fmt.Errorf("LEVEE_INSTANCE %q: use 1 to 100 letters, digits, '-' and '_'", c.Node)
	}
	if c.LeaseTTL < 0 || c.LeaseTTL > 0 && c.LeaseTTL < 300*time.Millisecond {
		return fmt.Errorf("LEVEE_LEASE_TTL must be at least 300ms")
	}
	return nil
}

// nodeName keeps the characters a NATS subject token and a lease owner may
// hold.
func nodeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return -1
	}, s)
}
