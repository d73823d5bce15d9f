package ledger

import (
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"levee"
)

// MaxPostings bounds the postings of one entry.
const MaxPostings = 1000

// MaxBatch bounds the transfers of one PostBatch call, so one call cannot
// hold the head lock for minutes or build statements of unbounded size.
const MaxBatch = 50_000

var (
	kindRe    = regexp.MustCompile(`^[a-z0-9_.:-]{1,64}$`)
	refRe     = regexp.MustCompile(`^[a-z0-9_.:/-]{0,200}$`)
	accountRe = regexp.MustCompile(`^[a-z0-9_.:-]{1,100}$`)
)

// validKey reports whether key matches accountRe. Hand-written because it
// runs for every posting of every batch.
func validKey(key string) bool {
	if len(key) == 0 || len(key) > 100 {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// prepare validates t and returns the entry it would append (without seq and
// hashes), with At defaulted to now and truncated to microseconds in UTC, as
// stored and hashed. Errors are EINVALID and name the offending field.
func prepare(t Transfer, now time.Time) (Entry, error) {
	if !kindRe.MatchString(t.Kind) {
		return Entry{}, levee.Invalid("kind", "kind must be 1-64 characters of a-z, 0-9, '_', '.', ':' or '-'")
	}
	if !refRe.MatchString(t.Ref) {
		return Entry{}, levee.Invalid("ref", "ref must be at most 200 characters of a-z, 0-9, '_', '.', ':', '/' or '-'")
	}
	if k := t.IdempotencyKey; len(k) > 200 || !utf8.ValidString(k) || strings.IndexByte(k, 0) >= 0 {
		return Entry{}, levee.Invalid("idempotency_key", "idempotency key must be at most 200 bytes of UTF-8 text")
	}
	at := t.At
	if at.IsZero() {
		at = now
	}
	// Negative unix times would need a sign in the canonical encoding; no
	// entry predates the ledger anyway.
	if at.Before(time.Unix(0, 0)) || at.Year() > 9999 {
		return Entry{}, levee.Invalid("at", "time must be between 1970 and 9999")
	}
	at = at.UTC().Truncate(time.Microsecond)

	if len(t.Postings) < 2 {
		return Entry{}, levee.Invalid("postings", "an entry needs at least two postings")
	}
	if len(t.Postings) > MaxPostings {
		return Entry{}, levee.Invalid("postings", "an entry may have at most %d postings", MaxPostings)
	}
	var sum levee.Micros
	for i, p := range t.Postings {
		if !validKey(p.Account) {
			return Entry{}, levee.Invalid(postingField(i, "account"), "account key %q is not valid", p.Account)
		}
		if p.Amount == 0 {
			return Entry{}, levee.Invalid(postingField(i, "amount"), "amount must not be zero")
		}
		if p.Amount > levee.MaxMoney || p.Amount < -levee.MaxMoney {
			return Entry{}, levee.Invalid(postingField(i, "amount"), "amount is too large")
		}
		var ok bool
		if sum, ok = addMicros(sum, p.Amount); !ok {
			return Entry{}, levee.Invalid("postings", "postings are too large to add up")
		}
	}
	if sum != 0 {
		return Entry{}, levee.Invalid("postings", "postings must sum to zero, not %s", sum)
	}
	return Entry{
		At:       at,
		Kind:     t.Kind,
		Ref:      t.Ref,
		Postings: append([]Posting(nil), t.Postings...),
	}, nil
}

func postingField(i int, name string) string {
	return "postings[" + strconv.Itoa(i) + "]." + name
}

// addMicros returns a+b and whether it did not overflow. Amounts are bounded
// by levee.MaxMoney, but a dozen of them can still exceed int64, and a
// wrapped sum could make an unbalanced entry look balanced.
func addMicros(a, b levee.Micros) (levee.Micros, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}
