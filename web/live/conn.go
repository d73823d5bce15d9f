package live

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"levee"
)

// ctlMsg is something the read pump asks the write pump to write: a snapshot
// (sub set) or a ready-made frame (an error, an unsubscribe acknowledgement).
type ctlMsg struct {
	sub  *subscription
	seq  int64
	data []byte
}

// client is one websocket connection. The fields every delivery touches
// come first, so that they share cache lines.
type client struct {
	scheduled atomic.Bool // c is on the pool's ready list
	stopped   atomic.Bool
	behind    atomic.Bool // written under mu; read without it on the hot path
	pooled    bool        // the writer pool delivers published events (unless Options.WritePumps)
	inbox     inbox       // published groups; Publish never blocks on it

	// wmu is held by whoever writes for the connection: its write pump, or
	// a writer of the pool (which only TryLocks it). It guards batch, shared, held,
	// inPool and the subscriptions' write-side fields (subscription.live,
	// last, buf, dropped).
	wmu    sync.Mutex
	inPool bool    // a pool writer holds wmu: writes must not wait
	batch  *[]byte // frames not yet written (see flush)
	shared []byte  // a group's frames, written as they are when nothing precedes them (see writeFrames)
	held   *held   // events a pool writer left for the pump (a resync)

	h    *Hub
	ws   *websocket.Conn
	conn *wireConn // under ws: the write pump writes its batches here
	log  *slog.Logger

	ctx    context.Context // cancelled by stop: aborts a snapshot in progress
	cancel context.CancelFunc

	queued   chan struct{} // write pumps only (Options.WritePumps): the inbox has items
	ctl      chan ctlMsg   // read pump → write pump, in order
	pongs    chan string   // ping payloads to answer
	wake     chan struct{} // a publisher overflowed: check for catch-up
	quit     chan struct{} // closed by stop
	readDone chan struct{} // closed when the read pump has finished

	stopOnce    sync.Once
	closeCode   int // written once before quit is closed; 0: close without a frame
	closeReason string

	mu        sync.Mutex // guards the fields below
	pending   map[*subscription]*lag
	order     uint64
	lagging   bool        // behind, or writing the backlog of being behind
	epoch     uint64      // lagging episodes, so a stale slow timer does nothing
	slowTimer *time.Timer // runs while lagging

	subs map[int64]*subscription // read pump only
}

func newClient(h *Hub, ws *websocket.Conn, log *slog.Logger) *client {
	c := &client{
		h:        h,
		ws:       ws,
		log:      log,
		queued:   make(chan struct{}, 1),
		ctl:      make(chan ctlMsg, 16),
		pongs:    make(chan string, 1),
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		readDone: make(chan struct{}),
		subs:     map[int64]*subscription{},
	}
	c.ctx, c.cancel = context.WithCancel(h.ctx)
	return c
}

// stop asks the write pump to send a close frame with code (none if 0) and
// end the connection. Only the first call counts; it reports whether this
// call was it.
func (c *client) stop(code int, reason string) bool {
	first := false
	c.stopOnce.Do(func() {
		first = true
		c.closeCode, c.closeReason = code, reason
		c.stopped.Store(true)
		c.cancel()
		close(c.quit)
	})
	return first
}

// sendCtl hands m to the write pump; false once the connection is stopping.
func (c *client) sendCtl(m ctlMsg) bool {
	select {
	case c.ctl <- m:
		return true
	case <-c.quit:
		return false
	}
}

// readPump reads client messages; it is the only reader of the connection.
// On its way out it removes every subscription of the connection.
func (c *client) readPump() {
	defer c.h.wg.Done()
	defer close(c.readDone)
	defer func() {
		for _, s := range c.subs {
			c.h.detach(s)
		}
	}()

	opts := c.h.opts
	c.ws.SetReadLimit(opts.MaxMessageBytes)
	c.ws.SetReadDeadline(time.Now().Add(opts.PongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(opts.PongWait)) })
	// Answering pings and echoing a close is the write pump's job.
	c.ws.SetPingHandler(func(data string) error {
		select {
		case c.pongs <- data:
		default: // one pong in flight is enough
		}
		return nil
	})
	c.ws.SetCloseHandler(func(int, string) error { return nil })

	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce):
				code := ce.Code
				if code == websocket.CloseNoStatusReceived {
					code = websocket.CloseNormalClosure
				}
				c.stop(code, "")
			case errors.Is(err, websocket.ErrReadLimit):
				// gorilla has already sent close 1009. Drain what the client
				// is still sending, so closing does not reset the connection
				// before the close frame is read.
				c.stop(websocket.CloseMessageTooBig, "")
				c.drain()
			default:
				c.stop(0, "")
			}
			return
		}
		if typ != websocket.TextMessage {
			if !c.sendCtl(ctlMsg{data: encodeError(levee.Invalid("", "send JSON in text frames"), "", 0)}) {
				return
			}
			continue
		}
		if !c.handle(data) {
			return
		}
	}
}

// drain discards input until the client closes or closeWait passes.
func (c *client) drain() {
	nc := c.ws.NetConn()
	nc.SetReadDeadline(time.Now().Add(c.closeWait()))
	io.Copy(io.Discard, nc)
}

// closeWait bounds how long closing waits for the client.
func (c *client) closeWait() time.Duration {
	return min(c.h.opts.WriteWait, time.Second)
}

