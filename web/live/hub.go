// Package live fans committed market events out to websocket clients.
//
// A Hub keeps, per market, the set of subscribed connections. Publish encodes
// nothing and never blocks: it hands the caller's already-encoded message to
// each subscriber's inbox, a short locked queue. Each connection
// has one read pump (the only reader) and one write pump (the only writer),
// as in gorilla/websocket's chat example. A client that cannot keep up gets
// conflated (latest quote and status per market, trades dropped, then a "gap"
// message) and, if it stays behind, is disconnected. docs/websocket.md
// describes the protocol.
//
// Lock order: docs/locks.md (topic.mu, then client.mu; shard.mu never with
// topic.mu).
package live

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Event is a committed change of one market; the engine adapts its events
// into this.
type Event struct {
	Type     string // "trade", "quote", "status"
	MarketID int64
	// Seq is the market's sequence number: trades carry 1, 2, 3, ... without
	// gaps; quote and status events carry the seq of the latest trade.
	Seq int64
	// Payload is the complete JSON message sent to clients for this event
	// ("type", "market", "seq", ...). The hub keeps it without copying: the
	// caller must not modify it after Publish.
	Payload json.RawMessage
}

// Snapshotter returns the current snapshot message of a market (JSON, type
// "snapshot", containing its seq). An unknown market is an ENOTFOUND
// *levee.Error. The snapshot must reflect at least every event already
// published for the market (commit, then publish).
type Snapshotter interface {
	SnapshotJSON(ctx context.Context, marketID int64) (msg json.RawMessage, seq int64, err error)
}

// Options tune a Hub. Zero fields take their defaults.
type Options struct {
	SendBuffer       int   // per-client queue of messages (default 256)
	MaxSubscriptions int   // per connection (default 100)
	MaxMessageBytes  int64 // read limit for client messages (default 4096)
	PingInterval     time.Duration
	PongWait         time.Duration
	WriteWait        time.Duration
	// SlowClientGrace is how long a client may stay behind (its queue
	// overflowed and has not yet drained) before it is disconnected (default 10s).
	SlowClientGrace time.Duration
	// CheckOrigin decides whether to accept the upgrade; nil accepts requests
	// without an Origin header or whose Origin host equals the Host header
	// (gorilla's default). A refused origin gets 403.
	CheckOrigin func(r *http.Request) bool
	Logger      *slog.Logger
	// WritePumps wakes each connection's write pump for every published
	// event (LEVEE_WS_WRITER_POOL=off in levee serve), the design before
	// the shared pool of writers that delivers them otherwise (pool.go).
	// The pool takes 0.6-0.8x the server's CPU per delivered message; in
	// session 5 its fan-out p99 was 0.77x the pumps' on an idle 2-core
	// machine but 1.5-3x on one loaded by other work, and in session 8,
	// with the server's collector at GOGC=400, 0.56-0.76x in all four runs,
	// one beside two CPU hogs (bench/RESULTS.md §7a): the pool is
	// the default, the pumps are kept for the comparison.
	WritePumps bool
	// Writers is the size of the writer pool (default GOMAXPROCS).
	Writers int
}

