package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/market"
	"levee/pgtx"
)

// Event types sent to subscribers.
const (
	EventTrade  = "trade"
	EventQuote  = "quote"
	EventStatus = "status"
)

// Event is something that happened to a market and is now durable. At is
// when it became durable (the commit), so subscribers can measure delay.
type Event struct {
	Type     string
	MarketID int64
	Seq      int64
	Trade    *market.Trade
	Prices   []levee.Micros
	Shares   []levee.Micros
	Status   string
	At       time.Time
}

// Publisher receives committed events. Publish must not block: the engine
// calls it from a market's goroutine.
type Publisher interface {
	Publish(Event)
}

// BatchPublisher is a Publisher that takes a commit's events of one market
// at once: its trades in seq order, then its quote. The websocket hub then
// writes them to each subscriber in one write (web/live). The engine uses
// it when its Publisher has it.
type BatchPublisher interface {
	Publisher
	PublishBatch([]Event)
}

// Options tune the engine.
type Options struct {
	MaxBatch  int           // most commands a market takes from its queue at once (default 512)
	MaxRows   int           // most trades in one journal transaction (default 4096)
	QueueLen  int           // per-market queue length (default 8192)
	DBTimeout time.Duration // bound on any one database call (default 5s)
	// IdleAfter is how long a market's book (its goroutine, queue and
	// position cache) lives without a command or a read before it stops; it
	// starts again on demand. Default 2 minutes; negative: never. A book also
	// stops as soon as its market is resolved or void.
	IdleAfter time.Duration
	Clock     func() time.Time
	Publisher Publisher
	Logger    *slog.Logger
	// OnCommit observes each journal commit (for metrics).
	OnCommit func(orders int, elapsed time.Duration, err error)
	// OnOrder observes where each committed order's time went inside the
	// engine (for metrics: what an order's latency is made of).
	OnOrder func(OrderTimes)
	// OnCommitPhases observes where each committed journal transaction's
	// time went, round trip by round trip (for metrics: CommitPhases); a
	// group committed as one statement (OneStatementFrom) has no phases.
	OnCommitPhases func(CommitPhases)

	// Node names this instance among several sharing the database
	// (docs/cluster.md): books then run only under a lease (lease.go).
	// Empty: one instance, no leases, exactly as before.
	Node string
	// LeaseTTL is how long a market's lease lasts unrenewed (default 2s).
	LeaseTTL time.Duration
	// Forwarder carries orders for markets other instances own to them.
	Forwarder Forwarder
	// CashMoved hears of accounts whose cash this instance moved, so that
	// other instances can drop their cached wallets.
	CashMoved func(accounts []int64)
	// PreviousJournal is the order path before issue 18, kept for the
	// benchmark's same-run comparison (LEVEE_JOURNAL=previous): the trades,
	// positions and market rows in a statement of their own before the
	// ledger's (five round trips per commit instead of four), and every
	// keyed order looked up in the database before it is priced (a round
	// trip per batch holding keys) instead of only when order_keys refuses
	// its key.
	PreviousJournal bool
	// FourTrips commits each group in four round trips (BEGIN, the rows
	// with the ledger's locks, the append, COMMIT: the journal of sessions
	// 7 to 9, LEVEE_JOURNAL=four-trips) instead of two, kept for the
	// benchmark's same-run comparison. By default the journal sends BEGIN
	// with the rows and the locks, and the append with COMMIT
	// (ledger.Session): under load each round trip
	// saved is a wait to be scheduled again saved, for the journal's
	// goroutine and for PostgreSQL's backend. With two transactions in
	// flight (InFlight) a commit takes the mutex that orders COMMITs and
	// the wallets' settling once it holds its locks, before the round trip
	// that carries its COMMIT (pipeline.go).
	FourTrips bool
	// TwoTrips keeps every commit at two round trips: the journal's Session
	// does not remember what its last commit left in the ledger (the
	// journal of sessions 10 to 12, LEVEE_JOURNAL=two-trips), for the
	// benchmark's same-run comparison. By default, with one transaction in
	// flight, a commit whose accounts the journal knows goes in one round
	// trip (ledger.Session.Remember).
	TwoTrips bool
	// OneStatementFrom, when above 0, is the number of orders from which
	// the journal commits a group in one statement in autocommit: the
	// journal's rows and the ledger's append (ledger_append, which chains
	// the hashes inside PostgreSQL), one round trip instead of four; 1 is
	// every group (LEVEE_JOURNAL=one-statement). 0 (the default): every
	// group in a transaction of two round trips (FourTrips: four), the
	// hash chain computed in Go. Measured in bench/RESULTS.md §12 over four rounds in
	// two runs: at 256 clients one statement committed 0.92-1.19x the
	// orders per second of four round trips (no gain beyond this machine's
	// noise), and for a group of one order it has the longer tail (p99 at
	// 300 orders/s 5.0-6.9 ms against 3.7-4.6 ms), so it is not the default.
	OneStatementFrom int
	// InFlight is how many journal transactions may be in flight at once:
	// 1 (the default) or 2 (LEVEE_JOURNAL=pipelined). With 2, a book hands
	// its next batch to the journal, priced on top of the one in flight,
	// without waiting for that one's commit, and the journal writes it on a
	// second connection while the first appends to the ledger and flushes
	// (pipeline.go). The previous journal and OneStatementFrom keep 1.
	InFlight int
	// OverlapFrom is, with two in flight, how many orders the batch in
	// flight must carry before the book hands the next one over beside it
	// (LEVEE_JOURNAL_OVERLAP_FROM); a smaller one is waited for, as with
	// one in flight. A commit of a few orders is mostly round trips and the
	// flush, which a second transaction does not shorten: overlapped, the
	// two only add commits and contend for the same cores (bench/RESULTS.md
	// §12: the tail at 1,000 orders/s got longer). 0 means
	// defaultOverlapFrom; 1 overlaps every batch.
	OverlapFrom int
	// SlowCommit is the journal transaction time past which the commit is
	// logged at warn with its phases and start (LEVEE_SLOW_COMMIT; 0 means
	// defaultSlowCommit). The benchmark lowers it to find which of an
	// order's stalls were the database's.
	SlowCommit time.Duration
}

