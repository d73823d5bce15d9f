package draw_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"levee/settlement/draw"
	"levee/settlement/draw/drawtest"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSortPool(t *testing.T) {
	for _, tc := range []struct {
		in, want []int64
	}{
		{nil, []int64{}},
		{[]int64{9, 10}, []int64{10, 9}},
		{[]int64{2, 1, 100, 11, 10, 1}, []int64{1, 10, 100, 11, 2}},
		{[]int64{42, 42, 42}, []int64{42}},
		{[]int64{9, 89, 899, 9000, 8}, []int64{8, 89, 899, 9, 9000}},
	} {
		got := draw.SortPool(draw.IDs(tc.in))
		if len(got) != len(tc.want) || (len(got) > 0 && !slices.Equal(got, draw.IDs(tc.want))) {
			t.Errorf("SortPool(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	in := []string{"3", "2", "1"}
	draw.SortPool(in)
	if !slices.Equal(in, []string{"3", "2", "1"}) {
		t.Errorf("SortPool changed its argument: %v", in)
	}
}

// TestDrawVectors pins the hashes to values computed with Python's hashlib
// (they are the worked example of docs/juries.md).
func TestDrawVectors(t *testing.T) {
	for _, tc := range []struct {
		pool []string
		hash string
	}{
		{nil, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{[]string{"1", "2", "3"}, "ad53e8806d17c82d38902738d1d47d96bddaade27513466322efa0f793149dd0"},
		{draw.SortPool(draw.IDs([]int64{3, 4, 5, 6, 7, 8, 9, 10, 11, 12})), "e63f4c89b3db62c79050beb26faae08668389a30188b80699bcbe8fd54c7a5c7"},
	} {
		if got := hex.EncodeToString(draw.PoolHash(tc.pool)); got != tc.hash {
			t.Errorf("PoolHash(%v) = %s, want %s", tc.pool, got, tc.hash)
		}
	}
	pool := draw.SortPool(draw.IDs([]int64{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}))
	beacon := sha256.Sum256([]byte("levee example beacon"))
	if hex.EncodeToString(beacon[:]) != "e6cff5a6b0013b6a1c7c6b41ca507415c6c2eff37242d9c432bd46a9ab900e04" {
		t.Fatal("beacon")
	}
	seed := draw.Seed(draw.PoolHash(pool), 7, beacon[:])
	if got := hex.EncodeToString(seed); got != "5eeb9382ae383286325cfe4bc48a4866e0c54ddec5df0ecf00510e8c321df385" {
		t.Fatalf("Seed = %s", got)
	}
	d := draw.NewDrawer(seed, []draw.Stratum{{Key: "affected", IDs: pool}})
	if got := append(d.Next(3), d.Next(1)...); !slices.Equal(got, []string{"3", "12", "6", "4"}) {
		t.Fatalf("worked example drew %v, want [3 12 6 4]", got)
	}
	if d.Remaining() != 6 {
		t.Fatalf("remaining %d", d.Remaining())
	}
}

func TestBallotCommitment(t *testing.T) {
	for _, tc := range []struct{ verdict, salt, want string }{
		{"accept", "saltsalt", "b9c6670e6418457498d68c61b39ec1e680d5997f9544599465c1775e9483d001"},
		{"", "", hex.EncodeToString(func() []byte { h := sha256.Sum256([]byte(":")); return h[:] }())},
		{"yes", "a:b", hex.EncodeToString(func() []byte { h := sha256.Sum256([]byte("yes:a:b")); return h[:] }())},
	} {
		if got := draw.BallotCommitment(tc.verdict, tc.salt); got != tc.want {
			t.Errorf("BallotCommitment(%q, %q) = %s, want %s", tc.verdict, tc.salt, got, tc.want)
		}
	}
	if draw.BallotCommitment("yes", "pepper-1") == draw.BallotCommitment("no", "pepper-1") {
		t.Fatal("the verdict does not change the commitment")
	}
}

// randomStrata makes 1-4 strata of distinct random ids; with outside set,
// the last is an "outside" stratum with a fixed share in millionths.
func randomStrata(r *rand.Rand, outside bool) []draw.Stratum {
	used := map[int64]bool{}
	n := 1 + r.IntN(4)
	var strata []draw.Stratum
	for s := range n {
		var ids []int64
		for range r.IntN(12) {
			id := 1 + r.Int64N(3000)
			if !used[id] {
				used[id] = true
				ids = append(ids, id)
			}
		}
		st := draw.Stratum{Key: "district:" + strconv.Itoa(s+1), IDs: draw.SortPool(draw.IDs(ids))}
		if outside && s == n-1 && n > 1 {
			st.Key = "outside"
			st.Share = float64(1+r.IntN(600000)) / 1e6
		}
		strata = append(strata, st)
	}
	return strata
}

// TestDrawMatchesReference checks Drawer against the reference on random
// pools, strata, outside shares and sequences of rounds.
func TestDrawMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for iter := range 3000 {
		strata := randomStrata(r, iter%2 == 1)
		seed := sha256.Sum256([]byte(fmt.Sprint("seed", iter)))
		rounds := make([]int, 1+r.IntN(3))
		for i := range rounds {
			rounds[i] = r.IntN(14)
		}
		want := drawtest.Draw(seed[:], strata, rounds)
		d := draw.NewDrawer(seed[:], strata)
		var got []string
		size := d.Remaining()
		for _, k := range rounds {
			before := d.Remaining()
			next := d.Next(k)
			if len(next) != min(k, before) {
				t.Fatalf("iter %d: Next(%d) with %d left drew %d (strata %+v)", iter, k, before, len(next), strata)
			}
			got = append(got, next...)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("iter %d: strata %+v rounds %v:\n drawer    %v\n reference %v", iter, strata, rounds, got, want)
		}
		// Nobody is drawn twice, and everyone drawn was in the pool.
		seen := map[string]bool{}
		for _, id := range got {
			in := slices.ContainsFunc(strata, func(s draw.Stratum) bool { return slices.Contains(s.IDs, id) })
			if seen[id] || !in {
				t.Fatalf("iter %d: %s drawn twice or from outside the pool", iter, id)
			}
			seen[id] = true
		}
		if d.Remaining() != size-len(got) {
			t.Fatalf("iter %d: remaining %d after %d of %d", iter, d.Remaining(), len(got), size)
		}
	}
}

// TestDrawAllocation checks the seats per stratum of one Next: they sum to
// min(k, pool), never exceed a stratum's size, give the outside stratum
// floor(k × share) exactly when it has the people and the others could
// take the rest, and split the rest by largest remainder.
func TestDrawAllocation(t *testing.T) {
	count := func(strata []draw.Stratum, drawn []string) []int {
		out := make([]int, len(strata))
		for _, id := range drawn {
			for i, s := range strata {
				if slices.Contains(s.IDs, id) {
					out[i]++
				}
			}
		}
		return out
	}
	ids := func(from, n int64) []string {
		var out []int64
		for i := range n {
			out = append(out, from+i)
		}
		return draw.SortPool(draw.IDs(out))
	}
	seed := sha256.Sum256([]byte("allocation"))
	for _, tc := range []struct {
		name   string
		strata []draw.Stratum
		k      int
		want   []int
	}{
		{"proportional", []draw.Stratum{{Key: "district:1", IDs: ids(100, 30)}, {Key: "district:2", IDs: ids(200, 10)}}, 4, []int{3, 1}},
		{"largest remainder", []draw.Stratum{{Key: "district:1", IDs: ids(100, 5)}, {Key: "district:2", IDs: ids(200, 3)}, {Key: "district:3", IDs: ids(300, 2)}}, 5, []int{3, 1, 1}},
		{"tie to the earlier stratum", []draw.Stratum{{Key: "district:1", IDs: ids(100, 4)}, {Key: "district:2", IDs: ids(200, 4)}}, 3, []int{2, 1}},
		{"small stratum capped", []draw.Stratum{{Key: "district:1", IDs: ids(100, 1)}, {Key: "district:2", IDs: ids(200, 20)}}, 11, []int{1, 10}},
		{"outside share exact", []draw.Stratum{{Key: "district:1", IDs: ids(100, 200)}, {Key: "outside", IDs: ids(1000, 200), Share: 0.29}}, 100, []int{71, 29}},
		{"outside share floors", []draw.Stratum{{Key: "district:1", IDs: ids(100, 20)}, {Key: "outside", IDs: ids(1000, 20), Share: 0.2}}, 9, []int{8, 1}},
		{"outside short", []draw.Stratum{{Key: "district:1", IDs: ids(100, 20)}, {Key: "outside", IDs: ids(1000, 1), Share: 0.5}}, 9, []int{8, 1}},
		{"districts short, outside fills", []draw.Stratum{{Key: "district:1", IDs: ids(100, 2)}, {Key: "outside", IDs: ids(1000, 50), Share: 0.2}}, 5, []int{2, 3}},
		{"pool smaller than k", []draw.Stratum{{Key: "district:1", IDs: ids(100, 2)}, {Key: "district:2", IDs: ids(200, 1)}}, 5, []int{2, 1}},
		{"empty outside", []draw.Stratum{{Key: "affected", IDs: ids(100, 7)}, {Key: "outside", Share: 0.3}}, 5, []int{5, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := count(tc.strata, draw.NewDrawer(seed[:], tc.strata).Next(tc.k))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("seats %v, want %v", got, tc.want)
			}
		})
	}

	// Property: over random strata, sums and caps hold for every Next.
	r := rand.New(rand.NewPCG(3, 5))
	for iter := range 2000 {
		strata := randomStrata(r, iter%3 != 0)
		d := draw.NewDrawer(seed[:], strata)
		taken := make([]int, len(strata))
		for range 3 {
			k := r.IntN(20)
			before := d.Remaining()
			seats := count(strata, d.Next(k))
			sum := 0
			for i, n := range seats {
				sum += n
				taken[i] += n
				if taken[i] > len(strata[i].IDs) {
					t.Fatalf("iter %d: stratum %d gave %d of %d", iter, i, taken[i], len(strata[i].IDs))
				}
			}
			if sum != min(k, before) {
				t.Fatalf("iter %d: %d seats for k=%d and %d left (strata %+v)", iter, sum, k, before, strata)
			}
		}
	}
}

// TestDrawContinuation: for one stratum, drawing k1 and then k2 (a
// replacement round continuing the sequence) is one draw of k1+k2.
func TestDrawContinuation(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 500 {
		var ids []int64
		for range 1 + r.IntN(40) {
			ids = append(ids, 1+r.Int64N(1000))
		}
		pool := draw.SortPool(draw.IDs(ids))
		seed := draw.Seed(draw.PoolHash(pool), int64(iter+1), []byte{byte(iter)})
		st := []draw.Stratum{{Key: "affected", IDs: pool}}
		k1, k2 := r.IntN(10), r.IntN(10)
		a := draw.NewDrawer(seed, st)
		split := append(a.Next(k1), a.Next(k2)...)
		whole := draw.NewDrawer(seed, st).Next(k1 + k2)
		if !slices.Equal(split, whole) {
			t.Fatalf("iter %d: Next(%d)+Next(%d) = %v, Next(%d) = %v", iter, k1, k2, split, k1+k2, whole)
		}
		if want := drawtest.Draw(seed, st, []int{k1 + k2}); !slices.Equal(whole, want) {
			t.Fatalf("iter %d: drew %v, reference %v", iter, whole, want)
		}
		// The unstratified draw is the plain sequence of docs/juries.md
		// with the seed itself, whatever the stratum's key.
		other := draw.NewDrawer(seed, []draw.Stratum{{Key: "something else", IDs: pool}}).Next(k1 + k2)
		if !slices.Equal(other, whole) {
			t.Fatalf("iter %d: the key of a lone stratum changed the draw", iter)
		}
		// PoolHash agrees with the reference over the string ids.
		if !bytes.Equal(draw.PoolHash(pool), drawtest.PoolHash(pool)) {
			t.Fatalf("iter %d: pool hash", iter)
		}
	}
}

func TestDrawEmptyPool(t *testing.T) {
	d := draw.NewDrawer([]byte("seed"), []draw.Stratum{{Key: "affected"}})
	if got := d.Next(5); len(got) != 0 || d.Remaining() != 0 {
		t.Fatalf("empty pool drew %v", got)
	}
	if got := draw.NewDrawer([]byte("seed"), nil).Next(3); len(got) != 0 {
		t.Fatalf("no strata drew %v", got)
	}
}

// TestStrataStoredBeforePseudonyms: a draw stored before pseudonyms has its
// members as JSON numbers; they read as their decimal spellings, so the draw
// recomputes exactly as it was published (the worked example), and a draw by
// pseudonym reads its strings as they are.
func TestStrataStoredBeforePseudonyms(t *testing.T) {
	var old []draw.Stratum
	if err := json.Unmarshal([]byte(`[{"key":"affected","ids":[10,11,12,3,4,5,6,7,8,9]}]`), &old); err != nil {
		t.Fatal(err)
	}
	pool := draw.SortPool(draw.IDs([]int64{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}))
	if !slices.Equal([]string(old[0].IDs), pool) {
		t.Fatalf("old members read as %v", old[0].IDs)
	}
	beacon := sha256.Sum256([]byte("levee example beacon"))
	if got := draw.NewDrawer(draw.Seed(draw.PoolHash(pool), 7, beacon[:]), old).Next(4); !slices.Equal(got, []string{"3", "12", "6", "4"}) {
		t.Fatalf("old draw recomputes to %v", got)
	}
	var fresh []draw.Stratum
	if err := json.Unmarshal([]byte(`[{"key":"affected","ids":["p00000000000000000001","p0000000000000000000a"]}]`), &fresh); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(fresh); string(b) != `[{"key":"affected","ids":["p00000000000000000001","p0000000000000000000a"]}]` {
		t.Fatalf("round trip: %s", b)
	}
	for _, bad := range []string{`[{"ids":[1.5]}]`, `[{"ids":[true]}]`, `[{"ids":"x"}]`} {
		if err := json.Unmarshal([]byte(bad), &fresh); err == nil {
			t.Errorf("%s was read", bad)
		}
	}
}
