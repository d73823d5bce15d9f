package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"levee"
	"levee/market"
)

// Several instances of one city (docs/cluster.md): with Options.Node set,
// a book runs only while its instance holds the market's lease row, taken at
// a new epoch when the book starts (store_lease.go) and renewed every third
// of Options.LeaseTTL by renewLoop. The epoch is written into the market's
// row in the same transaction, and every journal commit and lifecycle
// transaction writes the row only at the epoch its book holds: a paused or
// partitioned instance that wakes up after another took the market over can
// no longer commit anything (fencing), and its callers get errMoved, a 503
// that is safe to retry. Without Options.Node there are no leases and the
// epoch never changes.

// defaultLeaseTTL is how long a lease lasts unrenewed: another instance can
// take a market over this long after its owner stopped renewing, plus one
// placement check, within the 3 s the issue allows.
const defaultLeaseTTL = 2 * time.Second

// errFenced says a market's row is at another epoch than the book's: another
// instance took the market over. Books answer errMoved.
var errFenced = errors.New("market taken over by another instance")

// errMoved is what a caller hears when the book that took its order lost the
// market before committing it: nothing was executed, and a retry (with the
// same Idempotency-Key) lands once on the new owner.
var errMoved = levee.Errorf(levee.EUNAVAILABLE, "the market moved to another instance before your order committed; it was not executed and is safe to retry")

// NotOwnerError says another instance holds (or, Placed, should take) a
// market's lease: orders go there (Forwarder).
type NotOwnerError struct {
	Market int64
	Owner  string
	Placed bool          // the market was free and Owner holds the fewest markets
	left   time.Duration // how long the owner's lease has to run
}

func (e *NotOwnerError) Error() string {
	return fmt.Sprintf("market %d is served by instance %s", e.Market, e.Owner)
}

// Forwarder carries commands for markets that another instance owns to that
// instance (package cluster does it over NATS request/reply).
type Forwarder interface {
	// Submit runs Engine.SubmitForwarded on instance node, keeping the
	// caller's account, idempotency key and deadline (ctx's).
	Submit(ctx context.Context, node string, account, marketID int64, o market.Order, key string) (Result, error)
	// Release asks instance node to stop market marketID's book and give
	// up its lease, so this instance can run a lifecycle command on it.
	Release(ctx context.Context, node string, marketID int64) error
	// Quote runs Engine.QuoteForwarded on instance node and returns the
	// fill and the market's committed row it was computed on.
	Quote(ctx context.Context, node string, account, marketID int64, o market.Order) (market.Fill, Market, error)
}

type forwardedKey struct{}

// Forwarded marks ctx as serving a command forwarded by another instance:
// the engine takes a free market's lease itself instead of placing it
// elsewhere, and never forwards again (one hop at most).
func Forwarded(ctx context.Context) context.Context {
	return context.WithValue(ctx, forwardedKey{}, true)
}

func isForwarded(ctx context.Context) bool { v, _ := ctx.Value(forwardedKey{}).(bool); return v }

// ClusterStats are the engine's counters of leases, for /metrics and /readyz.
type ClusterStats struct {
	Node       string
	Owned      int   // books running, each holding its lease
	Acquired   int64 // leases taken
	Takeovers  int64 // of them, from another instance
	Lost       int64 // leases found taken or expired at renewal
	Fenced     int64 // batches refused at commit because the market moved
	Forwarded  int64 // orders sent to the owner
	Released   int64 // leases given up (idle, rebalanced, asked)
	RenewFails int64
}

type clusterCounters struct {
	acquired, takeovers, lost, fenced, forwarded, released, renewFails atomic.Int64
}

// ClusterStats returns the lease counters.
func (e *Engine) ClusterStats() ClusterStats {
	c := &e.cluster
	return ClusterStats{Node: e.opts.Node, Owned: e.Books(), Acquired: c.acquired.Load(), Takeovers: c.takeovers.Load(),
		Lost: c.lost.Load(), Fenced: c.fenced.Load(), Forwarded: c.forwarded.Load(), Released: c.released.Load(), RenewFails: c.renewFails.Load()}
}

// clock is the engine's monotonic time for local lease expiry: nanoseconds
// since the engine started (time.Since reads the monotonic clock, which
// keeps running while the process is stopped by SIGSTOP).
func (e *Engine) clock() int64 { return int64(time.Since(e.started)) }

// leaseValid reports whether the book may still take commands: its lease,
// as last renewed, has not expired by this instance's clock, which never
// runs ahead of the lease's expiry in PostgreSQL (the renewal is timed from
// before it was sent).
func (b *book) leaseValid() bool {
	return b.e.opts.Node == "" || (!b.fenced.Load() && b.e.clock() < b.leaseUntil.Load())
}