// defaultSlowCommit is Options.SlowCommit's default: far above a healthy
// commit (tens of milliseconds at the most), so that the log speaks only
// when something stalls, and then says where.
const defaultSlowCommit = 500 * time.Millisecond

// defaultOverlapFrom is Options.OverlapFrom's default.
const defaultOverlapFrom = 16

// Engine runs the markets of one Levee instance. It holds no global state:
// several engines (one per instance) can later share a database, each
// owning a disjoint set of markets.
type Engine struct {
	db      *sqlx.DB
	opts    Options
	wallets *wallets
	bars    bars
	leaving leaving // accounts whose owners are leaving the city
	journal *journal
	jdone   chan struct{}
	// pquit stops the pruning of expired idempotency keys; pdone is closed
	// when it has stopped.
	pquit, pdone chan struct{}
	logger       *slog.Logger

	mu     sync.Mutex
	books  map[int64]*book
	closed bool
	// stops counts books that stopped (under mu). A book is built from a
	// market row read outside mu; if any book stopped meanwhile, the row may
	// predate that book's commits or settlement, and is read again.
	stops     uint64
	afterLoad func(marketID int64) // tests: runs after a book's row is read
	running   sync.WaitGroup       // book goroutines, including those that stopped themselves

	keyed keyedOrders // keyed orders in flight and the last ones done (keys.go)

	// Cluster mode (lease.go).
	started   time.Time
	loading   map[int64]chan struct{} // markets whose lease is being taken (under mu)
	owners    sync.Map                // market id -> cachedOwner
	cluster   clusterCounters
	renewQuit chan struct{}
	renewDone chan struct{}
}

