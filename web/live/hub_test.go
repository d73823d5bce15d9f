package live

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestSubscribeSnapshotThenEvents(t *testing.T) {
	ts := MustServe(t, Options{}, false, 1, 2)
	ts.markets.set(1, 10)
	c := ts.MustDial(t)

	MustSend(t, c, `{"op":"subscribe","markets":["1"]}`)
	MustReadWant(t, c, "snapshot", 1, 10)

	ts.trade(1)
	ts.trade(1)
	ts.state("quote", 1)
	ts.trade(2) // not subscribed
	ts.trade(1)
	MustReadWant(t, c, "trade", 1, 11)
	MustReadWant(t, c, "trade", 1, 12)
	MustReadWant(t, c, "quote", 1, 12)
	MustReadWant(t, c, "trade", 1, 13)

	// Ids may be numbers too.
	MustSend(t, c, `{"op":"subscribe","markets":[2]}`)
	MustReadWant(t, c, "snapshot", 2, 1)
	ts.trade(2)
	MustReadWant(t, c, "trade", 2, 2)

	MustSend(t, c, `{"op":"unsubscribe","markets":["1"]}`)
	MustReadWant(t, c, "unsubscribed", 1, 0)
	ts.trade(1)
	ts.state("quote", 1)
	ts.trade(2)
	MustReadWant(t, c, "trade", 2, 3) // nothing of market 1 in between

	if st := ts.hub.Stats(); st.Connections != 1 || st.Subscriptions != 1 {
		t.Errorf("stats = %+v, want 1 connection, 1 subscription", st)
	}
}

func TestResubscribeSendsFreshSnapshot(t *testing.T) {
	ts := MustServe(t, Options{}, false, 1)
	c := ts.MustDial(t)
	MustSubscribe(t, c, 1)
	ts.trade(1)
	MustReadWant(t, c, "trade", 1, 1)
	ts.trade(1)
	ts.trade(1)
	MustSend(t, c, `{"op":"subscribe","markets":["1"]}`)
	// Trades 2 and 3 may arrive before the new snapshot (they were sent
	// before the resubscribe was handled) but never after it.
	var got []string
	for {
		f := MustRead(t, c)
		got = append(got, f.String())
		if f.Type == "snapshot" {
			if f.Seq != 3 {
				t.Fatalf("got %v, want snapshot at 3", got)
			}
			break
		}
		if f.Type != "trade" || f.Seq > 3 {
			t.Fatalf("got %v before the new snapshot", got)
		}
	}
	ts.trade(1)
	MustReadWant(t, c, "trade", 1, 4)
	if st := ts.hub.Stats(); st.Subscriptions != 1 {
		t.Errorf("subscriptions = %d, want 1", st.Subscriptions)
	}
}

// Clients subscribe while the market trades: each must see its snapshot and
// then every later trade exactly once, in order.
func TestSubscribeConcurrentWithPublish(t *testing.T) {
	ts := MustServe(t, Options{SendBuffer: 1 << 15}, false, 1)
	ts.markets.maxDelay = 2 * time.Millisecond
	const clients = 12

	stop := make(chan struct{})
	final := make(chan int64, 1)
	go func() {
		var last int64
		for {
			select {
			case <-stop:
				final <- last
				return
			default:
			}
			last = ts.trade(1)
			if last%4 == 0 {
				ts.state("quote", 1)
			}
			if last%8 == 0 {
				time.Sleep(100 * time.Microsecond) // pace, so subscribes overlap many trades
			}
		}
	}()

	var subscribed atomic.Int64
	errs := make(chan error, clients)
	for i := range clients {
		go func() {
			// Stagger: client i joins once the market has traded i*60 times.
			for ts.markets.current(1) < int64(i*60) {
				time.Sleep(time.Millisecond)
			}
			errs <- followMarket(ts, &subscribed)
		}()
	}
	waitFor(t, 20*time.Second, "all clients subscribed", func() bool { return subscribed.Load() == clients })
	mark := ts.markets.current(1)
	waitFor(t, 20*time.Second, "more trades", func() bool { return ts.markets.current(1) >= mark+300 })
	close(stop)
	n := <-final
	ts.state("status", 1) // tells the clients the run is over
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	st := ts.hub.Stats()
	t.Logf("%d trades, %d clients, stats %+v", n, clients, st)
	if st.Dropped != 0 || st.Gaps != 0 {
		t.Errorf("stats = %+v: nothing should have been dropped", st)
	}
}

