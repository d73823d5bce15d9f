package live

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestFramesReadByGorilla checks the write pump's own framing against
// gorilla's reader across the three length encodings and their edges, with
// several frames batched into one write.
func TestFramesReadByGorilla(t *testing.T) {
	tests := []struct {
		name string
		len  int // payload length
	}{
		{"empty", 0},
		{"one byte length, longest", 125},
		{"two byte length, shortest", 126},
		{"two byte length", 1000},
		{"two byte length, longest", 0xffff},
		{"eight byte length, shortest", 0x10000},
		{"eight byte length, over a batch", flushAt + 10},
	}
	ts := MustServe(t, Options{}, false, 1)
	c := ts.MustDial(t)
	MustSubscribe(t, c, 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := []byte(strings.Repeat("x", tt.len))
			// A trade, then the payload as a quote, then a trade: the pump
			// batches what it finds queued.
			seq := ts.trade(1)
			ts.hub.Publish(Event{Type: "quote", MarketID: 1, Seq: seq, Payload: payload})
			ts.trade(1)
			MustReadWant(t, c, "trade", 1, seq)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			typ, got, err := c.ReadMessage()
			if err != nil || typ != websocket.TextMessage || !bytes.Equal(got, payload) {
				t.Fatalf("read type %d, %d bytes, %v; want text, %d bytes", typ, len(got), err, len(payload))
			}
			MustReadWant(t, c, "trade", 1, seq+1)
		})
	}
}

func TestWatched(t *testing.T) {
	ts := MustServe(t, Options{}, false, 1, 2)
	if ts.hub.Watched(1) {
		t.Fatal("market 1 watched before anyone subscribed")
	}
	c := ts.MustDial(t)
	MustSubscribe(t, c, 1)
	if !ts.hub.Watched(1) || ts.hub.Watched(2) {
		t.Fatalf("after subscribing to 1: Watched(1)=%v Watched(2)=%v, want true, false", ts.hub.Watched(1), ts.hub.Watched(2))
	}
	MustSend(t, c, `{"op":"unsubscribe","markets":["1"]}`)
	MustReadWant(t, c, "unsubscribed", 1, 0)
	if ts.hub.Watched(1) {
		t.Fatal("market 1 still watched after its only subscriber left")
	}
}

// recordConn is a net.Conn that keeps what is written to it.
type recordConn struct {
	net.Conn
	writes [][]byte
}

func (r *recordConn) Write(p []byte) (int, error) {
	r.writes = append(r.writes, slices.Clone(p))
	return len(p), nil
}

// TestWireConnNothingAfterClose checks that once a close frame has gone out
// (from gorilla, possibly on the read pump's goroutine) the write pump's
// batches are refused, as gorilla's own writer refuses them.
func TestWireConnNothingAfterClose(t *testing.T) {
	rec := &recordConn{}
	w := &wireConn{Conn: rec}
	steps := []struct {
		name    string
		data    []byte
		wantErr error
	}{
		{"handshake", []byte("HTTP/1.1 101 Switching Protocols\r\n\r\n"), nil},
		{"data batch", AppendTextFrame(AppendTextFrame(nil, []byte(`{"a":1}`)), []byte(`{"b":2}`)), nil},
		{"ping", []byte{0x80 | websocket.PingMessage, 0}, nil},
		{"close", append([]byte{closeFrameByte, 2}, websocket.FormatCloseMessage(websocket.CloseMessageTooBig, "")...), nil},
		{"data after close", AppendTextFrame(nil, []byte(`{"c":3}`)), websocket.ErrCloseSent},
		{"second close", []byte{closeFrameByte, 0}, websocket.ErrCloseSent},
	}
	for _, st := range steps {
		if _, err := w.Write(st.data); !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: error %v, want %v", st.name, err, st.wantErr)
		}
	}
	if len(rec.writes) != 4 {
		t.Fatalf("%d writes reached the connection, want 4 (up to and including the close)", len(rec.writes))
	}
}