// New starts an engine on db.
func New(db *sqlx.DB, opts Options) *Engine {
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 512
	}
	if opts.MaxRows == 0 {
		opts.MaxRows = 4096
	}
	if opts.QueueLen == 0 {
		opts.QueueLen = 8192
	}
	if opts.DBTimeout == 0 {
		opts.DBTimeout = 5 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.IdleAfter == 0 {
		opts.IdleAfter = defaultIdleAfter
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = defaultLeaseTTL
	}
	e := &Engine{db: db, opts: opts, wallets: newWallets(db), books: map[int64]*book{}, logger: opts.Logger, jdone: make(chan struct{}),
		started: time.Now(), loading: map[int64]chan struct{}{}, renewQuit: make(chan struct{}), renewDone: make(chan struct{})}
	if opts.InFlight != 2 || opts.PreviousJournal || opts.OneStatementFrom > 0 {
		opts.InFlight = 1
	}
	e.opts.InFlight = opts.InFlight
	if opts.OverlapFrom <= 0 {
		e.opts.OverlapFrom = defaultOverlapFrom
	}
	if opts.SlowCommit <= 0 {
		e.opts.SlowCommit = defaultSlowCommit
	}
	e.journal = &journal{db: db, ledger: ledger.NewPrepared(db), wallets: e.wallets, in: make(chan *batch, 1024), maxRows: opts.MaxRows,
		conns: make([]*sqlx.Conn, opts.InFlight), pipe: newPipeline(opts.InFlight),
		timeout: opts.DBTimeout, logger: opts.Logger, observer: opts.OnCommit, phases: opts.OnCommitPhases, previous: opts.PreviousJournal,
		oneStatementFrom: opts.OneStatementFrom, twoTrips: !opts.PreviousJournal && !opts.FourTrips, remember: !opts.TwoTrips,
		sessions:  make([]*ledger.Session, opts.InFlight),
		cashMoved: e.cashMoved, slow: e.opts.SlowCommit}
	go func() {
		defer close(e.jdone)
		e.journal.run()
	}()
	if opts.Node != "" {
		go e.renewLoop()
	} else {
		close(e.renewDone)
	}
	e.pquit, e.pdone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(e.pdone)
		e.pruneKeys(e.pquit)
	}()
	return e
}

// Close stops taking commands, lets every market finish what it accepted,
// flushes the journal and waits for all of it.
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	books := e.books
	e.mu.Unlock()
	for _, b := range books {
		b.stop()
	}
	for _, b := range books {
		<-b.done
	}
	e.running.Wait()
	close(e.renewQuit)
	<-e.renewDone
	close(e.journal.in)
	<-e.jdone
	close(e.pquit)
	<-e.pdone
}

// InvalidateCash tells the engine that an account's cash moved outside it.
// With several instances the others hear of it too (Options.CashMoved).
func (e *Engine) InvalidateCash(account int64) {
	e.wallets.Invalidate(account)
	e.cashMoved(account)
}

// book returns the running owner of a market, loading it on first use (or
// again, after it stopped for being idle or settled). The caller holds the
// book until it calls b.release, which it must do once its command is in
// the book's queue, or at once if it only reads the snapshot: a held book
// does not stop (idle.go).
func (e *Engine) book(ctx context.Context, id int64) (*book, error) {
	for {
		b, err := e.loadBook(ctx, id)
		if b != nil || err != nil {
			return b, err
		}
		// A book stopped while the row was read: read it again.
	}
}

