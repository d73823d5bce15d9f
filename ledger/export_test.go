package ledger

import "context"

// RefreshVerified extends the cached verification now, as Verified does once
// its result is over a second old, so tests need not wait.
func (l *Ledger) RefreshVerified(ctx context.Context) error {
	l.verified.refresh.Lock()
	defer l.verified.refresh.Unlock()
	return l.refreshVerified(ctx, false)
}
