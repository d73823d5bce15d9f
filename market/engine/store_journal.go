package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/ledger"
	"levee/market"
	"levee/pgtx"
)

// batch is one market's priced orders, waiting to become durable.
type batch struct {
	marketID    int64
	epoch       int64 // the book's lease epoch: the market row is written only at it
	conditional bool  // the market keeps traders' money bound to it (Market.Conditional)
	q           microsArray
	seq         int64 // the market's seq after the batch
	after       int64 // the seq the batch was priced after: the market row must be at it
	volume      levee.Micros
	trades      []market.Trade
	// reserved is the cash each buyer had reserved for these trades.
	reserved map[int64]levee.Micros
	done     chan error
	// locked is closed once the transaction that carries the batch holds
	// its locks, or has ended (pipeline.go).
	locked chan struct{}
	// started is when the journal began the transaction that carries the
	// batch (Options.OnOrder); set before done is answered.
	started time.Time
}

// journal is the single writer that makes batches durable. It takes every
// batch waiting when it starts a transaction, so under load many markets'
// orders share one commit (group commit), and the commit rate, not the order
// rate, is what PostgreSQL has to sustain.
type journal struct {
	db *sqlx.DB
	// rowsStmt (JournalSQL) and ledger are prepared once per connection:
	// with lib/pq a statement with parameters that is not prepared costs two
	// round trips (Parse/Describe, then Bind/Execute) and a planning, a
	// prepared one a single round trip. rowsMu guards rowsStmt: with two
	// transactions in flight two jobs may prepare it at once.
	rowsMu           sync.Mutex
	rowsStmt         *sqlx.Stmt
	ledger           *ledger.Prepared
	wallets          *wallets
	in               chan *batch
	maxRows          int
	timeout          time.Duration
	previous         bool              // Options.PreviousJournal
	oneStatementFrom int               // commit groups of this many orders or more in one statement; 0: never (Options.OneStatementFrom)
	twoTrips         bool              // commit in two round trips (ledger.Session) rather than four (Options.FourTrips)
	remember         bool              // and in one when its Session remembers the ledger (Options.TwoTrips)
	conns            []*sqlx.Conn      // the journal's own connections, one per lane (journal_conn.go); only the lane's job touches it
	sessions         []*ledger.Session // on conns, for two round trips
	pipe             *pipeline         // the jobs in flight (pipeline.go)
	logger           *slog.Logger
	observer         func(orders int, elapsed time.Duration, err error)
	phases           func(CommitPhases) // Options.OnCommitPhases
	// cashMoved hears of the traders whose cash a commit moved (other
	// instances drop their wallets: Options.CashMoved).
	cashMoved func(accounts ...int64)
	// afterLocked, for tests, runs once a transaction holds its locks.
	afterLocked func()
	slow        time.Duration // a commit this long is logged (Options.SlowCommit)
}

func (j *journal) run() {
	defer j.closeStatements()
	var jobs sync.WaitGroup
	defer jobs.Wait() // before the statements close
	// carry is a batch taken for the next group: a group holds at most one
	// batch per market, since a market's next batch is written at the seq
	// its previous one leaves (pipeline.go).
	var carry *batch
	for {
		b := carry
		if carry = nil; b == nil {
			var ok bool
			if b, ok = <-j.in; !ok {
				return
			}
		}
		// The lane is taken once there is a batch: an idle journal keeps
		// committing on the same connection (whose backend's caches are
		// warm) rather than alternating between two.
		lane := j.pipe.slot()
		pending := make([]*batch, 1, 64)
		pending[0] = b
		rows := len(b.trades)
	drain:
		for rows < j.maxRows {
			select {
			case b, ok := <-j.in:
				if !ok {
					break drain
				}
				if holdsMarket(pending, b.marketID) {
					carry = b
					break drain
				}
				pending = append(pending, b)
				rows += len(b.trades)
			default:
				break drain
			}
		}
		jb := j.pipe.add(pending, lane)
		if len(j.conns) == 1 {
			j.runJob(jb)
		} else {
			jobs.Go(func() { j.runJob(jb) })
		}
	}
}

// maxAttempts bounds a job's attempts after its market rows were found
// behind (commit): each such retry follows an older transaction's retry.
const maxAttempts = 8

// holdsMarket reports whether bs holds a batch of market id.
func holdsMarket(bs []*batch, id int64) bool {
	for _, b := range bs {
		if b.marketID == id {
			return true
		}
	}
	return false
}

// runJob commits one group of batches (retrying without those a refusal
// drops) and answers them.
func (j *journal) runJob(jb *job) {
	start := time.Now()
	for _, b := range jb.bs {
		b.started = start
	}
	committed, err := j.commit(jb)
	j.pipe.end(jb)
	if j.observer != nil {
		j.observer(committed, time.Since(start), err)
	}
}

// closeStatements releases the prepared statements once the journal stops.
func (j *journal) closeStatements() {
	for lane := range j.conns {
		j.dropConn(lane)
	}
	if j.rowsStmt != nil {
		if err := j.rowsStmt.Close(); err != nil {
			j.logger.Warn("journal close prepared statement", slog.Any("error", err))
		}
	}
	if err := j.ledger.Close(); err != nil {
		j.logger.Warn("journal close prepared statements", slog.Any("error", err))
	}
}

// statement returns JournalSQL prepared, preparing it on first use (not at
// start, which may be while the database is down).
func (j *journal) statement(ctx context.Context) (*sqlx.Stmt, error) {
	j.rowsMu.Lock()
	defer j.rowsMu.Unlock()
	if j.rowsStmt == nil {
		st, err := j.db.PreparexContext(ctx, JournalSQL)
		if err != nil {
			return nil, pgtx.Unavailable(fmt.Errorf("journal prepare: %w", err))
		}
		j.rowsStmt = st
	}
	return j.rowsStmt, nil
}