// loadBook is one attempt of book: nil and no error when the market's row
// may be stale because a book stopped while it was read.
func (e *Engine) loadBook(ctx context.Context, id int64) (*book, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, levee.Errorf(levee.EUNAVAILABLE, "the server is shutting down")
	}
	if b, ok := e.books[id]; ok {
		if b.leaseValid() {
			b.hold()
			e.mu.Unlock()
			return b, nil
		}
		// Its lease may have expired (a renewal failed, or this process
		// was paused): take it again, or find the new owner.
		e.mu.Unlock()
		e.dropBook(b)
		return nil, nil
	}
	if wait, ok := e.loading[id]; ok {
		// Another caller is taking this market's lease: taking it twice
		// would fence the first book at once.
		e.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, levee.Errorf(levee.EUNAVAILABLE, "the market is starting; try again")
		}
		return nil, nil
	}
	var epoch, leaseUntil int64
	if e.opts.Node != "" {
		done := make(chan struct{})
		e.loading[id] = done
		defer func() {
			e.mu.Lock()
			delete(e.loading, id)
			e.mu.Unlock()
			close(done)
		}()
	}
	stops := e.stops
	e.mu.Unlock()
	if e.opts.Node != "" {
		var err error
		if epoch, leaseUntil, err = e.acquire(ctx, id); err != nil {
			return nil, err
		}
	}
	m, err := loadMarket(ctx, e.db, id)
	if err != nil {
		return nil, err
	}
	if e.opts.Node == "" {
		epoch = m.Epoch
	} else if m.Epoch != epoch {
		return nil, errMoved // taken over again between our lease and our read
	}
	if e.afterLoad != nil {
		e.afterLoad(id)
	}
	if err := e.bars.load(ctx, id, true); err != nil {
		return nil, pgtx.Unavailable(err)
	}
	st, err := market.NewState(m.Liquidity, m.Q)
	if err != nil {
		return nil, fmt.Errorf("market %d state: %w", id, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if b, ok := e.books[id]; ok { // loaded meanwhile
		b.hold()
		return b, nil
	}
	if e.closed {
		return nil, levee.Errorf(levee.EUNAVAILABLE, "the server is shutting down")
	}
	if e.opts.Node == "" && e.stops != stops {
		// Another book of this market may have started, committed or
		// settled it, and stopped, after the row was read. (Not with
		// leases: the row was read after this lease's epoch was written,
		// and no earlier book can commit past it.)
		return nil, nil
	}
	b := &book{e: e, id: id, epoch: epoch, in: make(chan *command, e.opts.QueueLen), quit: make(chan struct{}), done: make(chan struct{}),
		logger: e.logger.With(slog.Int64("market_id", id)), m: m, state: st, positions: map[int64][]levee.Micros{}, held: map[int64]levee.Micros{}}
	b.idle.wake = make(chan struct{}, 1)
	b.leaseUntil.Store(leaseUntil)
	b.publishSnapshot()
	b.hold()
	e.books[id] = b
	e.running.Add(1)
	go b.run()
	return b, nil
}

// send hands a command to a market's goroutine and waits for its answer.
// A market another instance owns gets the order forwarded there, or, for a
// lifecycle command, is claimed from it first (lease.go).
func (e *Engine) send(ctx context.Context, marketID int64, c *command) (Result, error) {
	b, err := e.book(ctx, marketID)
	if err != nil {
		// Declared here: errors.As's target escapes, so it would be an
		// allocation for every order.
		var no *NotOwnerError
		if errors.As(err, &no) {
			if c.kind == cmdOrder {
				return e.forward(ctx, no, c)
			}
			b, err = e.claim(ctx, marketID, no)
		}
	}
	if err != nil {
		return Result{}, err
	}
	c.done = make(chan struct{}, 1)
	c.at = e.opts.Clock().UTC().Truncate(time.Microsecond)
	if e.opts.OnOrder != nil {
		c.queued = time.Now()
	}
	// A book with room takes the command at once, without ctx.Done: the
	// request's deadline makes its timer only when something waits on it
	// (web.requestDeadline), and an order waits here only when its book is
	// behind.
	select {
	case b.in <- c:
		b.release()
		return e.await(b, c)
	default:
	}
	select {
	case b.in <- c:
		b.release()
	case <-b.quit:
		b.release()
		return Result{}, e.stoppedErr()
	case <-ctx.Done():
		b.release()
		return Result{}, levee.Errorf(levee.EUNAVAILABLE, "the market is too busy; try again")
	}
	return e.await(b, c)
}

// await waits for the result of c, which b accepted. Once accepted, the
// command runs to completion; waiting for it is bounded by the journal's
// own timeout, so we do not abandon a result. A book dropped for a lost
// lease may have returned before it saw the command: then it never ran.
func (e *Engine) await(b *book, c *command) (Result, error) {
	select {
	case <-c.done:
		return c.result.res, c.result.err
	case <-b.done:
		select {
		case <-c.done:
			return c.result.res, c.result.err
		default:
			return Result{}, e.stoppedErr()
		}
	}
}

// stoppedErr is the answer to a command whose book stopped before it ran.
func (e *Engine) stoppedErr() error {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return levee.Errorf(levee.EUNAVAILABLE, "the server is shutting down")
	}
	return errMoved
}

