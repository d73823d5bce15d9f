package live

import (
	"context"
	"errors"
	"runtime"
	"sync"
)

// The writer pool delivers published events without waking a goroutine per
// connection, in the manner of nats-server's flushClients: the publisher
// queues an event for every subscriber and marks each subscriber's client
// ready on one of a few writers (as many as GOMAXPROCS); the writer, once the
// publisher has finished its walk, drains each ready client's queue, frames
// what it finds into one batch and writes it with one non-blocking write
// syscall. Profiling the fan-out to 10,000 subscribers showed the write
// syscall at about half of the server's CPU and waking, selecting and parking
// 10,000 write pumps at most of the rest; and because a pump woke as soon as
// the trade reached it, many wrote the trade and its quote in two syscalls.
//
// A writer never waits for one connection: it only TryLocks a client and
// only writes what the socket takes at once. Anything that could block is
// handed to the client's own write pump, which still owns the slow and rare
// paths: a write the socket did not take in full (the rest waits in
// wireConn.pending, and the pump writes it under WriteWait), a snapshot, a
// resync after lost trades (a snapshot read), the catch-up after conflation,
// pings, pongs and the close.

// errHandOff stops a writer's delivery for a client whose next event needs
// its write pump (a resync); the event waits in client.held.
var errHandOff = errors.New("live: event handed to the write pump")

// writer is one goroutine of the pool and the clients ready for it.
type writer struct {
	idx   uint
	mu    sync.Mutex
	ready []*client // guarded by mu
	spare []*client // writer goroutine only
	wake  chan struct{}
}

type writerPool struct {
	writers []*writer
	next    uint64 // round robin for new clients; guarded by Hub.mu
}

func newWriterPool(n int) *writerPool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &writerPool{writers: make([]*writer, n)}
	for i := range p.writers {
		p.writers[i] = &writer{idx: uint(i), wake: make(chan struct{}, 1)}
	}
	return p
}

// assign picks the writer of a new client. Hub.mu must be held.
func (p *writerPool) assign() *writer {
	w := p.writers[p.next%uint64(len(p.writers))]
	p.next++
	return w
}

// schedule marks c ready on its writer unless it already is; it reports
// whether the writer needs a wake-up (done once per Publish, after the walk).
func (w *writer) schedule(c *client) bool {
	if c.scheduled.Load() || !c.scheduled.CompareAndSwap(false, true) {
		return false
	}
	w.mu.Lock()
	w.ready = append(w.ready, c)
	w.mu.Unlock()
	return true
}

func (w *writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run serves ready clients until ctx is done.
func (w *writer) run(ctx context.Context) {
	for {
		select {
		case <-w.wake:
		case <-ctx.Done():
			return
		}
		for {
			w.mu.Lock()
			list := w.ready
			if len(list) == 0 {
				w.mu.Unlock()
				break
			}
			w.ready = w.spare[:0] // never list's array: swap, not share
			w.mu.Unlock()
			for _, c := range list {
				c.serve()
			}
			clear(list)
			w.spare = list
		}
	}
}

// serve is a writer's turn at c: deliver what is queued for it, in one
// non-blocking write. Whatever might block goes to the write pump.
func (c *client) serve() {
	// Cleared before draining: an event queued after this point schedules
	// c again, so none is left behind.
	c.scheduled.Store(false)
	if c.stopped.Load() {
		return
	}
	if !c.wmu.TryLock() {
		c.wakePump() // the pump is writing; it drains the queue after
		return
	}
	defer c.wmu.Unlock()
	if c.held != nil || c.batch != nil || c.conn.stalled() {
		c.wakePump()
		return
	}
	c.inPool = true
	err := c.deliverQueued()
	handOff := errors.Is(err, errHandOff)
	if err == nil || handOff {
		err = c.flush()
	}
	c.inPool = false
	if err != nil {
		c.log.Debug("websocket write", "error", err)
		c.stop(0, "")
		return
	}
	if handOff || c.batch != nil || c.behind.Load() || c.conn.stalled() {
		c.wakePump()
	}
}

func (c *client) wakePump() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}
