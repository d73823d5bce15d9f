package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/market"
)

type cmdKind int

const (
	cmdOrder cmdKind = iota
	cmdClose
	cmdExtend
	cmdResolve
	cmdVoid
)

// command is one request to a market's owner goroutine.
type command struct {
	kind    cmdKind
	account int64
	order   market.Order
	key     string
	at      time.Time
	outcome int       // for cmdResolve
	until   time.Time // for cmdExtend
	// decision marks a void by a decision market's award (VoidDecision).
	decision bool
	// exit marks a sale made for an account that is leaving the city
	// (SellForExit): the only order such an account may still make.
	exit bool
	// within runs inside a resolve or void's transaction (SettleWith).
	within func(ctx context.Context, tx *sqlx.Tx) error
	// lookup: the order's key is known to be stored (order_keys refused it
	// at commit), so preload looks it up before pricing (keys.go).
	lookup bool
	// done is signalled once result holds the command's answer (answer):
	// a channel of empty values is one allocation, a channel of replies
	// (values with pointers) was two.
	done   chan struct{}
	result reply
	// queued is when Submit queued the command, kept only with
	// Options.OnOrder.
	queued time.Time
}

type reply struct {
	res Result
	err error
}

// answer gives c its reply; each command is answered once. The send on done
// happens before the receive that ends the waiter's wait, so the waiter
// then reads result as written here.
func (c *command) answer(r reply) {
	c.result = r
	c.done <- struct{}{}
}

// Snapshot is a market's committed state, published after every commit and
// read without locks by quotes, the API and the websocket.
type Snapshot struct {
	Market Market
	Prices []levee.Micros
	state  *market.State
}

// book owns one market. Only its goroutine touches the fields below the line.
type book struct {
	e     *Engine
	id    int64
	epoch int64 // the lease epoch this book writes at (lease.go)
	in    chan *command
	quit  chan struct{}
	done  chan struct{}
	// stopOnce closes quit (stop); leaseUntil is when the lease ends by
	// Engine.clock (cluster mode); fenced says another instance took the
	// market over: the book answers errMoved and stops.
	stopOnce   sync.Once
	leaseUntil atomic.Int64
	fenced     atomic.Bool
	snap       atomic.Pointer[Snapshot]
	logger     *slog.Logger
	idle       idleState // when the book may stop (idle.go)

	// owned by run()
	m         Market
	state     *market.State
	positions map[int64][]levee.Micros // account -> shares per outcome, loaded on first use
	held      map[int64]levee.Micros   // conditional markets: account -> balance inside the market, loaded with positions
	broken    bool                     // the last commit failed and the reload did too
	pending   []pending                // priced, not yet handed to the journal
	inflight  []sent                   // handed to the journal, not yet answered, oldest first (at most Options.InFlight)
	replays   map[string]*market.Trade // stored trades of keyed orders in the current batch
}

// sent is a batch handed to the journal with the orders it answers.
type sent struct {
	bt      *batch
	pending []pending
	handed  time.Time // for Options.OnOrder
}

type pending struct {
	cmd   *command
	trade market.Trade
	res   Result
}

func (b *book) run() {
	defer b.e.running.Done()
	defer close(b.done)
	defer b.releaseOnExit()
	cmds := make([]*command, 0, b.e.opts.MaxBatch)
	idle, idleC := b.idleTimer()
	if idle != nil {
		defer idle.Stop()
	}
	seen := b.idle.touches.Load()
	defer b.drain()
	for {
		var committed <-chan error
		var locked <-chan struct{}
		if n := len(b.inflight); n > 0 {
			committed = b.inflight[0].bt.done
			// Wait for the batch ahead to hold its locks, but once it does,
			// the orders still gathering go with the next commands (flush).
			if l := b.inflight[n-1].bt.locked; len(b.pending) > 0 && b.roomBeside() && !isClosed(l) {
				locked = l
			}
		}
		select {
		case err := <-committed:
			b.answerOldest(err)
			b.flush()
			if b.fenced.Load() {
				b.e.dropBook(b)
			}
			continue
		case <-locked:
			b.flush()
			continue
		case <-idleC:
			if b.idleCheck(idle, &seen) {
				return
			}
			continue
		case <-b.idle.wake:
			if b.settledStop() {
				return
			}
			continue
		case c := <-b.in:
			cmds = append(cmds[:0], c)
		case <-b.quit:
			// Drain what was accepted before the stop, then leave (run's
			// deferred drain answers what is still in flight).
			for {
				select {
				case c := <-b.in:
					b.process([]*command{c})
				default:
					return
				}
			}
		}
	drain:
		for len(cmds) < b.e.opts.MaxBatch {
			select {
			case c := <-b.in:
				cmds = append(cmds, c)
			default:
				break drain
			}
		}
		b.process(cmds)
		if b.fenced.Load() {
			b.e.dropBook(b) // quit is now closed: the next round drains and returns
			continue
		}
		if b.settledStop() {
			return
		}
	}
}

