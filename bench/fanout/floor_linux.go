//go:build linux

package fanout

import (
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"syscall"

	"github.com/gorilla/websocket"

	"levee/web/live"
)

// Floor is the fan-out's floor on this machine: what delivering an event to
// every subscriber costs when the server does nothing but one write(2) of
// ready-made bytes per subscriber. It answers each client's subscribe with
// Snapshot, keeps only its socket, and publishes a trade and the quote after
// it as one write of both frames (framed by web/live, once), from GOMAXPROCS
// goroutines at once. The kernel's work (the sender's TCP, and on loopback
// the receiver's too, done in the sender's context) is all that is left; a
// real server's time above it is its own. Measured beside Levee's hub in
// the same run, it is the baseline that says how far from the machine's
// limit the hub is (bench/RESULTS.md §7, §7a).
type Floor struct {
	Snapshot func() []byte // the snapshot a subscriber gets

	mu     sync.Mutex
	fds    []int
	errs   int
	closed bool
}

var floorUpgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}

// ServeHTTP takes one subscriber: its subscribe message, the snapshot, and
// from then on only its socket.
func (f *Floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := floorUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if _, _, err := ws.ReadMessage(); err != nil { // the subscribe
		ws.Close()
		return
	}
	if err := ws.WriteMessage(websocket.TextMessage, f.Snapshot()); err != nil {
		ws.Close()
		return
	}
	fd, err := Detach(ws)
	if err != nil {
		slog.Error("fan-out floor: detach", "error", err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		syscall.Close(fd)
		return
	}
	f.fds = append(f.fds, fd)
}

// PublishBatch frames a commit's events (a trade and its quote) and
// writes them in one write per subscriber.
func (f *Floor) PublishBatch(evs []live.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b []byte
	for _, ev := range evs {
		b = live.AppendTextFrame(b, ev.Payload)
	}
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

// Close closes every socket; it reports writes the sockets did not take
// whole (none, unless a subscriber stopped reading).
func (f *Floor) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, fd := range f.fds {
		syscall.Close(fd)
	}
	f.fds = nil
	if f.errs > 0 {
		return errors.New("fan-out floor: some writes were not taken whole")
	}
	return nil
}
