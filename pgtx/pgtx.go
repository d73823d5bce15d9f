// Package pgtx runs PostgreSQL transactions the way every Levee store needs:
// retried when PostgreSQL aborts them for a deadlock or a serialization
// failure, rolled back on any error, and classified into coded errors.
package pgtx

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
)

// MaxAttempts bounds how often a transaction is retried.
const MaxAttempts = 10

// Run calls fn inside a transaction and commits it. When PostgreSQL aborts
// the transaction for a deadlock (40P01) or serialization failure (40001),
// it retries fn from scratch after a short random backoff, so fn must have no
// side effects outside the transaction.
func Run(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	var err error
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		if attempt > 0 {
			backoff := time.Duration(rand.IntN(1<<min(attempt, 6))+1) * time.Millisecond
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
		}
		err = runOnce(ctx, db, fn)
		if !Retryable(err) {
			return err
		}
	}
	return fmt.Errorf("transaction still conflicting after %d attempts: %w", MaxAttempts, err)
}

func runOnce(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return Unavailable(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return Unavailable(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// Retryable reports whether err is a deadlock or serialization failure.
func Retryable(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "40P01" || pe.Code == "40001"
	}
	return false
}

// IsUniqueViolation reports whether err is a unique-constraint violation,
// optionally of the named constraint.
func IsUniqueViolation(err error, constraint string) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "23505" && (constraint == "" || pe.Constraint == constraint)
}

// IsCheckViolation reports whether err violates the named check constraint.
func IsCheckViolation(err error, constraint string) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "23514" && (constraint == "" || pe.Constraint == constraint)
}

// Unavailable marks connection-level failures (database down, connection
// refused, broken pipe) and a server out of room (connections, disk,
// memory) as EUNAVAILABLE so callers answer 503 and retry, leaving every
// other error as it is.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P0x: server shutting down;
		// class 53: insufficient resources (disk full, out of memory, too
		// many connections), which pass once the server has room again.
		if pe.Code.Class() == "08" || pe.Code.Class() == "53" || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" {
			return &unavailable{err}
		}
		return err
	}
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) || isNetError(err) {
		return &unavailable{err}
	}
	return err
}

type unavailable struct{ err error }

func (u *unavailable) Error() string { return "database unavailable: " + u.err.Error() }
func (u *unavailable) Unwrap() []error {
	return []error{u.err, levee.Errorf(levee.EUNAVAILABLE, "the database is unavailable; try again shortly")}
}
