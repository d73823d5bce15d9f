package budgets_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/census"
	"levee/ledger"
	"levee/migrations/dbtest"
)

// clock is a settable clock for the service.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// invalidations records InvalidateCash calls.
type invalidations struct {
	mu   sync.Mutex
	seen map[int64]int
}

func (v *invalidations) InvalidateCash(account int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[int64]int{}
	}
	v.seen[account]++
}

type city struct {
	db        *sqlx.DB
	svc       *budgets.Service
	clock     *clock
	cash      *invalidations
	accounts  *accounts.Service
	ledger    *ledger.Ledger
	treasurer *accounts.Principal
	residents []*accounts.Principal
}

// MustCity gives a fresh database with a funded treasury, a treasurer, seven
// residents with 100 each, a contractor and a service on a fake clock.
func MustCity(t *testing.T) *city {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	c := &city{db: db, clock: &clock{now: time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)}, cash: &invalidations{},
		accounts: accounts.New(db), ledger: ledger.New(db)}
	c.svc = budgets.New(db, budgets.Options{Cash: c.cash, Now: c.clock.Now})
	if _, err := c.accounts.CreateDistrict(ctx, 0, "north"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.accounts.IssueToTreasury(ctx, 0, levee.Units(1000), "test"); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, kind string, roles ...string) *accounts.Principal {
		n := accounts.NewAccount{Name: name, Roles: roles, Kind: kind, Credit: levee.Units(100)}
		if kind == accounts.KindPerson && roles[0] == accounts.RoleResident {
			n.District = "north"
		}
		a, _, err := c.accounts.CreateAccount(ctx, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		return &accounts.Principal{AccountID: a.ID, Name: a.Name, Kind: a.Kind, Roles: a.Roles}
	}
	c.treasurer = mk("tess", accounts.KindPerson, accounts.RoleTreasurer)
	for _, n := range []string{"r1", "r2", "r3", "r4", "r5", "r6", "r7"} {
		c.residents = append(c.residents, mk(n, accounts.KindPerson, accounts.RoleResident))
	}
	return c
}

