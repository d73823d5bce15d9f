package live

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// The write pump frames data messages itself and writes everything queued
// for a connection in one Write, instead of one gorilla write (a syscall,
// and a write deadline) per message: on a busy market most of the fan-out's
// CPU was write syscalls, and a trade and its quote usually reach a pump
// together. gorilla still does the handshake, all reading, and the control
// frames (ping, pong, close).

// flushAt is the batch size at which the write pump writes without waiting
// for the queue to run dry, so one wake-up does not build an unbounded batch.
const flushAt = 64 << 10

// batchPool holds the write pumps' batch buffers between wake-ups, so that
// idle connections (most of them, most of the time) hold none.
var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledBatch keeps a buffer grown by a large snapshot out of the pool.
const maxPooledBatch = 256 << 10

// AppendTextFrame appends payload as one unfragmented text frame. A server's
// frames are not masked (RFC 6455 5.1), so the bytes do not depend on the
// connection. (Exported for the fan-out benchmark's floor, which writes the
// same frames with nothing else of this package.)
func AppendTextFrame(b, payload []byte) []byte {
	const finText = 0x80 | websocket.TextMessage
	b = append(b, finText)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// wireConn is the connection under gorilla's. Gorilla writes the handshake
// and control frames through it, one whole frame per Write (the read pump's
// goroutine too: gorilla closes with 1009 or 1002 on a bad client message);
// the write pump and the writer pool write their batches of data frames. mu
// keeps each Write whole, and once a close frame has gone out nothing more is
// written, as gorilla's own writer would refuse (RFC 6455 5.5.1).
//
// The pool's writes do not wait (tryWrite): what the socket does not take at
// once stays in pending, possibly half a frame, and every later Write sends
// it first, so frames never interleave.
type wireConn struct {
	net.Conn
	// fd is the socket, which tryWrite writes with write(2) directly under
	// mu rather than through the runtime's poller (RawConn.Write), whose
	// locking and deadline checks were a tenth of the fan-out's CPU above
	// the syscall; Close takes mu, so the descriptor is never written after
	// it is closed (and perhaps reused). -1 when the connection has none.
	fd int
	// pooled: the writer pool writes here too, so no write deadline may
	// outlive its Write (an expired one would fail the pool's writes).
	pooled bool

	mu        sync.Mutex
	closed    bool // by Close: fd is no longer ours
	closeSent bool
	pending   []byte // written by tryWrite's caller but not yet by the socket
}

func newWireConn(nc net.Conn) *wireConn {
	w := &wireConn{Conn: nc, fd: -1}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) { w.fd = int(fd) })
		}
	}
	return w
}

// Close closes the connection once no tryWrite is using its descriptor.
func (w *wireConn) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return w.Conn.Close()
}

// closeFrameByte starts a close frame (FIN + opcode 8): how Write recognises
// gorilla's close frames.
const closeFrameByte = 0x80 | websocket.CloseMessage

// Write writes what is pending, then p, under whatever deadline is set.
func (w *wireConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		return 0, websocket.ErrCloseSent
	}
	if w.pooled {
		defer w.Conn.SetWriteDeadline(time.Time{})
	}
	if len(w.pending) > 0 {
		if _, err := w.Conn.Write(w.pending); err != nil {
			return 0, err
		}
		w.pending = nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	if p[0] == closeFrameByte {
		w.closeSent = true
	}
	return w.Conn.Write(p)
}

