package ledger

import (
	"context"
	"fmt"
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
	db *sqlx.DB
	mu sync.Mutex
	st *statements // nil until the first post that could prepare them
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
	return postBatchBalances(ctx, tx, ts, st)
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
	if p.st == nil {
		return nil
	}
	err1, err2 := p.st.lock.Close(), p.st.append.Close()
	p.st = nil
	if err1 != nil {
		return fmt.Errorf("ledger close prepared statements: %w", err1)
	}
	if err2 != nil {
		return fmt.Errorf("ledger close prepared statements: %w", err2)
	}
	return nil
}
