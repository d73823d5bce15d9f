package live

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestGroupFollows(t *testing.T) {
	trade := func(seq int64) Event { return Event{Type: "trade", Seq: seq, Payload: []byte(`{}`)} }
	quote := func(seq int64) Event { return Event{Type: "quote", Seq: seq, Payload: []byte(`{}`)} }
	tests := []struct {
		name string
		evs  []Event
		last int64
		want int64
		ok   bool
	}{
		{"trades and their quote", []Event{trade(6), trade(7), quote(7)}, 5, 7, true},
		{"a quote alone at the last seq", []Event{quote(5)}, 5, 5, true},
		{"a quote alone ahead", []Event{quote(9)}, 5, 5, true},
		{"a quote older than the last trade", []Event{quote(4)}, 5, 0, false},
		{"trades already written", []Event{trade(5), quote(5)}, 5, 0, false},
		{"trades partly written", []Event{trade(5), trade(6), quote(6)}, 5, 0, false},
		{"trades after a gap", []Event{trade(7), quote(7)}, 5, 0, false},
		{"a gap inside", []Event{trade(6), trade(8), quote(8)}, 5, 0, false},
		{"a quote before the trades it covers", []Event{trade(6), quote(5)}, 5, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := newGroup(tt.evs).follows(tt.last)
			if got != tt.want || ok != tt.ok {
				t.Errorf("follows(%d) = %d, %v; want %d, %v", tt.last, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestCommitsArriveWholeAndInOrder publishes commits of one to five trades
// with their quote, as the engine does, and checks that every client, up to
// date or not, gets each trade once and in order and each quote after its
// trades: a client that subscribed in the middle of a commit (its snapshot
// covers part of it) gets only the rest.
func TestCommitsArriveWholeAndInOrder(t *testing.T) {
	for _, v := range writerVariants {
		t.Run(v.name, func(t *testing.T) {
			ts := MustServe(t, v.opts, false, 1)
			ts.markets.set(1, 10)
			early := ts.MustDial(t)
			MustSubscribe(t, early, 1)

			// Trades 11-14 commit; a late client's snapshot is read at 12,
			// as if it saw half of them; then the commit is published.
			ts.markets.set(1, 12)
			late := ts.MustDial(t)
			MustSubscribe(t, late, 1)
			publishCommit(ts.hub, ts.markets, 1, 11, 14)
			ts.markets.set(1, 14)
			for seq := int64(11); seq <= 14; seq++ {
				MustReadWant(t, early, "trade", 1, seq)
			}
			MustReadWant(t, early, "quote", 1, 14)
			MustReadWant(t, late, "trade", 1, 13)
			MustReadWant(t, late, "trade", 1, 14)
			MustReadWant(t, late, "quote", 1, 14)

			seq := int64(14)
			for i := range 20 {
				last := ts.markets.commit(ts.hub, 1, 1+i%5)
				for _, c := range []*websocket.Conn{early, late} {
					for s := seq + 1; s <= last; s++ {
						MustReadWant(t, c, "trade", 1, s)
					}
					MustReadWant(t, c, "quote", 1, last)
				}
				seq = last
			}
		})
	}
}

// A commit whose trades skip seqs (trades lost between another instance
// and this hub) comes after a gap and a fresh snapshot, as single events do.
func TestCommitAfterLostTradesResyncs(t *testing.T) {
	for _, v := range writerVariants {
		t.Run(v.name, func(t *testing.T) {
			ts := MustServe(t, v.opts, false, 1)
			ts.markets.set(1, 5)
			c := ts.MustDial(t)
			MustSubscribe(t, c, 1)
			ts.markets.commit(ts.hub, 1, 2) // 6, 7
			MustReadWant(t, c, "trade", 1, 6)
			MustReadWant(t, c, "trade", 1, 7)
			MustReadWant(t, c, "quote", 1, 7)
			// 8 and 9 never reach the hub; 10 and 11 do, in one commit.
			ts.markets.set(1, 11)
			publishCommit(ts.hub, ts.markets, 1, 10, 11)
			MustReadWant(t, c, "gap", 1, 9)
			MustReadWant(t, c, "snapshot", 1, 11)
			MustReadWant(t, c, "quote", 1, 11) // a state at the snapshot's seq is written
			ts.markets.commit(ts.hub, 1, 1)
			MustReadWant(t, c, "trade", 1, 12)
			MustReadWant(t, c, "quote", 1, 12)
		})
	}
}

// TestTryWriteAfterCloseWritesNothing: the pool writes a connection's
// socket with write(2) on its descriptor, so once the connection is closed
// the descriptor's number may belong to another connection; nothing may be
// written to it then.
func TestTryWriteAfterCloseWritesNothing(t *testing.T) {
	ln := loopback(t)
	server, client := tcpPair(t, ln)
	w := newWireConn(server)
	w.pooled = true
	if ok, err := w.tryWrite([]byte("first")); !ok || err != nil {
		t.Fatal(ok, err)
	}
	w.Close()

	// The next connection's sockets likely take the closed descriptor's
	// number (the lowest free one): either end would carry a stray write.
	server2, client2 := tcpPair(t, ln)
	if a, b := newWireConn(server2).fd, newWireConn(client2).fd; a != w.fd && b != w.fd {
		t.Logf("the new sockets are fds %d and %d, not the closed %d: the test proves less", a, b, w.fd)
	}
	w.tryWrite([]byte("stray"))
	for _, end := range []net.Conn{server2, client2} {
		end.Write([]byte("own"))
		end.(*net.TCPConn).CloseWrite()
	}
	for _, end := range []net.Conn{server2, client2} {
		end.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, _ := io.ReadAll(end); !bytes.Equal(got, []byte("own")) {
			t.Fatalf("a new connection read %q, want only its peer's %q", got, "own")
		}
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(client)
	if !bytes.Equal(got, []byte("first")) {
		t.Fatalf("the closed connection's peer read %q, want %q", got, "first")
	}
}
