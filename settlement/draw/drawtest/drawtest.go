// Package drawtest is a second, deliberately simple implementation of the
// jury draw, written from docs/juries.md rather than from package draw, for
// tests to compare the two on the same input. It is not used outside tests.
package drawtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/big"
	"sort"
	"strconv"

	"levee/settlement/draw"
)

// The reference below is written from docs/juries.md, not from draw.go: it
// works on decimal strings, sorts with sort.Strings, and allocates seats
// with exact rationals, so that a shared mistake is unlikely.

// PoolHash is SHA-256 of the ids joined with "\n".
func PoolHash(ids []string) []byte {
	var b bytes.Buffer
	for i, id := range ids {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(id)
	}
	h := sha256.Sum256(b.Bytes())
	return h[:]
}

// stratum is one sub-list being drawn from.
type stratum struct {
	key       string
	millionth int64 // fixed share in millionths; 0 for a proportional stratum
	seed      []byte
	remaining []string
	counter   uint32
}

func (s *stratum) pick() string {
	msg := append(append([]byte{}, s.seed...), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(msg[len(msg)-4:], s.counter)
	s.counter++
	h := sha256.Sum256(msg)
	var n big.Int
	n.SetBytes(h[:])
	n.Mod(&n, big.NewInt(int64(len(s.remaining))))
	i := int(n.Int64())
	id := s.remaining[i]
	s.remaining = append(s.remaining[:i:i], s.remaining[i+1:]...)
	return id
}

// allocate splits k seats as docs/juries.md says.
func allocate(k int, strata []*stratum) []int {
	seats := make([]int, len(strata))
	size := 0
	for _, s := range strata {
		size += len(s.remaining)
	}
	k = min(k, size)
	left := k
	for i, s := range strata {
		if s.millionth > 0 {
			seats[i] = min(int(int64(k)*s.millionth/1_000_000), len(s.remaining))
			left -= seats[i]
		}
	}
	total := 0
	for _, s := range strata {
		if s.millionth == 0 {
			total += len(s.remaining)
		}
	}
	if left >= total {
		for i, s := range strata {
			if s.millionth == 0 {
				seats[i] = len(s.remaining)
			}
		}
		left -= total
		for i, s := range strata { // the fixed-share strata take the rest
			if s.millionth > 0 {
				more := min(left, len(s.remaining)-seats[i])
				seats[i] += more
				left -= more
			}
		}
		return seats
	}
	// Largest remainder over exact quotas left × size / total.
	type cand struct {
		i   int
		rem *big.Rat
	}
	var cands []cand
	given := 0
	for i, s := range strata {
		if s.millionth > 0 || len(s.remaining) == 0 {
			continue
		}
		q := big.NewRat(int64(left*len(s.remaining)), int64(total))
		fl := new(big.Int).Quo(q.Num(), q.Denom())
		seats[i] = int(fl.Int64())
		given += seats[i]
		cands = append(cands, cand{i, new(big.Rat).Sub(q, new(big.Rat).SetInt(fl))})
	}
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].rem.Cmp(cands[b].rem) > 0 })
	for _, c := range cands[:left-given] {
		seats[c.i]++
	}
	return seats
}

// Draw draws rounds of seats from strata.
func Draw(seed []byte, strata []draw.Stratum, rounds []int) []string {
	var rs []*stratum
	for _, st := range strata {
		r := &stratum{key: st.Key, seed: seed}
		r.remaining = append(r.remaining, st.IDs...)
		sort.Strings(r.remaining)
		if len(strata) > 1 {
			h := sha256.Sum256(append(append([]byte{}, seed...), st.Key...))
			r.seed = h[:]
		}
		if st.Share > 0 {
			r.millionth = int64(st.Share*1e6 + 0.5)
		}
		rs = append(rs, r)
	}
	var out []string
	for _, k := range rounds {
		seats := allocate(k, rs)
		for i, s := range rs {
			for range seats[i] {
				out = append(out, s.pick())
			}
		}
	}
	return out
}

// Strs spells ids the way published draws do: decimal strings.
func Strs(ids []int64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatInt(id, 10)
	}
	return out
}
