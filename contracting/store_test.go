package contracting_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/contracting"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/migrations/dbtest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time               { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration)          { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func (c *clock) At(d time.Duration) time.Time { return c.Now().Add(d) }

type world struct {
	db        *sqlx.DB
	clock     *clock
	eng       *engine.Engine
	svc       *contracting.Service
	ledger    *ledger.Ledger
	treasurer *accounts.Principal
	residents []*accounts.Principal
	orgs      []*accounts.Principal
	line      int64
}

// MustWorld gives a database with a district, a treasurer, three residents
// with 1000 each, three contractor organisations and a budget line of 400,
// and a market engine and contracting service on one fake clock.
func MustWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	w := &world{db: db, clock: &clock{now: time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)}, ledger: ledger.New(db)}
	acc := accounts.New(db)
	if _, err := acc.CreateDistrict(ctx, 0, "north"); err != nil {
		t.Fatal(err)
	}
	if _, err := acc.IssueToTreasury(ctx, 0, levee.Units(100000), "opening"); err != nil {
		t.Fatal(err)
	}
	mk := func(n accounts.NewAccount) *accounts.Principal {
		a, _, err := acc.CreateAccount(ctx, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		return &accounts.Principal{AccountID: a.ID, Name: a.Name, Kind: a.Kind, Roles: a.Roles}
	}
	w.treasurer = mk(accounts.NewAccount{Name: "tess", Roles: []string{accounts.RoleTreasurer}})
	for _, n := range []string{"alice", "bob", "carol"} {
		w.residents = append(w.residents, mk(accounts.NewAccount{Name: n, Roles: []string{accounts.RoleResident}, District: "north", Credit: levee.Units(1000)}))
	}
	for _, n := range []string{"dykeworks", "polderco", "sluiceltd"} {
		w.orgs = append(w.orgs, mk(accounts.NewAccount{Name: n, Roles: []string{accounts.RoleContractor}}))
	}
	w.eng = engine.New(db, engine.Options{Clock: w.clock.Now})
	t.Cleanup(w.eng.Close)
	w.svc = contracting.New(db, w.eng, contracting.Options{Now: w.clock.Now})

	b := budgets.New(db, budgets.Options{Cash: w.eng, Now: w.clock.Now})
	r, err := b.OpenRound(ctx, budgets.NewRound{Title: "works", Pool: levee.Units(1000), ClosesAt: w.clock.At(time.Hour), CreatedBy: w.treasurer.AccountID})
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Propose(ctx, w.residents[0], r.ID, budgets.NewProject{Title: "dyke", District: "north", EstimatedCost: levee.Units(300)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.SetEligibility(ctx, w.treasurer.AccountID, p.ID, true, "ok"); err != nil {
		t.Fatal(err)
	}
	for _, res := range w.residents[:2] {
		if _, err := b.Contribute(ctx, res, p.ID, levee.Units(100), ""); err != nil {
			t.Fatal(err)
		}
	}
	w.clock.Add(2 * time.Hour)
	d, err := b.Finalize(ctx, w.treasurer.AccountID, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.line = *d.Results[0].BudgetLine
	return w
}

func (w *world) balance(t *testing.T, key string) levee.Micros {
	t.Helper()
	b, err := w.ledger.Balance(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *world) tender(t *testing.T) contracting.TenderView {
	t.Helper()
	tv, err := w.svc.CreateTender(context.Background(), contracting.NewTender{
		BudgetLine: w.line, Title: "Dyke", Districts: []string{"north"}, BudgetCap: levee.Units(150),
		ClosesAt: w.clock.At(time.Hour), DecisionAt: w.clock.At(11 * time.Hour), MinConfidence: levee.MustMicros("0.5"),
		TWAPWindow: 4 * time.Hour, DisputeWindow: 24 * time.Hour, CreatedBy: w.treasurer.AccountID,
		Milestones: []contracting.NewMilestone{{Title: "a", Share: levee.MustMicros("0.25")}, {Title: "b", Share: levee.MustMicros("0.75")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tv
}

func (w *world) bid(t *testing.T, tv contracting.TenderView, org int, price string) contracting.Bid {
	t.Helper()
	done := tv.DecisionAt.Add(30 * 24 * time.Hour)
	b, err := w.svc.SubmitBid(context.Background(), w.orgs[org], tv.ID, contracting.NewBid{Organisation: w.orgs[org].AccountID,
		Price: levee.MustMicros(price), CompletionAt: done, MilestoneDates: []time.Time{done.Add(-time.Hour), done}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBidsAreSealedInTheStore(t *testing.T) {
	w := MustWorld(t)
	ctx := context.Background()
	tv := w.tender(t)
	a := w.bid(t, tv, 0, "100")
	b := w.bid(t, tv, 1, "90")
	for _, viewer := range []*accounts.Principal{nil, w.treasurer, w.residents[0], w.orgs[2]} {
		bs, err := w.svc.Bids(ctx, viewer, tv.ID)
		if err != nil || len(bs) != 0 {
			t.Fatalf("viewer %v sees %v %v", viewer, bs, err)
		}
		if _, err := w.svc.Bid(ctx, viewer, a.ID); levee.ErrorCode(err) != levee.ENOTFOUND {
			t.Fatalf("viewer %v reads bid: %v", viewer, err)
		}
	}
	if bs, _ := w.svc.Bids(ctx, w.orgs[1], tv.ID); len(bs) != 1 || bs[0].ID != b.ID {
		t.Fatalf("own bids: %v", bs)
	}
	if _, err := w.svc.WithdrawBid(ctx, w.orgs[1], a.ID); levee.ErrorCode(err) != levee.ENOTFOUND {
		t.Fatalf("rival withdrew: %v", err)
	}
	if _, err := w.svc.WithdrawBid(ctx, w.orgs[1], b.ID); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(time.Hour)
	bs, err := w.svc.Bids(ctx, nil, tv.ID)
	if err != nil || len(bs) != 1 || bs[0].ID != a.ID {
		t.Fatalf("after close: %v %v (withdrawn bids stay sealed)", bs, err)
	}
}

func TestAwardUsesTheTWAPAndRefundsLosers(t *testing.T) {
	w := MustWorld(t)
	ctx := context.Background()
	tv := w.tender(t)
	bids := []contracting.Bid{w.bid(t, tv, 0, "100"), w.bid(t, tv, 1, "90"), w.bid(t, tv, 2, "120")}
	if _, err := w.svc.CloseBids(ctx, w.treasurer.AccountID, tv.ID); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("closed early: %v", err)
	}
	w.clock.Add(time.Hour)
	if _, err := w.svc.CloseBids(ctx, w.treasurer.AccountID, tv.ID); err != nil {
		t.Fatal(err)
	}
	subsidy := levee.MustMicros("6.931472")
	if got := w.balance(t, ledger.BudgetLine(w.line)); got != levee.Units(400)-3*subsidy {
		t.Fatalf("line %s", got)
	}
	bs, _ := w.svc.Bids(ctx, nil, tv.ID)
	cash0 := map[int64]levee.Micros{}
	for _, r := range w.residents {
		cash0[r.AccountID] = w.balance(t, ledger.Cash(r.AccountID))
	}
	trade := func(who int, bid int, outcome int, amount string) engine.Result {
		res, err := w.eng.Submit(ctx, w.residents[who].AccountID, *bs[bid].MarketID, market.Order{Outcome: outcome, Side: market.Buy, Amount: levee.MustMicros(amount)}, "")
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Bid 0: yes bought 2 h before the window; then, 2 h into the 4 h
	// window, pushed up again. Its TWAP is the mean of the two prices.
	w.clock.Add(4 * time.Hour) // window opens at decision − 4 h = close + 6 h
	r1 := trade(0, 0, 0, "5")
	trade(2, 2, 0, "1")
	w.clock.Add(4 * time.Hour)
	r2 := trade(1, 0, 0, "5")
	trade(1, 1, 1, "8") // bid 1 falls below the minimum confidence
	spent := map[int64]levee.Micros{w.residents[0].AccountID: r1.Cost, w.residents[1].AccountID: r2.Cost}
	w.clock.Add(2 * time.Hour)
	tvA, err := w.svc.Award(ctx, w.treasurer.AccountID, tv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tvA.Status != contracting.StatusAwarded || tvA.Contract == nil {
		t.Fatalf("award: %+v", tvA)
	}
	s, err := w.svc.Score(ctx, &tvA.Tender, bs)
	if err != nil {
		t.Fatal(err)
	}
	wantTWAP := (r1.Prices[0] + r2.Prices[0]) / 2
	if s[0].TWAP != wantTWAP {
		t.Fatalf("TWAP %s, want (%s + %s) / 2", s[0].TWAP, r1.Prices[0], r2.Prices[0])
	}
	if contracting.Decide(s, tvA.MinConfidence) != 0 || s[1].Qualifies {
		t.Fatalf("scores %+v", s)
	}
	for _, r := range w.residents {
		if got := w.balance(t, ledger.Cash(r.AccountID)); got != cash0[r.AccountID]-spent[r.AccountID] {
			t.Errorf("resident %d cash %s, want %s", r.AccountID, got, cash0[r.AccountID]-spent[r.AccountID])
		}
	}
	if got := w.balance(t, ledger.BudgetLine(w.line)); got != levee.Units(300)-subsidy {
		t.Fatalf("line after award %s", got)
	}
	cid := *tvA.Contract
	if got := w.balance(t, ledger.Escrow(cid)); got != bids[0].Price {
		t.Fatalf("escrow %s", got)
	}
	if _, err := w.svc.Award(ctx, w.treasurer.AccountID, tv.ID); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("second award: %v", err)
	}

	// Milestone 1 accepted after its dispute window; milestone 2 never
	// claimed: at the completion date the contract fails, the market
	// resolves no and the rest of the escrow returns to the line.
	if _, err := w.svc.Claim(ctx, w.orgs[1], cid, 1, "done"); levee.ErrorCode(err) != levee.EFORBIDDEN {
		t.Fatalf("rival claim: %v", err)
	}
	if _, err := w.svc.Claim(ctx, w.orgs[0], cid, 1, "done"); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(25 * time.Hour)
	c, err := w.svc.Contract(ctx, cid)
	if err != nil || c.Milestones[0].Status != contracting.MilestoneAccepted || c.Escrow != levee.Units(75) {
		t.Fatalf("contract %+v %v", c, err)
	}
	if got := w.balance(t, ledger.Cash(w.orgs[0].AccountID)); got != levee.Units(25) {
		t.Fatalf("contractor cash %s", got)
	}
	w.clock.Add(31 * 24 * time.Hour)
	if c, err = w.svc.Contract(ctx, cid); err != nil || c.Status != contracting.ContractFailed || c.Escrow != 0 {
		t.Fatalf("contract %+v %v", c, err)
	}
	snap, _ := w.eng.Snapshot(ctx, *c.MarketID)
	if snap.Market.Status != market.StatusResolved || *snap.Market.ResolvedOutcome != 1 {
		t.Fatalf("market %+v", snap.Market)
	}
	if rep, err := w.ledger.Verify(ctx); err != nil || !rep.OK {
		t.Fatalf("verify %+v %v", rep, err)
	}
}

func TestTenderValidationAndAmendments(t *testing.T) {
	w := MustWorld(t)
	ctx := context.Background()
	n := contracting.NewTender{BudgetLine: w.line, Title: "x", Districts: []string{"north"}, BudgetCap: levee.Units(500),
		OpensAt: w.clock.At(time.Hour), ClosesAt: w.clock.At(2 * time.Hour), DecisionAt: w.clock.At(3 * time.Hour),
		TWAPWindow: time.Hour, CreatedBy: w.treasurer.AccountID, Milestones: []contracting.NewMilestone{{Title: "all", Share: levee.Scale}}}
	if _, err := w.svc.CreateTender(ctx, n); levee.ErrorField(err) != "budget_cap" {
		t.Fatalf("cap above the line: %v", err)
	}
	n.BudgetCap = levee.Units(100)
	tv, err := w.svc.CreateTender(ctx, n)
	if err != nil || tv.Phase != "upcoming" {
		t.Fatalf("%+v %v", tv, err)
	}
	title := "y"
	if tv, err = w.svc.EditTender(ctx, w.treasurer.AccountID, tv.ID, contracting.TenderEdit{Title: &title}); err != nil || tv.Title != "y" || len(tv.Amendments) != 0 {
		t.Fatalf("edit before opening: %+v %v", tv, err)
	}
	w.clock.Add(time.Hour)
	title = "z"
	if tv, err = w.svc.EditTender(ctx, w.treasurer.AccountID, tv.ID, contracting.TenderEdit{Title: &title, Reason: "typo"}); err != nil || tv.Title != "z" || len(tv.Amendments) != 1 {
		t.Fatalf("amend: %+v %v", tv, err)
	}
	var stored string
	if err := w.db.GetContext(ctx, &stored, `SELECT title FROM tenders WHERE id = $1`, tv.ID); err != nil || stored != "y" {
		t.Fatalf("the original was overwritten: %q %v", stored, err)
	}
	w.clock.Add(time.Hour)
	if _, err := w.svc.CloseBids(ctx, w.treasurer.AccountID, tv.ID); err != nil {
		t.Fatal(err)
	}
	if tv, _ = w.svc.Tender(ctx, nil, tv.ID); tv.Status != contracting.StatusUnsuccessful || tv.Award == nil {
		t.Fatalf("no bids: %+v", tv)
	}
}

// TestTendersArePaged lists tenders a page at a time, newest first, each
// with its amendments applied and its districts named.
func TestTendersArePaged(t *testing.T) {
	w := MustWorld(t)
	ctx := context.Background()
	var ids []int64
	for range 3 {
		ids = append(ids, w.tender(t).ID)
	}
	title := "Dyke, amended"
	if _, err := w.svc.EditTender(ctx, w.treasurer.AccountID, ids[0], contracting.TenderEdit{Title: &title, Reason: "survey"}); err != nil {
		t.Fatal(err)
	}
	first, err := w.svc.Tenders(ctx, 0, 2)
	if err != nil || len(first) != 2 || first[0].ID != ids[2] || first[1].ID != ids[1] {
		t.Fatalf("first page: %+v %v", first, err)
	}
	rest, err := w.svc.Tenders(ctx, first[1].ID, 2)
	if err != nil || len(rest) != 1 || rest[0].ID != ids[0] || rest[0].Title != title || len(rest[0].Districts) != 1 || rest[0].Districts[0] != "north" {
		t.Fatalf("second page: %+v %v", rest, err)
	}
	if none, err := w.svc.Tenders(ctx, ids[0], 2); err != nil || len(none) != 0 {
		t.Fatalf("past the end: %+v %v", none, err)
	}
	// An id past int4 (the hostile generator's 2147483648) is just a page.
	if all, err := w.svc.Tenders(ctx, 1<<40, 10); err != nil || len(all) != 3 {
		t.Fatalf("before a large id: %+v %v", all, err)
	}
}