// process prices a batch of commands on the working state, sends the trades
// to the journal, waits for the commit and only then answers.
func (b *book) process(cmds []*command) {
	if b.fenced.Load() {
		for _, c := range cmds {
			c.answer(reply{err: errMoved})
		}
		return
	}
	if b.broken {
		if err := b.reload(); err != nil {
			for _, c := range cmds {
				c.answer(reply{err: levee.Errorf(levee.EUNAVAILABLE, "the market is recovering from a database failure; try again shortly")})
			}
			return
		}
	}
	if err := b.preload(cmds); err != nil {
		b.logger.Warn("preload failed", slog.Any("error", err))
		for _, c := range cmds {
			c.answer(reply{err: levee.Errorf(levee.EUNAVAILABLE, "the database is unavailable; try again shortly")})
		}
		return
	}
	for _, c := range cmds {
		switch c.kind {
		case cmdOrder:
			if t := b.replays[replayKey(c.account, c.key)]; c.key != "" && t != nil {
				r, err := sameOrder(resultOf(t), nil, b.id, c.order)
				c.answer(reply{res: r, err: err})
				continue
			}
			b.price(c)
		default:
			b.flush()
			b.drain()
			c.answer(reply{err: b.lifecycle(c)})
		}
	}
	b.flush()
}

// preload fetches, in one query each, the positions and wallets of traders
// this market has not seen yet, and the stored results of keyed orders known
// to be retries (command.lookup; every keyed order with the previous
// journal).
func (b *book) preload(cmds []*command) error {
	var accounts, unknown, keyAccounts []int64
	var keys []string
	for _, c := range cmds {
		if c.kind != cmdOrder {
			continue
		}
		accounts = append(accounts, c.account)
		if _, ok := b.positions[c.account]; !ok {
			unknown = append(unknown, c.account)
		}
		if c.key != "" && (c.lookup || b.e.opts.PreviousJournal) {
			keyAccounts, keys = append(keyAccounts, c.account), append(keys, c.key)
		}
	}
	if len(accounts) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.e.opts.DBTimeout)
	defer cancel()
	clear(b.replays)
	if len(keys) > 0 {
		ts, err := tradesByKeys(ctx, b.e.db, keyAccounts, keys)
		if err != nil {
			return err
		}
		if b.replays == nil {
			b.replays = map[string]*market.Trade{}
		}
		for i := range ts {
			b.replays[replayKey(ts[i].AccountID, *ts[i].Key)] = &ts[i]
		}
	}
	if err := b.loadTraders(ctx, unknown); err != nil {
		return err
	}
	return b.e.wallets.ensure(ctx, accounts)
}

// loadTraders reads the positions (and, in a decision market, the balances
// inside it) of accounts the book does not hold.
func (b *book) loadTraders(ctx context.Context, accounts []int64) error {
	if len(accounts) == 0 {
		return nil
	}
	ps, err := loadPositions(ctx, b.e.db, b.id, accounts, len(b.m.Outcomes))
	if err != nil {
		return err
	}
	for _, a := range accounts {
		b.positions[a] = ps[a]
	}
	if b.m.Conditional {
		stakes, err := loadStakes(ctx, b.e.db, b.id, accounts)
		if err != nil {
			return err
		}
		for _, a := range accounts {
			b.held[a] = stakes[a].Held
		}
	}
	return nil
}

