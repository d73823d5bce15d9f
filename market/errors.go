package market

import "levee"

// The errors below refuse a market definition or a stored state. Each is an
// *levee.Error with code EINVALID and a field, so the web layer can report it
// as it is, and callers can still test for it with errors.Is.
var (
	// ErrTooFewOutcomes refuses a market with fewer than MinOutcomes outcomes.
	ErrTooFewOutcomes = levee.Invalid("outcomes", "a market needs at least 2 outcomes")
	// ErrTooManyOutcomes refuses a market with more than MaxOutcomes outcomes.
	ErrTooManyOutcomes = levee.Invalid("outcomes", "a market can have at most 256 outcomes")
	// ErrBadLiquidity refuses a liquidity parameter b outside [MinLiquidity, MaxLiquidity].
	ErrBadLiquidity = levee.Invalid("liquidity", "liquidity must be between 1 and 10000000")
	// ErrBadProbabilities refuses initial probabilities that are not all
	// strictly between 0 and 1 or do not sum to exactly 1.000000.
	ErrBadProbabilities = levee.Invalid("probabilities", "probabilities must each be above 0 and below 1 and sum to exactly 1")
	// ErrBadQuantity refuses a stored share vector with an entry beyond ±MaxShares.
	ErrBadQuantity = levee.Invalid("q", "outstanding shares must be within ±1000000000")
)
