package input

import "math"

// The ranges of PostgreSQL's integer columns: a number parsed at the edge
// into its column's range never reaches the database as "integer out of
// range".
const (
	MaxBigint   = math.MaxInt64 // bigint: every id
	MaxInteger  = math.MaxInt32 // integer: milestone numbers, counts
	MaxSmallint = math.MaxInt16 // smallint: outcome indexes
)

// Whole parses s as a whole number from lo to hi (lo >= 0) written the one
// canonical way: ASCII digits only, without sign, spaces or leading zeros
// ("0" itself excepted). So /tokens/7 names token 7 and /tokens/007,
// /tokens/+7 and /tokens/7%20 name nothing, rather than each spelling
// reaching the same row by a different road.
func Whole(s string, lo, hi int64) (int64, bool) {
	if s == "" || len(s) > 19 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0') // 19 digits fit in a uint64
	}
	if v > math.MaxInt64 || int64(v) < lo || int64(v) > hi {
		return 0, false
	}
	return int64(v), true
}
