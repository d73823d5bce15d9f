package cluster

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSServer is a NATS server embedded in this process
// (github.com/nats-io/nats-server/v2): for tests and `levee cluster`, so
// that trying several instances needs nothing installed. Production runs a
// NATS server (or cluster) of its own; instances only need its URL.
type NATSServer struct {
	srv  *server.Server
	opts server.Options
}

// StartNATS starts a NATS server on 127.0.0.1:port (0 picks a free one).
// Core NATS only: nothing Levee sends needs to outlive a restart.
func StartNATS(port int) (*NATSServer, error) {
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s := &NATSServer{opts: server.Options{Host: "127.0.0.1", Port: port, NoSigs: true, NoLog: true, MaxPayload: 1 << 20}}
	if err := s.start(); err != nil {
		return nil, err
	}
	// A restart listens on the same port, where the clients reconnect.
	addr, ok := s.srv.Addr().(*net.TCPAddr)
	if !ok {
		s.srv.Shutdown()
		return nil, errors.New("embedded NATS: no TCP address")
	}
	s.opts.Port = addr.Port
	return s, nil
}

func (s *NATSServer) start() error {
	opts := s.opts // the server keeps and changes its options
	srv, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("embedded NATS: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return errors.New("embedded NATS: not ready after 10s")
	}
	s.srv = srv
	return nil
}

// URL is where clients connect.
func (s *NATSServer) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port) }

// Restart stops the server, dropping every connection and subscription, and
// starts it again on the same port (the NATS-restart test and drill).
func (s *NATSServer) Restart(down time.Duration) error {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	time.Sleep(down)
	var err error
	for range 50 { // the port may take a moment to be free again
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Shutdown stops the server.
func (s *NATSServer) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}