// commit writes the batches in one transaction, settles the wallets with
// the balances it read back once that is durable, and answers every batch.
//
// Cash spent outside the engine (a QF contribution, a jury bond) while a buy
// was priced against the cached wallet makes the ledger refuse that buyer's
// transfer, and with it the whole transaction. Rather than fail every order
// of every market in it, the batches holding a buy by that trader are
// dropped, answered with an *overdraft (their books re-price the rest on the
// committed state), and the others are written again at once. Each retry
// drops at least one batch, so this ends; it returns the orders of the
// attempt that ended it and its error, nil if it committed.
func (j *journal) commit(jb *job) (int, error) {
	bs := jb.bs
	for {
		err := j.commitOnce(jb, bs)
		if err != nil {
			// Batches of markets another instance took over are refused
			// (fencing, lease.go), and batches whose market row is not at
			// the seq they were priced after (the batch before, in the
			// older transaction, did not commit: pipeline.go) are answered
			// errBehind; the others are written again. Which is which is
			// known once the older transaction has ended.
			j.pipe.waitOlder(jb)
			if kept, fenced, behind := j.fence(bs); len(fenced)+len(behind) > 0 {
				j.release(fenced)
				j.release(behind)
				for _, b := range fenced {
					b.done <- errFenced
				}
				for _, b := range behind {
					b.done <- errBehind
				}
				if len(kept) == 0 {
					return 0, nil
				}
				bs = kept
				continue
			}
			// A market row was not at its batch's seq when the statement
			// read it, and is now: the older transaction, which had let
			// go of it to retry, has since committed the batch before.
			// Nothing of this attempt committed; write it again.
			if errors.Is(err, errFenced) && len(j.conns) > 1 && jb.attempts < maxAttempts {
				continue
			}
		}
		keep, dropped, why := j.split(err, bs)
		if len(dropped) == 0 {
			if err != nil {
				j.release(bs)
				for _, b := range bs {
					for _, t := range b.trades {
						j.wallets.Invalidate(t.AccountID)
					}
				}
				j.logger.Error("journal commit failed; affected markets reload", slog.Int("batches", len(bs)), slog.Int("orders", orders(bs)), slog.Any("error", err))
				err = levee.Errorf(levee.EUNAVAILABLE, "the order was not executed because the database did not commit it; it is safe to retry")
			}
			for _, b := range bs {
				b.done <- err
			}
			return orders(bs), err
		}
		// Released before the books hear of it, so that their re-pricing
		// finds the cash free. The kept batches' reservations stay held
		// for the retry.
		j.release(dropped)
		var od *overdraft
		if errors.As(why, &od) {
			// Only the overdrawn trader's wallet was stale.
			j.wallets.Invalidate(od.account)
			j.logger.Warn("journal dropped the batches of an overdrawn trader and commits the rest",
				slog.Int64("account_id", od.account), slog.Int("dropped", len(dropped)), slog.Int("batches", len(keep)), slog.Int("orders", orders(keep)))
		} else {
			j.logger.Info("journal dropped the batches of retried keyed orders already stored and commits the rest",
				slog.Int("dropped", len(dropped)), slog.Int("batches", len(keep)), slog.Int("orders", orders(keep)))
		}
		for _, b := range dropped {
			b.done <- why
		}
		if len(keep) == 0 {
			return 0, nil
		}
		bs = keep
	}
}

// split sorts the batches of a failed commit into those to write again and
// those to drop, with what to answer the dropped: the batches holding a buy
// by a trader the ledger found overdrawn (*overdraft), or those holding an
// order whose idempotency key order_keys already has, a retry of an order
// committed before this process knew of it (*keyTaken). Nothing is dropped
// for any other error.
func (j *journal) split(err error, bs []*batch) (keep, dropped []*batch, why error) {
	var match func(b *batch) bool
	if account, ok := overdrawnTrader(err); ok {
		why, match = &overdraft{account: account}, func(b *batch) bool { return b.buys(account) }
	} else if pgtx.IsUniqueViolation(err, "order_keys_pkey") {
		ctx, cancel := context.WithTimeout(context.Background(), j.timeout)
		taken, terr := takenKeys(ctx, j.db, bs)
		cancel()
		if terr != nil || len(taken) == 0 {
			return bs, nil, nil
		}
		why, match = &keyTaken{keys: taken}, func(b *batch) bool { return b.holdsKey(taken) }
	} else {
		return bs, nil, nil
	}
	for _, b := range bs {
		if match(b) {
			dropped = append(dropped, b)
		} else {
			keep = append(keep, b)
		}
	}
	return keep, dropped, why
}

func orders(bs []*batch) (n int) {
	for _, b := range bs {
		n += len(b.trades)
	}
	return n
}

// commitOnce writes the batches in one transaction and, once it is durable,
// settles the wallets. On error it leaves the reservations held.
func (j *journal) commitOnce(jb *job, bs []*batch) error {
	j.pipe.beginAttempt(jb)
	defer j.pipe.endAttempt(jb)
	ctx, cancel := context.WithTimeout(context.Background(), j.timeout)
	defer cancel()
	w, err := j.write(ctx, jb, bs)
	if err != nil {
		j.failed(err, jb.lane)
		return err
	}
	consumed := map[int64]levee.Micros{}
	for _, b := range bs {
		for a, amt := range b.reserved {
			consumed[a] += amt
		}
	}
	// COMMIT and settling in commit order (pipeline.go).
	if !w.holding {
		j.pipe.commit.Lock()
	}
	defer j.pipe.commit.Unlock()
	if err := w.commit(); err != nil {
		j.failed(err, jb.lane)
		return err
	}
	moved := make([]int64, 0, len(w.balances))
	for a, bal := range w.balances {
		if w.ordered || len(j.conns) == 1 {
			j.wallets.settle(a, consumed[a], bal)
		} else {
			// Read without the head lock, with another transaction in
			// flight: it may have committed a move of this cash since.
			// Read again when needed.
			j.wallets.release(a, consumed[a])
			j.wallets.Invalidate(a)
		}
		moved = append(moved, a)
	}
	if j.cashMoved != nil {
		j.cashMoved(moved...)
	}
	return nil
}

// written is a journal transaction whose writes are done: commit makes it
// durable (a no-op when it was one statement in autocommit). balances are
// the cash balances of the traders of its batches, read inside it; ordered
// says they were read under the ledger's head lock (some trade moved money),
// so no other commit can come between them and this one's.
type written struct {
	commit   func() error
	balances map[int64]levee.Micros
	ordered  bool
	holding  bool // the journal's pipe.commit is held already (write)
}

// release gives back the reservations of batches that were not committed.
func (j *journal) release(bs []*batch) {
	for _, b := range bs {
		for a, amt := range b.reserved {
			j.wallets.release(a, amt)
		}
	}
}

