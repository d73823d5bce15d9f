package fanout

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"levee/web/live"
)

// frame is a server's unmasked frame of opcode op.
func frame(op byte, payload string) []byte {
	b := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		panic("too long for a test")
	}
	return append(b, payload...)
}

func tradeAt(seq int, at time.Time) string {
	return fmt.Sprintf(`{"type":"trade","market":"1","seq":%d,"ts":%q}`, seq, at.Format(time.RFC3339Nano))
}

// TestEpollReaderFrames feeds the epoll reader's frame parser a socket's
// bytes cut at every place, and checks what RFC 6455 asks of a client.
func TestEpollReaderFrames(t *testing.T) {
	at := time.Now().Add(-3 * time.Millisecond)
	long := tradeAt(2, at)
	long = long[:len(long)-1] + `,"pad":"` + string(bytes.Repeat([]byte("x"), 300)) + `"}` // a 16-bit length
	stream := bytes.Join([][]byte{
		frame(1, tradeAt(1, at)),
		frame(1, `{"type":"quote","market":"1","seq":1}`),
		frame(9, "hi"), // a ping, answered with a pong
		frame(1, long),
		frame(1, `{"type":"gap","market":"1","from":3,"to":3}`),
		frame(1, tradeAt(4, at)),
	}, nil)
	for cut := 0; cut <= len(stream); cut++ {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		c := &subscriber{fd: fds[0]}
		rest, ok := c.frames(stream[:cut], time.Now(), 10)
		rest, ok2 := c.frames(append(append([]byte(nil), rest...), stream[cut:]...), time.Now(), 10)
		if !ok || !ok2 || len(rest) != 0 {
			t.Fatalf("cut %d: ok %v %v, rest %q", cut, ok, ok2, rest)
		}
		if len(c.pairs) != 3 || c.pairs[0].seq != 1 || c.pairs[1].seq != 2 || c.pairs[2].seq != 4 || c.gaps != 1 {
			t.Fatalf("cut %d: pairs %+v gaps %d", cut, c.pairs, c.gaps)
		}
		if c.pairs[0].lat < 3*time.Millisecond || c.pairs[0].lat > time.Minute {
			t.Fatalf("cut %d: latency %s", cut, c.pairs[0].lat)
		}
		pong := make([]byte, 16)
		n, err := syscall.Read(fds[1], pong)
		if err != nil {
			t.Fatal(err)
		}
		// FIN + pong, masked, length 2, the mask, "hi" masked.
		want := []byte{0x8a, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}
		if !bytes.Equal(pong[:n], want) {
			t.Fatalf("cut %d: pong % x, want % x", cut, pong[:n], want)
		}
		syscall.Close(fds[0])
		syscall.Close(fds[1])
	}
}

// TestEpollReaderStops: what Levee never sends ends the connection, so
// that its missing events show rather than being misread.
func TestEpollReaderStops(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"close", frame(8, "\x03\xe8")},
		{"binary", frame(2, "x")},
		{"fragment", []byte{0x01, 1, 'x'}},
		{"masked", []byte{0x81, 0x81, 1, 2, 3, 4, 'x'}},
	} {
		c := &subscriber{fd: -1}
		if _, ok := c.frames(append(frame(1, tradeAt(1, time.Now())), tc.b...), time.Now(), 10); ok {
			t.Errorf("%s: the reader went on", tc.name)
		}
		if len(c.pairs) != 1 {
			t.Errorf("%s: pairs %+v", tc.name, c.pairs)
		}
	}
	// Enough events: the reader stops by itself and keeps what follows unread.
	c := &subscriber{fd: -1}
	b := append(frame(1, tradeAt(1, time.Now())), frame(1, tradeAt(2, time.Now()))...)
	if rest, ok := c.frames(b, time.Now(), 1); !ok || len(c.pairs) != 1 || len(rest) != 0 {
		t.Errorf("after its events: ok %v pairs %d rest %d", ok, len(c.pairs), len(rest))
	}
}

// TestEpollClientsAnswerPings: the hub drops a connection that leaves its
// pings unanswered for PongWait; the epoll reader's clients, which answer
// them themselves, stay subscribed across many pings and get every event
// after them (the soak keeps its subscribers for minutes).
func TestEpollClientsAnswerPings(t *testing.T) {
	snap := &snapshots{}
	hub := live.NewHub(snap, live.Options{Logger: slog.New(slog.DiscardHandler), PongWait: 200 * time.Millisecond, PingInterval: 50 * time.Millisecond})
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	const clients, events = 5, 3
	s, err := Subscribe(context.Background(), Config{URL: url, Market: 7, Clients: clients, Events: events, Reader: "epoll"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= events; i++ {
		time.Sleep(300 * time.Millisecond) // past PongWait: only answered pings keep a client
		snap.mu.Lock()
		snap.seq = int64(i)
		snap.mu.Unlock()
		payload := fmt.Appendf(nil, `{"type":"trade","market":"7","seq":%d,"ts":%q}`, i, time.Now().UTC().Format(time.RFC3339Nano))
		hub.Publish(live.Event{Type: "trade", MarketID: 7, Seq: int64(i), Payload: payload})
	}
	sum := s.Collect(5 * time.Second)
	if sum.Pairs != clients*events || sum.Missing != 0 || sum.Gaps != 0 {
		t.Fatalf("summary %+v", sum)
	}
}
