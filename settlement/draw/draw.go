// Package draw is the jury draw, exactly as docs/juries.md states it so that
// anyone can recompute it from the published pool, beacon and seed: pure
// functions, no database, shared by settlement (which draws) and
// `levee jury verify` (which recomputes).
package draw

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"

	"levee"
)

// A pool's members are strings: the pseudonyms of the residents in it
// (docs/privacy.md), or, in draws made before pseudonyms, account ids in
// decimal. The draw is the same either way: it orders, hashes and picks the
// spellings, so a draw published with ids still recomputes as it did.

// SortPool puts members in the draw's canonical order: byte order ("10"
// before "9"), without duplicates.
func SortPool(members []string) []string {
	out := slices.Clone(members)
	slices.Sort(out)
	return slices.Compact(out)
}

// IDs spells account ids as the members of a draw made before pseudonyms.
func IDs(ids []int64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = levee.FormatID(id)
	}
	return out
}

// PoolHash is SHA-256 of the pool's members, in canonical order, joined
// with "\n".
func PoolHash(pool []string) []byte {
	h := sha256.New()
	for i, m := range pool {
		if i > 0 {
			h.Write([]byte{'\n'})
		}
		h.Write([]byte(m))
	}
	return h.Sum(nil)
}

// Seed is SHA-256(pool_hash ‖ case id in decimal ‖ beacon), the bytes
// concatenated as they are (32 + len(decimal) + 32).
func Seed(poolHash []byte, caseID int64, beacon []byte) []byte {
	h := sha256.New()
	h.Write(poolHash)
	h.Write([]byte(levee.FormatID(caseID)))
	h.Write(beacon)
	return h.Sum(nil)
}

// Stratum is one sub-list of a stratified pool: the residents of one
// district, or everyone outside the affected districts.
type Stratum struct {
	Key string `json:"key"` // "district:<id>" or "outside"
	// IDs are the stratum's members in canonical order: pseudonyms, or
	// account ids (as decimal strings) in draws made before pseudonyms.
	IDs Members `json:"ids"`
	// Share, when set, fixes the stratum's share of the seats (the outside
	// stratum); the other strata share the rest in proportion to their size.
	Share float64 `json:"share,omitempty"`
}

// Drawer draws jurors one after another from a seeded pool. Replacements
// continue the same sequence: call Next again.
type Drawer struct {
	strata []*stratumDraw
}

type stratumDraw struct {
	key       string
	share     float64
	seed      []byte
	remaining []string
	counter   uint32
}

// NewDrawer starts a draw. With one stratum the draw uses seed itself; with
// several, stratum s draws from its own sub-list with the seed
// SHA-256(seed ‖ s.Key).
func NewDrawer(seed []byte, strata []Stratum) *Drawer {
	d := &Drawer{}
	for _, s := range strata {
		sd := &stratumDraw{key: s.Key, share: s.Share, seed: seed, remaining: slices.Clone(s.IDs)}
		if len(strata) > 1 {
			h := sha256.Sum256(append(slices.Clone(seed), s.Key...))
			sd.seed = h[:]
		}
		d.strata = append(d.strata, sd)
	}
	return d
}

// Remaining is how many accounts can still be drawn.
func (d *Drawer) Remaining() int {
	n := 0
	for _, s := range d.strata {
		n += len(s.remaining)
	}
	return n
}

// Next draws k more jurors (fewer if the pool runs out), stratum by stratum
// in the order the strata were given, each stratum's jurors in draw order.
func (d *Drawer) Next(k int) []string {
	seats := d.allocate(k)
	var out []string
	for i, s := range d.strata {
		for range seats[i] {
			out = append(out, s.pick())
		}
	}
	return out
}

// pick is one step of the draw: h = SHA-256(seed ‖ i as 4-byte big-endian),
// read as a 256-bit big-endian integer, picks remaining[h mod len], which is
// deleted, keeping the order of the rest.
func (s *stratumDraw) pick() string {
	var buf [4]byte
	binary.BigEndian.PutUint32(buf[:], s.counter)
	s.counter++
	h := sha256.Sum256(append(slices.Clone(s.seed), buf[:]...))
	n := new(big.Int).SetBytes(h[:])
	i := int(n.Mod(n, big.NewInt(int64(len(s.remaining)))).Int64())
	id := s.remaining[i]
	s.remaining = slices.Delete(s.remaining, i, i+1)
	return id
}

// allocate splits k seats among the strata: a stratum with a fixed Share
// gets floor(k × share) seats (share in exact millionths); the rest go to
// the others in proportion to their remaining sizes by largest remainder,
// ties to the earlier stratum. No stratum gets more seats than it has
// people; seats it cannot fill go to the others the same way, and seats the
// others cannot fill go back to the fixed-share strata.
func (d *Drawer) allocate(k int) []int {
	seats := make([]int, len(d.strata))
	k = min(k, d.Remaining())
	left := k
	for i, s := range d.strata {
		if s.share > 0 {
			seats[i] = min(shareSeats(k, s.share), len(s.remaining))
			left -= seats[i]
		}
	}
	for left > 0 {
		total := 0
		for i, s := range d.strata {
			if s.share == 0 {
				total += len(s.remaining) - seats[i]
			}
		}
		if total == 0 {
			break
		}
		// Largest remainder over what is still free in each stratum.
		type rem struct{ i, num int }
		var rems []rem
		given := 0
		for i, s := range d.strata {
			free := len(s.remaining) - seats[i]
			if s.share > 0 || free == 0 {
				continue
			}
			q := min(left*free/total, free)
			seats[i] += q
			given += q
			rems = append(rems, rem{i, left*free - q*total})
		}
		slices.SortStableFunc(rems, func(a, b rem) int { return b.num - a.num })
		for _, r := range rems {
			if given < left && seats[r.i] < len(d.strata[r.i].remaining) {
				seats[r.i]++
				given++
			}
		}
		if given == 0 {
			break
		}
		left -= given
	}
	// The other strata ran out: the fixed-share strata fill what is left,
	// so a draw always seats min(k, pool).
	for i, s := range d.strata {
		if s.share > 0 && left > 0 {
			more := min(left, len(s.remaining)-seats[i])
			seats[i] += more
			left -= more
		}
	}
	return seats
}

// shareSeats is floor(k × share) computed exactly: the share is a count of
// millionths (as the case stores it), so 100 × 0.29 is 29, not the 28 that
// float64 arithmetic gives.
func shareSeats(k int, share float64) int {
	return int(int64(k) * int64(math.Round(share*1e6)) / 1e6)
}

// Members is a stratum's member list. It reads the draws stored before
// pseudonyms, whose ids were JSON numbers, as their decimal spellings.
type Members []string

// UnmarshalJSON reads an array of strings or of whole numbers.
func (m *Members) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Members, len(raw))
	for i, r := range raw {
		if len(r) > 0 && r[0] == '"' {
			if err := json.Unmarshal(r, &out[i]); err != nil {
				return err
			}
			continue
		}
		var n json.Number
		if err := json.Unmarshal(r, &n); err != nil {
			return err
		}
		id, err := n.Int64()
		if err != nil {
			return fmt.Errorf("stratum member %s: %w", r, err)
		}
		out[i] = levee.FormatID(id)
	}
	*m = out
	return nil
}

// BallotCommitment is what a juror commits: SHA-256(verdict ‖ ":" ‖ salt)
// in lower-case hex.
func BallotCommitment(verdict, salt string) string {
	h := sha256.Sum256([]byte(verdict + ":" + salt))
	return hex.EncodeToString(h[:])
}
