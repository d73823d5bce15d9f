package market

import (
	"time"

	"levee"
)

// A market's statuses. It opens, closes (at its closing time or when told),
// and ends resolved on one outcome or void; an open market's closing time
// may be extended. Resolved and void are final.
const (
	StatusOpen     = "open"
	StatusClosed   = "closed"
	StatusResolved = "resolved"
	StatusVoid     = "void"
)

// EffectiveStatus is status as seen at now: an open market past its
// closing time takes no more orders even before anyone records it closed.
func EffectiveStatus(status string, closesAt, now time.Time) string {
	if status == StatusOpen && !now.Before(closesAt) {
		return StatusClosed
	}
	return status
}

// Final reports whether status is one a market never leaves.
func Final(status string) bool { return status == StatusResolved || status == StatusVoid }

// Transition checks that a market in status from may move to status to
// (StatusOpen: its closing time is extended). Errors: ECONFLICT.
func Transition(from, to string) error {
	switch {
	case to == StatusOpen && from != StatusOpen:
		return levee.Errorf(levee.ECONFLICT, "the market is %s; only an open market can be extended", from)
	case Final(from):
		return levee.Errorf(levee.ECONFLICT, "the market is already %s", from)
	case to == StatusClosed && from == StatusClosed:
		return levee.Errorf(levee.ECONFLICT, "the market is already closed")
	}
	return nil
}