func (o Options) withDefaults() Options {
	if o.SendBuffer <= 0 {
		o.SendBuffer = 256
	}
	if o.MaxSubscriptions <= 0 {
		o.MaxSubscriptions = 100
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 4096
	}
	if o.PongWait <= 0 {
		o.PongWait = 60 * time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingInterval >= o.PongWait {
		// A ping must go out before the pong deadline passes.
		o.PingInterval = o.PongWait * 9 / 10
	}
	if o.WriteWait <= 0 {
		o.WriteWait = 10 * time.Second
	}
	if o.SlowClientGrace <= 0 {
		o.SlowClientGrace = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Stats are the hub's counters, for metrics and tests.
type Stats struct {
	Connections     int64 // open connections
	Subscriptions   int64 // live (connection, market) subscriptions
	Dropped         int64 // trade messages dropped for clients that fell behind
	Conflated       int64 // quote/status messages replaced by a newer one for clients that fell behind
	Gaps            int64 // gap messages sent
	SlowDisconnects int64 // clients disconnected for staying behind
}

// shardCount spreads markets over independently locked maps so that
// subscribing to one market does not contend with publishing another.
const shardCount = 64

type shard struct {
	mu     sync.RWMutex
	topics map[int64]*topic
}

// topic is the subscriber set of one market. Subs is a slice (not a map) so
// that Publish walks contiguous memory; each subscription knows its index for
// O(1) removal.
type topic struct {
	mu   sync.RWMutex
	subs []*subscription
	dead bool // emptied and being removed from its shard: attach must retry
}

// Hub fans events out to websocket clients. It is safe for concurrent use.
type Hub struct {
	snap     Snapshotter
	opts     Options
	log      *slog.Logger
	upgrader websocket.Upgrader
	shards   [shardCount]shard

	ctx    context.Context // parent of every client's context; cancelled by Close
	cancel context.CancelFunc

	pool *writerPool // nil with Options.WritePumps

	mu      sync.Mutex // guards clients and closed
	clients map[*client]struct{}
	closed  bool
	wg      sync.WaitGroup // one per pump

	connections, subscriptions, dropped, conflated, gaps, slow atomic.Int64
}

// NewHub returns a hub serving snapshots from snap.
func NewHub(snap Snapshotter, opts Options) *Hub {
	opts = opts.withDefaults()
	h := &Hub{snap: snap, opts: opts, log: opts.Logger, clients: map[*client]struct{}{}}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.upgrader = websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		// gorilla's write buffer serves only its control frames, which
		// bypass it; the write pumps batch data frames in buffers of their
		// own (wire.go). Idle connections hold neither.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     opts.CheckOrigin,
	}
	for i := range h.shards {
		h.shards[i].topics = map[int64]*topic{}
	}
	if !opts.WritePumps {
		h.pool = newWriterPool(opts.Writers)
		for range h.pool.n {
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				h.pool.run(h.ctx)
			}()
		}
	}
	return h
}

// Publish queues ev for every subscriber of its market. It never blocks and
// its work is one push into each subscriber's inbox (and, with the
// writer pool, marking the subscriber ready on its writer); a subscriber
// whose queue is full is conflated instead. Safe from many goroutines;
// events of one market must be published in seq order (from one goroutine).
func (h *Hub) Publish(ev Event) { h.PublishBatch([]Event{ev}) }

// PublishBatch publishes events of one market, in seq order, as one
// commit's: its trades, then its quote. Each subscriber's queue gets one
// item holding all of them, so a subscriber gets them in one write;
// published one by one, a writer could reach a subscriber between the trade
// and its quote and write twice.
func (h *Hub) PublishBatch(evs []Event) {
	if len(evs) == 0 {
		return
	}
	t := h.topic(evs[0].MarketID)
	if t == nil {
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.subs) == 0 {
		return
	}
	g := newGroup(evs)
	if h.pool == nil {
		for _, s := range t.subs {
			s.c.enqueue(item{sub: s, g: g})
		}
		return
	}
	// Each subscriber's item holds the whole group, so the writers may
	// start while the walk goes on: they are handed subscribers a chunk at
	// a time, and the cores that would wait for the walk write instead.
	var ready [chunk]*client
	n := 0
	for _, s := range t.subs {
		c := s.c
		c.enqueue(item{sub: s, g: g})
		if c.mark() {
			ready[n] = c
			if n++; n == chunk {
				h.pool.add(ready[:n])
				n = 0
			}
		}
	}
	if n > 0 {
		h.pool.add(ready[:n])
	}
}

// topic is the subscriber set of market id, or nil.
func (h *Hub) topic(id int64) *topic {
	sh := &h.shards[uint64(id)%shardCount]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.topics[id]
}

// Watched reports whether market id has subscribers, so that a publisher
// can skip encoding events nobody would receive. Skipping loses nothing for a
// subscriber that attaches just after: its snapshot is read after it
// attaches, so it includes every event committed before Watched was called.
func (h *Hub) Watched(id int64) bool {
	t := h.topic(id)
	if t == nil {
		return false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.subs) > 0
}

// ServeHTTP upgrades the request to a websocket and serves it until either
// side closes. A refused origin gets 403, a closed hub 503.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	hj := &hijacker{ResponseWriter: w}
	ws, err := h.upgrader.Upgrade(hj, r, nil) // replies itself on failure
	if err != nil {
		h.log.Debug("websocket upgrade refused", slog.String("remote_addr", r.RemoteAddr), slog.Any("error", err))
		return
	}
	c := newClient(h, ws, h.log.With(slog.String("remote_addr", r.RemoteAddr)))
	c.conn = hj.conn
	h.mu.Lock()
	if h.pool != nil {
		c.pooled, c.conn.pooled = true, true
	}
	if h.closed {
		h.mu.Unlock()
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(h.opts.WriteWait))
		ws.Close()
		return
	}
	h.clients[c] = struct{}{}
	h.wg.Add(2)
	h.mu.Unlock()
	h.connections.Add(1)
	c.log.Debug("websocket connected")
	go c.writePump()
	go c.readPump()
}

