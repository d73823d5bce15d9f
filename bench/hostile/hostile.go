// Package hostile sends generated hostile requests over every route of a
// running Levee, as every role and anonymously, and reports every answer
// that is not a clear 4xx or 2xx: server errors (5xx), requests left without
// an answer (hangs) and connections cut. `levee-bench -scenario hostile`
// (make hostile) runs it against `levee serve --demo` in a process of its
// own; cmd/levee's TestHostileGenerated runs a short version in make test.
//
// Routes come from the server (`levee routes`, web.Server.Routes), so a new
// route is attacked without anyone adding it here. Path parameters are real
// ids from the demo city (found by reading the lists and harvested from
// every answer) or hostile values; bodies are mutations of a valid body per
// route (seeds.go) or, for routes without one, of an empty object.
package hostile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Route is one registered method and path pattern (echo's syntax).
type Route struct{ Method, Path string }

func (r Route) String() string { return r.Method + " " + r.Path }

// ParseRoutes reads the output of `levee routes`: one "METHOD PATH" a line.
func ParseRoutes(text string) ([]Route, error) {
	var rs []Route
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("parse routes: %q is not METHOD PATH", line)
		}
		rs = append(rs, Route{Method: f[0], Path: f[1]})
	}
	if len(rs) == 0 {
		return nil, errors.New("parse routes: no routes")
	}
	return rs, nil
}

// Principal is one caller: a bearer token, or a browser session with its
// CSRF token. The zero Principal is anonymous.
type Principal struct {
	Role    string // admin, treasurer, resident, contractor, juror, steward, delegate; "" anonymous
	Name    string
	Token   string
	Session string
	CSRF    string
}

func (p Principal) label() string {
	if p.Role == "" {
		return "anonymous"
	}
	return p.Role + " " + p.Name
}

// authorize sets p's credentials on req; with goodCSRF false a session
// sends a wrong or no CSRF token.
func (p Principal) authorize(req *http.Request, goodCSRF bool) {
	if p.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.Token)
	}
	if p.Session != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: p.Session})
		if goodCSRF {
			req.Header.Set("X-CSRF-Token", p.CSRF)
		}
	}
}

// Config says what to send where.
type Config struct {
	BaseURL    string // http://host:port
	Routes     []Route
	Principals []Principal // anonymous is added
	Revoked    string      // a revoked token, sent now and then
	Requests   int
	Workers    int
	Seed       uint64
	Timeout    time.Duration // an answer later than this is a hang
	Keep       int           // distinct server errors kept with a sample (default 50)
	// Progress, if set, is called about every Requests/10 requests.
	Progress func(sent int, r *Report)
	// Check, if set, sees every request sent and its answer (the cmd/levee
	// test validates them against the OpenAPI document). It may be called
	// from several workers at once.
	Check func(req *http.Request, body []byte, resp *http.Response, answer []byte)
}

// Failure is one distinct server error (or hang) with the first request
// that caused it.
type Failure struct {
	Method, Route string // the pattern the request was aimed at
	URL           string // the path and query actually sent, shortened
	Caller        string
	Request       string // the body sent, shortened
	Status        int    // 0: no answer within the timeout
	Response      string // shortened
	Count         int    // requests with the same method, route, status and answer
}

// Report is what every request got.
type Report struct {
	Seed             uint64
	Requests         int
	Elapsed          time.Duration
	Routes           int            // routes in the table
	Covered          int            // routes sent at least one request
	Answered2xx      int            // routes that answered 2xx at least once
	ByClass          map[string]int // "2xx" … "5xx"
	ByStatus         map[int]int
	ServerErrors     int // 5xx
	ServerErrorsBy   map[string]int
	Failures         []Failure // the first Keep distinct 5xx and hangs
	Hangs            int       // no answer within Config.Timeout
	Resets           int       // connection reset or closed before an answer
	OtherTransport   int       // any other error before an answer
	TransportSamples []string
	Bursts           int // groups of concurrent requests with one Idempotency-Key

	mu       sync.Mutex
	distinct map[string]int // index into Failures, or -1 once Keep are kept
	perRoute map[string]*routeTally
}