// acquire takes market id's lease for this instance (cluster mode) before
// its book starts, and returns the epoch the book will hold.
func (e *Engine) acquire(ctx context.Context, id int64) (int64, int64, error) {
	if o, ok := e.owners.Load(id); ok {
		if c := o.(cachedOwner); e.clock() < c.until {
			return 0, 0, &NotOwnerError{Market: id, Owner: c.node}
		}
		e.owners.Delete(id)
	}
	// A read first, without locks: most attempts find a live owner.
	if l, ok, err := leaseOf(ctx, e.db, id); err != nil {
		return 0, 0, err
	} else if ok && l.Live && l.Owner != e.opts.Node {
		e.owners.Store(id, cachedOwner{node: l.Owner, until: e.clock() + int64(min(time.Duration(l.Left)*time.Microsecond, e.opts.LeaseTTL/2))})
		return 0, 0, &NotOwnerError{Market: id, Owner: l.Owner}
	}
	start := e.clock()
	epoch, prev, err := acquireLease(ctx, e.db, id, e.opts.Node, e.opts.LeaseTTL, !isForwarded(ctx))
	if no := (*NotOwnerError)(nil); errors.As(err, &no) {
		if !no.Placed { // an owner holds it until its lease ends; a placement is decided afresh
			e.owners.Store(id, cachedOwner{node: no.Owner, until: e.clock() + int64(min(no.left, e.opts.LeaseTTL/2))})
		}
		return 0, 0, err
	}
	if err != nil {
		return 0, 0, err
	}
	e.cluster.acquired.Add(1)
	if prev != "" && prev != e.opts.Node {
		e.cluster.takeovers.Add(1)
		e.logger.Info("market taken over", slog.Int64("market_id", id), slog.String("from", prev), slog.Int64("epoch", epoch))
	}
	return epoch, start + int64(e.opts.LeaseTTL), nil
}

// cachedOwner remembers another instance's live lease for half a TTL, so
// reads and forwards of its markets do not each cost an acquisition attempt.
type cachedOwner struct {
	node  string
	until int64 // Engine.clock
}

// ForgetOwner drops what this instance remembers of market id's owner (a
// forward found it gone).
func (e *Engine) ForgetOwner(id int64) { e.owners.Delete(id) }

// dropBook stops b without waiting: it leaves the map at once (the next
// caller acquires the lease again, at a new epoch) and its goroutine answers
// what it still holds and returns.
func (e *Engine) dropBook(b *book) {
	e.mu.Lock()
	if e.books[b.id] == b {
		delete(e.books, b.id)
		e.stops++
	}
	e.mu.Unlock()
	b.stop()
}

// stop closes the book's quit channel once.
func (b *book) stop() { b.stopOnce.Do(func() { close(b.quit) }) }

// renewLoop renews the leases of the running books every third of the TTL
// and drops the books whose lease was lost; every sixth of the TTL it adopts
// the markets of instances that died (adopt), and every TTL it rebalances.
// A takeover therefore comes within TTL + TTL/6 of the owner's last renewal,
// plus the acquisition: under 2.4 s with the default TTL of 2 s.
func (e *Engine) renewLoop() {
	defer close(e.renewDone)
	t := time.NewTicker(e.opts.LeaseTTL / 6)
	defer t.Stop()
	for n := 0; ; n++ {
		if n%2 == 0 {
			e.renew()
		}
		e.adopt()
		if n%6 == 5 {
			e.rebalance()
		}
		select {
		case <-e.renewQuit:
			return
		case <-t.C:
		}
	}
}

func (e *Engine) renew() {
	e.mu.Lock()
	books := make([]*book, 0, len(e.books))
	for _, b := range e.books {
		books = append(books, b)
	}
	e.mu.Unlock()
	ids, epochs := make([]int64, len(books)), make([]int64, len(books))
	for i, b := range books {
		ids[i], epochs[i] = b.id, b.epoch
	}
	start := e.clock()
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.LeaseTTL/2)
	defer cancel()
	renewed, err := renewLeases(ctx, e.db, e.opts.Node, e.opts.LeaseTTL, ids, epochs)
	if err != nil {
		// The books keep their local expiry and stop taking orders when it
		// passes; the next renewal may still save them.
		e.cluster.renewFails.Add(1)
		e.logger.Warn("renewing market leases failed", slog.Any("error", err))
		return
	}
	for _, b := range books {
		if renewed[b.id] {
			b.leaseUntil.Store(start + int64(e.opts.LeaseTTL))
			continue
		}
		e.cluster.lost.Add(1)
		e.logger.Warn("market lease lost", slog.Int64("market_id", b.id), slog.Int64("epoch", b.epoch))
		e.dropBook(b)
	}
}