// Close sends every client a close frame (1001 going away), closes the
// connections and waits for their goroutines. Later upgrades get 503.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	clients := make([]*client, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	h.mu.Unlock()
	h.cancel()
	for _, c := range clients {
		c.stop(websocket.CloseGoingAway, "server shutting down")
	}
	h.wg.Wait()
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{
		Connections:     h.connections.Load(),
		Subscriptions:   h.subscriptions.Load(),
		Dropped:         h.dropped.Load(),
		Conflated:       h.conflated.Load(),
		Gaps:            h.gaps.Load(),
		SlowDisconnects: h.slow.Load(),
	}
}

func (h *Hub) remove(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
	h.connections.Add(-1)
}

// attach adds s to its market's subscriber set; from then on Publish queues
// the market's events for it.
func (h *Hub) attach(s *subscription) {
	sh := &h.shards[uint64(s.market)%shardCount]
	for {
		sh.mu.Lock()
		t := sh.topics[s.market]
		if t == nil {
			t = &topic{}
			sh.topics[s.market] = t
		}
		sh.mu.Unlock()

		t.mu.Lock()
		if t.dead {
			t.mu.Unlock()
			// detach is about to remove it; take it out ourselves and retry.
			sh.mu.Lock()
			if sh.topics[s.market] == t {
				delete(sh.topics, s.market)
			}
			sh.mu.Unlock()
			continue
		}
		s.topic, s.idx = t, len(t.subs)
		t.subs = append(t.subs, s)
		t.mu.Unlock()
		h.subscriptions.Add(1)
		return
	}
}

// detach removes s from its market's subscriber set and cancels it, so the
// write pump discards whatever of it is still queued. Idempotent.
func (h *Hub) detach(s *subscription) {
	t := s.topic
	if t == nil || s.cancelled.Swap(true) {
		return
	}
	t.mu.Lock()
	last := len(t.subs) - 1
	t.subs[s.idx] = t.subs[last]
	t.subs[s.idx].idx = s.idx
	t.subs[last] = nil
	t.subs = t.subs[:last]
	empty := last == 0
	if empty {
		t.dead = true
	}
	t.mu.Unlock()
	h.subscriptions.Add(-1)
	if empty {
		sh := &h.shards[uint64(s.market)%shardCount]
		sh.mu.Lock()
		if sh.topics[s.market] == t {
			delete(sh.topics, s.market)
		}
		sh.mu.Unlock()
	}
}