// Submit executes an order for account and returns it once it is durable.
// A non-empty key makes retries safe for KeyRetention: an order with the
// same key returns the original result instead of trading again. Concurrent
// retries wait here for the first, recent ones are answered from memory, and
// older ones are found when order_keys refuses the key at commit (keys.go).
// Errors: EINVALID (a field), ENOTFOUND, ECONFLICT (closed market,
// insufficient cash or shares, guard or key reused), EUNAVAILABLE.
func (e *Engine) Submit(ctx context.Context, account, marketID int64, o market.Order, key string) (Result, error) {
	return e.submit(ctx, account, marketID, o, key, false)
}

func (e *Engine) submit(ctx context.Context, account, marketID int64, o market.Order, key string, exit bool) (Result, error) {
	if !exit {
		defer e.leaving.begin(account).Add(-1)
	}
	if key == "" {
		return e.send(ctx, marketID, &command{kind: cmdOrder, account: account, order: o, exit: exit})
	}
	if len(key) > 200 {
		return Result{}, levee.Invalid("Idempotency-Key", "the idempotency key must be at most 200 characters")
	}
	fk := replayKey(account, key)
	for {
		f, own := e.keyed.claim(fk, e.opts.Clock())
		if !own {
			select {
			case <-f.done:
			case <-ctx.Done():
				return Result{}, levee.Errorf(levee.EUNAVAILABLE, "the first attempt of this order is still running; try again")
			}
			if f.err != nil && levee.ErrorCode(f.err) == levee.EUNAVAILABLE {
				continue // that attempt did not decide: this one tries
			}
			return sameOrder(f.res, f.err, marketID, o)
		}
		return e.sendKeyed(ctx, f, marketID, &command{kind: cmdOrder, account: account, order: o, key: key, exit: exit})
	}
}

// sendKeyed sends c, the order of the keyed attempt f, and settles f however
// send ends: a panic (which the server's recovery survives) settles it as
// undecided, so that the key's next retry tries again instead of waiting
// for an attempt that will never end.
func (e *Engine) sendKeyed(ctx context.Context, f *flight, marketID int64, c *command) (res Result, err error) {
	err = levee.Errorf(levee.EUNAVAILABLE, "the order's attempt failed; try again")
	defer func() { e.keyed.settle(f, res, err) }()
	return e.send(ctx, marketID, c)
}

// sameOrder returns an earlier result for a retried key, refusing a key
// reused for a different order.
func sameOrder(r Result, err error, marketID int64, o market.Order) (Result, error) {
	if err != nil {
		return r, err
	}
	if r.MarketID != marketID || r.Outcome != o.Outcome || r.Side != o.Side {
		return Result{}, levee.Errorf(levee.ECONFLICT, "this idempotency key was already used for a different order")
	}
	return r, nil
}

func resultOf(t *market.Trade) Result {
	r := Result{MarketID: t.MarketID, Seq: t.Seq, Outcome: t.Outcome, Side: t.Side, Shares: t.Shares, Prices: t.Prices, At: t.At}
	if t.Side == market.Buy {
		r.Cost = t.Amount
	} else {
		r.Proceeds = t.Amount
	}
	return r
}

// Snapshot returns a market's committed state.
// A market another instance owns is read from its committed row. With
// several instances a read never starts a book (nor takes a lease): a
// market whose book does not run here is read from its row, which is the
// committed state the book's snapshot would show.
func (e *Engine) Snapshot(ctx context.Context, marketID int64) (*Snapshot, error) {
	if e.opts.Node != "" {
		e.mu.Lock()
		b := e.books[marketID]
		running := b != nil && b.leaseValid()
		if running {
			b.idle.touches.Add(1) // a read keeps the book running, as below
		}
		e.mu.Unlock()
		if running {
			return b.snap.Load(), nil
		}
		return e.rowSnapshot(ctx, marketID)
	}
	b, err := e.book(ctx, marketID)
	if no := (*NotOwnerError)(nil); errors.As(err, &no) {
		return e.rowSnapshot(ctx, marketID)
	}
	if err != nil {
		return nil, err
	}
	b.release()
	return b.snap.Load(), nil
}

