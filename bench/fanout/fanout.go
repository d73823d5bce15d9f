// Package fanout measures the websocket fan-out from outside: many
// subscribers of one market, each timing every trade event from its server
// timestamp to its receipt. Client and server must share a wall clock (the
// same machine). The clients can live in a process of their own, so that
// neither process needs a file descriptor per connection of the other.
package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Config says whom to subscribe to what.
type Config struct {
	URL     string // ws://host:port/api/v1/ws
	Market  int64
	Clients int
	// Events is how many trade events each client waits for.
	Events int
	// DialConcurrency bounds the connections being opened at once (default 64).
	DialConcurrency int
	// Reader is how the clients read once subscribed: "epoll" (a few loops
	// reading every socket; the default on Linux, epoll_linux.go says why)
	// or "gorilla" (a goroutine per connection reading with gorilla).
	Reader string
}

// Available reports whether url answers a websocket upgrade. A refusal
// (404, 400, ...) is false with the reason; only a failure to reach the
// server at all is an error.
func Available(ctx context.Context, url string) (bool, string, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.DialContext(ctx, url, nil)
	if err == nil {
		ws.Close()
		return true, "", nil
	}
	if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
		return false, fmt.Sprintf("GET %s answered HTTP %d instead of 101 Switching Protocols", url, resp.StatusCode), nil
	}
	return false, "", err
}

// Session is a set of subscribed clients.
type Session struct {
	cfg       Config
	clients   []*subscriber
	Subscribe time.Duration // time to connect and subscribe every client
	Failed    int           // clients that could not subscribe
	FirstErr  string
	start     time.Time
	ready     time.Time     // every client subscribed
	cpu0      time.Duration // this process's CPU time then
	epoll     *epollSet     // the loops reading the clients; nil with the gorilla reader
	waited    bool
	cpu, wall time.Duration // this process's CPU and the time from ready to the end of Wait
}

type subscriber struct {
	ws    *websocket.Conn
	pairs []pair // (seq, latency) per trade received
	gaps  int
	clock string // which timestamp the events carried
	done  chan struct{}

	// With the epoll reader: the socket, the start of a frame not yet
	// read whole, and whether its loop is done with it.
	fd       int
	partial  []byte
	finished bool
}

type pair struct {
	seq int64
	lat time.Duration
}

// Subscribe connects every client and subscribes it to the market; it returns
// once each has its snapshot (or failed). The clients then read until Collect.
func Subscribe(ctx context.Context, cfg Config) (*Session, error) {
	if cfg.DialConcurrency <= 0 {
		cfg.DialConcurrency = 64
	}
	switch cfg.Reader {
	case "":
		cfg.Reader = defaultReader
	case "epoll", "gorilla":
	default:
		return nil, fmt.Errorf("reader %q: want epoll or gorilla", cfg.Reader)
	}
	s := &Session{cfg: cfg, clients: make([]*subscriber, cfg.Clients), start: time.Now()}
	sem := make(chan struct{}, cfg.DialConcurrency)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range s.clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := subscribe(ctx, cfg)
			if err != nil {
				mu.Lock()
				s.Failed++
				if s.FirstErr == "" {
					s.FirstErr = err.Error()
				}
				mu.Unlock()
				return
			}
			s.clients[i] = c
		}()
	}
	wg.Wait()
	s.Subscribe = time.Since(s.start)
	if s.Failed == len(s.clients) {
		return s, fmt.Errorf("no client could subscribe: %s", s.FirstErr)
	}
	s.ready, s.cpu0 = time.Now(), processCPU()
	if cfg.Reader == "epoll" {
		e, err := startEpoll(s.clients, cfg.Events)
		if err != nil {
			return s, err
		}
		s.epoll = e
		return s, nil
	}
	for _, c := range s.clients {
		if c != nil {
			go c.read(cfg.Events)
		}
	}
	return s, nil
}

var dialer = websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 256}