// price evaluates one order on the working state and, if it fills, applies
// it and queues its trade for the journal.
func (b *book) price(c *command) {
	if b.fenced.Load() {
		c.answer(reply{err: errMoved})
		return
	}
	if b.broken { // a failed flush earlier in this round could not reload the state
		c.answer(reply{err: levee.Errorf(levee.EUNAVAILABLE, "the market is recovering from a database failure; try again shortly")})
		return
	}
	if st := b.m.EffectiveStatus(c.at); st != market.StatusOpen {
		c.answer(reply{err: levee.Errorf(levee.ECONFLICT, "the market is %s and takes no orders", st)})
		return
	}
	o := c.order
	if o.Outcome < 0 || o.Outcome >= len(b.m.Outcomes) {
		c.answer(reply{err: levee.Invalid("outcome", "outcome must be from 0 to %d", len(b.m.Outcomes)-1)})
		return
	}
	if err := b.e.bars.check(b.id, c.account); err != nil {
		c.answer(reply{err: err})
		return
	}
	if err := b.e.leaving.check(c.account, c.exit, o.Side); err != nil {
		c.answer(reply{err: err})
		return
	}
	pos := b.positions[c.account]
	if pos == nil {
		// A reload in this round (a failed commit, an extended close)
		// forgot what preload read: read it again.
		ctx, cancel := context.WithTimeout(context.Background(), b.e.opts.DBTimeout)
		err := b.loadTraders(ctx, []int64{c.account})
		cancel()
		if err == nil {
			err = b.e.wallets.ensure(context.Background(), []int64{c.account})
		}
		if err != nil {
			c.answer(reply{err: levee.Errorf(levee.EUNAVAILABLE, "the database is unavailable; try again shortly")})
			return
		}
		pos = b.positions[c.account]
	}
	// In a conditional market a trader spends their balance inside the
	// market first, then cash; everywhere else held is 0.
	held := b.held[c.account]
	fill, err := b.state.Evaluate(o, pos[o.Outcome], b.e.wallets.available(c.account)+held)
	if err != nil {
		c.answer(reply{err: err})
		return
	}
	var fromHeld levee.Micros
	if fill.Side == market.Buy {
		fromHeld = min(held, fill.Cost)
		if !b.e.wallets.reserve(c.account, fill.Cost-fromHeld) {
			c.answer(reply{err: levee.Errorf(levee.ECONFLICT, "insufficient cash")})
			return
		}
	}
	if b.m.Conditional {
		if fill.Side == market.Buy {
			b.held[c.account] = held - fromHeld
		} else {
			b.held[c.account] = held + fill.Proceeds
		}
	}
	b.state.Apply(fill)
	if fill.Side == market.Buy {
		pos[o.Outcome] += fill.Shares
		b.m.Volume = b.m.Volume.Capped(fill.Cost)
	} else {
		pos[o.Outcome] -= fill.Shares
		b.m.Volume = b.m.Volume.Capped(fill.Proceeds)
	}
	b.m.Seq++
	prices := b.state.PricesMicros()
	amount := fill.Cost
	if fill.Side == market.Sell {
		amount = fill.Proceeds
	}
	var key *string
	if c.key != "" {
		key = &c.key
	}
	t := market.Trade{MarketID: b.id, Seq: b.m.Seq, AccountID: c.account, Outcome: o.Outcome, Side: fill.Side,
		Shares: fill.Shares, Amount: amount, Prices: prices, At: c.at, Key: key, FromHeld: fromHeld}
	res := Result{MarketID: b.id, Seq: b.m.Seq, Outcome: o.Outcome, Side: t.Side, Shares: fill.Shares,
		Cost: fill.Cost, Proceeds: fill.Proceeds, Prices: prices, At: c.at}
	b.pending = append(b.pending, pending{cmd: c, trade: t, res: res})
}

// flush hands the pending trades to the journal as a batch. With one
// transaction in flight (Options.InFlight 1) it waits for the commit and
// answers their orders. With two it hands them over once the batch ahead,
// if any, carries at least Options.OverlapFrom orders and is in a
// transaction that holds its locks (the journal can start the next one
// then), and they are at least half as many as its orders, and
// returns at once; until then, and while two batches are in flight, the
// orders that come gather into the next batch.
// run answers the batches as they commit (answerOldest) and hands over
// what gathered meanwhile.
func (b *book) flush() {
	if len(b.pending) == 0 {
		return
	}
	if b.e.opts.InFlight == 1 {
		b.send()
		return
	}
	// Enough gathered: take no more orders until it can go, beside the
	// batches in flight once the last holds its locks, or once the oldest
	// commits (a failure prices b.pending again). A batch so stays under
	// twice Options.MaxBatch.
	for len(b.pending) >= b.e.opts.MaxBatch && len(b.inflight) > 0 {
		var locked <-chan struct{} // nil when there is no room beside: wait for the commit
		if b.roomBeside() {
			locked = b.inflight[len(b.inflight)-1].bt.locked
		}
		select {
		case <-locked:
			b.send()
			return
		case err := <-b.inflight[0].bt.done:
			b.answerOldest(err)
		}
	}
	if len(b.pending) == 0 || !b.roomBeside() {
		return
	}
	if n := len(b.inflight); n > 0 {
		select {
		case <-b.inflight[n-1].bt.locked:
		default:
			return
		}
		// A batch much smaller than the one ahead would cost a commit of its
		// own for little overlap: let it gather until it is half that one's
		// size, or until that one commits.
		if 2*len(b.pending) < len(b.inflight[n-1].pending) {
			return
		}
	}
	b.send()
}

