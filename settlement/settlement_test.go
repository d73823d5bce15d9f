package settlement_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/migrations/dbtest"
	"levee/pgtx"
	"levee/settlement"
	"levee/settlement/draw"
	"levee/settlement/draw/drawtest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Past moves the clock just past t (never backwards).
func (c *clock) Past(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.now.After(t) {
		c.now = t.Add(time.Second)
	}
}

// actOwner owns "act:<ref>" and "flat:<ref>" subjects for these tests: a
// row in test_acts each, facts set by the test, and a Settle that applies
// the verdict to the row in one transaction with settlement's mark.
type actOwner struct {
	db    *sqlx.DB
	mu    sync.Mutex
	facts map[string]settlement.Facts
}

func (o *actOwner) set(ref string, f settlement.Facts) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.facts[ref] = f
}

func (o *actOwner) Facts(ctx context.Context, q sqlx.QueryerContext, ref string) (settlement.Facts, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f, ok := o.facts[ref]
	if !ok {
		return settlement.Facts{}, levee.Errorf(levee.ENOTFOUND, "no act %s", ref)
	}
	f.Parties = maps.Clone(f.Parties) // Dispute adds the disputer to its copy
	f.Excluded = slices.Clone(f.Excluded)
	return f, nil
}

func (o *actOwner) Hold(ctx context.Context, tx *sqlx.Tx, who *accounts.Principal, ref string) (string, error) {
	res, err := tx.ExecContext(ctx, `UPDATE test_acts SET status = 'disputed' WHERE ref = $1 AND status = 'pending'`, ref)
	if err != nil {
		return "", err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", levee.Errorf(levee.ECONFLICT, "act %s cannot be disputed", ref)
	}
	return settlement.VerdictAccept, nil
}

