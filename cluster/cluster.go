// Package cluster lets several Levee instances serve one city
// (docs/cluster.md). They share one PostgreSQL, which holds each market's
// lease (market/engine/lease.go: ownership, epochs and fencing are the
// engine's), and talk over NATS for everything that must reach another
// instance now:
//
//   - levee.<node>.orders: orders for a market this instance owns, forwarded
//     by request/reply from the instance that received them, with the
//     caller's account, idempotency key and deadline;
//   - levee.<node>.quotes: quotes for a market this instance owns, the same
//     way;
//   - levee.<node>.release: another instance asks for a market back (to
//     close, resolve or void it there);
//   - levee.<node>.market.<id>: the committed events of a market this
//     instance owns, fed to every other instance's websocket hub;
//   - levee.cash: accounts whose cash an instance moved, so the others drop
//     their cached wallets (the ledger's balance check stays what makes a
//     stale wallet safe; this only spares a refused order).
//
// Nothing here decides anything: a lost message costs a retry or a gap
// message, never money. NATS (github.com/nats-io/nats.go) rather than
// PostgreSQL LISTEN/NOTIFY because request/reply with deadlines, reconnection
// with buffering, and wildcard subjects come built in, and the fan-out of
// market events stays off the database that the journal needs.
package cluster

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"levee/market/engine"
)

// Options configure an instance's NATS side.
type Options struct {
	URL    string // NATS server(s), comma-separated (LEVEE_NATS_URL)
	Node   string // this instance's name, unique in the city (LEVEE_INSTANCE)
	Logger *slog.Logger
}

// Node is this instance's connection to the others.
type Node struct {
	nc   *nats.Conn
	node string
	log  *slog.Logger
	subs []*nats.Subscription

	forwards, forwardFails, served, quotes, eventsOut, eventsIn, cashOut, cashIn, reconnects atomic.Int64
}

// Connect dials NATS. It keeps reconnecting for ever once connected (a
// restarted NATS server is found again), and retries the first connection
// too, so an instance may start before its NATS server.
func Connect(opts Options) (*Node, error) {
	if opts.Node == "" || strings.ContainsAny(opts.Node, ".*> \t") {
		return nil, fmt.Errorf("cluster: node name %q must be non-empty and free of '.', '*', '>' and spaces", opts.Node)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	n := &Node{node: opts.Node, log: opts.Logger.With(slog.String("node", opts.Node))}
	nc, err := nats.Connect(opts.URL,
		nats.Name("levee-"+opts.Node),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.log.Warn("NATS disconnected", slog.Any("error", err))
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			n.reconnects.Add(1)
			n.log.Info("NATS reconnected")
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS at %s: %w", opts.URL, err)
	}
	n.nc = nc
	return n, nil
}

// Serve starts answering the other instances: orders forwarded to e and
// requests to release its markets, their market events into local (this
// instance's hub), their cash news into e's wallets.
func (n *Node) Serve(e Engine, local engine.Publisher) error {
	if err := n.serveOrders(e); err != nil {
		return err
	}
	if local != nil {
		if err := n.serveEvents(local); err != nil {
			return err
		}
	}
	if err := n.serveCash(e); err != nil {
		return err
	}
	// Best effort: with NATS away the subscriptions are sent on reconnect.
	if err := n.nc.Flush(); err != nil {
		n.log.Warn("NATS flush after subscribing", slog.Any("error", err))
	}
	return nil
}

// Name is this instance's node name.
func (n *Node) Name() string { return n.node }

// Connected reports whether the NATS connection is up (/readyz).
func (n *Node) Connected() bool { return n.nc.IsConnected() }

// Close unsubscribes and closes the connection, flushing what was published.
func (n *Node) Close() {
	for _, s := range n.subs {
		_ = s.Unsubscribe()
	}
	_ = n.nc.Drain()
	deadline := time.Now().Add(2 * time.Second)
	for !n.nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	n.nc.Close()
}

// Stats are the NATS side's counters, for /metrics.
type Stats struct {
	Connected                            bool
	Forwards, ForwardFails, Served       int64
	Quotes                               int64 // quotes forwarded
	EventsOut, EventsIn, CashOut, CashIn int64
	Reconnects                           int64
}

// Stats returns the counters.
func (n *Node) Stats() Stats {
	return Stats{Connected: n.Connected(), Forwards: n.forwards.Load(), ForwardFails: n.forwardFails.Load(), Served: n.served.Load(), Quotes: n.quotes.Load(),
		EventsOut: n.eventsOut.Load(), EventsIn: n.eventsIn.Load(), CashOut: n.cashOut.Load(), CashIn: n.cashIn.Load(), Reconnects: n.reconnects.Load()}
}

func ordersSubject(node string) string  { return "levee." + node + ".orders" }
func releaseSubject(node string) string { return "levee." + node + ".release" }
func quotesSubject(node string) string  { return "levee." + node + ".quotes" }

// MarketSubject is where instance node publishes market id's events.
func MarketSubject(node string, id int64) string { return fmt.Sprintf("levee.%s.market.%d", node, id) }

const (
	allMarkets  = "levee.*.market.*"
	cashSubject = "levee.cash"
)
