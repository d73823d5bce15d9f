package live

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// MustSubscribers connects n clients subscribed to market id.
func MustSubscribers(t testing.TB, ts *testServer, n int, id int64) []*websocket.Conn {
	t.Helper()
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = ts.MustDial(t)
		MustSubscribe(t, conns[i], id)
	}
	return conns
}

func TestFanout1000(t *testing.T) {
	const clients = 1000
	ts := MustServe(t, Options{}, false, 1)
	conns := MustSubscribers(t, ts, clients, 1)

	received := make([]time.Duration, clients)
	var ready, done sync.WaitGroup
	ready.Add(clients)
	done.Add(clients)
	start := make(chan time.Time)
	errs := make(chan error, clients)
	for i, c := range conns {
		go func() {
			defer done.Done()
			ready.Done()
			t0 := <-start
			f, err := readFrame(c, 10*time.Second)
			received[i] = time.Since(t0)
			if err != nil || f.Type != "trade" || f.Seq != 1 {
				errs <- fmt.Errorf("client %d: %v %v", i, f, err)
			}
		}()
	}
	ready.Wait()
	t0 := time.Now()
	ts.trade(1)
	publish := time.Since(t0)
	for range clients {
		start <- t0
	}
	done.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	slices.Sort(received)
	t.Logf("fan-out to %d clients: Publish returned in %v; received by median %v, p99 %v, last %v",
		clients, publish, received[clients/2], received[clients*99/100], received[clients-1])
}

// BenchmarkPublishFanout measures one event to many subscribers.
//
// "queue" measures Publish alone (the publisher's cost: one push into each
// subscriber's inbox), with in-memory clients whose inboxes are emptied
// outside the timer. They have no connection, so no writer pool may take
// them: the hub runs write pumps (none is started). "websocket" measures the whole path: Publish until every one of the
// real loopback clients has read the event.
func BenchmarkPublishFanout(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("queue/subscribers=%d", n), func(b *testing.B) { benchQueue(b, n) })
	}
	for _, n := range []int{100, 1_000} {
		b.Run(fmt.Sprintf("websocket/subscribers=%d", n), func(b *testing.B) { benchWebsocket(b, n) })
	}
}

func benchQueue(b *testing.B, n int) {
	const buffer = 256
	h := NewHub(newFakeMarkets(1), Options{SendBuffer: buffer, WritePumps: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = newClient(h, nil, h.log)
		h.attach(&subscription{c: clients[i], market: 1, live: true})
	}
	payload := []byte(`{"type":"trade","market":"1","seq":1,"outcome":0,"side":"buy","shares":"1.5","amount":"0.75"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		h.Publish(Event{Type: "trade", MarketID: 1, Seq: int64(i + 1), Payload: payload})
		if i%buffer == buffer-1 {
			b.StopTimer()
			for _, c := range clients {
				for {
					if _, ok := c.inbox.pop(); !ok {
						break
					}
				}
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	if st := h.Stats(); st.Dropped != 0 {
		b.Fatalf("dropped %d", st.Dropped)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
}

func benchWebsocket(b *testing.B, n int) {
	ts := MustServe(b, Options{}, false, 1)
	conns := MustSubscribers(b, ts, n, 1)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	b.ResetTimer()
	for range b.N {
		wg.Add(n)
		for _, c := range conns {
			go func() {
				defer wg.Done()
				if _, err := readFrame(c, 10*time.Second); err != nil {
					errs <- err
				}
			}()
		}
		ts.trade(1)
		wg.Wait()
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
	}
}

// BenchmarkFanoutCPU measures the CPU the process spends per delivered
// message: each round publishes a trade and its quote (as the engine does
// after a commit) to n subscribers on loopback and waits until every one has
// read both, so the write pumps go idle between rounds as in a paced market.
// The clients only count bytes, to keep their share of the CPU small; the
// CPU profile separates them from the server (writePump).
func BenchmarkFanoutCPU(b *testing.B) {
	for _, n := range []int{1_000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) { benchFanoutCPU(b, n) })
	}
}

func benchFanoutCPU(b *testing.B, n int) {
	ts := MustServe(b, Options{}, false, 1)
	conns := MustSubscribers(b, ts, n, 1)
	var (
		target atomic.Int64 // bytes every client has once the round is in
		round  atomic.Int64
		wg     sync.WaitGroup
	)
	for _, c := range conns {
		nc := c.NetConn()
		nc.SetReadDeadline(time.Time{})
		go func() {
			buf := make([]byte, 64<<10)
			var got, done int64
			for {
				k, err := nc.Read(buf)
				if err != nil {
					return
				}
				got += int64(k)
				if r := round.Load(); r > done && got >= target.Load() {
					done = r
					wg.Done()
				}
			}
		}()
	}
	frameLen := func(p []byte) int64 {
		if len(p) < 126 {
			return int64(len(p) + 2)
		}
		return int64(len(p) + 4)
	}
	var want int64
	b.ResetTimer()
	cpu0 := processCPU()
	for i := range b.N {
		seq := int64(i + 1)
		trade := ts.markets.payload("trade", 1, seq)
		quote := ts.markets.payload("quote", 1, seq)
		want += frameLen(trade) + frameLen(quote)
		target.Store(want)
		wg.Add(n)
		round.Store(int64(i + 1))
		ts.markets.set(1, seq)
		ts.hub.Publish(Event{Type: "trade", MarketID: 1, Seq: seq, Payload: trade})
		ts.hub.Publish(Event{Type: "quote", MarketID: 1, Seq: seq, Payload: quote})
		wg.Wait()
	}
	cpu := processCPU() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(2*n), "cpu-ns/msg")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