// fence splits the batches of a failed commit into those whose market is
// still at their book's epoch and not behind the seq they were priced after
// (kept), those another instance took over (fenced), and those whose
// previous batch did not commit (behind: pipeline.go). A failure to read the markets
// splits nothing.
func (j *journal) fence(bs []*batch) (kept, fenced, behind []*batch) {
	ids := make([]int64, len(bs))
	for i, b := range bs {
		ids[i] = b.marketID
	}
	ctx, cancel := context.WithTimeout(context.Background(), j.timeout)
	defer cancel()
	rows, err := marketRows(ctx, j.db, ids)
	if err != nil {
		return bs, nil, nil
	}
	for _, b := range bs {
		switch r, ok := rows[b.marketID]; {
		case ok && r.epoch != b.epoch:
			fenced = append(fenced, b)
		case ok && r.seq < b.after:
			// (Past it, the batch itself committed: a COMMIT whose answer
			// was lost. Its book finds that out when it reloads.)
			behind = append(behind, b)
		default:
			kept = append(kept, b)
		}
	}
	if len(fenced) > 0 {
		j.logger.Warn("journal refused the batches of markets taken over by another instance", slog.Int("fenced", len(fenced)), slog.Int("orders", orders(fenced)))
	}
	return kept, fenced, behind
}

// fencedError names the error journalFenced raises (a market row at another
// epoch than its book's) as errFenced.
func fencedError(err error) error {
	if pe := (*pq.Error)(nil); errors.As(err, &pe) && pe.Code == "22012" {
		return fmt.Errorf("%w: a market row is at another epoch than its book's, or at another seq than its batch was priced after", errFenced)
	}
	return err
}

// buys reports whether the batch holds a buy by account.
func (b *batch) buys(account int64) bool {
	for i := range b.trades {
		if b.trades[i].AccountID == account && b.trades[i].Side == market.Buy {
			return true
		}
	}
	return false
}

// overdrawnTrader returns the trader whose cash the ledger refused in err.
func overdrawnTrader(err error) (int64, bool) {
	var fe *ledger.FundsError
	if !errors.As(err, &fe) {
		return 0, false
	}
	id, ok := strings.CutPrefix(fe.Account, "cash:")
	if !ok {
		return 0, false
	}
	n, perr := strconv.ParseInt(id, 10, 64)
	return n, perr == nil
}

// overdraft answers a batch dropped from a commit because account's cash,
// spent outside the engine, no longer covers its buys. The book refuses that
// trader's buys in the batch and re-prices its other orders (see
// book.repriceWithout).
type overdraft struct{ account int64 }

func (o *overdraft) Error() string {
	return fmt.Sprintf("account %d: insufficient funds at commit", o.account)
}

// repriceWithout is the book's answer to an overdraft: the dropped batch was
// priced as a sequence, so every order after the overdrawn trader's buy was
// priced on a state that includes it. The book therefore goes back to its
// committed state (and a fresh wallet for the trader), refuses the trader's
// buys in the dropped batch with a 409 and prices its other orders again,
// in their order, as a new batch, with those priced after it. Assumes the
// book's goroutine and b.pending holding the dropped batch's orders (its
// first dropped) and those priced after it.
func (b *book) repriceWithout(od *overdraft, dropped int) {
	again := make([]*command, 0, len(b.pending))
	for i, p := range b.pending {
		if i < dropped && p.trade.AccountID == od.account && p.trade.Side == market.Buy {
			p.cmd.answer(reply{err: levee.Errorf(levee.ECONFLICT,
				"insufficient funds: your cash was spent elsewhere (a contribution or a bond) before this order could commit; it was not executed")})
		} else {
			again = append(again, p.cmd)
		}
	}
	b.redo(again)
}

// replayTaken is the book's answer to a batch dropped because some of its
// orders carry idempotency keys already stored: retries of orders committed
// before. Like repriceWithout it goes back to the committed state and runs
// the batch's commands again, in their order; this time the retries are
// looked up first (command.lookup) and answered with their stored trades,
// and the other orders are priced on a state without them.
func (b *book) replayTaken(kt *keyTaken) {
	again := make([]*command, 0, len(b.pending))
	for _, p := range b.pending {
		if takenBy(&p.trade, kt.keys) {
			if p.cmd.lookup {
				// Looked up already and not found, yet refused again: do not
				// go round in circles.
				p.cmd.answer(reply{err: levee.Errorf(levee.EUNAVAILABLE, "the order's idempotency key could not be checked; try again")})
				continue
			}
			p.cmd.lookup = true
		}
		again = append(again, p.cmd)
	}
	b.redo(again)
}

// redo undoes the pending fills, reloads the committed state and processes
// again as a new round. Assumes the book's goroutine.
func (b *book) redo(again []*command) {
	// reload forgets the positions; undoing the dropped fills keeps them
	// for the orders still to be priced in this round (the caller's).
	positions, held := b.positions, b.held
	for _, p := range b.pending {
		if pos := positions[p.trade.AccountID]; pos != nil {
			if p.trade.Side == market.Buy {
				pos[p.trade.Outcome] -= p.trade.Shares
			} else {
				pos[p.trade.Outcome] += p.trade.Shares
			}
		}
		if b.m.Conditional { // and the balances inside a decision market
			if p.trade.Side == market.Buy {
				held[p.trade.AccountID] += p.trade.FromHeld
			} else {
				held[p.trade.AccountID] -= p.trade.Amount
			}
		}
	}
	clear(b.pending)
	b.pending = b.pending[:0]
	if err := b.reload(); err != nil {
		// The book is now broken: process answers 503 until a reload works.
		b.logger.Warn("reload after a dropped batch failed", slog.Any("error", err))
	} else {
		b.positions, b.held = positions, held
	}
	b.reprocess(again)
}

// reprocess prices commands again as a new round, from inside a round.
func (b *book) reprocess(again []*command) {
	if len(again) > 0 {
		// The caller may still look up retries of keyed orders in
		// b.replays, which process refills for its own commands.
		replays := b.replays
		b.replays = nil
		b.process(again)
		b.replays = replays
	}
}

type positionKey struct {
	market, account int64
	outcome         int
}

type positionDelta struct {
	shares, paid, received levee.Micros
}

