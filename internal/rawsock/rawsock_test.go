//go:build unix

package rawsock

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pair returns a raw connection and the plain other end of it.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rl := Listener{Listener: ln}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := rl.Accept()
		accepted <- c
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, ok := (<-accepted).(*Conn)
	if !ok {
		t.Fatal("Accept did not return a *Conn")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c, peer
}

// Bytes go both ways whole and in order, also when a write is larger than
// the socket's buffer and must wait for the reader (the poller's path).
func TestReadWriteLargerThanTheBuffers(t *testing.T) {
	c, peer := pair(t)
	c.Conn.(*net.TCPConn).SetWriteBuffer(16 << 10)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	got := make(chan []byte)
	go func() {
		time.Sleep(50 * time.Millisecond) // let the writer fill the buffer first
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	if n, err := c.Write(msg); n != len(msg) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(msg))
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, msg) {
		t.Fatalf("the peer read %d bytes, want the %d written", len(b), len(msg))
	}

	go func() {
		peer.Write(msg)
		peer.Close()
	}()
	b, err := io.ReadAll(c) // waits for data, then sees EOF
	if err != nil || !bytes.Equal(b, msg) {
		t.Fatalf("read %d bytes, %v; want %d", len(b), err, len(msg))
	}
}

func TestErrorsAsNetsOwn(t *testing.T) {
	tests := []struct {
		name  string
		setup func(c *Conn, peer net.Conn)
		op    func(c *Conn) error
		check func(error) bool
	}{
		{"a read past its deadline", func(c *Conn, _ net.Conn) { c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)) },
			func(c *Conn) error { _, err := c.Read(make([]byte, 10)); return err },
			func(err error) bool {
				var ne net.Error
				return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
			}},
		{"a write past its deadline to a peer that does not read", func(c *Conn, _ net.Conn) {
			c.Conn.(*net.TCPConn).SetWriteBuffer(16 << 10)
			c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		},
			func(c *Conn) error { _, err := c.Write(make([]byte, 64<<20)); return err },
			func(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }},
		{"a read after the peer closed", func(_ *Conn, peer net.Conn) { peer.Close() },
			func(c *Conn) error { _, err := c.Read(make([]byte, 10)); return err },
			func(err error) bool { return err == io.EOF }},
		{"a read after Close", func(c *Conn, _ net.Conn) { c.Close() },
			func(c *Conn) error { _, err := c.Read(make([]byte, 10)); return err },
			func(err error) bool { return errors.Is(err, net.ErrClosed) }},
		{"a write after Close", func(c *Conn, _ net.Conn) { c.Close() },
			func(c *Conn) error { _, err := c.Write([]byte("x")); return err },
			func(err error) bool { return errors.Is(err, net.ErrClosed) }},
		{"a write to a peer that reset", func(_ *Conn, peer net.Conn) {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
			time.Sleep(20 * time.Millisecond)
		},
			func(c *Conn) error {
				for range 100 { // the first write may still be taken
					if _, err := c.Write([]byte("x")); err != nil {
						return err
					}
					time.Sleep(time.Millisecond)
				}
				return nil
			},
			func(err error) bool { return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := pair(t)
			tt.setup(c, peer)
			err := tt.op(c)
			if !tt.check(err) {
				t.Fatalf("got %v (%T)", err, err)
			}
			if err != io.EOF {
				var oe *net.OpError
				if !errors.As(err, &oe) || (oe.Op != "read" && oe.Op != "write") {
					t.Errorf("%v is not a *net.OpError of a read or write", err)
				}
			}
		})
	}
}

// net/http over a Listener: keep-alive requests, and a handler's context
// cancelled when its client goes away (net/http's background read).
func TestHTTPServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cancelled := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			select {
			case <-r.Context().Done():
				close(cancelled)
			case <-time.After(10 * time.Second):
			}
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.URL.Path, b)
	})}
	go srv.Serve(Listener{Listener: ln})
	defer srv.Shutdown(context.Background())

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for i := range 20 {
		body := strings.Repeat("x", i*1000)
		fmt.Fprintf(conn, "POST /order/%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", i, len(body), body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("/order/%d %s", i, body); string(got) != want {
			t.Fatalf("request %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
	fmt.Fprintf(conn, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	conn.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context was not cancelled when its client left")
	}
}

func TestAcceptedConnectionsStaySyscallConns(t *testing.T) {
	c, _ := pair(t)
	var nc net.Conn = c
	sc, ok := nc.(syscall.Conn)
	if !ok {
		t.Fatal("a *Conn is not a syscall.Conn (websocket's descriptor writes need one)")
	}
	if _, err := sc.SyscallConn(); err != nil {
		t.Fatal(err)
	}
	if _, ok := nc.(interface{ CloseWrite() error }); !ok {
		t.Fatal("a *Conn cannot CloseWrite (net/http closes the write side)")
	}
}

// The database's connections: a Dialer's, over a Unix socket as the private
// PostgreSQL's are, and over TCP.
func TestDialer(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = t.TempDir() + "/s"
			}
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.Copy(c, c) // echo
				c.Close()
			}()
			c, err := Dialer{}.DialTimeout(network, ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, ok := c.(*Conn); !ok {
				t.Fatalf("dialed a %T, want a *Conn", c)
			}
			msg := bytes.Repeat([]byte("query;"), 50_000)
			go c.Write(msg)
			got := make([]byte, len(msg))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("echo: %v", err)
			}
		})
	}
}
