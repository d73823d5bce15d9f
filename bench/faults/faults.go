// Package faults breaks, from outside, what a running Levee depends on, and
// audits what survived: a client that takes every PostgreSQL connection,
// and the checks that each order is stored exactly once and that positions
// are the sum of the trades. The fault tests of cmd/levee and the fault
// scenario of levee-bench share it.
package faults

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// HogName is the application_name of the hog's connections.
const HogName = "levee-fault-hog"

// Hog is another client of the same PostgreSQL that takes every connection
// the server will give and keeps taking each one that frees up until it is
// released: a leaking neighbour, or a pooler gone wrong.
type Hog struct {
	dsn   string
	admin *sqlx.DB // one connection of the hog's, for its own queries

	mu    sync.Mutex
	conns []driver.Conn
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// NewHog opens raw lib/pq connections to the server of dsn (a key=value
// connection string) until the server refuses one, and keeps the server
// full until Release.
func NewHog(ctx context.Context, dsn string) (*Hog, error) {
	h := &Hog{dsn: dsn + " application_name=" + HogName, stop: make(chan struct{}), done: make(chan struct{})}
	admin, err := sqlx.Open("postgres", h.dsn)
	if err != nil {
		return nil, fmt.Errorf("hog: %w", err)
	}
	admin.SetMaxOpenConns(1)
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("hog: connect: %w", err)
	}
	h.admin = admin
	for h.take() {
	}
	if len(h.conns) == 0 {
		admin.Close()
		return nil, errors.New("hog: the server had no free connection to take")
	}
	go func() {
		defer close(h.done)
		for {
			select {
			case <-h.stop:
				return
			case <-time.After(2 * time.Millisecond):
				for h.take() {
				}
			}
		}
	}()
	return h, nil
}

// take opens one more connection; false once the server refuses.
func (h *Hog) take() bool {
	c, err := (&pq.Driver{}).Open(h.dsn)
	if err != nil {
		return false
	}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	return true
}

// EvictOthers closes every other client's connection from the server side
// (pg_terminate_backend), as a restarted pooler or an idle timeout would;
// the hog takes the freed slots straight away. It returns how many it
// closed.
func (h *Hog) EvictOthers(ctx context.Context) (int, error) {
	var n int
	err := h.admin.GetContext(ctx, &n, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND application_name <> $1 AND pid <> pg_backend_pid()`, HogName)
	if err != nil {
		return 0, fmt.Errorf("hog: evict other clients: %w", err)
	}
	return n, nil
}

// Held is how many connections the hog has.
func (h *Hog) Held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns) + 1
}

// Release closes every connection of the hog's. It may be called twice.
func (h *Hog) Release() {
	h.once.Do(func() {
		close(h.stop)
		<-h.done
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.conns {
			c.Close()
		}
		h.conns = nil
		h.admin.Close()
	})
}

// StoredByKey returns the seqs of the trades whose idempotency key matches
// the SQL LIKE pattern, by key: one seq per key when nothing traded twice.
func StoredByKey(ctx context.Context, db *sqlx.DB, like string) (map[string][]int64, error) {
	var rows []struct {
		Key string `db:"idempotency_key"`
		Seq int64  `db:"seq"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT idempotency_key, seq FROM trades WHERE idempotency_key LIKE $1`, like); err != nil {
		return nil, fmt.Errorf("read stored trades: %w", err)
	}
	by := map[string][]int64{}
	for _, r := range rows {
		by[r.Key] = append(by[r.Key], r.Seq)
	}
	return by, nil
}

// PositionMismatches counts the positions that are not the sum of their
// trades (shares, paid, received), including positions without trades and
// trades without positions: 0 when nothing was half-written.
func PositionMismatches(ctx context.Context, db *sqlx.DB) (int, error) {
	var n int
	err := db.GetContext(ctx, &n, `
		SELECT count(*) FROM positions p
		FULL JOIN (SELECT market_id, account_id, outcome,
		                  sum(CASE WHEN side = 'buy' THEN shares ELSE -shares END) AS shares,
		                  sum(CASE WHEN side = 'buy' THEN amount ELSE 0 END) AS paid,
		                  sum(CASE WHEN side = 'sell' THEN amount ELSE 0 END) AS received
		           FROM trades GROUP BY 1, 2, 3) t USING (market_id, account_id, outcome)
		WHERE p.shares IS DISTINCT FROM t.shares OR p.paid IS DISTINCT FROM t.paid OR p.received IS DISTINCT FROM t.received`)
	if err != nil {
		return 0, fmt.Errorf("compare positions with trades: %w", err)
	}
	return n, nil
}

// NetSpent returns what an account has paid for trades minus what it has
// received for them: its cash is its credit minus this.
func NetSpent(ctx context.Context, db *sqlx.DB, account int64) (string, error) {
	var s string
	err := db.GetContext(ctx, &s, `SELECT coalesce(sum(CASE WHEN side = 'buy' THEN amount ELSE -amount END), 0)::numeric(20,6)::text
		FROM trades WHERE account_id = $1`, account)
	if err != nil {
		return "", fmt.Errorf("net spent by account %d: %w", account, err)
	}
	return s, nil
}
