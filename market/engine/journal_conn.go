package engine

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/ledger"
	"levee/pgtx"
)

// The journal commits on a connection of its own, on which PostgreSQL
// always uses the generic plan of a prepared statement
// (plan_cache_mode = force_generic_plan). Left to choose, PostgreSQL planned
// the journal's first statement (the trades, keys, positions and market
// rows behind the ledger's locks) afresh on every execution: 0.4-0.56 ms of
// planning against 0.28-0.39 ms of execution for a commit of one order,
// the largest single cost of an order at low load (pg_stat_statements,
// bench/RESULTS.md §12). Every parameter of that statement is an array that
// unnest() reads, so a plan made for the actual values is no better than
// the generic one. The setting stays on this connection: the connection is
// never handed back to the pool for anyone else to use.
//
// Nor does the journal's connection scan a table (enable_seqscan = off):
// every statement it runs reaches rows by key. A generic plan assumes ten
// rows per array, and for a table below about 70 pages (a town's
// ledger_accounts, up to a couple of thousand accounts with their dead
// row versions) PostgreSQL found a hash join over the whole table cheaper
// than ten index probes: the balances' UPDATE read all 62 pages of 614
// accounts for a commit of one order, 0.13 ms against 0.027 ms by index
// (EXPLAIN ANALYZE, the orders benchmark's database), and ExecScan was 39%
// of the journal backend's CPU at 300 orders/s (perf). For a commit of 128
// orders the two plans cost the same. So the plans no longer flip with the
// city's size. A scan that has no alternative (ledger_head, one row) is
// still done, at a cost PostgreSQL marks as huge, which made it compile the
// ledger's statements to machine code (JIT) for 140-200 ms each: jit = off
// (a statement of a commit never runs long enough to gain from it).

// JournalSettings are the journal's connection's session settings; the
// benchmark explains the order path's statements with them
// (bench/cmd/levee-bench/plans.go).
var JournalSettings = []string{"plan_cache_mode = force_generic_plan", "enable_seqscan = off", "jit = off"}

// journalConnSetting sets JournalSettings and names the connection in
// pg_stat_activity.
var journalConnSetting = "SET " + strings.Join(JournalSettings, "; SET ") + "; SET application_name = 'levee-journal'"

// begin starts a transaction on the journal's connection of lane, taking
// and setting up one first if it has none. The previous journal
// (Options.PreviousJournal, the order path before issue 18 for the
// benchmark's comparison) begins on any connection of the pool, as it did.
func (j *journal) begin(ctx context.Context, lane int) (*sqlx.Tx, error) {
	if j.previous {
		tx, err := j.db.BeginTxx(ctx, nil)
		if err != nil {
			return nil, pgtx.Unavailable(fmt.Errorf("journal begin: %w", err))
		}
		return tx, nil
	}
	c, err := j.conn(ctx, lane)
	if err != nil {
		return nil, err
	}
	tx, err := c.BeginTxx(ctx, nil)
	if err != nil {
		j.dropConn(lane)
		return nil, pgtx.Unavailable(fmt.Errorf("journal begin: %w", err))
	}
	return tx, nil
}

// conn returns the lane's connection, taking and setting up one first if
// it has none.
func (j *journal) conn(ctx context.Context, lane int) (*sqlx.Conn, error) {
	if j.conns[lane] == nil {
		c, err := j.db.Connx(ctx)
		if err != nil {
			return nil, pgtx.Unavailable(fmt.Errorf("journal connection: %w", err))
		}
		if _, err := c.ExecContext(ctx, journalConnSetting); err != nil {
			discardConn(c)
			return nil, pgtx.Unavailable(fmt.Errorf("journal connection setting: %w", err))
		}
		j.conns[lane] = c
	}
	return j.conns[lane], nil
}

// session returns the ledger session on the lane's connection, which
// commits a group in two round trips (Options.FourTrips).
func (j *journal) session(ctx context.Context, lane int) (*ledger.Session, error) {
	c, err := j.conn(ctx, lane)
	if err != nil {
		return nil, err
	}
	if j.sessions[lane] == nil {
		s := ledger.NewSession(c)
		if j.remember && len(j.conns) == 1 {
			// The journal is then the ledger's usual writer: the next commit
			// can be computed from what the last one left (ledger/memo.go),
			// in one round trip. With two lanes each lane's Session would
			// find the other's commit in between every time.
			s.Remember()
		}
		j.sessions[lane] = s
	}
	return j.sessions[lane], nil
}

// failed drops the lane's connection after a failed commit unless the
// failure was a refusal (by PostgreSQL, a *pq.Error other than a lost
// connection, or by the ledger in Go, an overdraft): a broken, timed-out
// or unknown state of the connection is not used again.
func (j *journal) failed(err error, lane int) {
	if err == nil {
		return
	}
	if s := j.sessions[lane]; s != nil && s.Broken() {
		j.dropConn(lane) // a transaction that could not be rolled back
		return
	}
	code := levee.ErrorCode(err)
	if pe := (*pq.Error)(nil); errors.As(err, &pe) && code != levee.EUNAVAILABLE {
		return
	}
	if code == levee.ECONFLICT || code == levee.EINVALID {
		return
	}
	j.dropConn(lane)
}

// dropConn gives up the lane's connection; its next commit takes another.
func (j *journal) dropConn(lane int) {
	if j.conns[lane] != nil {
		discardConn(j.conns[lane])
		j.conns[lane], j.sessions[lane] = nil, nil
	}
}

// discardConn closes c for good instead of returning it to the pool, where
// its session setting would reach other users.
func discardConn(c *sqlx.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	if err := c.Close(); err != nil && !errors.Is(err, driver.ErrBadConn) {
		slog.Debug("journal connection close", slog.Any("error", err))
	}
}
