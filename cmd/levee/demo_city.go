package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/crisis"
	"levee/market/engine"
	"levee/subjects"
)

// The rest of the demo city: residents enough to draw juries from, the
// delegates of three neighbour nodes, a founded charter, and budget lines
// from a finished quadratic funding round.

var demoDistricts = []string{"north", "south", "harbour"}

// demoNeighbours are the neighbour nodes of the demo charter and their
// delegates' account names.
var demoNeighbours = []crisis.NeighbourSpec{
	{Name: "Delta City", Delegate: "delta-delegate"},
	{Name: "Estuary Commons", Delegate: "estuary-delegate"},
	{Name: "Ridge Town", Delegate: "ridge-delegate"},
}

// jurorsPerDistrict residents are added to each district so that a jury
// can be drawn without the named demo accounts.
const jurorsPerDistrict = 6

// demoJurors lists the extra residents' names.
func demoJurors() []string {
	var out []string
	for _, d := range demoDistricts {
		for i := 1; i <= jurorsPerDistrict; i++ {
			out = append(out, fmt.Sprintf("%s-%d", d, i))
		}
	}
	return out
}

// seedDemoCity adds the jurors, delegates, charter and budget lines, and
// writes their sign-ins to w.
func (m *Main) seedDemoCity(ctx context.Context, w io.Writer, ids map[string]int64) error {
	password := "demo-" + randomHex(6)
	for _, name := range demoJurors() {
		district := name[:len(name)-2]
		a, _, err := m.Accounts.CreateAccount(ctx, 0, accounts.NewAccount{Name: name, Roles: []string{accounts.RoleResident},
			District: district, Credit: levee.Units(100), Password: password})
		if err != nil {
			return fmt.Errorf("seed resident %s: %w", name, err)
		}
		ids[name] = a.ID
	}
	fmt.Fprintf(w, "  Residents for juries: north-1..%d, south-1..%d, harbour-1..%d, all with password %s\n",
		jurorsPerDistrict, jurorsPerDistrict, jurorsPerDistrict, password)
	for _, n := range demoNeighbours {
		a, _, err := m.Accounts.CreateAccount(ctx, 0, accounts.NewAccount{Name: n.Delegate, Roles: []string{accounts.RoleDelegate}, Password: password})
		if err != nil {
			return fmt.Errorf("seed delegate %s: %w", n.Delegate, err)
		}
		ids[n.Delegate] = a.ID
	}
	fmt.Fprintf(w, "  Neighbour delegates: delta-delegate, estuary-delegate, ridge-delegate, password %s\n", password)
	neighbours := demoNeighbours
	quorum, cap, threshold := 2, levee.Units(5000), 10
	districts, stewards := demoDistricts, []string{"sam"}
	if _, err := m.Crisis.Found(ctx, 0, crisis.CharterChange{Districts: &districts, Stewards: &stewards, Neighbours: &neighbours,
		Quorum: &quorum, SpendingCap: &cap, PetitionThreshold: &threshold}); err != nil {
		return fmt.Errorf("seed charter: %w", err)
	}
	return m.seedDemoBudgets(ctx, ids)
}

// seedDemoBudgets runs a quadratic funding round to its end on a budgets
// service with its own clock, so the demo starts with funded budget lines.
func (m *Main) seedDemoBudgets(ctx context.Context, ids map[string]int64) error {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	svc := budgets.New(m.DB, budgets.Options{Cash: m.Engine, Now: clock, Logger: m.logger})
	r, err := svc.OpenRound(ctx, budgets.NewRound{Title: "Storm season 2026", Pool: levee.Units(3000), ClosesAt: now.Add(time.Hour), CreatedBy: ids["tess"]})
	if err != nil {
		return fmt.Errorf("seed round: %w", err)
	}
	principal := func(name string) *accounts.Principal {
		p, err := m.Accounts.Principal(ctx, ids[name])
		if err != nil {
			return nil // the service refuses a nil caller
		}
		return p
	}
	for _, p := range []struct {
		title, district, by string
		cost                int64
	}{
		{"North pumping station repair", "north", "alice", 1500},
		{"Harbour sea wall", "harbour", "carol", 1500},
		{"South flood barrier", "south", "bob", 1000},
	} {
		proj, err := svc.Propose(ctx, principal(p.by), r.ID, budgets.NewProject{Title: p.title, District: p.district, EstimatedCost: levee.Units(p.cost)})
		if err != nil {
			return fmt.Errorf("seed project: %w", err)
		}
		if _, err := svc.SetEligibility(ctx, ids["tess"], proj.ID, true, "storm works"); err != nil {
			return err
		}
		for i := 1; i <= jurorsPerDistrict; i++ {
			if _, err := svc.Contribute(ctx, principal(fmt.Sprintf("%s-%d", p.district, i)), proj.ID, levee.Units(50), ""); err != nil {
				return fmt.Errorf("seed contribution: %w", err)
			}
		}
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if _, err := svc.Finalize(ctx, ids["tess"], r.ID); err != nil {
		return fmt.Errorf("seed round results: %w", err)
	}
	return nil
}

// seedDemoCase opens a disputed market case so that jury duty has something
// to show: a market that has closed, a treasurer's proposal, and alice's
// dispute, with five jurors drawn from the north's residents.
func (m *Main) seedDemoCase(ctx context.Context, w io.Writer, ids map[string]int64) error {
	mk, err := m.Engine.CreateMarket(ctx, engine.NewMarket{Question: "Did the river crest above 4 m at the north gauge during the November storm?",
		Outcomes: []string{"yes", "no"}, Liquidity: levee.Units(100), District: "north", ClosesAt: time.Now().Add(time.Hour), CreatedBy: ids["tess"]})
	if err != nil {
		return fmt.Errorf("seed case market: %w", err)
	}
	if err := m.Engine.CloseMarket(ctx, mk.ID); err != nil {
		return err
	}
	tess, err := m.Accounts.Principal(ctx, ids["tess"])
	if err != nil {
		return err
	}
	if _, err := m.Markets.Propose(ctx, tess, mk.ID, "no", "The gauge log shows a crest of 3.6 m at 02:10."); err != nil {
		return fmt.Errorf("seed proposal: %w", err)
	}
	alice, err := m.Accounts.Principal(ctx, ids["alice"])
	if err != nil {
		return err
	}
	c, err := m.Settlement.Dispute(ctx, alice, subjects.Market(mk.ID), "The gauge was under water; the flood marks on the bridge show 4.2 m.")
	if err != nil {
		return fmt.Errorf("seed dispute: %w", err)
	}
	d, err := m.Settlement.Draw(ctx, c.ID)
	if err != nil {
		return err
	}
	var names []string
	for _, j := range d.Jurors {
		var id int64
		fmt.Sscan(j, &id)
		if a, err := m.Accounts.Get(ctx, id); err == nil {
			names = append(names, a.Name)
		}
	}
	fmt.Fprintf(w, "  Jury duty: case %d (alice disputes a market's proposed outcome); jurors %s\n", c.ID, strings.Join(names, ", "))
	return nil
}
