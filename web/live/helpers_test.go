package live

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"levee"
)

// fakeMarkets is the engine's stand-in: it holds each market's seq and, like
// the engine, commits an event (advances seq) before publishing it, so a
// snapshot always covers everything already published.
type fakeMarkets struct {
	mu       sync.Mutex
	seq      map[int64]int64
	maxDelay time.Duration // snapshots take up to this long, to widen races
	pad      string        // padding added to every event payload
}

func newFakeMarkets(ids ...int64) *fakeMarkets {
	f := &fakeMarkets{seq: map[int64]int64{}}
	for _, id := range ids {
		f.seq[id] = 0
	}
	return f
}

// SnapshotJSON takes its time before and after reading the seq, as a
// database read would: events published before the read are in the snapshot
// (and must not be sent again), those published after it are not (and must
// be sent).
func (f *fakeMarkets) SnapshotJSON(ctx context.Context, id int64) (json.RawMessage, int64, error) {
	if err := f.pause(ctx); err != nil {
		return nil, 0, err
	}
	f.mu.Lock()
	seq, ok := f.seq[id]
	f.mu.Unlock()
	if !ok {
		return nil, 0, levee.Errorf(levee.ENOTFOUND, "market %d not found", id)
	}
	if err := f.pause(ctx); err != nil {
		return nil, 0, err
	}
	return fmt.Appendf(nil, `{"type":"snapshot","market":"%d","seq":%d}`, id, seq), seq, nil
}

func (f *fakeMarkets) pause(ctx context.Context) error {
	f.mu.Lock()
	delay := f.maxDelay
	f.mu.Unlock()
	if delay <= 0 {
		return nil
	}
	t := time.NewTimer(rand.N(delay))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeMarkets) current(id int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seq[id]
}

func (f *fakeMarkets) set(id, seq int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq[id] = seq
}

func (f *fakeMarkets) payload(typ string, id, seq int64) json.RawMessage {
	return fmt.Appendf(nil, `{"type":%q,"market":"%d","seq":%d,"pad":%q}`, typ, id, seq, f.pad)
}

// trade commits the next trade of market id and publishes it.
func (f *fakeMarkets) trade(h *Hub, id int64) int64 {
	f.mu.Lock()
	f.seq[id]++
	seq := f.seq[id]
	f.mu.Unlock()
	h.Publish(Event{Type: "trade", MarketID: id, Seq: seq, Payload: f.payload("trade", id, seq)})
	return seq
}

// commit commits n trades of market id and publishes them with the quote
// after them as one batch, as the engine publishes a commit.
func (f *fakeMarkets) commit(h *Hub, id int64, n int) int64 {
	f.mu.Lock()
	first := f.seq[id] + 1
	f.seq[id] += int64(n)
	seq := f.seq[id]
	f.mu.Unlock()
	return publishCommit(h, f, id, first, seq)
}

// publishCommit publishes trades first..last of market id and the quote at
// last as one batch, whatever the market's committed seq.
func publishCommit(h *Hub, f *fakeMarkets, id, first, last int64) int64 {
	var evs []Event
	for s := first; s <= last; s++ {
		evs = append(evs, Event{Type: "trade", MarketID: id, Seq: s, Payload: f.payload("trade", id, s)})
	}
	evs = append(evs, Event{Type: "quote", MarketID: id, Seq: last, Payload: f.payload("quote", id, last)})
	h.PublishBatch(evs)
	return last
}

// state publishes a quote or status at the market's current seq.
func (f *fakeMarkets) state(h *Hub, typ string, id int64) int64 {
	seq := f.current(id)
	h.Publish(Event{Type: typ, MarketID: id, Seq: seq, Payload: f.payload(typ, id, seq)})
	return seq
}

type testServer struct {
	hub     *Hub
	markets *fakeMarkets
	srv     *httptest.Server
	url     string
}

// smallBufListener shrinks the server's socket send buffers so that a client
// that does not read backs up into the hub after kilobytes, not megabytes.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

// MustServe starts a hub on a loopback server with the given markets; small
// shrinks socket buffers (see smallBufListener).
func MustServe(t testing.TB, opts Options, small bool, ids ...int64) *testServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ts := &testServer{markets: newFakeMarkets(ids...)}
	ts.hub = NewHub(ts.markets, opts)
	ts.srv = httptest.NewUnstartedServer(ts.hub)
	if small {
		ts.srv.Listener = smallBufListener{ts.srv.Listener}
	}
	ts.srv.Start()
	ts.url = "ws" + strings.TrimPrefix(ts.srv.URL, "http")
	t.Cleanup(func() {
		ts.hub.Close()
		ts.srv.Close()
	})
	return ts
}

func (ts *testServer) trade(id int64) int64             { return ts.markets.trade(ts.hub, id) }
func (ts *testServer) state(typ string, id int64) int64 { return ts.markets.state(ts.hub, typ, id) }

// dial connects a client.
func (ts *testServer) dial() (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial(ts.url, nil)
	return c, err
}

func (ts *testServer) MustDial(t testing.TB) *websocket.Conn {
	t.Helper()
	c, err := ts.dial()
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// frame is any server message, decoded loosely.
type frame struct {
	Type    string `json:"type"`
	Market  string `json:"market"`
	Seq     int64  `json:"seq"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func (f frame) String() string {
	if f.Type == "error" {
		return fmt.Sprintf("error(%s field=%s market=%s: %s)", f.Code, f.Field, f.Market, f.Message)
	}
	return fmt.Sprintf("%s(market=%s seq=%d)", f.Type, f.Market, f.Seq)
}

func readFrame(c *websocket.Conn, wait time.Duration) (frame, error) {
	c.SetReadDeadline(time.Now().Add(wait))
	typ, data, err := c.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	if typ != websocket.TextMessage {
		return frame{}, fmt.Errorf("frame type %d, want text", typ)
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		return frame{}, fmt.Errorf("decode %q: %w", data, err)
	}
	return f, nil
}

func MustRead(t testing.TB, c *websocket.Conn) frame {
	t.Helper()
	f, err := readFrame(c, 5*time.Second)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

// MustReadWant reads one frame and checks its type, market and seq.
func MustReadWant(t testing.TB, c *websocket.Conn, typ string, market, seq int64) frame {
	t.Helper()
	f := MustRead(t, c)
	if f.Type != typ || f.Market != strconv.FormatInt(market, 10) || f.Seq != seq {
		t.Fatalf("got %v, want %s(market=%d seq=%d)", f, typ, market, seq)
	}
	return f
}

func MustSend(t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("send %s: %v", msg, err)
	}
}

// MustSubscribe subscribes c to market id and reads the snapshot.
func MustSubscribe(t testing.TB, c *websocket.Conn, id int64) frame {
	t.Helper()
	MustSend(t, c, fmt.Sprintf(`{"op":"subscribe","markets":["%d"]}`, id))
	f := MustRead(t, c)
	if f.Type != "snapshot" || f.Market != strconv.FormatInt(id, 10) {
		t.Fatalf("got %v, want the snapshot of market %d", f, id)
	}
	return f
}

// loopback returns a listener on 127.0.0.1, closed when the test ends.
func loopback(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// tcpPair connects a client to ln and returns both ends, closed when the
// test ends.
func tcpPair(t testing.TB, ln net.Listener) (server *net.TCPConn, client net.Conn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = (<-accepted).(*net.TCPConn)
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
