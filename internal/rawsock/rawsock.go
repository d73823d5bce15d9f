// Package rawsock accepts and dials connections (TCP or Unix) whose reads
// and writes are raw system calls on their non-blocking sockets: the runtime's poller is used
// only to wait when a socket is not ready, and the goroutine never enters
// the scheduler's system-call state.
//
// Why: Go marks every read and write a system call. Its sysmon thread takes
// a P away from a thread that has stayed in one system call for a whole
// sysmon tick (20 µs while it is busy) if other goroutines wait, hands the
// P to another thread (waking it), and keeps polling every 20 µs while it
// keeps finding such calls. On this 2-core virtual machine a write to a
// loopback socket runs the receiver's TCP and wakes it, and often lasts that
// long: under the order path's closed loop sysmon woke about 4,000 times a
// second at about 16 µs of CPU each, and the handed-off Ps woke threads for
// little (bench/RESULTS.md §12). A read or write of a non-blocking socket
// cannot block, so nothing is lost by not telling the scheduler about it.
package rawsock

import (
	"context"
	"net"
	"time"
)

// Listener accepts connections from its net.Listener and returns each as
// a *Conn.
type Listener struct{ net.Listener }

// Accept waits for the next connection.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

// Dialer dials connections and returns each as a *Conn; it is a
// pq.Dialer (github.com/lib/pq's Connector.Dialer) for the database's
// connections.
type Dialer struct{ net.Dialer }

// Dial connects to address.
func (d Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialTimeout connects to address within timeout.
func (d Dialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	d.Timeout = timeout
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address until ctx is done.
func (d Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.Dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