func (c *city) balance(t *testing.T, key string) levee.Micros {
	t.Helper()
	b, err := c.ledger.Balance(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if levee.ErrorCode(err) != code {
		t.Fatalf("%s: err %v, want code %s", what, err, code)
	}
}

// The worked example's contributions in units: per project, by resident index.
var workedContributions = [][]int64{{1, 4, 1, 9}, {1, 1, 1, 1, 1, 1, 4}, {1, 9, 1, 9, 1, 9, 4}}

func TestRoundFlow(t *testing.T) {
	ctx := context.Background()
	c := MustCity(t)
	start := c.clock.Now()
	r, err := c.svc.OpenRound(ctx, budgets.NewRound{Title: "Flood works 2027", Pool: levee.Units(100), EligibilityRules: "Public works in the city.",
		ClosesAt: start.Add(time.Hour), CreatedBy: c.treasurer.AccountID})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.balance(t, "treasury"); got != levee.Units(900) {
		t.Fatalf("treasury after opening: %s", got)
	}
	if got := c.balance(t, r.PoolAccount); got != levee.Units(100) {
		t.Fatalf("pool: %s", got)
	}
	var projects []int64
	for i, title := range []string{"Pumps", "Dyke path", "Sluice gate"} {
		p, err := c.svc.Propose(ctx, c.residents[i], r.ID, budgets.NewProject{Title: title, District: "north", EstimatedCost: levee.Units(500)})
		if err != nil {
			t.Fatal(err)
		}
		projects = append(projects, p.ID)
	}
	// An undecided project takes no money.
	_, err = c.svc.Contribute(ctx, c.residents[0], projects[0], levee.Units(1), "")
	wantCode(t, "contribution to an undecided project", err, levee.ECONFLICT)
	for _, id := range projects {
		if _, err := c.svc.SetEligibility(ctx, c.treasurer.AccountID, id, true, "meets the rules"); err != nil {
			t.Fatal(err)
		}
	}
	for pi, amounts := range workedContributions {
		for ri, u := range amounts {
			if _, err := c.svc.Contribute(ctx, c.residents[ri], projects[pi], levee.Units(u), ""); err != nil {
				t.Fatalf("project %d resident %d: %v", pi, ri, err)
			}
		}
	}
	if c.cash.seen[c.residents[0].AccountID] != 3 {
		t.Fatalf("cash invalidations: %v", c.cash.seen)
	}
	_, err = c.svc.Contribute(ctx, c.residents[6], projects[1], 0, "")
	wantCode(t, "zero amount", err, levee.EINVALID)
	// Not yet closed.
	_, err = c.svc.Finalize(ctx, c.treasurer.AccountID, r.ID)
	wantCode(t, "finalise before closing", err, levee.ECONFLICT)

	c.clock.Set(start.Add(time.Hour))
	_, err = c.svc.Contribute(ctx, c.residents[0], projects[0], levee.Units(1), "")
	wantCode(t, "contribution after the window", err, levee.ECONFLICT)

	d, err := c.svc.Finalize(ctx, c.treasurer.AccountID, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ match, contributed, raw string }{{"13.600000", "15.000000", "34.000000"}, {"21.600000", "10.000000", "54.000000"}, {"64.800000", "34.000000", "162.000000"}}
	if len(d.Results) != 3 {
		t.Fatalf("results: %+v", d.Results)
	}
	for i, res := range d.Results {
		if res.Match.String() != want[i].match || res.Contributed.String() != want[i].contributed || res.RawMatch != want[i].raw {
			t.Errorf("result %d: %+v, want %+v", i, res, want[i])
		}
	}
	if d.Status != budgets.StatusFinal || d.Returned == nil || *d.Returned != 0 {
		t.Fatalf("round after finalising: %+v", d.Round)
	}
	lines, err := c.svc.BudgetLines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []string{"28.600000", "31.600000", "98.800000"}
	for i, l := range lines {
		if l.Balance.String() != wantLines[i] || l.Funded.String() != wantLines[i] || l.LedgerKey != ledger.BudgetLine(l.ID) || l.District != "north" {
			t.Errorf("line %d: %+v, want balance %s", i, l, wantLines[i])
		}
	}
	if got := c.balance(t, r.PoolAccount); got != 0 {
		t.Errorf("pool after payout: %s", got)
	}
	if got := c.balance(t, r.EscrowAccount); got != 0 {
		t.Errorf("escrow after payout: %s", got)
	}
	if got := c.balance(t, "treasury"); got != levee.Units(900) {
		t.Errorf("treasury after payout: %s", got)
	}
	// Finalising twice is a conflict, and pays nothing more.
	_, err = c.svc.Finalize(ctx, c.treasurer.AccountID, r.ID)
	wantCode(t, "finalise twice", err, levee.ECONFLICT)
	if got := c.balance(t, ledger.BudgetLine(lines[2].ID)); got.String() != "98.800000" {
		t.Errorf("line after second finalise: %s", got)
	}
	ex, err := c.svc.Explain(ctx, c.residents[3].AccountID, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Resident 4 gave 9 to project 1 and 1 to project 2 and 9 to project 3.
	if len(ex.Projects) != 3 || ex.Projects[0].Added != "24.000000" || ex.Projects[0].RawWithout != "10.000000" {
		t.Fatalf("explain: %+v", ex)
	}
	rep, err := c.ledger.Verify(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// The census reports the finished round (census is built on budgets).
	cs, err := census.New(census.Sources{Accounts: c.accounts, Ledger: c.ledger, Budgets: c.svc}, c.clock.Now).Census(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Residents.Total != 7 || cs.BudgetLines.Total != levee.Units(159) || !cs.Ledger.Report.OK || cs.Rounds.Rounds != 1 ||
		cs.Treasury.Balance != levee.Units(900) || len(cs.NotYetAvailable) == 0 {
		t.Fatalf("census: %+v", cs)
	}
}

func TestContributionRules(t *testing.T) {
	ctx := context.Background()
	c := MustCity(t)
	start := c.clock.Now()
	contractor, _, err := c.accounts.CreateAccount(ctx, 0, accounts.NewAccount{Name: "dykeworks", Roles: []string{accounts.RoleContractor}, Credit: levee.Units(10)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.svc.OpenRound(ctx, budgets.NewRound{Title: "Later", Pool: levee.Units(10), CapShare: levee.MustMicros("0.5"),
		OpensAt: start.Add(time.Minute), ClosesAt: start.Add(time.Hour), CreatedBy: c.treasurer.AccountID})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.svc.Propose(ctx, c.residents[0], r.ID, budgets.NewProject{Title: "Pumps", District: "north", EstimatedCost: levee.Units(5)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.svc.Propose(ctx, c.residents[1], r.ID, budgets.NewProject{Title: "Moat", District: "north", EstimatedCost: levee.Units(5)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.svc.SetEligibility(ctx, c.treasurer.AccountID, q.ID, false, "")
	wantCode(t, "ineligible without a reason", err, levee.EINVALID)
	if _, err := c.svc.SetEligibility(ctx, c.treasurer.AccountID, q.ID, false, "not public works"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.svc.SetEligibility(ctx, c.treasurer.AccountID, p.ID, true, "ok"); err != nil {
		t.Fatal(err)
	}
	_, err = c.svc.Contribute(ctx, c.residents[0], p.ID, levee.Units(1), "")
	wantCode(t, "before the window opens", err, levee.ECONFLICT)
	c.clock.Set(start.Add(2 * time.Minute))
	_, err = c.svc.Contribute(ctx, c.residents[0], q.ID, levee.Units(1), "")
	wantCode(t, "ineligible project", err, levee.ECONFLICT)
	_, err = c.svc.Contribute(ctx, &accounts.Principal{AccountID: contractor.ID, Kind: accounts.KindOrganisation, Roles: contractor.Roles}, p.ID, levee.Units(1), "")
	wantCode(t, "contractor", err, levee.EFORBIDDEN)
	_, err = c.svc.Contribute(ctx, c.treasurer, p.ID, levee.Units(1), "")
	wantCode(t, "treasurer who is not a resident", err, levee.EFORBIDDEN)
	steward, _, err := c.accounts.CreateAccount(ctx, 0, accounts.NewAccount{Name: "sam", Roles: []string{accounts.RoleResident, accounts.RoleSteward}, District: "north", Credit: levee.Units(10)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.svc.Contribute(ctx, &accounts.Principal{AccountID: steward.ID, Kind: accounts.KindPerson, Roles: steward.Roles}, p.ID, levee.Units(1), "")
	wantCode(t, "a steward who is also a resident", err, levee.EFORBIDDEN)
	member, _, err := c.accounts.CreateAccount(ctx, 0, accounts.NewAccount{Name: "dana", Roles: []string{accounts.RoleResident}, District: "north", Credit: levee.Units(10)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.accounts.AddMember(ctx, 0, contractor.ID, member.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.svc.Contribute(ctx, &accounts.Principal{AccountID: member.ID, Kind: accounts.KindPerson, Roles: member.Roles}, p.ID, levee.Units(1), "")
	wantCode(t, "a resident who works for a contractor", err, levee.EFORBIDDEN)
	_, err = c.svc.Contribute(ctx, c.residents[0], 99999, levee.Units(1), "")
	wantCode(t, "unknown project", err, levee.ENOTFOUND)
	_, err = c.svc.Contribute(ctx, c.residents[0], p.ID, levee.Units(101), "")
	wantCode(t, "more than the resident has", err, levee.ECONFLICT)

	// Idempotency: the same key moves money once; reused differently, conflict.
	first, err := c.svc.Contribute(ctx, c.residents[0], p.ID, levee.Units(4), "once")
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.svc.Contribute(ctx, c.residents[0], p.ID, levee.Units(4), "once")
	if err != nil || again.ID != first.ID {
		t.Fatalf("retry: %+v %v", again, err)
	}
	_, err = c.svc.Contribute(ctx, c.residents[0], p.ID, levee.Units(5), "once")
	wantCode(t, "key reused", err, levee.ECONFLICT)
	if got := c.balance(t, ledger.Cash(c.residents[0].AccountID)); got != levee.Units(96) {
		t.Fatalf("cash after a retried contribution: %s", got)
	}
	_, err = c.svc.SetEligibility(ctx, c.treasurer.AccountID, p.ID, false, "changed my mind")
	wantCode(t, "eligibility after contributions", err, levee.ECONFLICT)
	if _, err := c.svc.Contribute(ctx, c.residents[1], p.ID, levee.Units(1), ""); err != nil {
		t.Fatal(err)
	}

	// Single project, cap 5 of a pool of 10: raw 2·√4·√1 = 4 units, paid in
	// full (under the cap); 6 returns to the treasury.
	c.clock.Set(start.Add(time.Hour))
	_, err = c.svc.Propose(ctx, c.residents[2], r.ID, budgets.NewProject{Title: "Late", District: "north", EstimatedCost: levee.Units(5)})
	wantCode(t, "proposal after closing", err, levee.ECONFLICT)
	d, err := c.svc.Finalize(ctx, c.treasurer.AccountID, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Results) != 1 || d.Results[0].Match != levee.Units(4) || *d.Returned != levee.Units(6) {
		t.Fatalf("results: %+v returned %v", d.Results, d.Returned)
	}
	if got := c.balance(t, "treasury"); got != levee.Units(996) {
		t.Fatalf("treasury: %s", got)
	}
	_, err = c.svc.Finalize(ctx, c.treasurer.AccountID, r.ID)
	wantCode(t, "finalise twice", err, levee.ECONFLICT)
	rep, err := c.ledger.Verify(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func TestOpenRoundValidation(t *testing.T) {
	ctx := context.Background()
	c := MustCity(t)
	now := c.clock.Now()
	for _, tt := range []struct {
		name  string
		n     budgets.NewRound
		code  string
		field string
	}{
		{"no title", budgets.NewRound{Pool: 1, ClosesAt: now.Add(time.Hour)}, levee.EINVALID, "title"},
		{"no pool", budgets.NewRound{Title: "x", ClosesAt: now.Add(time.Hour)}, levee.EINVALID, "pool"},
		{"cap over 1", budgets.NewRound{Title: "x", Pool: 1, CapShare: levee.Units(2), ClosesAt: now.Add(time.Hour)}, levee.EINVALID, "cap_share"},
		{"closes in the past", budgets.NewRound{Title: "x", Pool: 1, ClosesAt: now.Add(-time.Hour)}, levee.EINVALID, "closes_at"},
		{"closes before it opens", budgets.NewRound{Title: "x", Pool: 1, OpensAt: now.Add(2 * time.Hour), ClosesAt: now.Add(time.Hour)}, levee.EINVALID, "closes_at"},
		{"more than the treasury", budgets.NewRound{Title: "x", Pool: levee.Units(1001), ClosesAt: now.Add(time.Hour)}, levee.ECONFLICT, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.svc.OpenRound(ctx, tt.n)
			if levee.ErrorCode(err) != tt.code || levee.ErrorField(err) != tt.field {
				t.Fatalf("err %v, want %s on %q", err, tt.code, tt.field)
			}
		})
	}
	if got := c.balance(t, "treasury"); got != levee.Units(1000) {
		t.Fatalf("failed openings moved money: %s", got)
	}
}

// TestRoundsArePaged lists rounds a page at a time, newest first; the
// cursor is an id, however large.
func TestRoundsArePaged(t *testing.T) {
	ctx := context.Background()
	c := MustCity(t)
	var ids []int64 // oldest first
	for i := range 5 {
		r, err := c.svc.OpenRound(ctx, budgets.NewRound{Title: fmt.Sprintf("Round %d", i+1), Pool: levee.Units(10),
			ClosesAt: c.clock.Now().Add(time.Hour), CreatedBy: c.treasurer.AccountID})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	for _, tc := range []struct {
		name   string
		before int64
		limit  int
		want   []int64
	}{
		{"first page", 0, 2, []int64{ids[4], ids[3]}},
		{"next page", ids[3], 2, []int64{ids[2], ids[1]}},
		{"last page", ids[1], 2, []int64{ids[0]}},
		{"past the last", ids[0], 2, nil},
		{"a limit under one is one", 0, 0, []int64{ids[4]}},
		// 3000000000 is past int4: a 500 once, when the parameter was typed integer.
		{"before past int4", 3_000_000_000, 10, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := c.svc.Rounds(ctx, tc.before, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range rs {
				got = append(got, r.ID)
				if r.Phase == "" || r.PoolAccount == "" {
					t.Errorf("round %d is not filled in: %+v", r.ID, r)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ids %v, want %v", got, tc.want)
			}
		})
	}
	// More than a page: a limit over the maximum gives the maximum, and the
	// census still counts every round.
	c.db.MustExec(`INSERT INTO qf_rounds (title, pool, opens_at, closes_at) SELECT 'Old round ' || g, 1, $1, $2 FROM generate_series(1, $3) g`,
		c.clock.Now().Add(-2*time.Hour), c.clock.Now().Add(-time.Hour), budgets.MaxRoundPage)
	rs, err := c.svc.Rounds(ctx, 0, budgets.MaxRoundPage+1)
	if err != nil || len(rs) != budgets.MaxRoundPage || rs[0].ID <= ids[4] {
		t.Fatalf("a limit over the maximum: %d rounds, %v; want the %d newest", len(rs), err, budgets.MaxRoundPage)
	}
	cs, err := census.New(census.Sources{Accounts: c.accounts, Ledger: c.ledger, Budgets: c.svc}, c.clock.Now).Census(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := 5 + budgets.MaxRoundPage; cs.Rounds.Rounds != want || len(cs.Rounds.List) != want || cs.Rounds.Pools != levee.Units(50+budgets.MaxRoundPage) {
		t.Fatalf("census: %d rounds (%d listed), pools %s; want %d", cs.Rounds.Rounds, len(cs.Rounds.List), cs.Rounds.Pools, want)
	}
}