type routeTally struct{ sent, ok int }

// Failed reports whether anything went wrong that a caller could not have
// caused: a 5xx, a hang or a cut connection.
func (r *Report) Failed() bool {
	return r.ServerErrors > 0 || r.Hangs > 0 || r.Resets > 0 || r.OtherTransport > 0
}

// Summary is one paragraph of figures.
func (r *Report) Summary() string {
	classes := slices.Sorted(maps.Keys(r.ByClass))
	var parts []string
	for _, c := range classes {
		parts = append(parts, fmt.Sprintf("%s %d", c, r.ByClass[c]))
	}
	return fmt.Sprintf("%d requests in %s (seed %d) over %d of %d routes (%d answered 2xx at least once): %s; %d 5xx, %d hangs, %d resets, %d other transport errors",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.Seed, r.Covered, r.Routes, r.Answered2xx, strings.Join(parts, ", "),
		r.ServerErrors, r.Hangs, r.Resets, r.OtherTransport)
}

// Run sends cfg.Requests generated requests from cfg.Workers workers and
// reports what they got. It first reads the lists to find real ids and
// sends each valid seed body once, so that later requests can aim at what
// those created.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.Keep == 0 {
		cfg.Keep = 50
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if len(cfg.Routes) == 0 {
		return nil, errors.New("hostile: no routes")
	}
	rep := &Report{Seed: cfg.Seed, Routes: len(cfg.Routes), ByClass: map[string]int{}, ByStatus: map[int]int{},
		ServerErrorsBy: map[string]int{}, distinct: map[string]int{}, perRoute: map[string]*routeTally{}}
	hc := &http.Client{
		Timeout:   cfg.Timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Workers * 2, DisableCompression: true},
		// A redirect is an answer; following it would attack another route.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer hc.CloseIdleConnections()
	st := newState(cfg, hc)
	begin := time.Now()
	if err := st.discover(ctx); err != nil {
		return rep, err
	}
	var sent atomic.Int64
	send := func(rq *request) {
		n := int(sent.Add(1))
		st.do(ctx, rq, rep)
		if cfg.Progress != nil && cfg.Requests >= 10 && n%(cfg.Requests/10) == 0 {
			cfg.Progress(n, rep)
		}
	}
	// The seeds once each, valid, as their role, aimed at the newest ids,
	// in steps (a round, a project in it, its eligibility, a contribution
	// to it), twice over; what ends things (close, void, award) waits.
	// Then each of them as a burst under one Idempotency-Key.
	g := &gen{st: st, r: rand.New(rand.NewPCG(cfg.Seed, 0))}
	room := func(n int) bool { return int(sent.Load())+n <= cfg.Requests && ctx.Err() == nil }
	var opening []Route
	for _, rt := range cfg.Routes {
		if sd, ok := seedFor(rt); ok && !sd.final {
			opening = append(opening, rt)
		}
	}
	slices.SortStableFunc(opening, func(a, b Route) int { return seeds[a.String()].step - seeds[b.String()].step })
	for range 2 {
		for _, rt := range opening {
			if room(1) {
				send(g.valid(rt, seeds[rt.String()], true))
			}
		}
	}
	for _, rt := range opening {
		if rt.Method != "GET" && room(8) {
			rep.mu.Lock()
			rep.Bursts++
			rep.mu.Unlock()
			sendAll(g.burst(rt, true), send)
		}
	}
	var next atomic.Int64
	next.Store(sent.Load())
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := &gen{st: st, r: rand.New(rand.NewPCG(cfg.Seed, uint64(w)+1))}
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= cfg.Requests {
					return
				}
				// Every route in turn, so a short run covers them all.
				rt := cfg.Routes[i%len(cfg.Routes)]
				if rt.Method != "GET" && g.r.IntN(50) == 0 {
					burst := g.burst(rt, !seeds[rt.String()].final && g.chance(2))
					next.Add(int64(len(burst) - 1))
					rep.mu.Lock()
					rep.Bursts++
					rep.mu.Unlock()
					sendAll(burst, send)
					continue
				}
				send(g.request(rt))
			}
		}()
	}
	wg.Wait()
	rep.Elapsed = time.Since(begin)
	rep.mu.Lock()
	defer rep.mu.Unlock()
	for _, t := range rep.perRoute {
		rep.Covered++
		if t.ok > 0 {
			rep.Answered2xx++
		}
	}
	return rep, ctx.Err()
}