// adopt takes over the markets whose instance died or stalled holding
// them (an expired lease not released), without waiting for a request: a
// killed instance's markets run again within a TTL and a renewal period of
// its last renewal. Each market goes through the normal placement, so the
// least-loaded live instance takes it and the others leave it alone.
func (e *Engine) adopt() {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.LeaseTTL)
	defer cancel()
	ids, err := orphanedLeases(ctx, e.db, 100)
	if err != nil {
		e.logger.Warn("looking for orphaned markets", slog.Any("error", err))
		return
	}
	for _, id := range ids {
		e.owners.Delete(id)
		b, err := e.book(ctx, id)
		if err != nil {
			continue // placed elsewhere, or taken meanwhile
		}
		b.release()
	}
}

// rebalance gives up markets when this instance holds more than its share:
// more than one above the mean over the live instances. It is how a joining
// instance gets work: the released markets are placed afresh, on the
// least-loaded instance, by the next request. At most a tenth of the excess
// plus one per round, so a join moves markets over a few seconds rather
// than all at once.
func (e *Engine) rebalance() {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.LeaseTTL/2)
	defer cancel()
	p, err := placement(ctx, e.db)
	if err != nil || len(p) < 2 {
		return
	}
	total := 0
	for _, n := range p {
		total += n
	}
	fair := int(math.Ceil(float64(total) / float64(len(p))))
	excess := p[e.opts.Node] - fair - 1
	if excess <= 0 {
		return
	}
	excess = excess/10 + 1
	e.mu.Lock()
	var move []*book
	for _, b := range e.books {
		if len(move) == excess {
			break
		}
		move = append(move, b)
	}
	e.mu.Unlock()
	for _, b := range move {
		e.releaseBook(ctx, b)
	}
	e.logger.Info("rebalanced markets away", slog.Int("markets", len(move)), slog.Int("fair", fair))
}

// releaseBook stops b, waits until it has answered everything it took (its
// trades are durable under its still-valid lease), and ends its lease.
func (e *Engine) releaseBook(ctx context.Context, b *book) {
	e.dropBook(b)
	select {
	case <-b.done:
	case <-ctx.Done():
		return // the lease then simply expires
	}
	if err := releaseLease(ctx, e.db, b.id, e.opts.Node, b.epoch); err != nil {
		e.logger.Warn("releasing a market lease", slog.Int64("market_id", b.id), slog.Any("error", err))
		return
	}
	e.cluster.released.Add(1)
}

// Release stops market id's book on this instance, if it runs here, and
// ends its lease (another instance asked for it: Forwarder.Release).
func (e *Engine) Release(ctx context.Context, id int64) {
	e.mu.Lock()
	b := e.books[id]
	e.mu.Unlock()
	if b != nil {
		e.releaseBook(ctx, b)
	}
}

