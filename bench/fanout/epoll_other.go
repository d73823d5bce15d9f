//go:build !linux

package fanout

import (
	"errors"
	"net/http"

	"github.com/gorilla/websocket"

	"levee/web/live"
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

// Floor is Linux's only (it writes to raw sockets).
type Floor struct{ Snapshot func() []byte }

func (*Floor) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "the fan-out floor needs Linux", http.StatusNotImplemented)
}
func (*Floor) PublishBatch([]live.Event) {}
func (*Floor) Close() error              { return errors.New("the fan-out floor needs Linux") }