func (j *journal) write(ctx context.Context, jb *job, bs []*batch) (written, error) {
	n := 0
	for _, b := range bs {
		n += len(b.trades)
	}
	trades := newTradeArrays(n)
	deltas := make(map[positionKey]*positionDelta, n)
	stakes := map[positionKey]*stakeDelta{} // conditional markets; outcome unused
	var transfers []ledger.Transfer
	cashAccounts := map[int64]string{} // trader → cash key, made once per commit
	for _, b := range bs {
		for i := range b.trades {
			t := &b.trades[i]
			trades.add(t)
			k := positionKey{t.MarketID, t.AccountID, t.Outcome}
			d := deltas[k]
			if d == nil {
				d = &positionDelta{}
				deltas[k] = d
			}
			if _, ok := cashAccounts[t.AccountID]; !ok {
				cashAccounts[t.AccountID] = ledger.Cash(t.AccountID)
			}
			if t.Side == market.Buy {
				d.shares += t.Shares
				d.paid += t.Amount
			} else {
				d.shares -= t.Shares
				d.received += t.Amount
			}
			if b.conditional {
				sk := positionKey{market: t.MarketID, account: t.AccountID}
				sd := stakes[sk]
				if sd == nil {
					sd = &stakeDelta{}
					stakes[sk] = sd
				}
				if t.Side == market.Buy {
					sd.putIn += t.Amount - t.FromHeld
					sd.held -= t.FromHeld
				} else {
					sd.held += t.Amount
				}
			}
			if j.previous && t.Amount != 0 {
				transfers = append(transfers, tradeTransfer(t, b.conditional))
			}
		}
		if !j.previous {
			transfers = appendBatchTransfers(transfers, b, cashAccounts)
		}
	}
	// PostgreSQL checks shares >= 0 on the row an upsert would insert before
	// it finds the conflict, so net sells (negative deltas, always on an
	// existing position) go through an UPDATE instead.
	grow, shrink := newPositionArrays(len(deltas)), positionArrays{}
	for k, d := range deltas {
		if d.shares >= 0 {
			grow.add(k, d)
		} else {
			shrink.add(k, d)
		}
	}
	// The same for stakes: a net spend of held money is always on a stake
	// that exists (held > 0 came from an earlier sale).
	var stakeGrow, stakeShrink stakeArrays
	for k, d := range stakes {
		if d.held >= 0 {
			stakeGrow.add(k, d)
		} else {
			stakeShrink.add(k, d)
		}
	}
	ids, qs, seqs, vols, epochs, afters := make([]int64, len(bs)), make(numericArrays, len(bs)), make([]int64, len(bs)), make(levee.MicrosArray, len(bs)), make([]int64, len(bs)), make([]int64, len(bs))
	for i, b := range bs {
		ids[i], qs[i], seqs[i], vols[i], epochs[i], afters[i] = b.marketID, market.Prices(b.q), b.seq, b.volume, b.epoch, b.after
	}

	// Trades, positions and market rows in one statement: one round trip.
	// Under load every round trip also waits for the journal's goroutine to
	// be scheduled again among the HTTP handlers, so fewer is faster.
	args := append(trades.args(), grow.args()...)
	args = append(args, shrink.args()...)
	args = append(args, pq.Array(ids), qs, pq.Array(seqs), vols)
	args = append(args, stakeGrow.args()...)
	args = append(args, stakeShrink.args()...)
	// Fencing: the market rows are written only at their books' epochs
	// ($35) and at the seq each batch was priced after ($36), and the
	// statement fails (journalFenced) unless all were.
	args = append(args, pq.Array(epochs), pq.Array(afters))
	shape := journalShape{keyed: trades.keyed, shrink: len(shrink.markets) > 0, stakes: len(stakes) > 0}
	var ph *commitPhases
	// The rows go in the ledger's first statement (or in the one statement
	// of OneStatementFrom) unless no money moved or the journal is the
	// previous one, which writes them in a round trip of their own.
	rowsWithLocks := len(transfers) > 0 && !j.previous
	twoTrips := rowsWithLocks && j.twoTrips
	// holding says this commit took j.pipe.commit already: with two
	// transactions in flight, a commit in two round trips sends COMMIT with
	// its append, so it takes the mutex that keeps COMMITs and the wallets'
	// settling in commit order (pipeline.go) once it holds its locks, before
	// its second round trip, and commitOnce settles under it.
	holding := false
	locked := func() {
		if ph != nil && rowsWithLocks {
			ph.mark(&ph.rows) // the rows and the ledger's locks, one round trip
		}
		j.pipe.lockedAttempt(jb)
		if j.afterLocked != nil {
			j.afterLocked()
		}
		if twoTrips && len(j.conns) > 1 {
			j.pipe.commit.Lock()
			holding = true
		}
	}
	w := ledger.With{CTEs: shape.writes(), First: journalWritten, Args: args, Locked: locked}
	if rowsWithLocks && j.oneStatementFrom > 0 && len(trades.seqs) >= j.oneStatementFrom {
		balances, err := j.writeOneTrip(ctx, w, transfers, cashAccounts, len(trades.seqs), len(bs))
		return written{commit: func() error { return nil }, balances: balances, ordered: true}, err
	}
	if twoTrips {
		ph = &commitPhases{start: time.Now(), pool: j.db.Stats()}
		balances, err := j.writeTwoTrips(ctx, jb.lane, w, transfers, cashAccounts, ph, len(trades.seqs), len(bs))
		if err != nil && holding {
			j.pipe.commit.Unlock()
			holding = false
		}
		return written{commit: func() error { return nil }, balances: balances, ordered: true, holding: holding}, err
	}
	rowsStmt, err := j.statement(ctx)
	if err != nil {
		return written{}, err
	}
	ph = &commitPhases{start: time.Now(), pool: j.db.Stats()}
	tx, err := j.begin(ctx, jb.lane)
	if err != nil {
		return written{}, err
	}
	done := false
	defer func() {
		if !done {
			tx.Rollback()
			j.logIfSlow(ph, len(trades.seqs), len(bs))
		}
	}()
	ph.mark(&ph.begin)

	// Money, last: the ledger's head lock is held until commit. PostBatch
	// reads the touched balances under its account locks anyway, so it
	// returns them after the batch and the journal needs no read of its own
	// except for traders whose trades moved no money (zero-amount fills).
	// The rows go in the ledger's first statement, which saves a round trip
	// (four per commit: BEGIN, rows with the ledger's locks, the append,
	// COMMIT); the previous journal (Options.PreviousJournal) sent them
	// alone first.
	var posted map[string]levee.Micros
	if rowsWithLocks {
		if _, posted, err = j.ledger.PostBatchBalancesWith(ctx, tx, w, transfers); err != nil {
			return written{}, fmt.Errorf("journal trades, positions, markets and ledger: %w", fencedError(err))
		}
		ph.mark(&ph.ledger)
	} else {
		if _, err := tx.StmtxContext(ctx, rowsStmt).ExecContext(ctx, args...); err != nil {
			return written{}, fmt.Errorf("journal trades, positions and markets: %w", fencedError(err))
		}
		locked()
		ph.mark(&ph.rows)
		if len(transfers) > 0 {
			if _, posted, err = j.ledger.PostBatchBalances(ctx, tx, transfers); err != nil {
				return written{}, fmt.Errorf("journal ledger: %w", err)
			}
		}
		ph.mark(&ph.ledger)
	}
	balances := make(map[int64]levee.Micros, len(cashAccounts))
	var unread []string
	for a, key := range cashAccounts {
		if b, ok := posted[key]; ok {
			balances[a] = b
		} else {
			unread = append(unread, key)
		}
	}
	if len(unread) > 0 {
		read, err := ledger.Balances(ctx, tx, unread)
		if err != nil {
			return written{}, fmt.Errorf("journal read balances: %w", err)
		}
		for key, b := range read {
			k, ok := ledger.ParseKey(key)
			if !ok || k.Kind != ledger.KindCash {
				return written{}, fmt.Errorf("journal read balances: account key %q is not a cash account", key)
			}
			balances[k.ID] = b
		}
	}
	ph.mark(&ph.balances)
	done = true
	return written{balances: balances, ordered: len(transfers) > 0, commit: func() error {
		defer j.logIfSlow(ph, len(trades.seqs), len(bs))
		err := tx.Commit()
		ph.mark(&ph.commit)
		if err != nil {
			return pgtx.Unavailable(fmt.Errorf("journal commit: %w", err))
		}
		if j.phases != nil {
			j.phases(CommitPhases{Orders: len(trades.seqs), Begin: ph.begin, Rows: ph.rows, Ledger: ph.ledger, Commit: ph.commit})
		}
		return nil
	}}, nil
}