// claim takes a market owned by another live instance for a lifecycle
// command, which cannot travel (SettleWith runs the caller's function in its
// transaction): it asks the owner to release it and retries until the lease
// is free, at most two TTLs (a dead owner's lease expires meanwhile).
func (e *Engine) claim(ctx context.Context, id int64, no *NotOwnerError) (*book, error) {
	ctx = Forwarded(ctx)
	deadline := time.Now().Add(2*e.opts.LeaseTTL + time.Second)
	for {
		if e.opts.Forwarder != nil && !no.Placed {
			rctx, cancel := context.WithTimeout(ctx, e.opts.LeaseTTL)
			if err := e.opts.Forwarder.Release(rctx, no.Owner, id); err != nil {
				e.logger.Debug("asking an owner to release a market", slog.Int64("market_id", id), slog.Any("error", err))
			}
			cancel()
		}
		e.owners.Delete(id)
		b, err := e.book(ctx, id)
		if !errors.As(err, &no) {
			return b, err
		}
		if time.Now().After(deadline) {
			return nil, levee.Errorf(levee.EUNAVAILABLE, "market %d is busy on instance %s; try again", id, no.Owner)
		}
		select {
		case <-ctx.Done():
			return nil, levee.Errorf(levee.EUNAVAILABLE, "market %d is busy on instance %s; try again", id, no.Owner)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// forward sends an order for a market another instance owns to it. A
// forwarded order that finds the market owned elsewhere again is not sent
// on (one hop): the caller retries.
func (e *Engine) forward(ctx context.Context, no *NotOwnerError, c *command) (Result, error) {
	if e.opts.Forwarder == nil || isForwarded(ctx) {
		return Result{}, errMoved
	}
	e.cluster.forwarded.Add(1)
	r, err := e.opts.Forwarder.Submit(ctx, no.Owner, c.account, no.Market, c.order, c.key)
	if err != nil && levee.ErrorCode(err) == levee.EUNAVAILABLE {
		e.owners.Delete(no.Market) // ask PostgreSQL again next time
	}
	if no.Placed && errors.Is(err, ErrNotDelivered) {
		// The market was free and its placement named an instance that is
		// gone (its registration outlives it by up to a TTL): nothing ran
		// there, so this instance takes the market itself.
		return e.send(Forwarded(ctx), no.Market, c)
	}
	return r, err
}

// ErrNotDelivered marks a forward that certainly never reached an instance
// (nobody listens on its subject): the command did not run anywhere.
var ErrNotDelivered = errors.New("not delivered to any instance")

// forwardQuote sends a quote to the instance whose book runs the market,
// reporting ok when it answered (its answer, errors included, is the
// quote's). A market that runs here, or nowhere, or whose owner does not
// answer, is quoted here on its committed row: the same state the owner's
// snapshot holds, read from PostgreSQL instead.
func (e *Engine) forwardQuote(ctx context.Context, account, marketID int64, o market.Order) (market.Fill, *Snapshot, error, bool) {
	if e.opts.Node == "" || e.opts.Forwarder == nil || isForwarded(ctx) {
		return market.Fill{}, nil, nil, false
	}
	e.mu.Lock()
	b := e.books[marketID]
	here := b != nil && b.leaseValid()
	e.mu.Unlock()
	if here {
		return market.Fill{}, nil, nil, false
	}
	owner := ""
	if c, ok := e.owners.Load(marketID); ok && e.clock() < c.(cachedOwner).until {
		owner = c.(cachedOwner).node
	} else if l, ok, err := leaseOf(ctx, e.db, marketID); err == nil && ok && l.Live && l.Owner != e.opts.Node {
		owner = l.Owner
		e.owners.Store(marketID, cachedOwner{node: owner, until: e.clock() + int64(min(time.Duration(l.Left)*time.Microsecond, e.opts.LeaseTTL/2))})
	}
	if owner == "" {
		return market.Fill{}, nil, nil, false
	}
	f, m, err := e.opts.Forwarder.Quote(ctx, owner, account, marketID, o)
	if levee.ErrorCode(err) == levee.EUNAVAILABLE {
		e.owners.Delete(marketID)
		return market.Fill{}, nil, nil, false
	}
	if m.ID == 0 { // refused before the market was read (not found, invalid)
		return f, nil, err, true
	}
	st, serr := market.NewState(m.Liquidity, m.Q)
	if serr != nil {
		return market.Fill{}, nil, fmt.Errorf("market %d state: %w", marketID, serr), true
	}
	return f, &Snapshot{Market: m, Prices: st.PricesMicros(), state: st}, err, true
}

// QuoteForwarded is Quote for a quote another instance forwarded here.
func (e *Engine) QuoteForwarded(ctx context.Context, account, marketID int64, o market.Order) (market.Fill, Market, error) {
	f, s, err := e.Quote(Forwarded(ctx), account, marketID, o)
	var m Market
	if s != nil {
		m = s.Market
	}
	return f, m, err
}

// SubmitForwarded is Submit for an order another instance forwarded here.
func (e *Engine) SubmitForwarded(ctx context.Context, account, marketID int64, o market.Order, key string) (Result, error) {
	return e.Submit(Forwarded(ctx), account, marketID, o, key)
}

// rowSnapshot is the committed state of a market another instance owns,
// read from its row.
func (e *Engine) rowSnapshot(ctx context.Context, id int64) (*Snapshot, error) {
	m, err := loadMarket(ctx, e.db, id)
	if err != nil {
		return nil, err
	}
	st, err := market.NewState(m.Liquidity, m.Q)
	if err != nil {
		return nil, fmt.Errorf("market %d state: %w", id, err)
	}
	return &Snapshot{Market: m, Prices: st.PricesMicros(), state: st}, nil
}

// cashMoved tells other instances' wallets (Options.CashMoved) that these
// accounts' cash changed.
func (e *Engine) cashMoved(accounts ...int64) {
	if e.opts.CashMoved != nil && len(accounts) > 0 {
		e.opts.CashMoved(accounts)
	}
}

// ForgetCash drops a cached wallet because another instance moved its cash.
func (e *Engine) ForgetCash(account int64) { e.wallets.Invalidate(account) }

// Owns reports whether market id's book runs here now (tests, /readyz).
func (e *Engine) Owns(id int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.books[id]
	return b != nil && b.leaseValid()
}

// LeaseOwner reads who holds market id's lease and whether it is live.
func (e *Engine) LeaseOwner(ctx context.Context, id int64) (string, bool, error) {
	l, ok, err := leaseOf(ctx, e.db, id)
	return l.Owner, ok && l.Live, err
}
