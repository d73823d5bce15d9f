package pgtx

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// Keys of the advisory locks of Serial, one per service whose state changes
// span several transactions (its own and the market engine's). They spell
// "Levee" and a number, so a DBA reading pg_locks knows whose they are.
const (
	SerialContracting int64 = 0x4c65766565_0001
	SerialSettlement  int64 = 0x4c65766565_0002
	SerialCrisis      int64 = 0x4c65766565_0003
)

// Serial serialises a critical section across every Levee instance on one
// database (docs/cluster.md): a session-level advisory lock on Key, held on
// a connection of its own while the section runs its transactions. An
// in-process mutex comes first, so that one goroutine per instance at most
// waits inside PostgreSQL holding a connection: waiters never drain the pool
// the holder needs. Lock order: docs/locks.md.
//
// If the lock's connection dies while held, PostgreSQL releases the lock
// and another instance may enter: the sections it guards lock their rows
// and check their states inside each transaction anyway, so this costs a
// refused step, not a decision taken twice.
type Serial struct {
	Key int64
	mu  sync.Mutex
}

// Lock enters the section; unlock leaves it. Errors: EUNAVAILABLE.
func (s *Serial) Lock(ctx context.Context, db *sqlx.DB) (unlock func(), err error) {
	s.mu.Lock()
	conn, err := db.Conn(ctx)
	if err != nil {
		s.mu.Unlock()
		return nil, Unavailable(fmt.Errorf("advisory lock %x: %w", s.Key, err))
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, s.Key); err != nil {
		conn.Close()
		s.mu.Unlock()
		return nil, Unavailable(fmt.Errorf("advisory lock %x: %w", s.Key, err))
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, s.Key); err != nil {
			// Never give a connection that may still hold the lock back to
			// the pool: closing its session releases it.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
		s.mu.Unlock()
	}, nil
}
