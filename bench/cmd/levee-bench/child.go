package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// benchAdminToken is the bootstrap admin token of the child servers.
const benchAdminToken = "levee-bench-admin-token-0123456789"

// child is `levee serve` in a process of its own, so that the fault
// scenario can SIGKILL it and the soak can read its memory and goroutines
// without counting the load generator's.
type child struct {
	cmd     *exec.Cmd
	addr    string
	logPath string // its standard error: levee serve's log
	done    chan struct{}
}

// setupForChild prepares a scenario whose markets a child `levee serve`
// owns (faults, soak): the database and its traders as setup makes them,
// this process's engine closed, and the levee binary built.
func setupForChild(ctx context.Context, sc Config, progress io.Writer, begin time.Time) (*env, string, error) {
	e, err := setup(ctx, sc, progress, begin)
	if err != nil {
		return e, "", err
	}
	e.eng.Close() // the child server owns the markets from now on
	e.eng = nil
	bin, err := e.buildLevee(ctx)
	return e, bin, err
}

// tokens are the API tokens of the first n traders, for a load generator
// that talks to a child server.
func (e *env) tokens(n int) []string {
	out := make([]string, 0, n)
	for _, t := range e.traders[:n] {
		out = append(out, t.token)
	}
	return out
}

// buildLevee builds cmd/levee into the scenario's directory.
func (e *env) buildLevee(ctx context.Context) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(e.dir, "levee")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/levee")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/levee: %w: %s", err, out)
	}
	return bin, nil
}

// freeAddr picks a loopback port for the child servers: each restart
// listens on the same address, so clients need not be told of a new one.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

var servingRE = regexp.MustCompile(`serving on http://(\S+)`)

// startChild runs `levee serve` against the scenario's database (with
// extra flags, such as --demo) and returns once it listens. Its log goes to
// levee-child.log.
func (e *env) startChild(ctx context.Context, bin, addr string, flags ...string) (*child, error) {
	return e.startChildEnv(ctx, bin, addr, nil, flags...)
}

// startChildEnv is startChild with extra environment variables (a flag of
// the server such as LEVEE_JOURNAL, or an instance of a cluster:
// LEVEE_NATS_URL, LEVEE_INSTANCE).
func (e *env) startChildEnv(ctx context.Context, bin, addr string, env []string, flags ...string) (*child, error) {
	cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "--addr", addr}, flags...)...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+e.url, "LEVEE_ADMIN_TOKEN="+benchAdminToken, "LEVEE_DATA="+e.dir,
		"LEVEE_LOG_LEVEL=warn", "LEVEE_RATE_PER_ACCOUNT=1000000", "LEVEE_RATE_PER_ADDRESS=1000000")
	cmd.Env = append(cmd.Env, env...)
	return e.startServing(cmd, "levee-child.log")
}

// startServing starts cmd, a server that prints "serving on http://ADDR"
// when it listens, and returns once it has. Its standard error goes to the
// file logName in the scenario's directory.
func (e *env) startServing(cmd *exec.Cmd, logName string) (*child, error) {
	// The server dies with us, whatever happens to us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logPath := filepath.Join(e.dir, logName)
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(cmd.Path), err)
	}
	c := &child{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
			c.addr = m[1]
			break
		}
	}
	go func() {
		io.Copy(io.Discard, out)
		cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	if c.addr == "" {
		<-c.done
		return nil, fmt.Errorf("%s exited before serving (see %s)", filepath.Base(cmd.Path), logFile.Name())
	}
	return c, nil
}

// kill SIGKILLs the server: no shutdown, no flush, as a power cut would.
func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// stop shuts the server down in order.
func (c *child) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.kill()
	}
}

// answer is one keyed order and what became of it.
type answer struct {
	Key     string
	Worker  int
	Outcome int
	Status  int // 0: no HTTP answer (connection refused or cut)
	Code    string
	Seq     int64
	Sent    time.Time
	Took    time.Duration
}

// ackLoad sends keyed orders from one trader per worker, one after the
// other, and records every answer, acknowledged or not, so that the audit
// can look each order up in the database afterwards.
type ackLoad struct {
	addr   string
	path   string
	tokens []string

	mu      sync.Mutex
	answers []answer
	stop    atomic.Bool
	wg      sync.WaitGroup
}

func newAckLoad(addr string, market int64, tokens []string) *ackLoad {
	return &ackLoad{addr: addr, path: fmt.Sprintf("/api/v1/markets/%d/orders", market), tokens: tokens}
}

// start runs the workers until finish.
func (l *ackLoad) start() {
	for w := range l.tokens {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer hc.CloseIdleConnections()
			for n := 1; !l.stop.Load(); n++ {
				a := l.send(hc, fmt.Sprintf("fault-%d-%d", w, n), w, rand.IntN(2))
				l.mu.Lock()
				l.answers = append(l.answers, a)
				l.mu.Unlock()
				if a.Status != http.StatusCreated {
					time.Sleep(20 * time.Millisecond) // a polite client backs off
				}
			}
		}()
	}
}

// send buys one share of outcome under key.
func (l *ackLoad) send(hc *http.Client, key string, worker, outcome int) answer {
	a := answer{Key: key, Worker: worker, Outcome: outcome, Sent: time.Now()}
	req, _ := http.NewRequest("POST", "http://"+l.addr+l.path, strings.NewReader(fmt.Sprintf(`{"outcome":%d,"side":"buy","shares":"1"}`, outcome)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.tokens[worker])
	req.Header.Set("Idempotency-Key", key)
	resp, err := hc.Do(req)
	a.Took = time.Since(a.Sent)
	if err != nil {
		return a
	}
	defer resp.Body.Close()
	var body struct {
		Seq   int64 `json:"seq"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	a.Status, a.Seq, a.Code = resp.StatusCode, body.Seq, body.Error.Code
	return a
}

// since returns the answers to orders sent at or after t0.
func (l *ackLoad) since(t0 time.Time) []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []answer
	for _, a := range l.answers {
		if !a.Sent.Before(t0) {
			out = append(out, a)
		}
	}
	return out
}

// waitAck waits until an order sent at or after t0 is acknowledged and
// returns how long after t0 its answer came.
func (l *ackLoad) waitAck(ctx context.Context, t0 time.Time, within time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for _, a := range l.since(t0) {
			if a.Status == http.StatusCreated {
				return a.Sent.Add(a.Took).Sub(t0), nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("no order acknowledged within %s", within)
}

// finish stops the workers and returns every answer.
func (l *ackLoad) finish() []answer {
	l.stop.Store(true)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answers
}
