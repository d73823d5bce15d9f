package budgets_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"levee"
	"levee/budgets"
	"levee/ledger"
)

func (c *city) MustRound(t *testing.T, pool levee.Micros) budgets.Round {
	t.Helper()
	r, err := c.svc.OpenRound(context.Background(), budgets.NewRound{Title: "Flood works", Pool: pool, EligibilityRules: "Public works.",
		ClosesAt: c.clock.Now().Add(time.Hour), CreatedBy: c.treasurer.AccountID})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (c *city) MustEligibleProject(t *testing.T, roundID int64, title string) int64 {
	t.Helper()
	ctx := context.Background()
	p, err := c.svc.Propose(ctx, c.residents[0], roundID, budgets.NewProject{Title: title, District: "north", EstimatedCost: levee.Units(50)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.svc.SetEligibility(ctx, c.treasurer.AccountID, p.ID, true, "meets the rules"); err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func (c *city) MustVerify(t *testing.T) {
	t.Helper()
	if r, err := c.ledger.Verify(context.Background()); err != nil || !r.OK {
		t.Fatalf("ledger does not verify: %+v %v", r, err)
	}
}

// TestEligibilityNeverMissesAContribution races contributions against a
// treasurer taking a project's eligibility back (issue 13 §4). Whatever the
// interleaving, a project that holds contributions stays eligible, and the
// round finalises with every unit of the escrow accounted for.
func TestEligibilityNeverMissesAContribution(t *testing.T) {
	ctx := context.Background()
	c := MustCity(t)
	r := c.MustRound(t, levee.Units(100))
	contributors := c.residents[1:4]
	spent := map[int64]levee.Micros{}
	var mu sync.Mutex
	const rounds = 40
	for i := range rounds {
		p := c.MustEligibleProject(t, r.ID, fmt.Sprintf("Project %d", i))
		var wg sync.WaitGroup
		for _, who := range contributors {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.svc.Contribute(ctx, who, p, levee.MustMicros("0.5"), "")
				switch levee.ErrorCode(err) {
				case "":
					mu.Lock()
					spent[who.AccountID] += levee.MustMicros("0.5")
					mu.Unlock()
				case levee.ECONFLICT: // the project was no longer eligible
				default:
					t.Errorf("contribute: %v", err)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.svc.SetEligibility(ctx, c.treasurer.AccountID, p, false, "outside the rules after all")
			if err != nil && levee.ErrorCode(err) != levee.ECONFLICT {
				t.Errorf("set eligibility: %v", err)
			}
		}()
		wg.Wait()
		var st struct {
			Eligible      bool `db:"eligible"`
			Contributions int  `db:"contributions"`
		}
		if err := c.db.Get(&st, `SELECT p.eligible, (SELECT count(*) FROM qf_contributions WHERE project_id = p.id) AS contributions
			FROM qf_projects p WHERE p.id = $1`, p); err != nil {
			t.Fatal(err)
		}
		if !st.Eligible && st.Contributions > 0 {
			t.Errorf("project %d: ineligible with %d contributions in escrow", p, st.Contributions)
		}
	}
	c.clock.Set(c.clock.Now().Add(time.Hour))
	if _, err := c.svc.Finalize(ctx, c.treasurer.AccountID, r.ID); err != nil {
		t.Fatalf("finalise: %v", err)
	}
	if got := c.balance(t, r.EscrowAccount); got != 0 {
		t.Errorf("escrow after finalising: %s", got)
	}
	for _, who := range contributors {
		if got, want := c.balance(t, ledger.Cash(who.AccountID)), levee.Units(100)-spent[who.AccountID]; got != want {
			t.Errorf("resident %d: cash %s, want %s", who.AccountID, got, want)
		}
	}
	c.MustVerify(t)
}

// TestFinalizeRefundsContributionsToIneligibleProjects finalises a round
// left as the eligibility race used to leave it: a project marked not
// eligible with money in escrow. Finalising refunds that money exactly, in
// the same transaction, instead of failing forever.
func TestFinalizeRefundsContributionsToIneligibleProjects(t *testing.T) {
	ctx := context.Background()
	c := MustCity(t)
	r := c.MustRound(t, levee.Units(10))
	stuck, funded := c.MustEligibleProject(t, r.ID, "Pumps"), c.MustEligibleProject(t, r.ID, "Dyke path")
	for i, who := range c.residents[1:4] {
		if _, err := c.svc.Contribute(ctx, who, stuck, levee.Units(int64(i+1)), ""); err != nil {
			t.Fatal(err)
		}
		if _, err := c.svc.Contribute(ctx, who, stuck, levee.MustMicros("0.25"), ""); err != nil {
			t.Fatal(err)
		}
		if _, err := c.svc.Contribute(ctx, who, funded, levee.Units(1), ""); err != nil {
			t.Fatal(err)
		}
	}
	c.db.MustExec(`UPDATE qf_projects SET eligible = false, eligibility_reason = 'raced' WHERE id = $1`, stuck)
	before := c.cash.seen[c.residents[1].AccountID]

	c.clock.Set(c.clock.Now().Add(time.Hour))
	d, err := c.svc.Finalize(ctx, c.treasurer.AccountID, r.ID)
	if err != nil {
		t.Fatalf("finalise: %v", err)
	}
	if len(d.Results) != 1 || d.Results[0].ProjectID != funded || d.Results[0].Contributed != levee.Units(3) {
		t.Fatalf("results: %+v", d.Results)
	}
	for _, who := range c.residents[1:4] {
		// Each put 1 into the funded project; the rest came back.
		if got := c.balance(t, ledger.Cash(who.AccountID)); got != levee.Units(99) {
			t.Errorf("resident %d: cash %s, want 99", who.AccountID, got)
		}
	}
	if got := c.balance(t, r.EscrowAccount); got != 0 {
		t.Errorf("escrow after finalising: %s", got)
	}
	if c.cash.seen[c.residents[1].AccountID] != before+1 {
		t.Errorf("the engine was not told of the refund: %v", c.cash.seen)
	}
	c.MustVerify(t)
}