func (o *actOwner) Settle(ctx context.Context, ref, verdict string, mark func(ctx context.Context, tx *sqlx.Tx) error) error {
	return pgtx.Run(ctx, o.db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE test_acts SET status = 'settled', verdict = $2, applied = applied + 1 WHERE ref = $1`, ref, verdict); err != nil {
			return err
		}
		return mark(ctx, tx)
	})
}

type world struct {
	t         *testing.T
	ctx       context.Context
	db        *sqlx.DB
	clock     *clock
	svc       *settlement.Service
	owner     *actOwner
	ledger    *ledger.Ledger
	districts []int64
	// residents[i] are the residents of districts[i], 1000.000000 cash each.
	residents [][]int64
	disabled  []int64 // residents whose accounts are disabled
	others    []int64 // a treasurer and an organisation: never jurors
}

func baseRules() settlement.Rules {
	return settlement.Rules{
		DisputeWindow: time.Hour, Bond: levee.Units(10), JurySize: 5, Supermajority: levee.Scale / 2, MinReveals: 3,
		JurorFee: levee.Units(1), AppealBond: levee.Units(7), MaxAppeals: 2,
		EvidencePeriod: time.Hour, CommitPeriod: time.Hour, RevealPeriod: time.Hour, AppealWindow: time.Hour,
	}
}

// MustWorld gives a database with len(sizes) districts of sizes[i]
// residents, the settlement service on a fake clock with rules for the
// "act" and "flat" kinds, and the test owner for both.
func MustWorld(t *testing.T, sizes []int, act, flat settlement.Rules) *world {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	w := &world{t: t, ctx: ctx, db: db, clock: &clock{now: time.Date(2027, 5, 1, 9, 0, 0, 0, time.UTC)}, ledger: ledger.New(db)}
	db.MustExec(`CREATE TABLE test_acts (ref text PRIMARY KEY, status text NOT NULL DEFAULT 'pending', verdict text, applied integer NOT NULL DEFAULT 0)`)
	acc := accounts.New(db)
	if _, err := acc.IssueToTreasury(ctx, 0, levee.Units(100000), "juries"); err != nil {
		t.Fatal(err)
	}
	mk := func(n accounts.NewAccount) int64 {
		a, _, err := acc.CreateAccount(ctx, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	for i, n := range sizes {
		name := "d" + strconv.Itoa(i+1)
		d, err := acc.CreateDistrict(ctx, 0, name)
		if err != nil {
			t.Fatal(err)
		}
		w.districts = append(w.districts, d.ID)
		var ids []int64
		for j := range n {
			ids = append(ids, mk(accounts.NewAccount{Name: fmt.Sprintf("%s-r%d", name, j), Roles: []string{accounts.RoleResident}, District: name, Credit: levee.Units(1000)}))
		}
		w.residents = append(w.residents, ids)
		gone := mk(accounts.NewAccount{Name: name + "-gone", Roles: []string{accounts.RoleResident}, District: name, Credit: levee.Units(100)})
		db.MustExec(`UPDATE accounts SET disabled = true WHERE id = $1`, gone)
		w.disabled = append(w.disabled, gone)
	}
	w.others = append(w.others, mk(accounts.NewAccount{Name: "tess", Roles: []string{accounts.RoleTreasurer}, Credit: levee.Units(100)}))
	w.others = append(w.others, mk(accounts.NewAccount{Name: "dykeworks", Roles: []string{accounts.RoleContractor}, Credit: levee.Units(100)}))
	w.owner = &actOwner{db: db, facts: map[string]settlement.Facts{}}
	w.svc = settlement.New(db, settlement.Options{
		Owners: map[string]settlement.Owner{"act": w.owner, "flat": w.owner},
		Rules:  map[string]settlement.Rules{"act": act, "flat": flat},
		Clock:  w.clock.Now,
		Logger: slog.New(slog.DiscardHandler),
	})
	return w
}

func principal(id int64) *accounts.Principal {
	return &accounts.Principal{AccountID: id, Roles: []string{accounts.RoleResident}}
}

// MustSubject registers the facts of a subject "<kind>:<ref>".
func (w *world) MustSubject(subject string, f settlement.Facts) {
	w.t.Helper()
	if f.Verdicts == nil {
		f.Verdicts = []string{settlement.VerdictAccept, settlement.VerdictReject}
	}
	if f.Default == "" {
		f.Default = settlement.VerdictAccept
	}
	_, ref, _ := strings.Cut(subject, ":")
	w.db.MustExec(`INSERT INTO test_acts (ref) VALUES ($1)`, ref)
	w.owner.set(ref, f)
}

func (w *world) MustCase(id int64) settlement.CaseView {
	w.t.Helper()
	v, err := w.svc.Case(w.ctx, nil, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

func (w *world) MustAdvance() {
	w.t.Helper()
	if err := w.svc.Advance(w.ctx); err != nil {
		w.t.Fatal(err)
	}
}

func currentRound(t *testing.T, v settlement.CaseView) settlement.RoundView {
	t.Helper()
	for _, r := range v.Rounds {
		if r.Round.Round == v.Case.Round {
			return r
		}
	}
	t.Fatalf("case %d has no round %d", v.ID, v.Case.Round)
	return settlement.RoundView{}
}

func seated(r settlement.RoundView) []int64 {
	var ids []int64
	for _, j := range r.Jurors {
		ids = append(ids, j.Account)
	}
	return ids
}

// MustVote has the current round's jurors vote, in seat order: "" does not
// commit, "!v" commits v and never reveals, "v" commits and reveals v. It
// then moves the clock past the reveal period and advances.
func (w *world) MustVote(id int64, votes ...string) settlement.CaseView {
	w.t.Helper()
	v := w.MustCase(id)
	r := currentRound(w.t, v)
	if len(votes) != len(r.Jurors) {
		w.t.Fatalf("%d votes for %d jurors", len(votes), len(r.Jurors))
	}
	salt := func(j int64) string { return fmt.Sprintf("salt-%d-%d-%d", id, r.Round.Round, j) }
	for i, j := range r.Jurors {
		vote := votes[i]
		if vote == "" {
			continue
		}
		if vote[0] == '!' {
			vote = vote[1:]
		}
		if _, err := w.svc.Commit(w.ctx, principal(j.Account), id, draw.BallotCommitment(vote, salt(j.Account))); err != nil {
			w.t.Fatalf("commit by %d: %v", j.Account, err)
		}
	}
	w.clock.Past(r.CommitUntil)
	for i, j := range r.Jurors {
		if votes[i] == "" || votes[i][0] == '!' {
			continue
		}
		if _, err := w.svc.Reveal(w.ctx, principal(j.Account), id, votes[i], salt(j.Account)); err != nil {
			w.t.Fatalf("reveal by %d: %v", j.Account, err)
		}
	}
	w.clock.Past(r.RevealUntil)
	w.MustAdvance()
	return w.MustCase(id)
}

func (w *world) MustBalance(key string) levee.Micros {
	w.t.Helper()
	b, err := w.ledger.Balance(w.ctx, key)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// MustBalances reads every ledger balance.
func (w *world) MustBalances() map[string]levee.Micros {
	w.t.Helper()
	var rows []struct {
		Key     string       `db:"key"`
		Balance levee.Micros `db:"balance"`
	}
	if err := w.db.Select(&rows, `SELECT key, balance FROM ledger_accounts`); err != nil {
		w.t.Fatal(err)
	}
	out := map[string]levee.Micros{}
	for _, r := range rows {
		out[r.Key] = r.Balance
	}
	return out
}

func (w *world) MustVerifyLedger() {
	w.t.Helper()
	r, err := w.ledger.Verify(w.ctx)
	if err != nil || !r.OK {
		w.t.Fatalf("ledger: %v %+v", err, r)
	}
}

// MustRecompute checks every published draw of a case against the
// reference implementation in draw_test.go: pool order, pool_hash, beacon
// (the hash of ledger entry beacon_seq, reserving this case's seats), seed
// and jurors. It returns the draws.
func (w *world) MustRecompute(id int64) []settlement.DrawRecord {
	w.t.Helper()
	rep, err := w.svc.Draw(w.ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, d := range rep.Draws {
		if !slices.IsSortedFunc(d.Pool, func(a, b string) int { return compareBytes(a, b) }) {
			w.t.Fatalf("case %d draw %d: pool not in byte order", id, d.N)
		}
		var union []string
		for _, s := range d.Strata {
			union = append(union, s.IDs...)
		}
		for _, m := range union {
			if !ledger.ValidPseudonym(m) {
				w.t.Fatalf("case %d draw %d: pool member %q is not a pseudonym", id, d.N, m)
			}
		}
		if got := draw.SortPool(union); !slices.Equal(got, d.Pool) || len(union) != len(d.Pool) {
			w.t.Fatalf("case %d draw %d: strata %v are not a partition of the pool %v", id, d.N, d.Strata, d.Pool)
		}
		ph := drawtest.PoolHash(d.Pool)
		if hex.EncodeToString(ph) != d.PoolHash {
			w.t.Fatalf("case %d draw %d: pool_hash", id, d.N)
		}
		es, err := w.ledger.Entries(w.ctx, d.BeaconSeq-1, 1)
		if err != nil || len(es) != 1 {
			w.t.Fatalf("beacon entry %d: %v", d.BeaconSeq, err)
		}
		if hex.EncodeToString(es[0].Hash) != d.Beacon || es[0].Kind != "jury_seats" || es[0].Ref != "case:"+strconv.FormatInt(id, 10) {
			w.t.Fatalf("case %d draw %d: beacon %s is not the hash of entry %d %+v", id, d.N, d.Beacon, d.BeaconSeq, es[0])
		}
		seed := sha256.Sum256(append(append(ph, strconv.FormatInt(id, 10)...), es[0].Hash...))
		if hex.EncodeToString(seed[:]) != d.Seed {
			w.t.Fatalf("case %d draw %d: seed", id, d.N)
		}
		if want := drawtest.Draw(seed[:], d.Strata, d.Seats); !slices.Equal(want, d.Jurors) {
			w.t.Fatalf("case %d draw %d: jurors %v, recomputed %v", id, d.N, d.Jurors, want)
		}
	}
	return rep.Draws
}

// MustPseudonyms returns the pseudonyms of ids, in their order.
func (w *world) MustPseudonyms(ids []int64) []string {
	w.t.Helper()
	m, err := ledger.Pseudonyms(w.ctx, w.db, ids)
	if err != nil {
		w.t.Fatal(err)
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		if out[i] = m[id]; out[i] == "" {
			w.t.Fatalf("account %d has no pseudonym", id)
		}
	}
	return out
}

func compareBytes(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func idSet(ids ...[]int64) map[int64]bool {
	m := map[int64]bool{}
	for _, l := range ids {
		for _, id := range l {
			m[id] = true
		}
	}
	return m
}

// TestPoolExclusionsProperty opens many cases over random districts,
// exclusions, parties and opt-outs, and checks that the pool is exactly
// the eligible residents, that the draw recomputes, and that no one
// excluded, no party, no one opted out, no disabled account and (after an
// appeal) no earlier juror is ever drawn.
func TestPoolExclusionsProperty(t *testing.T) {
	act := baseRules()
	act.Stratify, act.OutsideShare, act.Bond = true, 250000, 0
	flat := baseRules()
	w := MustWorld(t, []int{9, 7, 5}, act, flat)
	r := rand.New(rand.NewPCG(2027, 5))
	optedOut := map[int64]bool{}
	var everyone []int64
	for _, ids := range w.residents {
		everyone = append(everyone, ids...)
	}
	start := time.Now()
	for iter := range 60 {
		// Some residents change their mind about jury duty.
		for range 2 {
			who := everyone[r.IntN(len(everyone))]
			optedOut[who] = !optedOut[who]
			if err := w.svc.OptOut(w.ctx, principal(who), optedOut[who]); err != nil {
				t.Fatal(err)
			}
		}
		kind := "act"
		if iter%2 == 1 {
			kind = "flat"
		}
		var districts []int64
		affected := map[int64]bool{}
		for i, d := range w.districts {
			if r.IntN(2) == 0 {
				districts = append(districts, d)
				affected[int64(i)] = true
			}
		}
		if len(districts) == len(w.districts) && r.IntN(2) == 0 {
			districts = nil // every district
		}
		var excluded []int64
		parties := map[int64]string{}
		for _, id := range everyone {
			switch r.IntN(10) {
			case 0, 1:
				excluded = append(excluded, id)
			case 2:
				parties[id] = "party"
			}
		}
		excluded = append(excluded, w.others[0]) // not a resident anyway
		subject := fmt.Sprintf("%s:%d", kind, iter)
		w.MustSubject(subject, settlement.Facts{Kind: kind, Question: "Was the sluice closed in time?", Districts: districts, Parties: parties, Excluded: excluded})

		// Who should be in the pool.
		var eligible []int64
		for i, ids := range w.residents {
			in := districts == nil || affected[int64(i)] || kind == "act" // act has an outside share
			for _, id := range ids {
				if in && !slices.Contains(excluded, id) && parties[id] == "" && !optedOut[id] {
					eligible = append(eligible, id)
				}
			}
		}
		var c settlement.Case
		var err error
		var disputer int64
		if kind == "flat" && iter%4 == 1 {
			// A dispute: the disputer becomes a party and pays the bond.
			for _, id := range everyone {
				if parties[id] == "" && !slices.Contains(excluded, id) {
					disputer = id
					break
				}
			}
			eligible = slices.DeleteFunc(eligible, func(id int64) bool { return id == disputer })
			c, err = w.svc.Dispute(w.ctx, principal(disputer), subject, "the gate log disagrees")
		} else {
			c, err = w.svc.OpenReview(w.ctx, subject, "review")
		}
		if len(eligible) == 0 {
			if levee.ErrorCode(err) != levee.ECONFLICT {
				t.Fatalf("iter %d: no one eligible, got %v", iter, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("iter %d: %v", iter, err)
		}
		draws := w.MustRecompute(c.ID)
		if got, want := draws[0].Pool, draw.SortPool(w.MustPseudonyms(eligible)); !slices.Equal(got, want) {
			t.Fatalf("iter %d (%s, districts %v): pool %v, want %v", iter, kind, districts, got, want)
		}
		never := idSet(excluded, slices.Collect(maps.Keys(parties)), []int64{disputer}, w.disabled, w.others)
		for id := range optedOut {
			if optedOut[id] {
				never[id] = true
			}
		}
		v := w.MustCase(c.ID)
		first := seated(v.Rounds[0])
		if len(first) != min(5, len(eligible)) {
			t.Fatalf("iter %d: %d jurors from a pool of %d", iter, len(first), len(eligible))
		}
		for _, j := range first {
			if never[j] {
				t.Fatalf("iter %d: drew %d, who is excluded", iter, j)
			}
		}
		if kind == "act" {
			// The outside stratum holds exactly the residents of other
			// districts, and gets floor(k × 0.25) seats when it can.
			for _, s := range draws[0].Strata {
				if s.Key == "outside" && s.Share != 0.25 {
					t.Fatalf("iter %d: outside share %v", iter, s.Share)
				}
			}
		}

		// Every fourth case is decided and appealed by a party: the appeal
		// jury is 2k+1, none of them seated before, drawn from a new pool.
		if iter%4 != 0 || len(parties) == 0 || len(first) < 3 {
			continue
		}
		votes := make([]string, len(first))
		for i := range votes {
			votes[i] = settlement.VerdictReject
		}
		if v = w.MustVote(c.ID, votes...); v.Status != settlement.StatusAppealable {
			t.Fatalf("iter %d: after voting: %s", iter, v.Status)
		}
		ps := slices.Sorted(maps.Keys(parties))
		appellant := ps[r.IntN(len(ps))]
		_, err = w.svc.Appeal(w.ctx, principal(appellant), c.ID, "new facts")
		if len(eligible) == len(first) {
			if levee.ErrorCode(err) != levee.ECONFLICT {
				t.Fatalf("iter %d: appeal with no one left: %v", iter, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("iter %d: appeal: %v", iter, err)
		}
		draws = w.MustRecompute(c.ID)
		second := draws[1]
		left := slices.DeleteFunc(slices.Clone(eligible), func(id int64) bool { return slices.Contains(first, id) })
		if want := draw.SortPool(w.MustPseudonyms(left)); !slices.Equal(second.Pool, want) {
			t.Fatalf("iter %d: appeal pool %v, want %v", iter, second.Pool, want)
		}
		owners, err := ledger.PseudonymOwners(w.ctx, w.db, second.Pool)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range second.Pool {
			id := owners[p]
			if never[id] || slices.Contains(first, id) {
				t.Fatalf("iter %d: appeal pool holds %d (excluded or an earlier juror)", iter, id)
			}
		}
		if want := min(2*len(first)+1, len(eligible)-len(first)); len(second.Jurors) != want || second.Seats[0] != want {
			t.Fatalf("iter %d: appeal jury of %d, want %d", iter, len(second.Jurors), want)
		}
	}
	// Cases left alone meanwhile went through redraws as the clock moved:
	// every draw of every case still recomputes, and nobody sat twice.
	var ids []int64
	if err := w.db.Select(&ids, `SELECT id FROM cases ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		w.MustRecompute(id)
	}
	var twice int
	if err := w.db.Get(&twice, `SELECT count(*) FROM (SELECT 1 FROM jurors GROUP BY case_id, account_id HAVING count(*) > 1) AS t`); err != nil || twice != 0 {
		t.Fatalf("%d jurors sat twice in a case (%v)", twice, err)
	}
	w.MustVerifyLedger()
	t.Logf("%d cases in %v", len(ids), time.Since(start))
}