func subscribe(ctx context.Context, cfg Config) (*subscriber, error) {
	ws, _, err := dialer.DialContext(ctx, cfg.URL, http.Header{})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	req := `{"op":"subscribe","markets":["` + strconv.FormatInt(cfg.Market, 10) + `"]}`
	if err := ws.WriteMessage(websocket.TextMessage, []byte(req)); err != nil {
		ws.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			ws.Close()
			return nil, fmt.Errorf("wait for snapshot: %w", err)
		}
		var m struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}
		json.Unmarshal(data, &m)
		switch m.Type {
		case "snapshot":
			ws.SetReadDeadline(time.Time{})
			return &subscriber{ws: ws, fd: -1, done: make(chan struct{}), pairs: make([]pair, 0, cfg.Events)}, nil
		case "error":
			ws.Close()
			return nil, fmt.Errorf("subscribe refused: %s", m.Message)
		}
	}
}

// read records every trade event until it has events of them or the
// connection ends (the gorilla reader).
func (c *subscriber) read(events int) {
	defer close(c.done)
	for len(c.pairs) < events {
		_, data, err := c.ws.ReadMessage()
		now := time.Now()
		if err != nil {
			return
		}
		c.message(data, now)
	}
}

// message records one event received at now.
func (c *subscriber) message(data []byte, now time.Time) {
	if bytes.HasPrefix(data, quotePrefix) {
		return // the common case besides trades: skip it without decoding
	}
	typ, seq, ts, clock := parseEvent(data)
	switch typ {
	case "trade":
		if ts.IsZero() {
			return
		}
		c.clock = clock
		c.pairs = append(c.pairs, pair{seq, now.Sub(ts)})
	case "gap":
		c.gaps++
	}
}

var (
	quotePrefix = []byte(`{"type":"quote"`)
	tradePrefix = []byte(`{"type":"trade"`)
	seqField    = []byte(`"seq":`)
	tsField     = []byte(`"ts":"`)
)

// parseTrade is parseEvent's fast path for the engine's trade message
// ({"type":"trade",...,"seq":N,...,"ts":"RFC 3339"}): 10,000 clients share
// the server's machine, so they decode as little as they can.
func parseTrade(data []byte) (seq int64, ts time.Time, ok bool) {
	if !bytes.HasPrefix(data, tradePrefix) {
		return 0, time.Time{}, false
	}
	i := bytes.Index(data, seqField)
	j := bytes.LastIndex(data, tsField)
	if i < 0 || j < 0 {
		return 0, time.Time{}, false
	}
	rest := data[i+len(seqField):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	seq, err := strconv.ParseInt(string(rest[:n]), 10, 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	rest = data[j+len(tsField):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return 0, time.Time{}, false
	}
	ts, err = time.Parse(time.RFC3339Nano, string(rest[:end]))
	return seq, ts, err == nil
}

// parseEvent reads the type, seq and timestamp of an event. The timestamp
// is "ts" (the commit, as the issue asks for; RFC 3339 text or a number of
// seconds, milliseconds, microseconds or nanoseconds since the epoch), or
// failing that the trade's "at" (its submission), which clock names.
func parseEvent(data []byte) (typ string, seq int64, ts time.Time, clock string) {
	if seq, ts, ok := parseTrade(data); ok {
		return "trade", seq, ts, "ts"
	}
	var m struct {
		Type  string          `json:"type"`
		Seq   int64           `json:"seq"`
		TS    json.RawMessage `json:"ts"`
		At    string          `json:"at"`
		Trade *struct {
			Seq int64  `json:"seq"`
			At  string `json:"at"`
		} `json:"trade"`
	}
	if json.Unmarshal(data, &m) != nil {
		return "", 0, time.Time{}, ""
	}
	seq = m.Seq
	if seq == 0 && m.Trade != nil {
		seq = m.Trade.Seq
	}
	if t, ok := parseTS(m.TS); ok {
		return m.Type, seq, t, "ts"
	}
	at := m.At
	if at == "" && m.Trade != nil {
		at = m.Trade.At
	}
	if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
		return m.Type, seq, t, "at"
	}
	return m.Type, seq, time.Time{}, ""
}

func parseTS(raw json.RawMessage) (time.Time, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return time.Time{}, false
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, true
		}
		raw = []byte(s)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
	if err != nil || f <= 0 {
		return time.Time{}, false
	}
	switch {
	case f > 1e17:
		return time.Unix(0, int64(f)), true
	case f > 1e14:
		return time.UnixMicro(int64(f)), true
	case f > 1e11:
		return time.UnixMilli(int64(f)), true
	}
	return time.Unix(0, int64(f*1e9)), true
}

