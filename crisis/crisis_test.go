package crisis_test

import (
	"context"
	"testing"
	"time"

	"levee"
	"levee/accounts"
	"levee/crisis"
	"levee/migrations/dbtest"
)

// node is a fresh database with districts north and south, a steward sam
// named by a founded charter, a resident, two neighbours' delegates and the
// crisis service on a fixed clock.
type node struct {
	svc      *crisis.Service
	accounts *accounts.Service
	steward  *accounts.Principal
	resident *accounts.Principal
}

// MustNode founds a charter with a spending cap of 5000, emergencies of at
// most the charter's default length, and a quorum of 2.
func MustNode(t *testing.T) *node {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	n := &node{accounts: accounts.New(db)}
	for _, d := range []string{"north", "south"} {
		if _, err := n.accounts.CreateDistrict(ctx, 0, d); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(name, district string, roles ...string) *accounts.Principal {
		a, _, err := n.accounts.CreateAccount(ctx, 0, accounts.NewAccount{Name: name, Roles: roles, District: district})
		if err != nil {
			t.Fatal(err)
		}
		p, err := n.accounts.Principal(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	n.steward = mk("sam", "north", accounts.RoleResident, accounts.RoleSteward)
	n.resident = mk("alice", "north", accounts.RoleResident)
	mk("delta-delegate", "", accounts.RoleDelegate)
	mk("ridge-delegate", "", accounts.RoleDelegate)
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	n.svc = crisis.New(db, crisis.Options{Clock: func() time.Time { return now }})
	districts, stewards := []string{"north", "south"}, []string{"sam"}
	neighbours := []crisis.NeighbourSpec{{Name: "delta", Delegate: "delta-delegate"}, {Name: "ridge", Delegate: "ridge-delegate"}}
	quorum, spendingCap := 2, levee.Units(5000)
	if _, err := n.svc.Found(ctx, 0, crisis.CharterChange{Districts: &districts, Stewards: &stewards, Neighbours: &neighbours,
		Quorum: &quorum, SpendingCap: &spendingCap}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCharterIsFoundedOnce(t *testing.T) {
	n := MustNode(t)
	quorum := 1
	_, err := n.svc.Found(context.Background(), 0, crisis.CharterChange{Quorum: &quorum})
	if code := levee.ErrorCode(err); code != levee.ECONFLICT {
		t.Fatalf("second founding: %v (code %s), want %s", err, code, levee.ECONFLICT)
	}
	c, err := n.svc.Charter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Quorum != 2 || len(c.Districts) != 2 || len(c.Stewards) != 1 || c.Stewards[0].Name != "sam" || len(c.Neighbours) != 2 ||
		c.Neighbours[0].DelegateName != "delta-delegate" {
		t.Fatalf("charter: %+v", c)
	}
}

// TestDeclarationStaysWithinTheCharter checks each limit the charter puts on
// declaring an emergency, then declares one and refuses a second while it
// is active.
func TestDeclarationStaysWithinTheCharter(t *testing.T) {
	n := MustNode(t)
	ctx := context.Background()
	ok := crisis.Declaration{Reason: "Storm surge", Districts: []string{"north"}, Duration: "72h", Cap: levee.Units(1000)}
	for _, tc := range []struct {
		name  string
		who   *accounts.Principal
		edit  func(d *crisis.Declaration)
		code  string
		field string
	}{
		{"not a steward", n.resident, func(d *crisis.Declaration) {}, levee.EFORBIDDEN, ""},
		{"no reason", n.steward, func(d *crisis.Declaration) { d.Reason = "" }, levee.EINVALID, "reason"},
		{"too long", n.steward, func(d *crisis.Declaration) { d.Duration = "1000d" }, levee.EINVALID, "duration"},
		{"cap over the charter's", n.steward, func(d *crisis.Declaration) { d.Cap = levee.Units(5001) }, levee.EINVALID, "cap"},
		{"no cap", n.steward, func(d *crisis.Declaration) { d.Cap = 0 }, levee.EINVALID, "cap"},
		{"no districts", n.steward, func(d *crisis.Declaration) { d.Districts = nil }, levee.EINVALID, "districts"},
		{"unknown district", n.steward, func(d *crisis.Declaration) { d.Districts = []string{"atlantis"} }, levee.EINVALID, "districts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := ok
			tc.edit(&d)
			_, err := n.svc.Declare(ctx, tc.who, d)
			if levee.ErrorCode(err) != tc.code || tc.field != "" && levee.ErrorField(err) != tc.field {
				t.Fatalf("Declare: %v (code %s, field %q), want %s on %q", err, levee.ErrorCode(err), levee.ErrorField(err), tc.code, tc.field)
			}
		})
	}
	e, err := n.svc.Declare(ctx, n.steward, ok)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Active || e.StewardName != "sam" || len(e.Districts) != 1 || e.Districts[0].Name != "north" || e.Cap != levee.Units(1000) {
		t.Fatalf("emergency: %+v", e)
	}
	if _, err := n.svc.Declare(ctx, n.steward, ok); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("a second emergency: %v, want %s", err, levee.ECONFLICT)
	}
	cur, err := n.svc.Current(ctx)
	if err != nil || cur == nil || cur.ID != e.ID {
		t.Fatalf("current: %+v, %v", cur, err)
	}
}