// sendAll sends the requests at once and waits for every answer.
func sendAll(rqs []*request, send func(*request)) {
	var wg sync.WaitGroup
	for _, rq := range rqs {
		wg.Add(1)
		go func() { defer wg.Done(); send(rq) }()
	}
	wg.Wait()
}

// do sends one request and records its answer.
func (st *state) do(ctx context.Context, rq *request, rep *Report) {
	req, err := http.NewRequestWithContext(ctx, rq.method, st.cfg.BaseURL+rq.url, bytes.NewReader(rq.body))
	if err != nil { // a generator bug, not the server's: say so loudly
		rep.record(rq, 0, "", fmt.Errorf("build request: %w", err), st.cfg.Keep)
		return
	}
	req.Header = rq.header
	resp, err := st.hc.Do(req)
	if err != nil {
		rep.record(rq, 0, "", err, st.cfg.Keep)
		return
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		rep.record(rq, 0, "", fmt.Errorf("read the answer (status %d): %w", resp.StatusCode, err), st.cfg.Keep)
		return
	}
	if resp.StatusCode/100 == 2 {
		st.harvest(rq, b)
	}
	if st.cfg.Check != nil {
		st.cfg.Check(req, rq.body, resp, b)
	}
	rep.record(rq, resp.StatusCode, string(b), nil, st.cfg.Keep)
}

var digitsRE = regexp.MustCompile(`[0-9]+`)

func (r *Report) record(rq *request, status int, body string, err error, keep int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Requests++
	t := r.perRoute[rq.route.String()]
	if t == nil {
		t = &routeTally{}
		r.perRoute[rq.route.String()] = t
	}
	t.sent++
	if err != nil {
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
			r.Hangs++
			r.ByClass["no answer"]++
			r.keep(rq, 0, "no answer within the timeout: "+err.Error(), keep)
			return
		case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			r.Resets++
		default:
			r.OtherTransport++
		}
		r.ByClass["no answer"]++
		if len(r.TransportSamples) < 10 {
			r.TransportSamples = append(r.TransportSamples, fmt.Sprintf("%s %s: %v", rq.method, rq.route.Path, err))
		}
		return
	}
	r.ByStatus[status]++
	r.ByClass[fmt.Sprintf("%dxx", status/100)]++
	if status/100 == 2 {
		t.ok++
	}
	if status >= 500 {
		r.ServerErrors++
		r.ServerErrorsBy[rq.route.String()]++
		r.keep(rq, status, body, keep)
	}
}

// keep adds a failure to the distinct list. Assumes r.mu is held.
func (r *Report) keep(rq *request, status int, body string, keep int) {
	// Pages differ by who asks; one HTML error page per route is enough.
	answer := digitsRE.ReplaceAllString(body, "#")
	if strings.HasPrefix(strings.TrimSpace(body), "<") {
		answer = "(a page)"
	}
	key := fmt.Sprintf("%s %d %s", rq.route, status, answer)
	if i, ok := r.distinct[key]; ok {
		if i >= 0 {
			r.Failures[i].Count++
		}
		return
	}
	if len(r.Failures) >= keep {
		r.distinct[key] = -1
		return
	}
	r.distinct[key] = len(r.Failures)
	r.Failures = append(r.Failures, Failure{Method: rq.method, Route: rq.route.Path, URL: Shorten(rq.url, 160), Caller: rq.caller,
		Request: Shorten(rq.describeBody(), 200), Status: status, Response: Shorten(strings.TrimSpace(body), 200), Count: 1})
}

// Shorten cuts s to about n bytes (on a rune boundary) and quotes control
// characters, so that a sample fits on one line of a report.
func Shorten(s string, n int) string {
	q := fmt.Sprintf("%+q", s)
	q = q[1 : len(q)-1]
	if len(q) <= n {
		return q
	}
	return q[:n] + fmt.Sprintf("… (%d bytes)", len(s))
}
