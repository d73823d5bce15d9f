package main

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"syscall"

	"github.com/gorilla/websocket"

	"levee/bench/fanout"
	"levee/web/live"
)

// publisher is what a round publishes to and serves the subscribers from.
type publisher interface {
	http.Handler
	Publish(live.Event)
}

// floor is the fan-out's floor on this machine: what delivering an event to
// every subscriber costs when the server does nothing but one write(2) of
// ready-made bytes per subscriber. It answers each client's subscribe with a
// snapshot, keeps only its socket, and publishes a trade and the quote after
// it as one write of both frames (framed by web/live, once), from
// GOMAXPROCS goroutines at once. The kernel's work (the sender's TCP, and on
// loopback the receiver's too, done in the sender's context) is all that is
// left; web/live's time above it is its own.
type floor struct {
	snap *snapshots

	mu      sync.Mutex
	fds     []int
	pending []byte // a trade waiting for its quote
	errs    int
}

var floorUpgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}

func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := floorUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if _, _, err := ws.ReadMessage(); err != nil { // the subscribe
		ws.Close()
		return
	}
	snap, _, _ := f.snap.SnapshotJSON(context.Background(), market)
	if err := ws.WriteMessage(websocket.TextMessage, snap); err != nil {
		ws.Close()
		return
	}
	fd, err := fanout.Detach(ws)
	if err != nil {
		slog.Error("floor: detach", "error", err)
		return
	}
	f.mu.Lock()
	f.fds = append(f.fds, fd)
	f.mu.Unlock()
}

// Publish frames ev; a quote goes out with the trade before it, in one write.
func (f *floor) Publish(ev live.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = live.AppendTextFrame(f.pending, ev.Payload)
	if ev.Type == "trade" {
		return
	}
	b := f.pending
	f.pending = nil
	n := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var errs sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < len(f.fds); j += n {
				if m, err := syscall.Write(f.fds[j], b); err != nil || m != len(b) {
					errs.Lock()
					f.errs++
					errs.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}

func (f *floor) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fd := range f.fds {
		syscall.Close(fd)
	}
	if f.errs > 0 {
		slog.Error("floor: writes not taken whole", "count", f.errs)
	}
}
