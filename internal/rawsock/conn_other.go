//go:build !unix

package rawsock

import "net"

// Wrap returns c itself: raw system calls are for Unix sockets.
func Wrap(c net.Conn) net.Conn { return c }
