package live

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
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

// appendTextFrame appends payload as one unfragmented text frame. A server's
// frames are not masked (RFC 6455 5.1), so the bytes do not depend on the
// connection.
func appendTextFrame(b, payload []byte) []byte {
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
// the write pump writes its batches of data frames. mu keeps each Write
// whole, and once a close frame has gone out nothing more is written, as
// gorilla's own writer would refuse (RFC 6455 5.5.1).
type wireConn struct {
	net.Conn
	mu        sync.Mutex
	closeSent bool
}

// closeFrameByte starts a close frame (FIN + opcode 8): how Write recognises
// gorilla's close frames.
const closeFrameByte = 0x80 | websocket.CloseMessage

func (w *wireConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		return 0, websocket.ErrCloseSent
	}
	if len(p) > 0 && p[0] == closeFrameByte {
		w.closeSent = true
	}
	return w.Conn.Write(p)
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
	h.conn = &wireConn{Conn: nc}
	return h.conn, rw, nil
}

// writeFrame adds payload to the batch as a text frame; the batch is written
// by flush, or here once it is large. Write pump only.
func (c *client) writeFrame(payload []byte) error {
	if c.batch == nil {
		c.batch = batchPool.Get().(*[]byte)
	}
	*c.batch = appendTextFrame(*c.batch, payload)
	if len(*c.batch) >= flushAt {
		return c.flush()
	}
	return nil
}

// flush writes the batch in one Write under one deadline and returns the
// buffer to the pool. Write pump only.
func (c *client) flush() error {
	b := c.batch
	if b == nil {
		return nil
	}
	c.batch = nil
	defer func() {
		if cap(*b) <= maxPooledBatch {
			*b = (*b)[:0]
			batchPool.Put(b)
		}
	}()
	if len(*b) == 0 {
		return nil
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.h.opts.WriteWait))
	_, err := c.conn.Write(*b)
	return err
}