// tryWrite writes as much of p as the socket takes now, without waiting,
// and keeps the rest in pending for the next Write (the write pump's, under
// a deadline). An error of the socket is left for that Write to report. If
// another goroutine is writing (a Write may wait up to its deadline), it
// writes nothing and reports false: the caller keeps p.
func (w *wireConn) tryWrite(p []byte) (bool, error) {
	if !w.mu.TryLock() {
		return false, nil
	}
	defer w.mu.Unlock()
	if w.closeSent {
		return false, websocket.ErrCloseSent
	}
	if len(w.pending) > 0 || w.fd < 0 || w.closed {
		w.pending = append(w.pending, p...)
		return true, nil
	}
	n, err := syscall.Write(w.fd, p)
	for err == syscall.EINTR {
		n, err = syscall.Write(w.fd, p)
	}
	// Never wait for the poller (EAGAIN): that is the pump's job.
	n = max(n, 0)
	if n < len(p) {
		w.pending = append(w.pending, p[n:]...)
	}
	return true, nil
}

// stalled reports whether bytes wait for a blocking Write, or one is going
// on; it does not wait.
func (w *wireConn) stalled() bool {
	if !w.mu.TryLock() {
		return true
	}
	defer w.mu.Unlock()
	return len(w.pending) > 0
}

// hijacker hands gorilla's Upgrade the connection wrapped in a wireConn.
type hijacker struct {
	http.ResponseWriter
	conn *wireConn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("live: the response writer cannot hijack the connection")
	}
	nc, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = newWireConn(nc)
	return h.conn, rw, nil
}

// writeFrame adds payload to the batch as a text frame; the batch is written
// by flush, or here once it is large. c.wmu must be held.
func (c *client) writeFrame(payload []byte) error {
	c.unshare()
	*c.batch = AppendTextFrame(*c.batch, payload)
	if len(*c.batch) >= flushAt {
		return c.flush()
	}
	return nil
}

// writeFrames adds ready-made frames, a group's shared by every subscriber:
// with nothing before them they are written as they are (the usual case: a
// commit's trades and quote to a client that is up to date), else copied
// after what is. c.wmu must be held.
func (c *client) writeFrames(frames []byte) error {
	if c.batch == nil && c.shared == nil {
		c.shared = frames
		return nil
	}
	c.unshare()
	*c.batch = append(*c.batch, frames...)
	if len(*c.batch) >= flushAt {
		return c.flush()
	}
	return nil
}

// unshare makes sure there is a batch to append to, holding the shared
// frames if any. c.wmu must be held.
func (c *client) unshare() {
	if c.batch == nil {
		c.batch = batchPool.Get().(*[]byte)
	}
	if c.shared != nil {
		*c.batch = append(*c.batch, c.shared...)
		c.shared = nil
	}
}

// unwritten reports whether frames wait for flush. c.wmu must be held.
func (c *client) unwritten() bool { return c.batch != nil || c.shared != nil }

// flush writes the batch (or the shared frames) in one Write under one
// deadline (the write pump), or in one write that does not wait (the
// writer pool: see tryWrite; frames it could not start stay for the pump),
// and returns the buffer to the pool. c.wmu must be held.
func (c *client) flush() error {
	if p := c.shared; p != nil {
		c.shared = nil
		written, err := c.write(p)
		if !written && err == nil {
			c.shared = p // the pump writes it: serve wakes it
		}
		return err
	}
	b := c.batch
	if b == nil {
		return nil
	}
	c.batch = nil
	if len(*b) > 0 {
		written, err := c.write(*b)
		if err != nil {
			return err
		}
		if !written {
			c.batch = b // the pump writes it: serve wakes it
			return nil
		}
	}
	if cap(*b) <= maxPooledBatch {
		*b = (*b)[:0]
		batchPool.Put(b)
	}
	return nil
}

// write writes p: without waiting from a pool writer (false if another
// goroutine is writing), under WriteWait from the write pump.
func (c *client) write(p []byte) (bool, error) {
	if c.inPool {
		return c.conn.tryWrite(p)
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.h.opts.WriteWait))
	_, err := c.conn.Write(p)
	return err == nil, err
}

// flushPending writes what a non-blocking write left, under WriteWait.
// Write pump only.
func (c *client) flushPending() error {
	if !c.conn.stalled() {
		return nil
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.h.opts.WriteWait))
	_, err := c.conn.Write(nil)
	return err
}