// TestRedraws: a tie and then too few reveals each start a new round of
// fresh jurors continuing the same draw; no-shows are marked and not paid,
// revealers are paid exactly the juror fee; mismatched reveals are refused.
func TestRedraws(t *testing.T) {
	flat := baseRules()
	flat.JurySize, flat.MinReveals = 4, 3
	w := MustWorld(t, []int{20}, baseRules(), flat)
	proposer := w.others[0]
	w.MustSubject("flat:1", settlement.Facts{Kind: "flat", Question: "Did the pump run all night?", Parties: map[int64]string{proposer: "steward"}})
	before := w.MustBalances()
	c, err := w.svc.OpenReview(w.ctx, "flat:1", "a review Levee owes")
	if err != nil {
		t.Fatal(err)
	}
	v := w.MustCase(c.ID)
	r0 := seated(v.Rounds[0])
	if len(r0) != 4 || v.Status != settlement.StatusEvidence {
		t.Fatalf("opened: %+v", v.Case)
	}

	// Refusals: a non-juror commits; a malformed commitment; a reveal
	// before the reveal period; a reveal that does not match.
	outsider := w.residents[0][0]
	for slices.Contains(r0, outsider) {
		outsider++
	}
	if _, err := w.svc.Commit(w.ctx, principal(outsider), c.ID, draw.BallotCommitment("accept", "saltsalt")); levee.ErrorCode(err) != levee.EFORBIDDEN {
		t.Fatalf("non-juror commit: %v", err)
	}
	if _, err := w.svc.Commit(w.ctx, principal(r0[0]), c.ID, "ABC"); levee.ErrorField(err) != "commitment" {
		t.Fatalf("malformed commitment: %v", err)
	}
	if _, err := w.svc.Commit(w.ctx, principal(r0[0]), c.ID, draw.BallotCommitment("accept", "the-salt-0")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Reveal(w.ctx, principal(r0[0]), c.ID, "accept", "the-salt-0"); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("reveal in the evidence period: %v", err)
	}
	w.clock.Past(currentRound(t, v).CommitUntil)
	for _, tc := range []struct{ verdict, salt, field string }{
		{"reject", "the-salt-0", "salt"},
		{"accept", "the-salt-1", "salt"},
		{"maybe", "the-salt-0", "verdict"},
		{"accept", "short", "salt"},
	} {
		if _, err := w.svc.Reveal(w.ctx, principal(r0[0]), c.ID, tc.verdict, tc.salt); levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != tc.field {
			t.Fatalf("reveal %q/%q: %v", tc.verdict, tc.salt, err)
		}
	}
	if _, err := w.svc.Reveal(w.ctx, principal(r0[0]), c.ID, "accept", "the-salt-0"); err != nil {
		t.Fatalf("matching reveal: %v", err)
	}
	if _, err := w.svc.Reveal(w.ctx, principal(r0[0]), c.ID, "accept", "the-salt-0"); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("second reveal: %v", err)
	}
	// The other three jurors of round 0 never committed: 1 reveal is too
	// few, so a new round is drawn.
	w.clock.Past(currentRound(t, v).RevealUntil)
	w.MustAdvance()
	v = w.MustCase(c.ID)
	if v.Case.Round != 1 || v.Status != settlement.StatusCommit || v.Rounds[0].Tally == nil || v.Rounds[0].Tally.V.Outcome != "too_few_reveals" {
		t.Fatalf("after too few reveals: round %d %s %+v", v.Case.Round, v.Status, v.Rounds[0].Tally)
	}
	for _, j := range v.Rounds[0].Jurors {
		paid, noShow := j.Paid, j.NoShow
		if j.Account == r0[0] && (paid != levee.Units(1) || noShow) || j.Account != r0[0] && (paid != 0 || !noShow) {
			t.Fatalf("round 0 juror %d: paid %s, no-show %v", j.Account, paid, noShow)
		}
	}

	// Round 1: a tie (2 against 2) draws round 2.
	r1 := seated(currentRound(t, v))
	if v.Rounds[1].Why != "redraw" || len(r1) != 4 {
		t.Fatalf("round 1: %+v", v.Rounds[1].Round)
	}
	v = w.MustVote(c.ID, "accept", "reject", "accept", "reject")
	if v.Case.Round != 2 || v.Rounds[1].Tally.V.Outcome != "tie" || v.Rounds[1].Verdict != nil {
		t.Fatalf("after a tie: round %d %+v", v.Case.Round, v.Rounds[1].Tally)
	}
	// Round 2: one no-show (committed, never revealed); 3 reveals are
	// enough, and 2 of 3 is a majority.
	r2 := seated(currentRound(t, v))
	v = w.MustVote(c.ID, "reject", "reject", "accept", "!accept")
	if v.Status != settlement.StatusAppealable || v.Verdict == nil || *v.Verdict != "reject" {
		t.Fatalf("after round 2: %s %v %+v", v.Status, v.Verdict, v.Rounds[2].Tally)
	}
	if tl := v.Rounds[2].Tally.V; tl.Seats != 4 || tl.Committed != 4 || tl.Revealed != 3 || tl.Outcome != "reject" || tl.Votes["reject"] != 2 {
		t.Fatalf("round 2 tally %+v", tl)
	}
	for i, j := range v.Rounds[2].Jurors {
		if want := i < 3; (j.Paid == levee.Units(1)) != want || j.NoShow == want || j.Paid != 0 && j.Paid != levee.Units(1) {
			t.Fatalf("round 2 seat %d: paid %s, no-show %v", i, j.Paid, j.NoShow)
		}
	}

	// The three rounds continue one draw: 4 + 4 + 4 seats, recomputable,
	// and nobody sits twice.
	draws := w.MustRecompute(c.ID)
	if len(draws) != 1 || !slices.Equal(draws[0].Seats, []int{4, 4, 4}) {
		t.Fatalf("draws %+v", draws)
	}
	if all := append(append(slices.Clone(r0), r1...), r2...); len(idSet(all)) != 12 {
		t.Fatalf("a juror sat twice: %v %v %v", r0, r1, r2)
	}

	// No appeal: the verdict becomes final and settles once.
	w.clock.Past(*v.AppealUntil)
	w.MustAdvance()
	if v = w.MustCase(c.ID); v.Status != settlement.StatusSettled {
		t.Fatalf("not settled: %s", v.Status)
	}
	w.MustApplied("1", "reject", 1)
	w.MustVerifyLedger()
	// Money: the treasury paid the 8 revealers (1 + 4 + 3) one fee each
	// (a review has no bond); the no-shows got nothing; the case's
	// accounts are empty.
	after := w.MustBalances()
	if d := after["treasury"] - before["treasury"]; d != -levee.Units(8) {
		t.Fatalf("treasury moved %s, want -8", d)
	}
	paid := map[int64]levee.Micros{}
	for _, r := range v.Rounds {
		for _, j := range r.Jurors {
			paid[j.Account] += j.Paid
		}
	}
	var total levee.Micros
	for id, p := range paid {
		k := ledger.Cash(id)
		if after[k]-before[k] != p {
			t.Fatalf("juror %d: cash moved %s, paid %s", id, after[k]-before[k], p)
		}
		total += p
	}
	if total != levee.Units(8) {
		t.Fatalf("paid %s in all", total)
	}
	w.MustEmptyCase(c.ID)

	// The outbox: each juror was told of the seat and its commit deadline,
	// each deadline change went to the jurors of the round, and the steward
	// (a party) heard of the redraws, the verdict and the settlement.
	for i, ids := range [][]int64{r0, r1, r2} {
		for _, j := range ids {
			ns, err := w.svc.Notifications(w.ctx, j, 50)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]int{}
			for _, n := range ns {
				kinds[n.Kind]++
				if n.Kind == "juror_seated" && (n.Deadline == nil || !n.Deadline.Equal(v.Rounds[i].CommitUntil)) {
					t.Fatalf("juror %d seat notice deadline %v, want %v", j, n.Deadline, v.Rounds[i].CommitUntil)
				}
				if n.Kind == "reveal_open" && (n.Deadline == nil || !n.Deadline.Equal(v.Rounds[i].RevealUntil)) {
					t.Fatalf("juror %d reveal notice deadline %v", j, n.Deadline)
				}
			}
			if kinds["juror_seated"] != 1 || kinds["reveal_open"] != 1 || kinds["settled"] != 1 {
				t.Fatalf("round %d juror %d notifications %v", i, j, kinds)
			}
		}
	}
	ns, err := w.svc.Notifications(w.ctx, proposer, 50)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, n := range ns {
		kinds[n.Kind]++
	}
	if kinds["round_redrawn"] != 2 || kinds["verdict"] != 1 || kinds["final"] != 1 || kinds["settled"] != 1 {
		t.Fatalf("steward notifications %v", kinds)
	}
}

