package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/pgtx"
)

// Prepared posts batches like PostBatchBalances, with the append's two
// statements prepared once per database connection. The driver (lib/pq)
// sends a statement with parameters that is not prepared as two round trips,
// Parse and Describe, then Bind and Execute, and PostgreSQL plans it every
// time; a prepared one is a single round trip. That matters to a caller that
// appends all the time while holding the head lock, as the market journal
// does. It is safe for concurrent use; Close it when done.
type Prepared struct {
	db   *sqlx.DB
	mu   sync.Mutex
	st   *statements           // nil until the first post that could prepare them
	with map[string]*sqlx.Stmt // statements around a caller's writes (PostBatchBalancesWith, AppendWith), by kind, CTEs and condition
}

// statements are the append's statements prepared on a database; database/sql
// prepares each on a connection the first time a transaction on that
// connection uses it, and keeps it for the connection's life.
type statements struct {
	lock, append *sqlx.Stmt
}

// NewPrepared returns a Prepared on db. It prepares nothing yet, so it
// cannot fail while the database is down.
func NewPrepared(db *sqlx.DB) *Prepared { return &Prepared{db: db} }

// PostBatchBalances is the package's PostBatchBalances, through the prepared
// statements; tx must be a transaction on the Prepared's database. Errors as
// PostBatch; when the statements cannot be prepared, the database's error
// (EUNAVAILABLE when it is down).
func (p *Prepared) PostBatchBalances(ctx context.Context, tx *sqlx.Tx, ts []Transfer) ([]Entry, map[string]levee.Micros, error) {
	st, err := p.statements(ctx)
	if err != nil {
		return nil, nil, err
	}
	return postBatchBalances(ctx, tx, ts, call{trips: txTrips{tx: tx, lockStmt: st.lock, appendStmt: st.append}})
}

// With is a caller's writes that PostBatchBalancesWith runs in the ledger's
// first statement.
type With struct {
	// CTEs are data-modifying common table expressions, "a AS (INSERT ...
	// RETURNING 1), b AS (UPDATE ... RETURNING 1)", whose parameters are $1
	// to $len(Args).
	CTEs string
	// First is a condition that reads every CTE, such as "(SELECT count(*)
	// FROM a) + (SELECT count(*) FROM b) >= 0": PostgreSQL evaluates it
	// before it locks the head, which runs the CTEs first, so the caller's
	// row locks come before the ledger's (docs/locks.md). It must hold: a
	// caller that refuses its writes raises an error in it (as the market
	// journal's fencing does), since a Session that remembers sends the
	// append in the same message without looking at the head's row.
	First string
	Args  []any
	// Locked, if set, runs once the statement with the caller's writes has
	// returned, before the append: from then on the transaction holds the
	// caller's rows, the head and the accounts (the market journal then lets
	// its next transaction start: it waits on these locks, not on the
	// caller's goroutine).
	Locked func()
}

// PostBatchBalancesWith is PostBatchBalances whose first statement, the
// lock of the head and the accounts, also carries the caller's writes, run
// before the locks. A caller that writes its rows and then posts, as the
// market journal does, saves a round trip per transaction: with lib/pq every
// statement is one, and on a busy machine each is also a wake-up of two
// processes. The caller's writes run only if ts has something to append
// (len(ts) > 0); the caller runs them alone otherwise. Errors as
// PostBatchBalances, or the database's error from the caller's writes.
func (p *Prepared) PostBatchBalancesWith(ctx context.Context, tx *sqlx.Tx, w With, ts []Transfer) ([]Entry, map[string]levee.Micros, error) {
	if len(ts) == 0 {
		return nil, nil, nil
	}
	st, err := p.statements(ctx)
	if err != nil {
		return nil, nil, err
	}
	lock, err := p.lockWith(ctx, w)
	if err != nil {
		return nil, nil, err
	}
	return postBatchBalances(ctx, tx, ts, call{trips: txTrips{tx: tx, lockStmt: lock, appendStmt: st.append}, lockArgs: w.Args, locked: w.Locked})
}

// lockWith prepares the lock statement behind the caller's writes, once per
// CTEs and condition. The account keys come after the caller's parameters.
func (p *Prepared) lockWith(ctx context.Context, w With) (*sqlx.Stmt, error) {
	return p.prepareWith(ctx, "lock\x00"+w.CTEs+"\x00"+w.First, lockSQLAfter(w, "$"+strconv.Itoa(len(w.Args)+1)))
}

// prepareWith prepares query once per key: a statement built around a
// caller's writes.
func (p *Prepared) prepareWith(ctx context.Context, key, query string) (*sqlx.Stmt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.with[key]; ok {
		return st, nil
	}
	st, err := p.db.PreparexContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("ledger prepare a statement with the caller's writes: %w", pgtx.Unavailable(err))
	}
	if p.with == nil {
		p.with = map[string]*sqlx.Stmt{}
	}
	p.with[key] = st
	return st, nil
}

func (p *Prepared) statements(ctx context.Context) (*statements, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st != nil {
		return p.st, nil
	}
	lock, err := p.db.PreparexContext(ctx, LockSQL)
	if err != nil {
		return nil, fmt.Errorf("ledger prepare lock statement: %w", pgtx.Unavailable(err))
	}
	app, err := p.db.PreparexContext(ctx, AppendSQL)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("ledger prepare append statement: %w", pgtx.Unavailable(err))
	}
	p.st = &statements{lock: lock, append: app}
	return p.st, nil
}

// Close releases the prepared statements on every connection.
func (p *Prepared) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for with, st := range p.with {
		errs = append(errs, st.Close())
		delete(p.with, with)
	}
	if p.st != nil {
		errs = append(errs, p.st.lock.Close(), p.st.append.Close())
		p.st = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ledger close prepared statements: %w", err)
	}
	return nil
}
