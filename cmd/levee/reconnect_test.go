package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"levee/migrations/dbtest"
)

// stayer is a subscriber that stays connected through a storm and checks
// that the trades it receives are numbered without gaps.
type stayer struct {
	ws      *websocket.Conn
	last    atomic.Int64 // seq of the last trade received
	problem atomic.Value // string: the first thing that went wrong
	done    chan struct{}
}

// dialSubscribe connects to the hub, subscribes to market and waits for the
// snapshot; it returns the snapshot's seq.
func dialSubscribe(addr, market string) (*websocket.Conn, int64, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial("ws://"+addr+"/api/v1/ws", nil)
	if err != nil {
		return nil, 0, fmt.Errorf("dial: %w", err)
	}
	if err := ws.WriteJSON(map[string]any{"op": "subscribe", "markets": []string{market}}); err != nil {
		ws.Close()
		return nil, 0, fmt.Errorf("subscribe: %w", err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var msg struct {
			Type string `json:"type"`
			Seq  int64  `json:"seq"`
		}
		if err := ws.ReadJSON(&msg); err != nil {
			ws.Close()
			return nil, 0, fmt.Errorf("wait for the snapshot: %w", err)
		}
		if msg.Type == "snapshot" {
			ws.SetReadDeadline(time.Time{})
			return ws, msg.Seq, nil
		}
	}
}

func newStayer(addr, market string) (*stayer, error) {
	ws, seq, err := dialSubscribe(addr, market)
	if err != nil {
		return nil, err
	}
	s := &stayer{ws: ws, done: make(chan struct{})}
	s.last.Store(seq)
	go s.read()
	return s, nil
}

func (s *stayer) read() {
	defer close(s.done)
	for {
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			return
		}
		var msg struct {
			Type string `json:"type"`
			Seq  int64  `json:"seq"`
		}
		if err := json.Unmarshal(data, &msg); err != nil {
			s.problem.CompareAndSwap(nil, fmt.Sprintf("bad message %q", data))
			continue
		}
		if err := checkWS("ServerMessage", data); err != nil { // openapi_test.go
			s.problem.CompareAndSwap(nil, err.Error())
		}
		switch msg.Type {
		case "trade":
			if want := s.last.Load() + 1; msg.Seq != want {
				s.problem.CompareAndSwap(nil, fmt.Sprintf("trade seq %d after %d", msg.Seq, want-1))
			}
			s.last.Store(msg.Seq)
		case "gap", "error":
			s.problem.CompareAndSwap(nil, fmt.Sprintf("%s message %s", msg.Type, data))
		}
	}
}

// TestReconnectStorm keeps a few subscribers connected while a few hundred
// others connect, subscribe, drop (without a close frame, with one, or
// before even reading the snapshot) and reconnect, all at once, over
// loopback, while a resident trades. The hub must end with exactly the
// subscribers that stayed, those must have every trade in sequence, and the
// goroutines and memory of the dropped connections must be given back.
func TestReconnectStorm(t *testing.T) {
	m := MustRunMainAt(t, dbtest.NewURL(t))
	tess, alice, _ := MustCity(t, m)
	market, path := MustMarket(t, tess)
	base := MustGoroutinesBackTo(t, runtime.NumGoroutine(), 0)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0 := ms.HeapInuse

	const stayers, stormers, rounds = 10, 300, 5
	var stay []*stayer
	for i := 0; i < stayers; i++ {
		s, err := newStayer(m.Addr(), market)
		if err != nil {
			t.Fatalf("stayer %d: %v", i, err)
		}
		stay = append(stay, s)
	}
	l := startOrderLoad("http://"+m.Addr(), alice.token, path, "storm", 2)

	start := time.Now()
	var wg sync.WaitGroup
	var connects, retries atomic.Int64
	var peak atomic.Int64
	for i := 0; i < stormers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				var ws *websocket.Conn
				var err error
				for try := 0; ; try++ {
					if ws, _, err = dialSubscribe(m.Addr(), market); err == nil {
						break
					}
					if try == 20 {
						t.Errorf("stormer %d round %d: %v", i, r, err)
						return
					}
					retries.Add(1)
					time.Sleep(time.Duration(10*(try+1)) * time.Millisecond)
				}
				connects.Add(1)
				if n := m.live.Stats().Connections; n > peak.Load() {
					peak.Store(n)
				}
				switch (i + r) % 3 {
				case 0: // gone without a word: the TCP connection just closes
				case 1: // a polite close frame first
					ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				case 2: // a little reading first, while trades flow
					ws.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
					for {
						if _, _, err := ws.NextReader(); err != nil {
							break
						}
					}
				}
				ws.Close()
			}
		}()
	}
	wg.Wait()
	storm := time.Since(start)

	// The hub ends with the stayers only.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := m.live.Stats()
		if st.Connections == stayers && st.Subscriptions == stayers {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the storm the hub has %d connections and %d subscriptions, want %d", st.Connections, st.Subscriptions, stayers)
		}
		time.Sleep(20 * time.Millisecond)
	}
	results := l.finish()
	if acked, refused, _ := refusals(t, results, time.Second); refused > 0 || acked == 0 {
		t.Fatalf("orders during the storm: %d acknowledged, %d refused", acked, refused)
	}
	_, mk := anonymous(t, m).do("GET", "/api/v1/markets/"+market, "")
	final := int64(mk["seq"].(float64))
	for i, s := range stay {
		deadline := time.Now().Add(10 * time.Second)
		for s.last.Load() < final && time.Now().Before(deadline) && s.problem.Load() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		if p := s.problem.Load(); p != nil {
			t.Fatalf("stayer %d: %s", i, p)
		}
		if got := s.last.Load(); got != final {
			t.Fatalf("stayer %d saw trades up to seq %d, the market is at %d", i, got, final)
		}
		s.ws.Close()
		<-s.done
	}
	deadline = time.Now().Add(10 * time.Second)
	for m.live.Stats().Connections != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections left after every client closed", m.live.Stats().Connections)
		}
		time.Sleep(20 * time.Millisecond)
	}
	n := MustGoroutinesBackTo(t, base, 5)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	// The race detector's shadow memory is not in HeapInuse; 900
	// connections' buffers are several megabytes, so this catches them
	// being kept, not a few kilobytes of noise.
	if grown := int64(ms.HeapInuse) - int64(heap0); grown > 8<<20 {
		t.Errorf("heap in use grew by %d KiB over the storm", grown>>10)
	}
	t.Logf("%d reconnects (%d retried dials) of %d clients in %s, peak %d connections; %d stayers saw all %d trades in sequence; goroutines %d before, %d after; heap in use %d KiB before, %d KiB after",
		connects.Load(), retries.Load(), stormers, storm.Round(time.Millisecond), peak.Load(), stayers, final, base, n, heap0>>10, ms.HeapInuse>>10)
}