// Summary is what the clients measured. Latencies are receipt minus the
// event's timestamp, over every (event, client) pair; "last client" is, per
// event, the latency of the slowest client to get it.
type Summary struct {
	Clients       int     `json:"clients"`
	Subscribed    int     `json:"subscribed"`
	Failed        int     `json:"failed"`
	FirstError    string  `json:"first_error,omitempty"`
	SubscribeSecs float64 `json:"subscribe_secs"`
	Events        int     `json:"events"`  // distinct trade events seen
	Pairs         int     `json:"pairs"`   // (event, client) receipts
	Missing       int     `json:"missing"` // expected receipts that never came
	Gaps          int     `json:"gaps"`
	Clock         string  `json:"clock"`  // "ts" or "at"
	Reader        string  `json:"reader"` // how the clients read: epoll or gorilla
	P50ms         float64 `json:"p50_ms"`
	P90ms         float64 `json:"p90_ms"`
	P99ms         float64 `json:"p99_ms"`
	P999ms        float64 `json:"p999_ms"`
	MaxMs         float64 `json:"max_ms"`
	LastP50ms     float64 `json:"last_client_p50_ms"`
	LastP99ms     float64 `json:"last_client_p99_ms"`
	LastMaxMs     float64 `json:"last_client_max_ms"`
	// CPU this process used from the moment every client was subscribed to
	// the end, and how long that was: the clients' own cost, when they
	// have a process of their own.
	CPUSecs  float64 `json:"cpu_secs"`
	WallSecs float64 `json:"wall_secs"`
}

// Collect waits until every client has its events or timeout passes, closes
// the connections and summarizes.
func (s *Session) Collect(timeout time.Duration) Summary {
	return s.CollectContext(context.Background(), timeout)
}

// Wait waits until every client has its events, timeout passes or ctx is
// done, and notes the clients' CPU and time then, before any teardown. Only
// its first call waits.
func (s *Session) Wait(ctx context.Context, timeout time.Duration) {
	if s.waited {
		return
	}
	s.waited = true
	deadline := time.After(timeout)
wait:
	for _, c := range s.clients {
		if c == nil {
			continue
		}
		select {
		case <-c.done:
		case <-deadline:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	s.cpu, s.wall = processCPU()-s.cpu0, time.Since(s.ready)
}

// CollectContext is Collect that also stops waiting when ctx is done: the
// soak's subscribers stay until the soak ends, however many events that is.
func (s *Session) CollectContext(ctx context.Context, timeout time.Duration) Summary {
	s.Wait(ctx, timeout)
	if s.epoll != nil {
		s.epoll.stop()
	} else {
		for _, c := range s.clients {
			if c != nil {
				c.ws.Close()
			}
		}
	}
	for _, c := range s.clients {
		if c != nil {
			<-c.done
		}
	}
	sum := Summary{Clients: s.cfg.Clients, Reader: s.cfg.Reader, Failed: s.Failed, FirstError: s.FirstErr, SubscribeSecs: s.Subscribe.Seconds(),
		CPUSecs: s.cpu.Seconds(), WallSecs: s.wall.Seconds()}
	var all []time.Duration
	last := map[int64]time.Duration{}
	for _, c := range s.clients {
		if c == nil {
			continue
		}
		sum.Subscribed++
		sum.Gaps += c.gaps
		if c.clock != "" {
			sum.Clock = c.clock
		}
		sum.Missing += max(0, s.cfg.Events-len(c.pairs))
		for _, p := range c.pairs {
			all = append(all, p.lat)
			if p.lat > last[p.seq] {
				last[p.seq] = p.lat
			}
		}
	}
	sum.Pairs, sum.Events = len(all), len(last)
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	sum.P50ms, sum.P90ms, sum.P99ms, sum.P999ms = ms(quantile(all, .5)), ms(quantile(all, .9)), ms(quantile(all, .99)), ms(quantile(all, .999))
	if len(all) > 0 {
		sum.MaxMs = ms(all[len(all)-1])
	}
	lasts := make([]time.Duration, 0, len(last))
	for _, d := range last {
		lasts = append(lasts, d)
	}
	slices.Sort(lasts)
	sum.LastP50ms, sum.LastP99ms = ms(quantile(lasts, .5)), ms(quantile(lasts, .99))
	if len(lasts) > 0 {
		sum.LastMaxMs = ms(lasts[len(lasts)-1])
	}
	return sum
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}