// followMarket subscribes to market 1 and checks seq continuity until the
// status message.
func followMarket(ts *testServer, subscribed *atomic.Int64) error {
	c, err := ts.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","markets":["1"]}`)); err != nil {
		return err
	}
	f, err := readFrame(c, 10*time.Second)
	if err != nil {
		return err
	}
	if f.Type != "snapshot" {
		return fmt.Errorf("first frame %v, want snapshot", f)
	}
	subscribed.Add(1)
	last := f.Seq
	for {
		f, err := readFrame(c, 10*time.Second)
		if err != nil {
			return fmt.Errorf("after seq %d: %w", last, err)
		}
		switch f.Type {
		case "trade":
			if f.Seq != last+1 {
				return fmt.Errorf("trade %d after %d (snapshot %d)", f.Seq, last, last)
			}
			last = f.Seq
		case "quote":
			if f.Seq != last {
				return fmt.Errorf("quote at %d after trade %d", f.Seq, last)
			}
		case "status":
			if f.Seq != last {
				return fmt.Errorf("final status at %d after trade %d: trades lost", f.Seq, last)
			}
			return nil
		default:
			return fmt.Errorf("unexpected %v", f)
		}
	}
}

func TestInvalidMessages(t *testing.T) {
	ts := MustServe(t, Options{MaxSubscriptions: 2}, false, 1, 2, 3)
	c := ts.MustDial(t)
	tests := []struct {
		name, msg   string
		code, field string
	}{
		{"bad json", `{"op":`, "invalid", ""},
		{"not an object", `[1,2]`, "invalid", ""},
		{"no op", `{"markets":["1"]}`, "invalid", "op"},
		{"unknown op", `{"op":"buy","markets":["1"]}`, "invalid", "op"},
		{"no markets", `{"op":"subscribe"}`, "invalid", "markets"},
		{"empty markets", `{"op":"subscribe","markets":[]}`, "invalid", "markets"},
		{"bad id", `{"op":"subscribe","markets":["abc"]}`, "invalid", "markets"},
		{"zero id", `{"op":"subscribe","markets":[0]}`, "invalid", "markets"},
		{"negative id", `{"op":"subscribe","markets":["-4"]}`, "invalid", "markets"},
		{"fractional id", `{"op":"subscribe","markets":[1.5]}`, "invalid", "markets"},
		{"object id", `{"op":"subscribe","markets":[{}]}`, "invalid", "markets"},
		{"too many", `{"op":"subscribe","markets":["1","2","3"]}`, "invalid", "markets"},
		{"unknown market", `{"op":"subscribe","markets":["99"]}`, "not_found", "markets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			MustSend(t, c, tt.msg)
			f := MustRead(t, c)
			if f.Type != "error" || f.Code != tt.code || f.Field != tt.field || f.Message == "" {
				t.Fatalf("got %v, want error code %s field %q", f, tt.code, tt.field)
			}
		})
	}

	t.Run("binary frame", func(t *testing.T) {
		c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
		if f := MustRead(t, c); f.Type != "error" || f.Code != "invalid" {
			t.Fatalf("got %v, want an invalid error", f)
		}
	})

	// Still usable, and nothing above subscribed anything.
	MustSubscribe(t, c, 1)
	if st := ts.hub.Stats(); st.Subscriptions != 1 {
		t.Errorf("subscriptions = %d, want 1", st.Subscriptions)
	}
}

func TestOversizeMessageCloses1009(t *testing.T) {
	ts := MustServe(t, Options{MaxMessageBytes: 256}, false, 1)
	c := ts.MustDial(t)
	MustSend(t, c, `{"op":"subscribe","markets":["`+strings.Repeat("1", 1000)+`"]}`)
	_, err := readFrame(c, 5*time.Second)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("read error = %v, want close 1009", err)
	}
	c.Close()
	waitFor(t, 5*time.Second, "connection gone", func() bool { return ts.hub.Stats().Connections == 0 })
}

