package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"levee/pgtx"
)

// verifyFresh is how old a cached verification may be and still be served
// without looking for newer entries.
const verifyFresh = time.Second

// Verified is a verification of the ledger and how old it is. It covers the
// chain through ThroughSeq as of VerifiedAt; the entries up to the last full
// rescan (FullScanAt) were checked from the first entry, those after it one
// refresh at a time, each continuing the hash chain and the trial balance
// from where the previous one stopped.
type Verified struct {
	Report
	VerifiedAt time.Time `json:"verified_at"`
	AgeSeconds float64   `json:"age_seconds"`
	ThroughSeq int64     `json:"through_seq"`
	FullScanAt time.Time `json:"full_scan_at"`
}

// verifyCache is the state Verified extends. refresh is held by whoever is
// extending or rescanning (one at a time) and guards state; mu guards
// result. Lock order: refresh, then mu.
type verifyCache struct {
	refresh sync.Mutex
	state   *verifier
	fullAt  time.Time

	mu     sync.Mutex
	result *Verified
}

func (c *verifyCache) get() (Verified, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.result == nil {
		return Verified{}, false
	}
	return *c.result, true
}

func (c *verifyCache) set(v Verified) {
	c.mu.Lock()
	c.result = &v
	c.mu.Unlock()
}

// aged fills in AgeSeconds as of now.
func (v Verified) aged(now time.Time) Verified {
	v.AgeSeconds = max(now.Sub(v.VerifiedAt).Round(time.Millisecond).Seconds(), 0)
	return v
}

// Verified returns a verification of the ledger for public readers without
// recomputing the whole chain per call: a result under a second old is
// served as is; an older one is extended with only the entries appended
// since (their hashes, their balances and the trial balance) by one caller
// while the others are served the result they would have waited for, with
// its age. Only the first call, before any result exists, reads the whole
// ledger. Tampering with entries already verified is found by the full
// rescans (Rescan, RescanEvery); Verify is the full recompute on demand.
// Errors: EUNAVAILABLE when there is no result yet and the database is down.
func (l *Ledger) Verified(ctx context.Context) (Verified, error) {
	c := &l.verified
	r, ok := c.get()
	if ok && time.Since(r.VerifiedAt) < verifyFresh {
		return r.aged(time.Now()), nil
	}
	if ok {
		if !c.refresh.TryLock() {
			return r.aged(time.Now()), nil // someone is refreshing it
		}
	} else {
		c.refresh.Lock()
	}
	defer c.refresh.Unlock()
	if r2, ok2 := c.get(); ok2 && time.Since(r2.VerifiedAt) < verifyFresh {
		return r2.aged(time.Now()), nil // refreshed while we waited
	}
	if err := l.refreshVerified(ctx, false); err != nil {
		if ok {
			return r.aged(time.Now()), nil // the last result, with its age, rather than nothing
		}
		return Verified{}, err
	}
	r, _ = c.get()
	return r.aged(time.Now()), nil
}

// Rescan verifies the whole ledger from the first entry and makes the
// result the base that Verified extends.
func (l *Ledger) Rescan(ctx context.Context) error {
	l.verified.refresh.Lock()
	defer l.verified.refresh.Unlock()
	return l.refreshVerified(ctx, true)
}

// RescanEvery runs Rescan now and then every interval until ctx ends, so that
// what Verified extends is rechecked from the start on a schedule.
func (l *Ledger) RescanEvery(ctx context.Context, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		start := time.Now()
		if err := l.Rescan(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("ledger rescan", slog.Any("error", err))
		} else if err == nil {
			r, _ := l.verified.get()
			level := slog.LevelInfo
			if !r.OK {
				level = slog.LevelError
			}
			logger.Log(ctx, level, "ledger rescan", slog.Bool("ok", r.OK), slog.Int64("through_seq", r.ThroughSeq),
				slog.String("problem", r.Problem), slog.Duration("elapsed", time.Since(start)))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refreshVerified brings the cached verification up to the current head:
// from the first entry when full (or when there is nothing to extend),
// otherwise from the last entry verified. On an error the state is dropped,
// so the next refresh starts again from the first entry. The caller holds
// l.verified.refresh.
func (l *Ledger) refreshVerified(ctx context.Context, full bool) error {
	c := &l.verified
	if !full && c.state != nil && !c.state.OK {
		return nil // a broken chain stays broken until a rescan says otherwise
	}
	// As in Verify: entries and balances from one snapshot.
	tx, err := l.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("verify ledger: %w", pgtx.Unavailable(err))
	}
	defer tx.Rollback()
	now := time.Now()
	v := c.state
	if full || v == nil {
		c.state = nil
		if v, err = verifyAll(ctx, tx); err != nil {
			return fmt.Errorf("verify ledger: %w", pgtx.Unavailable(err))
		}
		c.fullAt = now
	} else {
		c.state = nil // v is changed in place: on an error it is no base
		touched, err := v.extend(ctx, tx)
		if err == nil {
			err = v.checkHead(ctx, tx)
		}
		if err == nil {
			err = v.checkTouched(ctx, tx, touched)
		}
		if err != nil {
			return fmt.Errorf("verify ledger: %w", pgtx.Unavailable(err))
		}
		v.OK = v.Problem == ""
	}
	c.state = v
	c.set(Verified{Report: v.Report, VerifiedAt: now, ThroughSeq: v.last, FullScanAt: c.fullAt})
	return nil
}