// Quote says exactly what the order would do on the committed state now,
// for this account's committed position and cash, without side effects.
// With several instances a quote for a market another instance runs is
// forwarded to it (forwardQuote).
func (e *Engine) Quote(ctx context.Context, account, marketID int64, o market.Order) (market.Fill, *Snapshot, error) {
	if f, s, err, ok := e.forwardQuote(ctx, account, marketID, o); ok {
		return f, s, err
	}
	s, err := e.Snapshot(ctx, marketID)
	if err != nil {
		return market.Fill{}, nil, err
	}
	if st := s.Market.EffectiveStatus(e.opts.Clock()); st != market.StatusOpen {
		return market.Fill{}, s, levee.Errorf(levee.ECONFLICT, "the market is %s and takes no orders", st)
	}
	if o.Outcome < 0 || o.Outcome >= len(s.Market.Outcomes) {
		return market.Fill{}, s, levee.Invalid("outcome", "outcome must be from 0 to %d", len(s.Market.Outcomes)-1)
	}
	position, cash := levee.Micros(0), levee.Micros(0)
	if account != 0 {
		ps, err := loadPositions(ctx, e.db, marketID, []int64{account}, len(s.Market.Outcomes))
		if err != nil {
			return market.Fill{}, s, err
		}
		position = ps[account][o.Outcome]
		if err := e.wallets.ensure(ctx, []int64{account}); err != nil {
			return market.Fill{}, s, pgtx.Unavailable(err)
		}
		cash = e.wallets.available(account)
		if s.Market.Conditional { // a decision market's own balance is spent first
			stakes, err := loadStakes(ctx, e.db, marketID, []int64{account})
			if err != nil {
				return market.Fill{}, s, err
			}
			cash += stakes[account].Held
		}
	} else {
		cash = levee.MaxMoney // anonymous quotes ignore cash
	}
	f, err := s.state.Quote(o, position, cash)
	return f, s, err
}

// CreateMarket opens a market: its row, its collateral account, and the
// subsidy moved from the funding account (n.FundedBy, the treasury by
// default) into the collateral, in one transaction.
// Errors: EINVALID (a field), ECONFLICT (the funder cannot cover the subsidy).
func (e *Engine) CreateMarket(ctx context.Context, n NewMarket) (Market, error) {
	if err := n.Validate(e.opts.Clock()); err != nil {
		return Market{}, err
	}
	st, subsidy, err := market.NewMarket(n.Liquidity, len(n.Outcomes), n.InitialProbabilities)
	if err != nil {
		return Market{}, err
	}
	var id int64
	err = pgtx.Run(ctx, e.db, func(tx *sqlx.Tx) error {
		var districtID *int64
		if n.District != "" {
			d, ok, err := accounts.DistrictNamed(ctx, tx, n.District)
			if err != nil || !ok {
				return levee.Invalid("district", "unknown district %q", n.District)
			}
			districtID = &d
		}
		var createdBy *int64
		if n.CreatedBy != 0 {
			createdBy = &n.CreatedBy
		}
		var err error
		// The engine's clock stamps the row, like its trades' times.
		if id, err = insertMarket(ctx, tx, n, subsidy, st.Q(), districtID, createdBy, e.opts.Clock().UTC().Truncate(time.Microsecond)); err != nil {
			return err
		}
		if err := ledger.OpenAccount(ctx, tx, ledger.Collateral(id), "market_collateral", false); err != nil {
			return err
		}
		if n.Conditional {
			if err := ledger.OpenAccount(ctx, tx, ledger.Held(id), "market_held", false); err != nil {
				return err
			}
		}
		_, err = ledger.Post(ctx, tx, ledger.Transfer{
			Kind: "market_subsidy", Ref: "market:" + levee.FormatID(id),
			Postings: []ledger.Posting{{Account: n.FundedBy, Amount: -subsidy}, {Account: ledger.Collateral(id), Amount: subsidy}},
		})
		if levee.ErrorCode(err) == levee.ECONFLICT {
			if n.FundedBy == ledger.Treasury {
				return levee.Errorf(levee.ECONFLICT, "the treasury cannot cover the market's subsidy of %s", subsidy)
			}
			return levee.Errorf(levee.ECONFLICT, "%s cannot cover the market's subsidy of %s", n.FundedBy, subsidy)
		}
		return err
	})
	if err != nil {
		return Market{}, err
	}
	return loadMarket(ctx, e.db, id)
}