// writeOneTrip is the journal's commit in one round trip: the trades,
// positions and market rows, then the ledger's append (ledger_append, the
// hash chain computed in PostgreSQL), as one statement in autocommit. The
// head lock is held for the function's work and the commit's flush only,
// never across the network. It returns the cash balances of every trader
// in the batches, read under the ledger's locks. Its one round trip is its
// commit phase.
func (j *journal) writeOneTrip(ctx context.Context, w ledger.With, transfers []ledger.Transfer, cashAccounts map[int64]string, orders, batches int) (map[int64]levee.Micros, error) {
	read := cashKeys(cashAccounts)
	ph := &commitPhases{start: time.Now(), pool: j.db.Stats()}
	posted, err := j.ledger.AppendWith(ctx, w, transfers, read)
	ph.mark(&ph.commit)
	j.logIfSlow(ph, orders, batches)
	if err != nil {
		return nil, fmt.Errorf("journal trades, positions, markets and ledger in one statement: %w", fencedError(err))
	}
	return cashBalances(cashAccounts, posted)
}

// writeTwoTrips is the journal's commit in a transaction of two round
// trips (ledger.Session): BEGIN with the trades, positions and market rows
// and the ledger's locks; then, the hash chain computed here, the append
// with COMMIT. It returns the cash balances of every trader in the
// batches, read under the ledger's locks. The connection is dropped when
// the session leaves it in an unknown state.
func (j *journal) writeTwoTrips(ctx context.Context, lane int, w ledger.With, transfers []ledger.Transfer, cashAccounts map[int64]string, ph *commitPhases, orders, batches int) (map[int64]levee.Micros, error) {
	s, err := j.session(ctx, lane)
	if err != nil {
		return nil, err
	}
	read := cashKeys(cashAccounts)
	before := s.Stats().OneTrip
	posted, err := s.PostCommitWith(ctx, w, transfers, read)
	oneTrip := s.Stats().OneTrip > before
	ph.mark(&ph.commit)
	j.logIfSlow(ph, orders, batches)
	if err != nil {
		return nil, fmt.Errorf("journal trades, positions, markets and ledger in two round trips: %w", fencedError(err))
	}
	if j.phases != nil {
		j.phases(CommitPhases{Orders: orders, Rows: ph.rows, Commit: ph.commit, OneTrip: oneTrip})
	}
	return cashBalances(cashAccounts, posted)
}

// cashKeys are the ledger keys of the traders' cash accounts, which a commit
// in one or two round trips reads with the ledger's locks.
func cashKeys(cashAccounts map[int64]string) []string {
	keys := make([]string, 0, len(cashAccounts))
	for _, key := range cashAccounts {
		keys = append(keys, key)
	}
	return keys
}

// cashBalances picks every trader's cash balance out of those the ledger
// returned by key.
func cashBalances(cashAccounts map[int64]string, posted map[string]levee.Micros) (map[int64]levee.Micros, error) {
	balances := make(map[int64]levee.Micros, len(cashAccounts))
	for a, key := range cashAccounts {
		b, ok := posted[key]
		if !ok {
			return nil, fmt.Errorf("journal: no balance returned for %s", key)
		}
		balances[a] = b
	}
	return balances, nil
}

// commitPhases times the steps of one journal transaction.
type commitPhases struct {
	start, last                           time.Time
	pool                                  sql.DBStats // at the start
	begin, rows, ledger, balances, commit time.Duration
}

func (p *commitPhases) mark(d *time.Duration) {
	now := time.Now()
	if p.last.IsZero() {
		p.last = p.start
	}
	*d, p.last = now.Sub(p.last), now
}

