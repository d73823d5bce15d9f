package load

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Flood has anonymous clients GET paths in turn, each as soon as it has its
// last answer, until Stop, and counts the answers: served (2xx/3xx),
// refused (4xx, such as 429 while the server is busy) and failed (5xx or
// no answer).
type Flood struct {
	Served, Refused, Failed atomic.Int64
	first                   atomic.Value // string: the first failure
	stop                    chan struct{}
	wg                      sync.WaitGroup
}

// StartFlood starts clients readers of base+paths.
func StartFlood(base string, paths []string, clients int) *Flood {
	f := &Flood{stop: make(chan struct{})}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
	for i := range clients {
		f.wg.Go(func() {
			for j := i; ; j++ {
				select {
				case <-f.stop:
					return
				default:
				}
				f.get(hc, base, paths[j%len(paths)])
			}
		})
	}
	return f
}

func (f *Flood) get(hc *http.Client, base, path string) {
	resp, err := hc.Get(base + path)
	if err != nil {
		f.Failed.Add(1)
		f.first.CompareAndSwap(nil, err.Error())
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 500:
		f.Failed.Add(1)
		f.first.CompareAndSwap(nil, fmt.Sprintf("GET %s: %d", path, resp.StatusCode))
	case resp.StatusCode >= 400:
		f.Refused.Add(1)
	default:
		f.Served.Add(1)
	}
}

// Stop ends the flood and waits for its clients.
func (f *Flood) Stop() {
	close(f.stop)
	f.wg.Wait()
}

// FirstFailure is the first failed read ("" if none).
func (f *Flood) FirstFailure() string {
	s, _ := f.first.Load().(string)
	return s
}
