//go:build !linux

package fanout

// readers are the clients' readers this platform has: the epoll reader is
// Linux's (epoll_linux.go).
var readers = []string{"gorilla"}