// handle acts on one client message; false once the connection is stopping.
func (c *client) handle(data []byte) bool {
	op, ids, err := parseRequest(data)
	if err != nil {
		return c.sendCtl(ctlMsg{data: encodeError(err, "", 0)})
	}
	if op == opUnsubscribe {
		for _, id := range ids {
			if s := c.subs[id]; s != nil {
				c.h.detach(s)
				delete(c.subs, id)
			}
			if !c.sendCtl(ctlMsg{data: encodeUnsubscribed(id)}) {
				return false
			}
		}
		return true
	}
	return c.subscribe(ids)
}

// subscribe subscribes to each market: attach first, so that nothing
// published from now on is missed, then fetch the snapshot; the write pump
// holds the market's events until the snapshot is written and drops those
// it already covers. Subscribing again to a market restarts it with a fresh
// snapshot, which is how a client recovers from a gap.
func (c *client) subscribe(ids []int64) bool {
	fresh := 0
	for _, id := range ids {
		if c.subs[id] == nil {
			fresh++
		}
	}
	if limit := c.h.opts.MaxSubscriptions; len(c.subs)+fresh > limit {
		err := levee.Invalid("markets", "at most %d markets per connection; unsubscribe from some first", limit)
		return c.sendCtl(ctlMsg{data: encodeError(err, "", 0)})
	}
	for _, id := range ids {
		s := &subscription{c: c, market: id}
		c.h.attach(s)
		if old := c.subs[id]; old != nil {
			c.h.detach(old)
		}
		c.subs[id] = s

		msg, seq, err := c.h.snap.SnapshotJSON(c.ctx, id)
		if err != nil {
			c.h.detach(s)
			delete(c.subs, id)
			if c.ctx.Err() != nil {
				return false
			}
			if levee.ErrorCode(err) == levee.EINTERNAL {
				c.log.Error("websocket snapshot", slog.Int64("market_id", id), slog.Any("error", err))
			}
			if !c.sendCtl(ctlMsg{data: encodeError(err, "markets", id)}) {
				return false
			}
			continue
		}
		if !c.sendCtl(ctlMsg{sub: s, seq: seq, data: msg}) {
			return false
		}
	}
	return true
}

// writePump writes everything the client receives; it is the only writer of
// the connection (gorilla itself writes the 1009 close frame when the read
// limit is hit, through its concurrency-safe WriteControl). Messages are not
// coalesced into one frame as in the chat example: each frame is one JSON
// message. But every frame queued when the pump wakes up goes out in one
// write (see flush), with one deadline.
func (c *client) writePump() {
	ticker := time.NewTicker(c.h.opts.PingInterval)
	defer func() {
		ticker.Stop()
		c.stop(0, "")
		c.mu.Lock()
		if c.slowTimer != nil {
			c.slowTimer.Stop()
			c.slowTimer = nil
		}
		c.pending = nil
		c.mu.Unlock()
		c.wmu.Lock()
		c.batch, c.shared, c.held = nil, nil, nil
		c.wmu.Unlock()
		c.ws.Close()
		<-c.readDone
		c.h.remove(c)
		c.log.Debug("websocket disconnected")
		c.h.wg.Done()
	}()

	// With the writer pool, published events are the pool's: the pump
	// takes them only when woken (see pool.go).
	queued := c.queued
	if c.pooled {
		queued = nil
	}
	for {
		select {
		case <-c.quit: // before anything else queued
			c.closeFrame()
			return
		default:
		}
		var err error
		select {
		case <-queued:
			c.wmu.Lock()
			err = c.deliverQueued()
			if err == nil && c.inbox.len() == 0 && c.behind.Load() {
				err = c.catchUp()
			}
			err = c.flushUnlock(err)
		case m := <-c.ctl:
			c.wmu.Lock()
			if m.sub != nil {
				err = c.writeSnapshot(m.sub, m.data, m.seq)
			} else {
				err = c.writeRaw(m.data)
			}
			err = c.flushUnlock(err)
		case <-c.wake:
			c.wmu.Lock()
			err = c.caughtUp()
			err = c.flushUnlock(err)
		case data := <-c.pongs:
			err = c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.h.opts.WriteWait))
		case <-ticker.C:
			err = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.h.opts.WriteWait))
		case <-c.quit:
			c.closeFrame()
			return
		}
		if err != nil {
			c.log.Debug("websocket write", slog.Any("error", err))
			return
		}
	}
}

// flushUnlock flushes the batch unless err, and releases c.wmu.
func (c *client) flushUnlock(err error) error {
	if err == nil {
		err = c.flush()
	}
	c.wmu.Unlock()
	return err
}

// caughtUp is the write pump's answer to a wake-up: the pool left it bytes
// the socket did not take, or an event that needs a resync, or events it
// could not deliver while the pump was writing; or a publisher overflowed
// the queue and the backlog is due once the queue is empty. c.wmu must be
// held; write pump only.
func (c *client) caughtUp() error {
	if err := c.flushPending(); err != nil {
		return err
	}
	if h := c.held; h != nil {
		c.held = nil
		if err := c.deliverEach(h.sub, h.msgs); err != nil {
			return err
		}
	}
	if err := c.deliverQueued(); err != nil {
		return err
	}
	if c.inbox.len() == 0 {
		return c.catchUp()
	}
	return nil
}

// closeFrame sends the close frame stop asked for and gives the client a
// moment to answer it, so the connection ends cleanly on both sides.
func (c *client) closeFrame() {
	if c.closeCode == 0 {
		return
	}
	wait := c.closeWait()
	msg := websocket.FormatCloseMessage(c.closeCode, c.closeReason)
	err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait))
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		return // the connection is broken; nobody will answer
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
	}
}
