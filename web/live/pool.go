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
// ready for a few writers (as many as GOMAXPROCS); the writers, woken as
// soon as a chunk of clients is ready, take ready clients a chunk at a time,
// drain each one's queue, frame what they find into one batch and write it
// with one non-blocking write syscall. Profiling the fan-out to 10,000 subscribers showed the write
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
// its write pump (a resync); the events wait in client.held.
var errHandOff = errors.New("live: event handed to the write pump")

// chunk is how many ready clients a writer takes at a time: small, so that
// a writer whose thread the kernel preempts holds up few clients while the
// others take the rest. (One list per writer measured no better or worse:
// bench/RESULTS.md §7a.)
const chunk = 32

// writerPool is the clients ready to be written, shared by its writers.
type writerPool struct {
	n    int
	wake chan struct{} // one token per writer to wake

	mu    sync.Mutex
	ready []*client // guarded by mu; ready[head:] are waiting
	head  int
}

func newWriterPool(n int) *writerPool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &writerPool{n: n, wake: make(chan struct{}, n)}
}

// mark marks c as on the ready list, unless it already is; only then
// does the caller add it.
func (c *client) mark() bool {
	return !c.scheduled.Load() && c.scheduled.CompareAndSwap(false, true)
}

// add puts marked clients on the ready list and wakes the writers.
func (p *writerPool) add(cs []*client) {
	p.mu.Lock()
	p.ready = append(p.ready, cs...)
	p.mu.Unlock()
	p.signal()
}

// signal wakes every writer that is not already awake or due to wake.
func (p *writerPool) signal() {
	for range p.n {
		select {
		case p.wake <- struct{}{}:
		default:
			return
		}
	}
}

// take moves up to a chunk of ready clients into buf.
func (p *writerPool) take(buf []*client) []*client {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := min(len(p.ready)-p.head, chunk)
	buf = append(buf[:0], p.ready[p.head:p.head+n]...)
	clear(p.ready[p.head : p.head+n])
	p.head += n
	if p.head == len(p.ready) {
		p.ready, p.head = p.ready[:0], 0
	}
	return buf
}

// run is one writer: it serves ready clients until ctx is done.
func (p *writerPool) run(ctx context.Context) {
	buf := make([]*client, 0, chunk)
	for {
		select {
		case <-p.wake:
		case <-ctx.Done():
			return
		}
		for {
			buf = p.take(buf)
			if len(buf) == 0 {
				break
			}
			for _, c := range buf {
				c.serve()
			}
			clear(buf)
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
	if c.held != nil || c.unwritten() || c.conn.stalled() {
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
	if handOff || c.unwritten() || c.behind.Load() || c.conn.stalled() {
		c.wakePump()
	}
}

func (c *client) wakePump() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}
