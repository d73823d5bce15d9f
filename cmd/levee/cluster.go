package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"levee/cluster"
	"levee/pgserver"
)

// runCluster is `levee cluster --instances N`: a private PostgreSQL, an
// embedded NATS server, N `levee serve` processes of one city on the ports
// after --addr's, and a round-robin proxy on --addr in front of them, with
// the demo city seeded: failover to try on one machine (docs/cluster.md).
// Each instance is a child process, so that `kill -9` of one shows what the
// others do; this process stops them all on Ctrl-C.
func runCluster(ctx context.Context, cfg Config, instances int, logger *slog.Logger, stdout io.Writer) (int, error) {
	if instances < 1 || instances > 16 {
		return 2, fmt.Errorf("--instances must be from 1 to 16")
	}
	host, portText, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return 2, fmt.Errorf("--addr %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port == 0 {
		return 2, fmt.Errorf("--addr needs a fixed port: the instances listen on the ports after it")
	}
	self, err := os.Executable()
	if err != nil {
		return 1, err
	}
	dir := filepath.Join(cfg.DataDir, "cluster")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 1, err
	}
	url := cfg.DatabaseURL
	if url == "" {
		pg, err := pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(cfg.DataDir, "pg"), Durable: true, MaxConnections: 100 + 45*instances, Logger: logger})
		if err != nil {
			return 1, err
		}
		defer pg.Stop()
		url = pg.URL("postgres")
	}
	token, err := seedForCluster(ctx, cfg, url, logger, stdout)
	if err != nil {
		return 1, err
	}
	ns, err := cluster.StartNATS(0)
	if err != nil {
		return 1, err
	}
	defer ns.Shutdown()

	var backends []string
	var children []*exec.Cmd
	defer func() {
		for _, c := range children {
			c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range children {
			c.Wait()
		}
	}()
	for i := range instances {
		addr := net.JoinHostPort(host, strconv.Itoa(port+1+i))
		node := fmt.Sprintf("n%d", i+1)
		logFile, err := os.Create(filepath.Join(dir, node+".log"))
		if err != nil {
			return 1, err
		}
		defer logFile.Close()
		c := exec.Command(self, "serve", "--addr", addr)
		c.Env = append(os.Environ(), "DATABASE_URL="+url, "LEVEE_NATS_URL="+ns.URL(), "LEVEE_INSTANCE="+node,
			"LEVEE_DATA="+cfg.DataDir, "LEVEE_TRUSTED_PROXIES=127.0.0.1,::1")
		if token != "" {
			c.Env = append(c.Env, "LEVEE_ADMIN_TOKEN="+token)
		}
		c.Stdout, c.Stderr = logFile, logFile
		if err := c.Start(); err != nil {
			return 1, err
		}
		children = append(children, c)
		backends = append(backends, addr)
		fmt.Fprintf(stdout, "instance %s: pid %d on http://%s (log %s)\n", node, c.Process.Pid, addr, logFile.Name())
	}
	exited := make(chan string, len(children))
	for i, c := range children {
		go func() {
			c.Wait()
			exited <- fmt.Sprintf("n%d", i+1)
		}()
	}
	for _, b := range backends {
		if err := waitListening(ctx, b, 60*time.Second); err != nil {
			return 1, err
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return 1, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: newRoundRobin(backends), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(stdout, "NATS on %s; PostgreSQL %s\n", ns.URL(), url)
	fmt.Fprintf(stdout, "Levee (%d instances) is serving on http://%s  (kill -9 an instance's pid to watch the others take its markets; Ctrl-C stops all)\n", instances, cfg.Addr)
	for {
		select {
		case <-ctx.Done():
			return 0, nil
		case node := <-exited:
			fmt.Fprintf(stdout, "instance %s exited; its markets move to the others within 3 s\n", node)
		}
	}
}

// seedForCluster migrates the database, makes sure the admin exists and
// seeds the demo city once, as `levee serve --demo` does, before any
// instance starts. It returns the admin token generated now, if any.
func seedForCluster(ctx context.Context, cfg Config, url string, logger *slog.Logger, stdout io.Writer) (string, error) {
	seed := cfg
	seed.DatabaseURL, seed.NATSURL = url, ""
	m := NewMain(seed, logger, stdout)
	defer m.Close()
	if err := m.Open(ctx); err != nil {
		return "", err
	}
	token, err := m.Accounts.EnsureAdmin(ctx, cfg.AdminToken)
	if err != nil {
		return "", err
	}
	if token != "" {
		fmt.Fprintf(stdout, "\nBootstrap admin token (shown once; set LEVEE_ADMIN_TOKEN to choose your own):\n  %s\n\n", token)
		m.generatedAdminToken = token
	}
	if err := m.startServices(nil); err != nil {
		return "", err
	}
	if err := m.SeedDemo(ctx); err != nil {
		return "", err
	}
	if token == "" {
		token = cfg.AdminToken
	}
	return token, nil
}

func waitListening(ctx context.Context, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("instance on %s did not start within %s", addr, within)
}

// roundRobin is the small proxy in front of `levee cluster`: each request
// goes to the next instance; an instance that refuses the connection is
// skipped for two seconds and the request goes to the next one (nothing was
// sent, so this is safe even for orders). Websocket upgrades pass through.
type roundRobin struct {
	backends []string
	next     atomic.Uint64
	mu       sync.Mutex
	down     map[string]time.Time
	proxy    *httputil.ReverseProxy
}

func newRoundRobin(backends []string) *roundRobin {
	rr := &roundRobin{backends: backends, down: map[string]time.Time{}}
	rr.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetXForwarded()
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "pending" // the transport picks the instance
		},
		Transport: rr,
	}
	return rr
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) { rr.proxy.ServeHTTP(w, r) }

// RoundTrip sends r to the next live instance.
func (rr *roundRobin) RoundTrip(r *http.Request) (*http.Response, error) {
	var err error
	start := rr.next.Add(1)
	for i := range uint64(len(rr.backends)) {
		b := rr.backends[(start+i)%uint64(len(rr.backends))]
		rr.mu.Lock()
		skip := time.Now().Before(rr.down[b])
		rr.mu.Unlock()
		if skip {
			continue
		}
		out := r.Clone(r.Context())
		out.URL.Host, out.Host = b, r.Host
		if r.Body != nil && r.Body != http.NoBody {
			// A failed dial must not close the body the next attempt sends
			// (nothing of it was read); ReverseProxy closes the original.
			out.Body = io.NopCloser(r.Body)
		}
		var resp *http.Response
		resp, err = http.DefaultTransport.RoundTrip(out)
		var op *net.OpError
		if err != nil && errors.As(err, &op) && op.Op == "dial" {
			rr.mu.Lock()
			rr.down[b] = time.Now().Add(2 * time.Second)
			rr.mu.Unlock()
			continue
		}
		return resp, err
	}
	if err == nil {
		err = errors.New("no instance is up")
	}
	return nil, err
}