func TestOrigin(t *testing.T) {
	ts := MustServe(t, Options{}, false, 1)
	d := websocket.Dialer{}

	h := http.Header{"Origin": {"http://evil.example"}}
	c, resp, err := d.Dial(ts.url, h)
	if err == nil {
		c.Close()
		t.Fatal("dial with a foreign origin succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial with a foreign origin: %v, response %v; want 403", err, resp)
	}

	h = http.Header{"Origin": {ts.srv.URL}}
	c, _, err = d.Dial(ts.url, h)
	if err != nil {
		t.Fatalf("dial with the same origin: %v", err)
	}
	c.Close()

	allowed := MustServe(t, Options{CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "https://levee.example" }}, false, 1)
	c, _, err = d.Dial(allowed.url, http.Header{"Origin": {"https://levee.example"}})
	if err != nil {
		t.Fatalf("dial with an origin CheckOrigin accepts: %v", err)
	}
	c.Close()
}

func TestCloseSendsGoingAwayWithoutLeaks(t *testing.T) {
	baseline := runtime.NumGoroutine()
	ts := MustServe(t, Options{}, false, 1, 2)
	const clients = 20
	codes := make(chan int, clients)
	var wg sync.WaitGroup
	for i := range clients {
		c := ts.MustDial(t)
		MustSubscribe(t, c, int64(1+i%2))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := readFrame(c, 10*time.Second); err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						codes <- ce.Code
					} else {
						codes <- -1
					}
					c.Close()
					return
				}
			}
		}()
	}
	ts.trade(1)
	ts.hub.Close()
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != websocket.CloseGoingAway {
			t.Errorf("client saw close code %d, want %d", code, websocket.CloseGoingAway)
		}
	}
	if st := ts.hub.Stats(); st.Connections != 0 || st.Subscriptions != 0 {
		t.Errorf("after Close stats = %+v", st)
	}
	ts.hub.Publish(Event{Type: "trade", MarketID: 1, Seq: 99, Payload: []byte(`{}`)}) // harmless
	if _, err := ts.dial(); err == nil {
		t.Error("dial after Close succeeded")
	}
	ts.srv.Close()
	waitFor(t, 5*time.Second, fmt.Sprintf("goroutines back to %d", baseline), func() bool { return runtime.NumGoroutine() <= baseline })
}

func TestKeepalive(t *testing.T) {
	ts := MustServe(t, Options{PingInterval: 50 * time.Millisecond, PongWait: 300 * time.Millisecond}, false, 1)

	// A reading client answers pings (gorilla's default pong) and stays.
	live := ts.MustDial(t)
	MustSubscribe(t, live, 1)
	pong := make(chan struct{}, 1)
	live.SetPongHandler(func(string) error {
		select {
		case pong <- struct{}{}:
		default:
		}
		return nil
	})
	frames := make(chan frame, 16)
	go func() {
		for {
			f, err := readFrame(live, 10*time.Second)
			if err != nil {
				close(frames)
				return
			}
			frames <- f
		}
	}()

	// A silent client sends no pongs and is dropped after PongWait.
	silent := ts.MustDial(t)
	waitFor(t, 5*time.Second, "both clients connected", func() bool { return ts.hub.Stats().Connections == 2 })
	waitFor(t, 5*time.Second, "the silent client dropped", func() bool { return ts.hub.Stats().Connections == 1 })

	live.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second))
	select {
	case <-pong:
	case <-time.After(5 * time.Second):
		t.Fatal("no pong for the client's ping")
	}
	ts.trade(1)
	if f, ok := <-frames; !ok || f.Type != "trade" || f.Seq != 1 {
		t.Fatalf("live client got %v (open %v), want trade 1", f, ok)
	}
	var ne net.Error
	if _, err := readFrame(silent, 5*time.Second); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("silent client read: %v, want the connection closed", err)
	}
}

// A trade that skips seqs (with several instances: trades lost between
// their owner and this hub) comes after an explicit gap and a fresh
// snapshot, never as a silent jump.
func TestSeqJumpSendsGapThenSnapshot(t *testing.T) {
	ts := MustServe(t, Options{}, false, 1)
	ts.markets.set(1, 5)
	c := ts.MustDial(t)
	MustSubscribe(t, c, 1)
	ts.trade(1) // 6
	MustReadWant(t, c, "trade", 1, 6)
	// Trades 7 and 8 commit but never reach the hub; 9 does.
	ts.markets.set(1, 8)
	ts.trade(1)
	MustReadWant(t, c, "gap", 1, 8)
	MustReadWant(t, c, "snapshot", 1, 9)
	ts.trade(1)
	MustReadWant(t, c, "trade", 1, 10)
	if st := ts.hub.Stats(); st.Gaps != 1 {
		t.Errorf("gaps = %d, want 1", st.Gaps)
	}
}