// logIfSlow logs a commit that took j.slow or more, with its phases.
func (j *journal) logIfSlow(p *commitPhases, orders, batches int) {
	total := time.Since(p.start)
	if total < j.slow {
		return
	}
	// Waits for a pool connection meanwhile (anyone's, the journal's BEGIN
	// among them) tell a busy pool from a busy machine.
	st := j.db.Stats()
	j.logger.Warn("slow journal commit", slog.Duration("total", total), slog.Time("started", p.start), slog.Int("orders", orders), slog.Int("batches", batches),
		slog.Int64("pool_waits", st.WaitCount-p.pool.WaitCount), slog.Duration("pool_wait", st.WaitDuration-p.pool.WaitDuration), slog.Int("pool_in_use", p.pool.InUse),
		slog.Duration("begin", p.begin), slog.Duration("rows", p.rows), slog.Duration("ledger", p.ledger),
		slog.Duration("balances", p.balances), slog.Duration("commit", p.commit))
}

// tradeTransfer is one trade's own ledger entry (kind trade), as the
// previous journal (Options.PreviousJournal) writes them.
func tradeTransfer(t *market.Trade, conditional bool) ledger.Transfer {
	return ledger.Transfer{Kind: "trade", Ref: "market:" + levee.FormatID(t.MarketID) + "/trade:" + levee.FormatID(t.Seq), At: t.At,
		Postings: appendTradePostings(make([]ledger.Posting, 0, 3), t, conditional, marketKeysOf(t.MarketID), ledger.Cash(t.AccountID))}
}

// batchEntryTrades is the most trades one ledger entry carries: at most two
// postings each and the market's own accounts stay under
// ledger.MaxPostings (1,000).
const batchEntryTrades = 400

// appendBatchTransfers appends a batch's ledger entries to ts: one entry
// (kind trades, ref market:<id>/trades:<first seq>-<last seq>) for up to
// batchEntryTrades of its trades rather than one per trade. The ledger's
// rows were over half of a commit's time in PostgreSQL (bench/RESULTS.md
// §3b); a batch of 128 buys now writes 1 entry and 129 postings instead of
// 128 and 256. Every trader's cash posting stays, in the order of the
// trades (a trade that moved no money, or a conditional sale, which pays
// the market's held account, has none), so each one is tied to its trade
// in the public ledger; the market's own accounts (collateral, held) get
// one posting each with their net, left out when it is zero. The trades
// themselves, with their amounts, are in the trades table and its API.
// cash holds each trader's cash key.
func appendBatchTransfers(ts []ledger.Transfer, b *batch, cash map[int64]string) []ledger.Transfer {
	mk := marketKeysOf(b.marketID)
	var scratch []ledger.Posting
	for start := 0; start < len(b.trades); start += batchEntryTrades {
		chunk := b.trades[start:min(start+batchEntryTrades, len(b.trades))]
		var ps []ledger.Posting
		var own []ledger.Posting // the market's accounts, netted in order of appearance
		for i := range chunk {
			t := &chunk[i]
			if t.Amount == 0 {
				continue
			}
			scratch = appendTradePostings(scratch[:0], t, b.conditional, mk, cash[t.AccountID])
			for _, p := range scratch {
				if p.Account != mk.collateral && p.Account != mk.held { // the trader's cash
					ps = append(ps, p)
					continue
				}
				k := slices.IndexFunc(own, func(o ledger.Posting) bool { return o.Account == p.Account })
				if k < 0 {
					own = append(own, p)
				} else {
					own[k].Amount += p.Amount
				}
			}
		}
		for _, p := range own {
			if p.Amount != 0 {
				ps = append(ps, p)
			}
		}
		if len(ps) == 0 {
			continue // nothing moved, or it all came back within the chunk
		}
		first, last := chunk[0], chunk[len(chunk)-1]
		ts = append(ts, ledger.Transfer{Kind: "trades", At: last.At, Postings: ps,
			Ref: "market:" + levee.FormatID(b.marketID) + "/trades:" + levee.FormatID(first.Seq) + "-" + levee.FormatID(last.Seq)})
	}
	return ts
}

// appendTradePostings appends the postings that move a trade's money to
// ps. In an ordinary market a buy moves cash into the collateral and a sale
// moves it back out. In a conditional one a buy is paid from the trader's
// balance inside the market first (t.FromHeld, from the market's held
// account) and then from cash, and a sale's proceeds go to the held
// account, never to cash. cash is the trader's cash key.
func appendTradePostings(ps []ledger.Posting, t *market.Trade, conditional bool, mk marketKeys, cash string) []ledger.Posting {
	switch {
	case t.Side == market.Sell && conditional:
		return append(ps, ledger.Posting{Account: mk.collateral, Amount: -t.Amount}, ledger.Posting{Account: mk.held, Amount: t.Amount})
	case t.Side == market.Sell:
		return append(ps, ledger.Posting{Account: mk.collateral, Amount: -t.Amount}, ledger.Posting{Account: cash, Amount: t.Amount})
	}
	if fromCash := t.Amount - t.FromHeld; fromCash != 0 {
		ps = append(ps, ledger.Posting{Account: cash, Amount: -fromCash})
	}
	if t.FromHeld != 0 {
		ps = append(ps, ledger.Posting{Account: mk.held, Amount: -t.FromHeld})
	}
	return append(ps, ledger.Posting{Account: mk.collateral, Amount: t.Amount})
}

// marketKeys are a market's own ledger accounts, made once per batch
// rather than once per trade.
type marketKeys struct{ collateral, held string }

func marketKeysOf(marketID int64) marketKeys {
	return marketKeys{collateral: ledger.Collateral(marketID), held: ledger.Held(marketID)}
}

type stakeDelta struct{ putIn, held levee.Micros }

// stakeArrays holds stake deltas column by column for unnest().
type stakeArrays struct {
	markets, accounts []int64
	putIn, held       levee.MicrosArray
}

func (a *stakeArrays) add(k positionKey, d *stakeDelta) {
	a.markets, a.accounts = append(a.markets, k.market), append(a.accounts, k.account)
	a.putIn, a.held = append(a.putIn, d.putIn), append(a.held, d.held)
}

func (a *stakeArrays) args() []any {
	return []any{pq.Array(a.markets), pq.Array(a.accounts), a.putIn, a.held}
}

// positionArrays holds position deltas column by column for unnest().
type positionArrays struct {
	markets, accounts, outcomes []int64
	shares, paid, received      levee.MicrosArray
}

// newPositionArrays has room for n positions in every column.
func newPositionArrays(n int) positionArrays {
	return positionArrays{markets: make([]int64, 0, n), accounts: make([]int64, 0, n), outcomes: make([]int64, 0, n),
		shares: make(levee.MicrosArray, 0, n), paid: make(levee.MicrosArray, 0, n), received: make(levee.MicrosArray, 0, n)}
}

