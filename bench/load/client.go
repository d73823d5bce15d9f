package load

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"levee"
)

// client is one trader with one keep-alive HTTP/1.1 connection. It writes
// requests by hand and reads answers with net/http's parser: the load
// generator shares the machine with the server it measures, so it spends as
// little CPU per request as it can (no transport goroutines, no pool).
type client struct {
	addr     string
	path     string
	token    string
	outcomes int
	rng      *rand.Rand

	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	req  []byte

	held     []levee.Micros // shares this client holds per outcome, from its own fills
	sellNext bool
	keys     int64 // idempotency keys used
	name     int   // index, to make keys unique across clients
}

func newClient(addr string, marketID int64, token string, outcomes, index int, seed uint64) *client {
	return &client{
		addr:     addr,
		path:     "/api/v1/markets/" + strconv.FormatInt(marketID, 10) + "/orders",
		token:    token,
		outcomes: outcomes,
		rng:      rand.New(rand.NewPCG(seed, uint64(index))),
		held:     make([]levee.Micros, outcomes),
		name:     index,
	}
}

// order picks the next order: buys and sells alternate, a sell never asks
// for more than the client is known to hold, so every order is valid.
func (c *client) order() (outcome int, sell bool, shares levee.Micros) {
	if c.sellNext {
		start := c.rng.IntN(c.outcomes)
		for k := 0; k < c.outcomes; k++ {
			o := (start + k) % c.outcomes
			if c.held[o] > 0 {
				return o, true, c.held[o]
			}
		}
	}
	// 0.5 to 5 shares, in steps of 0.1.
	return c.rng.IntN(c.outcomes), false, levee.Micros(5+c.rng.Int64N(46)) * levee.Scale / 10
}

// do sends one order and reads the answer. It returns the HTTP status (0 on
// a transport error, after which the connection is reopened on next use).
func (c *client) do(withKey bool) (int, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return 0, fmt.Errorf("dial %s: %w", c.addr, err)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		c.conn, c.br, c.bw = conn, bufio.NewReaderSize(conn, 4096), bufio.NewWriterSize(conn, 1024)
	}
	outcome, sell, shares := c.order()
	c.req = c.appendRequest(c.req[:0], outcome, sell, shares, withKey)
	c.conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.bw.Write(c.req); err != nil {
		return 0, c.fail(err)
	}
	if err := c.bw.Flush(); err != nil {
		return 0, c.fail(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, c.fail(err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, c.fail(err)
	}
	if resp.Close {
		c.fail(errors.New("server closed the connection"))
	}
	if resp.StatusCode == http.StatusCreated {
		if sell {
			c.held[outcome] -= shares
		} else {
			c.held[outcome] += shares
		}
		c.sellNext = !sell
	} else {
		// A refused sell means our idea of the position is wrong: buy next.
		if sell {
			c.held[outcome] = 0
		}
		c.sellNext = false
	}
	return resp.StatusCode, nil
}

func (c *client) fail(err error) error {
	if c.conn != nil {
		c.conn.Close()
	}
	c.conn, c.br, c.bw = nil, nil, nil
	return err
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// appendRequest writes the whole HTTP/1.1 request: headers and JSON body.
func (c *client) appendRequest(b []byte, outcome int, sell bool, shares levee.Micros, withKey bool) []byte {
	var body [96]byte
	bb := append(body[:0], `{"outcome":`...)
	bb = strconv.AppendInt(bb, int64(outcome), 10)
	if sell {
		bb = append(bb, `,"side":"sell","shares":"`...)
	} else {
		bb = append(bb, `,"side":"buy","shares":"`...)
	}
	bb = shares.AppendTo(bb)
	bb = append(bb, `"}`...)

	b = append(b, "POST "...)
	b = append(b, c.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.addr...)
	b = append(b, "\r\nAuthorization: Bearer "...)
	b = append(b, c.token...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(bb)), 10)
	if withKey {
		c.keys++
		b = append(b, "\r\nIdempotency-Key: bench-"...)
		b = strconv.AppendInt(b, int64(c.name), 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, time.Now().UnixNano(), 36)
		b = append(b, '-')
		b = strconv.AppendInt(b, c.keys, 10)
	}
	b = append(b, "\r\n\r\n"...)
	return append(b, bb...)
}