// List lists markets; their prices are computed from the committed state.
func (e *Engine) List(ctx context.Context, f Filter) ([]Market, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	return listMarkets(ctx, e.db, f)
}

// Prices returns a market's rounded prices for a stored state.
func Prices(m *Market) []levee.Micros {
	st, err := market.NewState(m.Liquidity, m.Q)
	if err != nil {
		return nil
	}
	return st.PricesMicros()
}

// Positions lists an account's positions, marked to market.
func (e *Engine) Positions(ctx context.Context, account int64) ([]Position, error) {
	ps, err := positionsOf(ctx, e.db, account)
	if err != nil {
		return nil, err
	}
	prices := map[int64][]levee.Micros{}
	for i := range ps {
		p := &ps[i]
		p.CostBasis = p.Paid - p.Received
		if _, ok := prices[p.MarketID]; !ok {
			s, err := e.Snapshot(ctx, p.MarketID)
			if err != nil {
				return nil, err
			}
			prices[p.MarketID] = s.Prices
			if s.Market.Status == market.StatusResolved {
				won := make([]levee.Micros, len(s.Prices))
				won[*s.Market.ResolvedOutcome] = levee.Scale
				prices[p.MarketID] = won
			}
		}
		switch p.Status {
		case market.StatusVoid:
			p.Value = 0 // refunded: the cost basis came back as cash
			p.PnL = 0
			continue
		}
		p.Value = mulPrice(p.Shares, prices[p.MarketID][p.Outcome])
		p.PnL = p.Value - p.CostBasis
	}
	return ps, nil
}

// mulPrice values shares at a price, rounding down.
func mulPrice(shares, price levee.Micros) levee.Micros {
	hi := int64(shares) / levee.Scale
	lo := int64(shares) % levee.Scale
	return levee.Micros(hi*int64(price) + lo*int64(price)/levee.Scale)
}

// CommitPhases is where one committed journal transaction's time went,
// from BEGIN to the end of COMMIT: each is a round trip to PostgreSQL with
// the Go work before it, and the wait, once PostgreSQL has answered, until
// the journal's goroutine runs again. Under load that wait is most of a
// round trip: at 256 clients BEGIN, which PostgreSQL executes in
// microseconds, took 1.2-1.8 ms while Go's run queues held the HTTP
// handlers (levee_go_sched_wait_seconds p90 ≤ 2 ms; bench/RESULTS.md §12),
// against 0.05-0.08 ms for a lone client.
type CommitPhases struct {
	Orders int
	Begin  time.Duration // BEGIN
	// Rows is the statement that writes the trades, positions and market
	// rows and takes the ledger's locks (reading the balances); Ledger the
	// ledger's append (its entries, postings, balances and head). The
	// previous journal (Options.PreviousJournal) takes the ledger's locks
	// in Ledger, in a round trip of its own.
	Rows, Ledger time.Duration
	Commit       time.Duration // COMMIT: the WAL flush
	// In a transaction of two round trips (the default: Options.FourTrips)
	// Begin and Ledger are zero: BEGIN goes with the rows, in Rows, and the
	// append (with the hash chain computed before it) with COMMIT, in
	// Commit.
	//
	// OneTrip: the whole transaction went in one round trip, computed from
	// what the journal's last commit left in the ledger (with one
	// transaction in flight, ledger.Session.Remember); all of it is in Rows.
	OneTrip bool
}

// OrderTimes is where one committed order's time went inside the engine,
// from Submit to its answer. Together with the HTTP round trip they are an
// order's latency, so their histograms (levee_order_engine_seconds) say
// where a tail comes from.
type OrderTimes struct {
	// Book is from Submit until the order's batch goes to the journal: the
	// wait in the market's queue while the book waits for its previous
	// commit, and the pricing of the batch.
	Book time.Duration
	// Journal is from then until the journal starts the transaction that
	// carries it: the wait for the journal's previous commit.
	Journal time.Duration
	// Commit is that transaction, until the book hears it is durable.
	Commit time.Duration
}
