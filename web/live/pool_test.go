package live

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// writerVariants runs a test against the writer pool and the previous
// per-connection write pump, which must keep the same guarantees.
var writerVariants = []struct {
	name string
	opts Options
}{
	{"pool", Options{Writers: 2}},
	{"pool one writer", Options{Writers: 1}},
	{"pump per connection", Options{WritePumps: true}},
}

// TestEveryEventOnceInOrder publishes bursts of trades and quotes on two
// markets at once to clients that follow both, and checks that each client
// gets every trade of each market exactly once and in order, and every
// quote, none older than the one before: the pool must not lose, repeat or
// reorder anything.
func TestEveryEventOnceInOrder(t *testing.T) {
	const clients, trades = 40, 400
	for _, v := range writerVariants {
		t.Run(v.name, func(t *testing.T) {
			opts := v.opts
			opts.SendBuffer = 4 * trades // nobody falls behind: no gap is allowed
			ts := MustServe(t, opts, false, 1, 2)
			conns := make([]*websocket.Conn, clients)
			for i := range conns {
				conns[i] = ts.MustDial(t)
				MustSubscribe(t, conns[i], 1)
				MustSubscribe(t, conns[i], 2)
			}
			errs := make(chan error, clients)
			var wg sync.WaitGroup
			for _, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- checkStream(c, trades, 2)
				}()
			}
			var pub sync.WaitGroup
			for _, id := range []int64{1, 2} {
				pub.Add(1)
				go func() { // one publisher per market, as the engine's books
					defer pub.Done()
					for n := 0; n < trades; {
						for range 1 + n%7 { // bursts of 1-7 trades, then their quote
							if n < trades {
								ts.trade(id)
								n++
							}
						}
						ts.state("quote", id)
						if n%50 == 0 {
							time.Sleep(time.Millisecond)
						}
					}
				}()
			}
			pub.Wait()
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if s := ts.hub.Stats(); s.Dropped != 0 || s.Gaps != 0 || s.Conflated != 0 {
				t.Errorf("stats %+v: nobody should have fallen behind", s)
			}
		})
	}
}

// checkStream reads until it has every trade of each market and checks the
// order: trades 1, 2, 3, ... exactly once; quotes never older than the last
// trade written before them.
func checkStream(c *websocket.Conn, trades int, markets int) error {
	last := map[string]int64{}
	lastQuote := map[string]int64{}
	done := 0
	for done < markets {
		f, err := readFrame(c, 10*time.Second)
		if err != nil {
			return fmt.Errorf("after trades %v: %w", last, err)
		}
		switch f.Type {
		case "trade":
			if f.Seq != last[f.Market]+1 {
				return fmt.Errorf("market %s: trade %d after %d", f.Market, f.Seq, last[f.Market])
			}
			last[f.Market] = f.Seq
			if f.Seq == int64(trades) {
				done++
			}
		case "quote":
			if f.Seq < lastQuote[f.Market] || f.Seq > last[f.Market] {
				return fmt.Errorf("market %s: quote at %d after quote %d and trade %d", f.Market, f.Seq, lastQuote[f.Market], last[f.Market])
			}
			lastQuote[f.Market] = f.Seq
		default:
			return fmt.Errorf("unexpected %v", f)
		}
	}
	return nil
}

// TestSlowConnectionDoesNotDelayOthers stalls one connection (it never
// reads, and its socket buffers are small) on the same writer as everyone
// else, with WriteWait far longer than the test, and checks that the other
// clients still get every event promptly: a writer that waited for the
// stalled socket would hold them for WriteWait.
func TestSlowConnectionDoesNotDelayOthers(t *testing.T) {
	const others, trades = 10, 150
	for _, v := range writerVariants {
		t.Run(v.name, func(t *testing.T) {
			opts := v.opts
			opts.WriteWait, opts.SlowClientGrace = time.Minute, time.Minute
			opts.SendBuffer = 2 * trades
			ts := MustServe(t, opts, true, 1)
			ts.markets.pad = string(bytes.Repeat([]byte("x"), 4<<10)) // 150 × 4 KB: far more than the stalled sockets hold

			slow := mustDialSmall(t, ts)
			MustSubscribe(t, slow, 1) // and never read again
			conns := MustSubscribers(t, ts, others, 1)

			errs := make(chan error, others)
			for _, c := range conns {
				go func() { errs <- checkStream(c, trades, 1) }()
			}
			start := time.Now()
			for range trades {
				ts.trade(1)
				ts.state("quote", 1)
				time.Sleep(200 * time.Microsecond)
			}
			for range others {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			took := time.Since(start)
			// The slow client must really have stalled: its trades were
			// dropped (or its bytes wait), while the others got all of theirs.
			waitFor(t, 5*time.Second, "the slow client to fall behind", func() bool { return ts.hub.Stats().Dropped > 0 || slowStalled(ts.hub) })
			if took > 10*time.Second {
				t.Fatalf("the other clients took %v for %d events", took, trades)
			}
			t.Logf("%d others got %d trades in %v; stats %+v", others, trades, took, ts.hub.Stats())
		})
	}
}

// slowStalled reports whether some connection has bytes waiting for a
// blocking write, or is in one.
func slowStalled(h *Hub) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if c.conn.stalled() {
			return true
		}
	}
	return false
}

