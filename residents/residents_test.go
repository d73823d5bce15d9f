package residents_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/migrations/dbtest"
	"levee/residents"
)

// noMarkets is a market engine where the person holds nothing.
type noMarkets struct{ left []int64 }

func (noMarkets) Positions(context.Context, int64) ([]engine.Position, error) { return nil, nil }
func (noMarkets) TradesOf(context.Context, int64) ([]market.Trade, error)     { return nil, nil }
func (noMarkets) Quote(context.Context, int64, int64, market.Order) (market.Fill, *engine.Snapshot, error) {
	return market.Fill{}, nil, nil
}
func (m *noMarkets) Leave(id int64)                       { m.left = append(m.left, id) }
func (noMarkets) WaitOrders(context.Context, int64) error { return nil }
func (noMarkets) InvalidateCash(int64)                    {}
func (noMarkets) SellForExit(context.Context, int64, int64, int, string) (engine.Result, error) {
	return engine.Result{}, levee.Errorf(levee.ECONFLICT, "nothing to sell")
}

// TestExportAcrossTheEpochAndExit: a person whose money predates
// pseudonyms exports entries of both epochs, under both their names, and
// every one is the public chain's; then they leave, and a treasurer pays out
// what is owed, once.
func TestExportAcrossTheEpochAndExit(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	if _, err := db.ExecContext(ctx, `UPDATE ledger_head SET private_from = NULL`); err != nil { // a ledger from before
		t.Fatal(err)
	}
	acc, l := accounts.New(db), ledger.New(db)
	if _, err := acc.CreateDistrict(ctx, 0, "north"); err != nil {
		t.Fatal(err)
	}
	a, _, err := acc.CreateAccount(ctx, 0, accounts.NewAccount{Name: "alice", Roles: []string{accounts.RoleResident}, District: "north", Credit: levee.Units(30)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.BeginPrivateEpoch(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := acc.IssueToTreasury(ctx, 0, levee.Units(100), "opening"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Transfer(ctx, ledger.Transfer{Kind: "grant", Postings: []ledger.Posting{
		{Account: ledger.Treasury, Amount: -levee.Units(12)}, {Account: ledger.Cash(a.ID), Amount: levee.Units(12)}}}); err != nil {
		t.Fatal(err)
	}
	mk := &noMarkets{}
	svc := residents.New(db, residents.Options{Accounts: acc, Ledger: l, Markets: mk, Clock: time.Now})
	who, err := acc.Principal(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	x, err := svc.Export(ctx, who)
	if err != nil {
		t.Fatal(err)
	}
	p := x.Account.Pseudonym
	if len(x.LedgerNames) != 2 || x.LedgerNames[0] != ledger.Cash(a.ID) || x.LedgerNames[1] != "cash:"+p {
		t.Fatalf("ledger names %v", x.LedgerNames)
	}
	var sum levee.Micros
	for _, line := range x.Statement {
		sum += line.Amount
	}
	if sum != levee.Units(42) || x.Account.Cash != levee.Units(42) || len(x.Entries) != 4 { // credit, carry out, carry in, grant
		t.Fatalf("statement sums to %s of %s over %d entries", sum, x.Account.Cash, len(x.Entries))
	}
	for _, e := range x.Entries {
		pub, err := l.Entries(ctx, e.Seq-1, 1)
		if err != nil || !bytes.Equal(pub[0].Hash, e.Hash) || !bytes.Equal(e.ComputeHash(), e.Hash) {
			t.Fatalf("entry %d does not round-trip: %v", e.Seq, err)
		}
	}

	// Leaving: a preview moves nothing; the exit moves all 42.
	if plan, err := svc.Exit(ctx, who, residents.KeepPositions, true); err != nil || plan.Moved != levee.Units(42) || len(mk.left) != 0 {
		t.Fatalf("preview: %+v, %v", plan, err)
	}
	plan, err := svc.Exit(ctx, who, residents.SellPositions, false)
	if err != nil || plan.Moved != levee.Units(42) || plan.ExitAccount != "exit:"+p || len(mk.left) != 1 {
		t.Fatalf("exit: %+v, %v", plan, err)
	}
	if got, _ := acc.Get(ctx, a.ID); got.Cash != 0 || got.ExitedAt == nil {
		t.Fatalf("after exit: %+v", got)
	}
	if again, err := svc.Exit(ctx, who, residents.SellPositions, false); err != nil || again.Moved != 0 {
		t.Fatalf("a second exit: %+v, %v", again, err)
	}
	tess, _, err := acc.CreateAccount(ctx, 0, accounts.NewAccount{Name: "tess", Roles: []string{accounts.RoleTreasurer}})
	if err != nil {
		t.Fatal(err)
	}
	tp, _ := acc.Principal(ctx, tess.ID)
	if _, err := svc.PayOut(ctx, tp, p, ""); levee.ErrorCode(err) != levee.EINVALID {
		t.Fatalf("a payout without a reference: %v", err)
	}
	if _, err := svc.PayOut(ctx, tp, "p00000000000000000000", "x"); levee.ErrorCode(err) != levee.ENOTFOUND {
		t.Fatalf("a payout to nobody: %v", err)
	}
	paid, err := svc.PayOut(ctx, tp, p, "bank transfer 7")
	if err != nil || paid.Amount != levee.Units(42) {
		t.Fatalf("payout: %+v, %v", paid, err)
	}
	if _, err := svc.PayOut(ctx, tp, p, "again"); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("a second payout: %v", err)
	}
	if r, err := l.Verify(ctx); err != nil || !r.OK {
		t.Fatalf("ledger: %+v, %v", r, err)
	}
	// An organisation cannot leave this way.
	org, _, err := acc.CreateAccount(ctx, 0, accounts.NewAccount{Name: "dykeworks", Kind: accounts.KindOrganisation, Roles: []string{accounts.RoleContractor}})
	if err != nil {
		t.Fatal(err)
	}
	op, _ := acc.Principal(ctx, org.ID)
	if _, err := svc.Exit(ctx, op, residents.KeepPositions, false); levee.ErrorCode(err) != levee.EFORBIDDEN {
		t.Fatalf("an organisation's exit: %v", err)
	}
}