// MustApplied checks the test owner's row: verdict applied n times.
func (w *world) MustApplied(ref, verdict string, n int) {
	w.t.Helper()
	var row struct {
		Verdict *string `db:"verdict"`
		Applied int     `db:"applied"`
	}
	if err := w.db.Get(&row, `SELECT verdict, applied FROM test_acts WHERE ref = $1`, ref); err != nil {
		w.t.Fatal(err)
	}
	if row.Applied != n || n > 0 && (row.Verdict == nil || *row.Verdict != verdict) {
		w.t.Fatalf("act %s: applied %d times, verdict %v; want %d, %q", ref, row.Applied, row.Verdict, n, verdict)
	}
}

// MustEmptyCase checks that a settled case's fee pool, seats and bonds
// accounts end at zero.
func (w *world) MustEmptyCase(id int64) {
	w.t.Helper()
	for _, k := range []string{"fees", "seats", "bonds"} {
		key := fmt.Sprintf("case:%d:%s", id, k)
		if b := w.MustBalance(key); b != 0 {
			w.t.Fatalf("%s holds %s", key, b)
		}
	}
}

// TestAppeals: each appeal seats 2k+1 jurors, none seated before and no
// party; the bond comes back when the verdict changes and goes to the fee
// pool when it does not; after MaxAppeals the verdict is final.
func TestAppeals(t *testing.T) {
	// Amounts with odd micro-units, so that the sums below check every
	// last millionth.
	fee, bond, appealBond := levee.Micros(1_234_567), levee.Micros(10_000_003), levee.Micros(7_000_001)
	flat := baseRules()
	flat.JurySize, flat.JurorFee, flat.Bond, flat.AppealBond = 3, fee, bond, appealBond
	w := MustWorld(t, []int{40}, baseRules(), flat)
	proposer, disputer, bystander := w.residents[0][0], w.residents[0][1], w.residents[0][2]
	w.MustSubject("flat:1", settlement.Facts{Kind: "flat", Question: "Was the levee raised 30 cm?", Parties: map[int64]string{proposer: "proposer"}})
	before := w.MustBalances()
	c, err := w.svc.Dispute(w.ctx, principal(disputer), "flat:1", "it was raised 20 cm")
	if err != nil {
		t.Fatal(err)
	}
	// The bond went into the fee pool, which reserved the first 3 seats.
	if got := w.MustBalance(fmt.Sprintf("case:%d:fees", c.ID)); got != bond-3*fee {
		t.Fatalf("fee pool after the dispute bond: %s", got)
	}
	if got := w.MustBalance(fmt.Sprintf("case:%d:seats", c.ID)); got != 3*fee {
		t.Fatalf("seats reserved: %s", got)
	}
	// Round 0 overturns the proposal.
	v := w.MustVote(c.ID, "reject", "reject", "accept")
	if v.Status != settlement.StatusAppealable || *v.Verdict != "reject" {
		t.Fatalf("round 0: %s %v", v.Status, v.Verdict)
	}
	if _, err := w.svc.Appeal(w.ctx, principal(bystander), c.ID, "me too"); levee.ErrorCode(err) != levee.EFORBIDDEN {
		t.Fatalf("a non-party appealed: %v", err)
	}
	// Appeal 1 by the proposer: 7 jurors; the jury agrees with round 0, so
	// the bond goes to the fee pool.
	if _, err := w.svc.Appeal(w.ctx, principal(proposer), c.ID, "the survey says 30 cm"); err != nil {
		t.Fatal(err)
	}
	if got := w.MustBalance(fmt.Sprintf("case:%d:bonds", c.ID)); got != appealBond {
		t.Fatalf("bonds after appeal 1: %s", got)
	}
	v = w.MustCase(c.ID)
	r1 := currentRound(t, v)
	if r1.Why != "appeal" || len(r1.Jurors) != 7 || r1.AppealedBy == nil || *r1.AppealedBy != proposer {
		t.Fatalf("appeal round: %+v", r1.Round)
	}
	earlier := idSet(seated(v.Rounds[0]))
	for _, j := range seated(r1) {
		if earlier[j] || j == proposer || j == disputer {
			t.Fatalf("appeal juror %d sat before or is a party", j)
		}
	}
	feesBefore := w.MustBalance(fmt.Sprintf("case:%d:fees", c.ID))
	v = w.MustVote(c.ID, "reject", "reject", "reject", "accept", "reject", "accept", "reject")
	if v.Status != settlement.StatusAppealable || *v.Verdict != "reject" || v.Appeals != 1 {
		t.Fatalf("after appeal 1: %s %v %d", v.Status, v.Verdict, v.Appeals)
	}
	if got := w.MustBalance(fmt.Sprintf("case:%d:fees", c.ID)); got != feesBefore+appealBond {
		t.Fatalf("a failed appeal's bond did not go to the fee pool: %s -> %s", feesBefore, got)
	}
	// Appeal 2 by the disputer: 15 jurors, none of the 10 before; they
	// change the verdict, so the bond comes back.
	if _, err := w.svc.Appeal(w.ctx, principal(disputer), c.ID, "appeal the appeal"); err != nil {
		t.Fatal(err)
	}
	v = w.MustCase(c.ID)
	r2 := currentRound(t, v)
	earlier = idSet(seated(v.Rounds[0]), seated(v.Rounds[1]))
	if len(r2.Jurors) != 15 {
		t.Fatalf("second appeal jury of %d", len(r2.Jurors))
	}
	for _, j := range seated(r2) {
		if earlier[j] || j == proposer || j == disputer {
			t.Fatalf("second appeal juror %d sat before or is a party", j)
		}
	}
	cashBefore := w.MustBalance(ledger.Cash(disputer))
	votes := make([]string, 15)
	for i := range votes {
		votes[i] = "accept"
	}
	votes[0] = "reject"
	v = w.MustVote(c.ID, votes...)
	// MaxAppeals reached: final at once, and settled by the same Advance.
	if v.Status != settlement.StatusSettled || *v.Verdict != "accept" || v.Appeals != 2 {
		t.Fatalf("after appeal 2: %s %v %d", v.Status, v.Verdict, v.Appeals)
	}
	if got := w.MustBalance(ledger.Cash(disputer)); got != cashBefore+appealBond {
		t.Fatalf("a successful appeal's bond did not come back: %s -> %s", cashBefore, got)
	}
	if _, err := w.svc.Appeal(w.ctx, principal(proposer), c.ID, "a third time"); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("third appeal: %v", err)
	}
	w.MustRecompute(c.ID)
	w.MustApplied("1", "accept", 1)
	w.MustVerifyLedger()
	w.MustEmptyCase(c.ID)

	// Money to the micro-unit: the verdict upheld the proposal, so the
	// dispute bond and the failed appeal bond stay with the city; the 25
	// jurors who revealed were paid one fee each, and nothing else moved.
	after := w.MustBalances()
	if d := after["treasury"] - before["treasury"]; d != bond+appealBond-25*fee {
		t.Fatalf("treasury moved %s, want %s", d, bond+appealBond-25*fee)
	}
	if d := after[ledger.Cash(disputer)] - before[ledger.Cash(disputer)]; d != -bond {
		t.Fatalf("disputer moved %s", d)
	}
	if d := after[ledger.Cash(proposer)] - before[ledger.Cash(proposer)]; d != -appealBond {
		t.Fatalf("proposer moved %s", d)
	}
	var sum, jurors levee.Micros
	for k, b := range after {
		sum += b - before[k]
	}
	for _, r := range v.Rounds {
		for _, j := range r.Jurors {
			if j.Paid != fee || j.NoShow {
				t.Fatalf("juror %d: paid %s", j.Account, j.Paid)
			}
			k := ledger.Cash(j.Account)
			if after[k]-before[k] != fee {
				t.Fatalf("juror %d: cash moved %s", j.Account, after[k]-before[k])
			}
			jurors += fee
		}
	}
	if sum != 0 || jurors != 25*fee {
		t.Fatalf("money created or destroyed: %s; jurors paid %s", sum, jurors)
	}
}