// mustDialSmall dials with a tiny receive buffer, so that a client that
// does not read stalls the server's writes after a few kilobytes.
func mustDialSmall(t *testing.T, ts *testServer) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(4 << 10)
		}
		return c, err
	}}
	c, _, err := d.Dial(ts.url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestTryWriteKeepsBytesInOrder writes through tryWrite into a socket that
// is not being read until it stops taking bytes, then through Write, and
// checks the reader gets exactly the bytes written, in order: what a
// non-blocking write leaves must go out before anything after it.
func TestTryWriteKeepsBytesInOrder(t *testing.T) {
	server, client := tcpPair(t, loopback(t))
	server.SetWriteBuffer(8 << 10)
	w := newWireConn(server)
	w.pooled = true

	var want bytes.Buffer
	for i := 0; !w.stalled(); i++ {
		chunk := []byte(strconv.Itoa(i) + ":" + string(bytes.Repeat([]byte{'a' + byte(i%26)}, 1000)) + ";")
		if ok, err := w.tryWrite(chunk); !ok || err != nil {
			t.Fatal(ok, err)
		}
		want.Write(chunk)
		if i > 100_000 {
			t.Fatal("the socket never filled")
		}
	}
	for i := range 3 { // more after the stall, still non-blocking: queued
		chunk := []byte("after-stall-" + strconv.Itoa(i) + ";")
		w.tryWrite(chunk)
		want.Write(chunk)
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	w.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := w.Write([]byte("last;")); err != nil {
		t.Fatal(err)
	}
	want.WriteString("last;")
	if w.stalled() {
		t.Fatal("Write left bytes pending")
	}
	server.CloseWrite()
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("got %d bytes, want %d; first difference at %d", len(b), want.Len(), firstDiff(b, want.Bytes()))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestLastEventOfABurstArrives ends many short bursts and waits, after
// each, for every client to have its last trade before publishing more: an
// event queued while a writer finishes with a client must not wait for the
// next publish to be written.
func TestLastEventOfABurstArrives(t *testing.T) {
	const clients, bursts = 8, 300
	for _, v := range writerVariants {
		t.Run(v.name, func(t *testing.T) {
			ts := MustServe(t, v.opts, false, 1)
			conns := MustSubscribers(t, ts, clients, 1)
			got := make([]atomic.Int64, clients)
			errs := make(chan error, clients)
			for i, c := range conns {
				go func() {
					for {
						f, err := readFrame(c, 30*time.Second)
						if err != nil {
							errs <- err
							return
						}
						if f.Type == "trade" {
							if f.Seq != got[i].Load()+1 {
								errs <- fmt.Errorf("client %d: trade %d after %d", i, f.Seq, got[i].Load())
								return
							}
							got[i].Store(f.Seq)
						}
					}
				}()
			}
			var seq int64
			for b := range bursts {
				for range 1 + b%3 {
					seq = ts.trade(1)
				}
				deadline := time.Now().Add(5 * time.Second)
				for i := range got {
					for got[i].Load() < seq {
						select {
						case err := <-errs:
							t.Fatal(err)
						default:
						}
						if time.Now().After(deadline) {
							t.Fatalf("burst %d: client %d has trade %d of %d", b, i, got[i].Load(), seq)
						}
						time.Sleep(50 * time.Microsecond)
					}
				}
			}
		})
	}
}