func (a *positionArrays) add(k positionKey, d *positionDelta) {
	a.markets, a.accounts, a.outcomes = append(a.markets, k.market), append(a.accounts, k.account), append(a.outcomes, int64(k.outcome))
	a.shares, a.paid, a.received = append(a.shares, d.shares), append(a.paid, d.paid), append(a.received, d.received)
}

func (a *positionArrays) args() []any {
	return []any{pq.Array(a.markets), pq.Array(a.accounts), pq.Array(a.outcomes), a.shares, a.paid, a.received}
}

// journalWrites writes a group commit's trades, their idempotency keys,
// position changes, stakes and market rows, as data-modifying common table
// expressions: the journal runs them in the ledger's first statement
// (ledger.Prepared.PostBatchBalancesWith), or alone as JournalSQL when a
// batch moves no money. Its parts touch disjoint rows (grow and shrink are
// different positions), as one statement's data-modifying CTEs must. This
// is every part; a commit writes only those of its shape.
var journalWrites = journalShape{keyed: true, shrink: true, stakes: true}.build()

// journalShape names the optional parts of journalWrites that a commit
// needs: idempotency keys, positions that shrink, stakes (decision markets).
// A part a commit does not need is replaced by an inert CTE of the same name
// that declares the same parameters and touches no table: PostgreSQL starts
// every part of a statement (opens the table and its indexes, builds its
// CHECK expressions from the catalog's text) even when it writes no row,
// which perf showed as a fifth of PostgreSQL's CPU for a commit of one order
// (issue 18). A commit of buys without keys in an ordinary market, the
// common one, writes trades, positions and the market row only.
type journalShape struct{ keyed, shrink, stakes bool }

// writes is the journal's CTEs for this shape; each of the eight is its own
// prepared statement (ledger.Prepared keys them by their text).
func (s journalShape) writes() string { return journalShapes[s] }

// build joins the shape's parts, real or inert.
func (s journalShape) build() string {
	keyed, shrink, stakes := journalInertKeyed, journalInertShrink, journalInertStakes
	if s.keyed {
		keyed = journalKeyed
	}
	if s.shrink {
		shrink = journalShrink
	}
	if s.stakes {
		stakes = journalStakes
	}
	return "\n" + strings.Join([]string{journalTrades, keyed, journalGrow, shrink, stakes, journalMarkets}, ", ")
}

// journalShapes holds every shape's CTEs, built once.
var journalShapes = func() map[journalShape]string {
	m := map[journalShape]string{}
	for i := range 8 {
		s := journalShape{keyed: i&1 != 0, shrink: i&2 != 0, stakes: i&4 != 0}
		m[s] = s.build()
	}
	return m
}()

const journalTrades = `trade AS (
	INSERT INTO trades (market_id, seq, account_id, outcome, side, shares, amount, prices, at, idempotency_key)
	SELECT m, s, a, o, sd, sh, am, p::numeric[], t, NULLIF(k, '')
	FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::smallint[], $5::text[], $6::numeric[], $7::numeric[], $8::text[], $9::timestamptz[], $10::text[])
		AS v(m, s, a, o, sd, sh, am, p, t, k)
	RETURNING 1
)`

// journalKeyed keeps the lookup window of idempotency keys (KeyRetention);
// the key also stays on its trade, unindexed, for audits.
const journalKeyed = `keyed AS (
	INSERT INTO order_keys (account_id, key, market_id, seq, at)
	SELECT a, k, m, s, t
	FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $9::timestamptz[], $10::text[]) AS v(m, s, a, t, k)
	WHERE k <> ''
	RETURNING 1
)`

const journalInertKeyed = `keyed AS (SELECT 1 WHERE false)`

const journalGrow = `grow AS (
	INSERT INTO positions (market_id, account_id, outcome, shares, paid, received)
	SELECT * FROM unnest($11::bigint[], $12::bigint[], $13::smallint[], $14::numeric[], $15::numeric[], $16::numeric[])
	ON CONFLICT (market_id, account_id, outcome) DO UPDATE SET
		shares = positions.shares + EXCLUDED.shares,
		paid = positions.paid + EXCLUDED.paid,
		received = positions.received + EXCLUDED.received
	RETURNING 1
)`

const journalShrink = `shrink AS (
	UPDATE positions p SET shares = p.shares + v.shares, paid = p.paid + v.paid, received = p.received + v.received
	FROM unnest($17::bigint[], $18::bigint[], $19::smallint[], $20::numeric[], $21::numeric[], $22::numeric[])
		AS v(market_id, account_id, outcome, shares, paid, received)
	WHERE p.market_id = v.market_id AND p.account_id = v.account_id AND p.outcome = v.outcome
	RETURNING 1
)`

const journalInertShrink = `shrink AS (SELECT 1 WHERE false AND $17::bigint[] IS NULL AND $18::bigint[] IS NULL AND $19::smallint[] IS NULL
	AND $20::numeric[] IS NULL AND $21::numeric[] IS NULL AND $22::numeric[] IS NULL)`

const journalStakes = `stake_grow AS (
	INSERT INTO market_stakes (market_id, account_id, put_in, held)
	SELECT * FROM unnest($27::bigint[], $28::bigint[], $29::numeric[], $30::numeric[])
	ON CONFLICT (market_id, account_id) DO UPDATE SET
		put_in = market_stakes.put_in + EXCLUDED.put_in,
		held = market_stakes.held + EXCLUDED.held
	RETURNING 1
), stake_shrink AS (
	UPDATE market_stakes s SET put_in = s.put_in + v.put_in, held = s.held + v.held
	FROM unnest($31::bigint[], $32::bigint[], $33::numeric[], $34::numeric[]) AS v(market_id, account_id, put_in, held)
	WHERE s.market_id = v.market_id AND s.account_id = v.account_id
	RETURNING 1
)`

const journalInertStakes = `stake_grow AS (SELECT 1 WHERE false AND $27::bigint[] IS NULL AND $28::bigint[] IS NULL AND $29::numeric[] IS NULL
	AND $30::numeric[] IS NULL), stake_shrink AS (SELECT 1 WHERE false AND $31::bigint[] IS NULL AND $32::bigint[] IS NULL
	AND $33::numeric[] IS NULL AND $34::numeric[] IS NULL)`

