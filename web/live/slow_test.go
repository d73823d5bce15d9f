package live

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A client that never reads must not slow the publisher or a fast client,
// and is disconnected once it has been behind for SlowClientGrace.
func TestSlowClientDoesNotSlowPublisher(t *testing.T) {
	const (
		events = 100_000
		burst  = 100 // the publisher waits for the fast client after each burst
	)
	ts := MustServe(t, Options{SendBuffer: 128, SlowClientGrace: 300 * time.Millisecond, WriteWait: 5 * time.Second}, true, 1)

	slow, err := ts.dial()
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	MustSubscribe(t, slow, 1) // and never read again

	fast := ts.MustDial(t)
	MustSubscribe(t, fast, 1)
	progress := make(chan int64, events)
	readErr := make(chan error, 1) // only on failure
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		var last int64
		for last < events {
			// Not readFrame: decoding 100k messages under -race is slow.
			fast.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, data, err := fast.ReadMessage()
			if err != nil {
				readErr <- fmt.Errorf("fast client after %d: %w", last, err)
				return
			}
			if want := fmt.Appendf(nil, `{"type":"trade","market":"1","seq":%d,`, last+1); !bytes.HasPrefix(data, want) {
				readErr <- fmt.Errorf("fast client got %s after trade %d", data, last)
				return
			}
			last++
			progress <- last
		}
	}()

	var slowest time.Duration
	var slowestAt int64
	start := time.Now()
	for i := int64(1); i <= events; i++ {
		t0 := time.Now()
		ts.trade(1)
		if d := time.Since(t0); d > slowest {
			slowest, slowestAt = d, i
		}
		if i%burst != 0 {
			continue
		}
		for got := int64(0); got < i; {
			select {
			case got = <-progress:
			case err := <-readErr:
				t.Fatalf("fast client: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatalf("fast client stuck at %d of %d", got, i)
			}
		}
	}
	elapsed := time.Since(start)
	<-readDone
	t.Logf("%d events to one fast and one stalled client in %v; slowest Publish %v (event %d)", events, elapsed, slowest, slowestAt)
	// A Publish that waited for the stalled client would take at least the
	// write deadline (WriteWait); anything shorter is the scheduler of a
	// busy 2-core machine running tests in parallel under -race.
	if slowest > 3*time.Second {
		t.Errorf("a Publish took %v: it must never wait for a client", slowest)
	}

	waitFor(t, 10*time.Second, "the slow client disconnected", func() bool {
		st := ts.hub.Stats()
		return st.SlowDisconnects == 1 && st.Connections == 1
	})
	st := ts.hub.Stats()
	t.Logf("stats %+v", st)
	if st.Dropped == 0 {
		t.Errorf("stats = %+v: trades should have been dropped for the slow client", st)
	}
}

// A client that falls behind gets a gap message and the latest quote and
// status, stays connected, and then follows the market again.
func TestConflationKeepsLatestState(t *testing.T) {
	const rounds = 2000
	ts := MustServe(t, Options{SendBuffer: 4, SlowClientGrace: 20 * time.Second}, true, 1)
	ts.markets.pad = strings.Repeat("y", 1000)

	c, err := ts.dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	MustSubscribe(t, c, 1)

	// The client does not read while the market moves.
	for range rounds {
		ts.trade(1)
		ts.state("quote", 1)
	}
	ts.state("status", 1)
	if st := ts.hub.Stats(); st.Dropped == 0 || st.Conflated == 0 {
		t.Fatalf("stats = %+v: want dropped trades and conflated quotes", st)
	}

	// Trades stay gap-free except where a gap message says so; the last
	// quote and status arrive.
	var last, gaps int64
	var quote, status bool
	var got int
	for !(quote && status) {
		f := MustRead(t, c)
		got++
		switch f.Type {
		case "trade":
			if f.Seq != last+1 {
				t.Fatalf("trade %d after %d without a gap message", f.Seq, last)
			}
			last = f.Seq
		case "gap":
			if f.Seq <= last {
				t.Fatalf("gap at %d after trade %d", f.Seq, last)
			}
			last = f.Seq
			gaps++
		case "quote", "status":
			if f.Seq < last {
				t.Fatalf("%v after trade %d", f, last)
			}
			quote = quote || f.Type == "quote" && f.Seq == rounds
			status = status || f.Type == "status" && f.Seq == rounds
		default:
			t.Fatalf("unexpected %v", f)
		}
	}
	t.Logf("%d frames for %d events, %d gaps; stats %+v", got, 2*rounds+1, gaps, ts.hub.Stats())
	if gaps == 0 || last != rounds {
		t.Errorf("%d gaps, last trade %d: want at least one gap and to end at %d", gaps, last, rounds)
	}

	// Caught up: the market is followed normally again.
	ts.trade(1)
	MustReadWant(t, c, "trade", 1, rounds+1)
	if st := ts.hub.Stats(); st.SlowDisconnects != 0 || st.Connections != 1 || st.Gaps != gaps {
		t.Errorf("stats = %+v: want the client still connected, %d gaps", st, gaps)
	}
}

// A client that never catches up is closed with 1008 when it finally reads.
func TestSlowClientSeesPolicyClose(t *testing.T) {
	ts := MustServe(t, Options{SendBuffer: 4, SlowClientGrace: 200 * time.Millisecond}, true, 1)
	ts.markets.pad = strings.Repeat("z", 1000)
	c, err := ts.dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	MustSubscribe(t, c, 1)
	// Keep the market moving, a few trades at a time so that they are
	// written rather than conflated away, until the socket is full and the
	// client has been behind for the grace period.
	waitFor(t, 10*time.Second, "slow disconnect", func() bool {
		for range 3 {
			ts.trade(1)
		}
		return ts.hub.Stats().SlowDisconnects == 1
	})

	for {
		_, err := readFrame(c, 5*time.Second)
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
			t.Fatalf("read error = %v, want close 1008", err)
		}
		break
	}
}
