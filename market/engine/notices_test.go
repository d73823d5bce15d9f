package engine_test

import (
	"context"
	"strings"
	"testing"

	"levee"
	"levee/outbox"
)

// TestSettlementTellsTraders resolves one market and voids another: each
// trader whose cash the settlement moves gets a payment notice saying how
// much and why, written with the settlement; a trader whose shares lost
// gets none.
func TestSettlementTellsTraders(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	bob := f.MustAccount("bob", levee.Units(1000))
	resolved, voided := f.MustMarket(levee.Units(10), "yes", "no"), f.MustMarket(levee.Units(10), "yes", "no")
	var paid [2]levee.Micros // in the voided market
	for _, m := range []int64{resolved.ID, voided.ID} {
		for i, who := range []int64{alice, bob} {
			r, err := f.e.Submit(ctx, who, m, buy(i, "4"), "")
			if err != nil {
				t.Fatal(err)
			}
			paid[i] = r.Cost
		}
	}
	if err := f.e.Resolve(ctx, resolved.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.e.Void(ctx, voided.ID); err != nil {
		t.Fatal(err)
	}
	said := func(account int64) []string {
		ns, err := outbox.List(ctx, f.db, account, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range ns {
			if n.Kind != "payment" {
				t.Errorf("kind %q", n.Kind)
			}
			out = append(out, n.Message)
		}
		return out
	}
	a, b := said(alice), said(bob)
	if len(a) != 2 || !strings.Contains(a[1], `resolved "yes": `) || !strings.Contains(a[1], "is paid to your account") ||
		!strings.Contains(a[0], "was voided: "+paid[0].String()+" is returned to your account") {
		t.Fatalf("alice was told %q", a)
	}
	if len(b) != 1 || !strings.Contains(b[0], "was voided: "+paid[1].String()+" is returned") {
		t.Fatalf("bob was told %q", b)
	}
	f.MustVerify()
}