// journalMarkets writes each market row at its book's epoch and only at the
// seq its batch was priced after; written says the row was. The WHERE lets
// through a row whose version in the statement's snapshot is at or before
// that seq, so that the UPDATE waits for a transaction still writing the
// row (the batch before, two transactions in flight: pipeline.go) and then
// works on the version it committed; only then is the seq compared exactly
// (the SET and RETURNING see that version; an error raised in the SET would
// be raised on the snapshot's version, before the wait). A row at another
// seq keeps its seq and is not written; journalFenced then fails the
// statement, which undoes the rest.
const journalMarkets = `market_rows AS (
	UPDATE markets m SET q = v.q::numeric[], seq = CASE WHEN m.seq = v.after THEN v.seq ELSE m.seq END, volume = v.volume
	FROM unnest($23::bigint[], $24::text[], $25::bigint[], $26::numeric[], $35::bigint[], $36::bigint[]) AS v(id, q, seq, volume, epoch, after)
	WHERE m.id = v.id AND m.epoch = v.epoch AND m.seq <= v.after
	RETURNING m.seq = v.seq AS written
)`

// journalFenced fails the journal's statement with division_by_zero
// (22012) unless every market row was written, that is, unless every
// market is still at its book's epoch (fencing: docs/cluster.md) and at the
// seq its batch was priced after (two transactions in flight: pipeline.go;
// journal.fence tells the two apart). It is
// evaluated before the ledger takes its head lock (it is part of
// journalWritten), so a refused commit never touches the ledger. The
// divisor depends on the CTE's rows, so PostgreSQL cannot fold it into a
// constant error at planning time.
const journalFenced = `1 / ((SELECT count(*) FROM market_rows WHERE written) = cardinality($23::bigint[]))::int = 1`

// journalWritten reads every CTE of journalWrites (a CTE added there, such
// as a fencing check, must be added here too): the ledger evaluates it
// before it takes its head lock (ledger.With.First), which runs the writes
// first, so the journal locks its rows before the ledger's as every writer
// does (docs/locks.md). Otherwise PostgreSQL would run them after the
// primary query, with the head held, and a lifecycle transaction holding a
// market row while it waits for the head would deadlock with the journal.
const journalWritten = `(SELECT count(*) FROM trade) + (SELECT count(*) FROM keyed) + (SELECT count(*) FROM grow) +
	(SELECT count(*) FROM shrink) + (SELECT count(*) FROM stake_grow) + (SELECT count(*) FROM stake_shrink) +
	(SELECT count(*) FROM market_rows) >= 0 AND ` + journalFenced

// JournalSQL is journalWrites on its own: the journal's statement for a
// batch that moves no money, exported for tools that explain its plan.
var JournalSQL = "WITH " + journalWrites + "\nSELECT 1 WHERE " + journalFenced

// timeArray is timestamps as one text[] parameter (the journal's SQL casts
// it), written RFC 3339 with microseconds, without a string per time.
type timeArray []time.Time

func (a timeArray) AppendArrayText(b []byte) ([]byte, bool) {
	return appendArray(b, a, func(b []byte, t time.Time) []byte { return t.AppendFormat(b, time.RFC3339Nano) })
}

func (a timeArray) Value() (driver.Value, error) { return arrayValue(a) }

// numericArrays is numeric[] values (each trade's prices, each market's
// q) as one text[] parameter of their texts ({"{0.400000,0.600000}",…};
// the journal's SQL casts each), without a string per value.
type numericArrays []market.Prices

func (a numericArrays) AppendArrayText(b []byte) ([]byte, bool) {
	return appendArray(b, a, func(b []byte, p market.Prices) []byte {
		return append(levee.MicrosArray(p).AppendTo(append(b, '"')), '"')
	})
}

// appendArray appends a's array text, {e,e,…}, each element written by
// one; false (nothing appended) for a nil a, which is NULL.
func appendArray[T any](b []byte, a []T, one func([]byte, T) []byte) ([]byte, bool) {
	if a == nil {
		return b, false
	}
	b = append(b, '{')
	for i, x := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = one(b, x)
	}
	return append(b, '}'), true
}

func (a numericArrays) Value() (driver.Value, error) { return arrayValue(a) }

// arrayValue is an array's Value (for database/sql): its text, or NULL.
func arrayValue(a interface{ AppendArrayText([]byte) ([]byte, bool) }) (driver.Value, error) {
	b, ok := a.AppendArrayText(nil)
	if !ok {
		return nil, nil
	}
	return string(b), nil
}

// tradeArrays holds trades column by column for unnest().
type tradeArrays struct {
	markets, seqs, accounts, outcomes []int64
	shares, amounts                   levee.MicrosArray
	prices                            numericArrays
	ats                               timeArray
	sides, keys                       []string
	keyed                             bool // some trade carries an idempotency key
}

// newTradeArrays has room for n trades in every column: appending to nil
// columns grew each of the ten about eight times for a commit of 128.
func newTradeArrays(n int) tradeArrays {
	return tradeArrays{markets: make([]int64, 0, n), seqs: make([]int64, 0, n), accounts: make([]int64, 0, n),
		outcomes: make([]int64, 0, n), shares: make(levee.MicrosArray, 0, n), amounts: make(levee.MicrosArray, 0, n),
		prices: make(numericArrays, 0, n), ats: make(timeArray, 0, n), sides: make([]string, 0, n), keys: make([]string, 0, n)}
}

func (a *tradeArrays) add(t *market.Trade) {
	a.markets, a.seqs, a.accounts, a.outcomes = append(a.markets, t.MarketID), append(a.seqs, t.Seq), append(a.accounts, t.AccountID), append(a.outcomes, int64(t.Outcome))
	a.sides, a.shares, a.amounts, a.prices = append(a.sides, t.Side.String()), append(a.shares, t.Shares), append(a.amounts, t.Amount), append(a.prices, t.Prices)
	key := ""
	if t.Key != nil && *t.Key != "" {
		key, a.keyed = *t.Key, true
	}
	a.ats, a.keys = append(a.ats, t.At), append(a.keys, key)
}

func (a *tradeArrays) args() []any {
	return []any{pq.Array(a.markets), pq.Array(a.seqs), pq.Array(a.accounts), pq.Array(a.outcomes), pq.Array(a.sides),
		a.shares, a.amounts, a.prices, a.ats, pq.Array(a.keys)}
}