// roomBeside says whether a batch may go to the journal beside those in
// flight: none is, or fewer than Options.InFlight are and the last carries
// at least Options.OverlapFrom orders (a smaller one is worth waiting for).
func (b *book) roomBeside() bool {
	n := len(b.inflight)
	return n == 0 || n < b.e.opts.InFlight && len(b.inflight[n-1].pending) >= b.e.opts.OverlapFrom
}

// send hands the pending trades to the journal as a batch.
func (b *book) send() {
	bt := &batch{marketID: b.id, epoch: b.epoch, conditional: b.m.Conditional, q: b.state.Q(), seq: b.m.Seq, volume: b.m.Volume,
		after: b.pending[0].trade.Seq - 1, trades: make([]market.Trade, len(b.pending)), reserved: map[int64]levee.Micros{},
		done: make(chan error, 1), locked: make(chan struct{})}
	for i, p := range b.pending {
		bt.trades[i] = p.trade
		if p.trade.Side == market.Buy {
			bt.reserved[p.trade.AccountID] += p.trade.Amount - p.trade.FromHeld
		}
	}
	s := sent{bt: bt, pending: b.pending}
	if b.e.opts.OnOrder != nil {
		s.handed = time.Now()
	}
	b.pending = make([]pending, 0, cap(b.pending))
	b.inflight = append(b.inflight, s)
	b.e.journal.in <- bt
	if b.e.opts.InFlight == 1 {
		b.answerOldest(<-bt.done)
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// drain hands over what is pending and waits until every batch in flight
// is answered.
func (b *book) drain() {
	for len(b.inflight) > 0 || len(b.pending) > 0 {
		if len(b.inflight) == 0 {
			b.send()
			continue
		}
		b.answerOldest(<-b.inflight[0].bt.done)
	}
}

// answerOldest answers the oldest batch in flight, whose commit ended with err.
// When it failed, every later batch was priced on top of it: answerOldest waits
// for them all (none can commit without it: journalMarkets), and handles
// the failure over their orders and those priced since, as one sequence.
func (b *book) answerOldest(err error) {
	first := b.inflight[0]
	if err == nil {
		b.inflight = b.inflight[1:]
		b.committed(first)
		return
	}
	sents := b.inflight
	b.inflight = nil
	errs := make([]error, len(sents))
	errs[0] = err
	laterCommitted := false
	for i := 1; i < len(sents); i++ {
		errs[i] = <-sents[i].bt.done
		laterCommitted = laterCommitted || errs[i] == nil
	}
	// The orders priced since were never handed over: their reservations
	// are the book's to give back (the journal gives back the others').
	for _, p := range b.pending {
		if p.trade.Side == market.Buy {
			b.e.wallets.release(p.trade.AccountID, p.trade.Amount-p.trade.FromHeld)
		}
	}
	all := make([]pending, 0, len(b.pending)+len(sents)*len(first.pending))
	for _, s := range sents {
		all = append(all, s.pending...)
	}
	b.pending = append(all, b.pending...)
	if !laterCommitted {
		if od := (*overdraft)(nil); errors.As(err, &od) {
			b.repriceWithout(od, len(first.pending)) // answers every pending order
			return
		}
		if errors.Is(err, errFenced) {
			b.fenced.Store(true)
			b.e.cluster.fenced.Add(1)
			b.logger.Warn("market taken over by another instance; its orders were not executed", slog.Int("orders", len(b.pending)), slog.Int64("epoch", b.epoch))
			for _, p := range b.pending {
				p.cmd.answer(reply{err: errMoved})
			}
			b.pending = b.pending[:0]
			return
		}
		if kt := (*keyTaken)(nil); errors.As(err, &kt) {
			b.replayTaken(kt) // answers every pending order
			return
		}
	}
	// Did some commit after all (the connection died during COMMIT)? The
	// market row says: it is written in the same transaction. (Only while
	// the epoch is still ours: a new owner's trades also move the seq;
	// reload refuses a row at another epoch.) The first batch's orders that
	// did not commit are answered with its error, the later batches' and
	// those priced since are priced again on the committed state, as are the
	// first's when it was only behind (errBehind never reaches a trader).
	rerr := b.reload()
	var again []*command
	for i, s := range sents {
		switch {
		case errs[i] == nil || rerr == nil && b.m.Seq >= s.bt.seq:
			b.answer(s, nil)
		case i == 0 && !errors.Is(err, errBehind):
			e := err
			if errors.Is(rerr, errFenced) {
				e = errMoved
			}
			b.answer(s, e)
		default: // written after a batch that did not commit: nothing of it is stored
			for _, p := range s.pending {
				again = append(again, p.cmd)
			}
		}
	}
	for _, p := range b.pending[len(all):] {
		again = append(again, p.cmd)
	}
	b.pending = b.pending[:0]
	b.reprocess(again)
}

// committed answers a batch the journal committed: the snapshot first, so
// that a trader who reads right after the answer (a quote, GET
// /markets/{id}) sees their own trade.
func (b *book) committed(s sent) {
	b.m.Q = s.bt.q
	b.publishAt(s.bt.q, s.bt.seq, s.bt.volume)
	b.answer(s, nil)
}

// answer replies to a batch's orders: their results when it committed
// (err nil; the snapshot is already published), else err.
func (b *book) answer(s sent, err error) {
	if err == nil {
		b.observe(s) // before the answers: whoever reads the metrics after one finds its order there
	}
	for _, p := range s.pending {
		if err != nil {
			p.cmd.answer(reply{err: err})
		} else {
			p.cmd.answer(reply{res: p.res})
		}
	}
	if err == nil {
		b.publish(s.pending)
	}
}

// observe reports a committed batch's orders' times (Options.OnOrder):
// handed is when the batch went to the journal, started when the journal
// began the transaction that committed it.
func (b *book) observe(s sent) {
	on, started := b.e.opts.OnOrder, s.bt.started
	if on == nil || started.IsZero() {
		return
	}
	commit := time.Since(started)
	for _, p := range s.pending {
		if !p.cmd.queued.IsZero() {
			on(OrderTimes{Book: s.handed.Sub(p.cmd.queued), Journal: started.Sub(s.handed), Commit: commit})
		}
	}
}

// reload replaces the working state with the committed one.
func (b *book) reload() error {
	ctx, cancel := context.WithTimeout(context.Background(), b.e.opts.DBTimeout)
	defer cancel()
	m, err := loadMarket(ctx, b.e.db, b.id)
	if err != nil {
		b.broken = true
		return err
	}
	if m.Epoch != b.epoch {
		b.fenced.Store(true)
		return errFenced
	}
	st, err := market.NewState(m.Liquidity, m.Q)
	if err != nil {
		b.broken = true
		return fmt.Errorf("market %d state: %w", b.id, err)
	}
	b.m, b.state, b.broken = m, st, false
	b.positions = map[int64][]levee.Micros{}
	b.held = map[int64]levee.Micros{}
	b.publishSnapshot()
	return nil
}

// publishSnapshot makes the committed state visible to readers.
func (b *book) publishSnapshot() { b.publishAt(b.m.Q, b.m.Seq, b.m.Volume) }

// publishAt publishes the market at a committed q, seq and volume: a
// batch's, while the book's own are ahead with the batches in flight.
func (b *book) publishAt(q microsArray, seq int64, volume levee.Micros) {
	m := b.m
	m.Q, m.Seq, m.Volume = append(microsArray(nil), q...), seq, volume
	st, _ := market.NewState(m.Liquidity, m.Q)
	b.snap.Store(&Snapshot{Market: m, Prices: st.PricesMicros(), state: st})
}

// publish tells subscribers about committed trades and the new quote; the
// snapshot is already published.
func (b *book) publish(ps []pending) {
	pub := b.e.opts.Publisher
	if pub == nil {
		return
	}
	committed := b.e.opts.Clock().UTC()
	evs := make([]Event, 0, len(ps)+1)
	for _, p := range ps {
		t := p.trade
		evs = append(evs, Event{Type: EventTrade, MarketID: b.id, Seq: t.Seq, Trade: &t, At: committed})
	}
	s := b.snap.Load()
	evs = append(evs, Event{Type: EventQuote, MarketID: b.id, Seq: s.Market.Seq, Prices: s.Prices, Shares: s.Market.Q, At: committed})
	if bp, ok := pub.(BatchPublisher); ok {
		bp.PublishBatch(evs)
		return
	}
	for _, ev := range evs {
		pub.Publish(ev)
	}
}

// releaseOnExit ends the book's lease when it stops (idle, settled, shut
// down, rebalanced), so that the next request places the market at once
// instead of waiting for the lease to expire. A lease already taken over
// is left alone (the epoch no longer matches).
func (b *book) releaseOnExit() {
	if b.e.opts.Node == "" || b.fenced.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.e.opts.DBTimeout)
	defer cancel()
	if err := releaseLease(ctx, b.e.db, b.id, b.e.opts.Node, b.epoch); err != nil {
		b.logger.Debug("releasing the lease of a stopped book", slog.Any("error", err))
	}
}

func replayKey(account int64, key string) string { return levee.FormatID(account) + "/" + key }