// TestSettlementExactlyOnce interrupts the settlement between its record
// and the money moves: nothing is applied and the case stays final; the
// next Advance applies it once; another changes nothing.
func TestSettlementExactlyOnce(t *testing.T) {
	flat := baseRules()
	flat.JurySize, flat.MaxAppeals = 3, 0
	w := MustWorld(t, []int{12}, baseRules(), flat)
	disputer := w.residents[0][0]
	w.MustSubject("flat:1", settlement.Facts{Kind: "flat", Question: "Was the culvert cleared?"})
	before := w.MustBalances()
	c, err := w.svc.Dispute(w.ctx, principal(disputer), "flat:1", "it was not")
	if err != nil {
		t.Fatal(err)
	}
	var failures int
	w.svc.FailSettlementsWith(func(caseID int64) error {
		if caseID != c.ID {
			t.Errorf("settling case %d", caseID)
		}
		failures++
		return errors.New("power cut")
	})
	// Round 0 overturns the proposal; no appeals allowed, so the verdict is
	// final at once and its settlement fails.
	v := w.MustCase(c.ID)
	r := currentRound(t, v)
	salt := "salt-salt-salt"
	for _, j := range r.Jurors {
		if _, err := w.svc.Commit(w.ctx, principal(j.Account), c.ID, draw.BallotCommitment("reject", salt)); err != nil {
			t.Fatal(err)
		}
	}
	w.clock.Past(r.CommitUntil)
	for _, j := range r.Jurors {
		if _, err := w.svc.Reveal(w.ctx, principal(j.Account), c.ID, "reject", salt); err != nil {
			t.Fatal(err)
		}
	}
	w.clock.Past(r.RevealUntil)
	if err := w.svc.Advance(w.ctx); err == nil || failures != 1 {
		t.Fatalf("advance with a failing settlement: %v (%d failures)", err, failures)
	}
	mid := w.MustBalances()
	// Reading the case retries the settlement, which fails again; the read
	// still works and shows the verdict final, not settled.
	v = w.MustCase(c.ID)
	if v.Status != settlement.StatusFinal || v.FinalAt == nil || v.SettledAt != nil || failures != 2 {
		t.Fatalf("after the failed settlement: %s %v (%d failures)", v.Status, v.SettledAt, failures)
	}
	if mine, err := w.svc.MyCases(w.ctx, r.Jurors[0].Account); err != nil || len(mine) != 1 || mine[0].Status != settlement.StatusFinal || failures != 3 {
		t.Fatalf("a juror's cases during the fault: %v %+v", err, mine)
	}
	w.MustApplied("1", "", 0)
	var records int
	if err := w.db.Get(&records, `SELECT count(*) FROM case_settlements WHERE case_id = $1`, c.ID); err != nil || records != 0 {
		t.Fatalf("settlement records after the failure: %d %v", records, err)
	}
	if got := w.MustBalances(); !maps.Equal(got, mid) {
		t.Fatalf("the failed settlement moved money")
	}
	// The fee pool holds the bond less the three jurors' fees.
	if mid[fmt.Sprintf("case:%d:fees", c.ID)] != levee.Units(10-3) {
		t.Fatalf("fee pool before settlement: %s", mid[fmt.Sprintf("case:%d:fees", c.ID)])
	}
	w.MustVerifyLedger()

	// The fault clears: the next Advance settles it, once.
	w.svc.FailSettlementsWith(nil)
	w.MustAdvance()
	if v = w.MustCase(c.ID); v.Status != settlement.StatusSettled {
		t.Fatalf("not settled: %s", v.Status)
	}
	w.MustApplied("1", "reject", 1)
	w.MustVerifyLedger()
	w.MustEmptyCase(c.ID)
	settled := w.MustBalances()
	var head int64
	if err := w.db.Get(&head, `SELECT max(seq) FROM ledger_entries`); err != nil {
		t.Fatal(err)
	}
	// The verdict overturned the proposal: the bond came back whole; the
	// treasury paid the three jurors.
	if d := settled[ledger.Cash(disputer)] - before[ledger.Cash(disputer)]; d != 0 {
		t.Fatalf("disputer moved %s, want 0", d)
	}
	if d := settled["treasury"] - before["treasury"]; d != -levee.Units(3) {
		t.Fatalf("treasury moved %s, want -3", d)
	}

	// Again and again: nothing changes.
	w.clock.Past(w.clock.Now().Add(24 * time.Hour))
	w.MustAdvance()
	w.MustAdvance()
	w.MustCase(c.ID)
	w.MustApplied("1", "reject", 1)
	var head2 int64
	if err := w.db.Get(&head2, `SELECT max(seq) FROM ledger_entries`); err != nil || head2 != head {
		t.Fatalf("ledger grew after settlement: %d -> %d (%v)", head, head2, err)
	}
	if got := w.MustBalances(); !maps.Equal(got, settled) {
		t.Fatal("balances changed after settlement")
	}
	if err := w.db.Get(&records, `SELECT count(*) FROM case_settlements WHERE case_id = $1`, c.ID); err != nil || records != 1 {
		t.Fatalf("settlement records: %d %v", records, err)
	}
	w.MustVerifyLedger()
}
