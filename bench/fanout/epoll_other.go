//go:build !linux

package fanout

import (
	"errors"

	"github.com/gorilla/websocket"
)

// Elsewhere the clients read with a goroutine each (epoll_linux.go says why
// Linux does otherwise).
const defaultReader = "gorilla"

type epollSet struct{}

func startEpoll([]*subscriber, int) (*epollSet, error) {
	return nil, errors.New("the epoll reader needs Linux")
}

func (*epollSet) stop() {}

// Detach is Linux's only.
func Detach(*websocket.Conn) (int, error) {
	return -1, errors.New("detaching a socket needs Linux")
}
