package main

import (
	"encoding/json"
	"fmt"
	"time"

	"levee"
	"levee/budgets"
	"levee/crisis"
	"levee/settlement/draw"
)

// marketsAndTenders is the last month: markets that trade and resolve,
// four tenders that reach four stages, jury cases at each stage, a funding
// round open now and a quorum proposal waiting for a vote.
func (s *demoStory) marketsAndTenders() error {
	yesNo := []string{"yes", "no"}
	s.at(s.day(-32))
	live := []*storyMarket{}
	months := s.t0.AddDate(0, 3, 0).UTC().Truncate(time.Hour)
	for _, x := range []struct {
		q, district string
		outcomes    []string
		belief      []float64
		liquidity   int64
	}{
		{"Will the north pumping-station repair be accepted by 1 March?", "north", yesNo, []float64{0.7, 0.3}, 200},
		{"When will the harbour sea wall be finished?", "harbour", []string{"on time", "up to 30 days late", "later", "abandoned"}, []float64{0.35, 0.35, 0.2, 0.1}, 300},
		{"Will the south district flood barrier hold through the next storm season?", "south", yesNo, []float64{0.6, 0.4}, 150},
	} {
		mk, err := s.market(x.q, x.district, months, x.outcomes, x.belief, x.liquidity)
		if err != nil {
			return err
		}
		live = append(live, mk)
	}
	s.liveMarket = live[0].id
	// Markets that will resolve; the last four are disputed later.
	resolving := []struct {
		q, district, verdict, evidence string
		belief                         []float64
	}{
		{"Will the north pump station pass its pressure test in March?", "north", "yes", "The test report of 12 March shows 6.2 bar held for an hour.", []float64{0.8, 0.2}},
		{"Will the harbour tide gauge read above 3 m at the spring tide?", "harbour", "no", "The gauge peaked at 2.74 m.", []float64{0.25, 0.75}},
		{"Will the south culvert clearance finish within its budget?", "south", "yes", "Final invoice 412.00 of 450.00 budgeted.", []float64{0.7, 0.3}},
		{"Will the Elm Street closure end within two weeks?", "north", "no", "The street reopened after 19 days.", []float64{0.3, 0.7}},
		{"Will the north levee inspection find no seepage?", "north", "no", "The inspector logged seepage at chainage 240.", []float64{0.35, 0.65}},
		{"Will the river crest above 4 m at the north gauge in the February storm?", "north", "no", "The gauge log shows a crest of 3.6 m at 02:10.", []float64{0.45, 0.55}},
		{"Will the north storm drains be cleared before the thaw?", "north", "yes", "Work orders 311-318 closed on 2 March.", []float64{0.6, 0.4}},
		{"Will the harbour ferry run again before the end of February?", "harbour", "yes", "The ferry's log shows crossings from 24 February.", []float64{0.55, 0.45}},
	}
	var res []*storyMarket
	for i, x := range resolving {
		district := x.district
		if i >= 3 {
			district = "" // disputed: a jury from every district
		}
		mk, err := s.market(x.q, district, s.day(-1), yesNo, x.belief, 100)
		if err != nil {
			return err
		}
		if i >= 3 {
			mk.traders = []string{"alice", "bob", "carol", "sam", "harbour-1", "harbour-2"}
		}
		res = append(res, mk)
	}
	all := append(append([]*storyMarket{}, live...), res...)

	// Tender 1: the north pumping station, bid, forecast, awarded, built, paid.
	t1, err := s.tender(1, "North pumping station repair", "Replace the two failed pumps and rewire the control panel.", "north", 800,
		s.day(-29), s.day(-26), "Pumps replaced", "Control panel rewired")
	if err != nil {
		return err
	}
	if err := s.bid(t1, "dave", "dykeworks", 640, 8, "Two crews; pumps from stock; the station stays in service on one pump throughout."); err != nil {
		return err
	}
	if err := s.bid(t1, "rivalbuild", "rivalbuild", 610, 6, "One crew working nights; pumps ordered from the manufacturer."); err != nil {
		return err
	}
	s.trade(s.day(-29), 50, all)
	d1, err := s.decisionMarkets(t1, 0.85, 0.45)
	if err != nil {
		return err
	}
	s.trade(s.day(-26), 70, append(append([]*storyMarket{}, all...), d1...))
	c1, err := s.award(t1)
	if err != nil {
		return err
	}

	// Tender 2: the harbour sea wall, awarded, a milestone claimed now.
	t2, err := s.tender(2, "Harbour sea wall", "Rebuild 120 m of the harbour sea wall in reinforced concrete.", "harbour", 900,
		s.day(-23), s.day(-20), "Foundations", "Wall", "Parapet and drainage")
	if err != nil {
		return err
	}
	if err := s.bid(t2, "dave", "dykeworks", 690, 40, "Precast units on a piled foundation; work between tides."); err != nil {
		return err
	}
	if err := s.bid(t2, "rivalbuild", "rivalbuild", 760, 50, "Cast in place behind a cofferdam."); err != nil {
		return err
	}
	s.trade(s.day(-25), 25, all)
	if err := s.claim("dave", c1, 1, "Both pumps replaced and commissioned; test certificates attached."); err != nil {
		return err
	}
	s.trade(s.day(-23), 25, all)
	d2, err := s.decisionMarkets(t2, 0.8, 0.55)
	if err != nil {
		return err
	}
	s.trade(s.day(-20), 60, append(append([]*storyMarket{}, all...), d2...))
	c2, err := s.award(t2)
	if err != nil {
		return err
	}
	s.claimedContract = c2
	if _, err := s.m.Contracting.Contract(s.ctx, c1); err != nil { // milestone 1's window has passed: paid
		return err
	}
	if err := s.claim("dave", c1, 2, "Control panel rewired and signed off by the station operator."); err != nil {
		return err
	}
	s.trade(s.day(-16), 40, all)
	if _, err := s.m.Contracting.Contract(s.ctx, c1); err != nil { // completed and paid
		return err
	}

	// The resolving markets close: three final after their window, one
	// settled by a jury, and the others disputed at staggered times so that
	// cases stand at each stage now.
	s.trade(s.day(-13), 40, all)
	for i, x := range resolving[:4] {
		if err := s.propose(res[i], x.verdict, x.evidence); err != nil {
			return err
		}
	}
	settled, err := s.dispute(res[3], "The closure sign came down on day 13; the reopening was only announced late.")
	if err != nil {
		return err
	}
	if err := s.decide([]int64{settled}, map[int64]string{settled: "no"}, true, live); err != nil {
		return err
	}
	if err := s.m.Settlement.Advance(s.ctx); err != nil { // the undisputed proposals are final: paid out
		return err
	}

	// Tender 3: the south flood barrier, in its decision window now.
	t3, err := s.tender(3, "South flood barrier", "Raise 300 m of the south flood barrier by 40 cm.", "south", 900,
		s.day(-3), s.t0.Add(4*24*time.Hour), "Barrier raised", "Landscaping restored")
	if err != nil {
		return err
	}
	s.decisionTender = t3
	if err := s.bid(t3, "dave", "dykeworks", 720, 30, "Steel sheet piles driven behind the existing barrier."); err != nil {
		return err
	}
	if err := s.bid(t3, "rivalbuild", "rivalbuild", 690, 45, "Earth bank raised with imported clay."); err != nil {
		return err
	}
	if err := s.propose(res[4], resolving[4].verdict, resolving[4].evidence); err != nil {
		return err
	}
	appeal, err := s.dispute(res[4], "The seepage was rain run-off, not water through the levee.")
	if err != nil {
		return err
	}
	// An open funding round, for residents to contribute to now.
	r2, err := s.m.Budgets.OpenRound(s.ctx, budgets.NewRound{Title: "Neighbourhood works, spring", Pool: levee.Units(2000),
		ClosesAt: s.t0.Add(10 * 24 * time.Hour), CreatedBy: s.ids["tess"]})
	if err != nil {
		return fmt.Errorf("seed open round: %w", err)
	}
	s.openRound = r2.ID
	for _, p := range []struct{ title, district, by string }{
		{"Harbour promenade lighting", "harbour", "carol"},
		{"North allotment drainage", "north", "alice"},
		{"South school flood doors", "south", "bob"},
	} {
		proj, err := s.m.Budgets.Propose(s.ctx, s.who(p.by), r2.ID, budgets.NewProject{Title: p.title, District: p.district, EstimatedCost: levee.Units(800)})
		if err != nil {
			return fmt.Errorf("seed project: %w", err)
		}
		if _, err := s.m.Budgets.SetEligibility(s.ctx, s.ids["tess"], proj.ID, true, "neighbourhood works"); err != nil {
			return err
		}
		for i := 1; i <= 3; i++ {
			s.at(s.m.now().Add(30 * time.Minute))
			if _, err := s.m.Budgets.Contribute(s.ctx, s.who(fmt.Sprintf("%s-%d", p.district, i)), proj.ID, levee.Units(int64(5*i)), ""); err != nil {
				return fmt.Errorf("seed contribution: %w", err)
			}
		}
	}
	// The reveal-stage case: every juror sealed "yes" with one salt, printed
	// in the sign-in list so that they can reveal from any browser.
	s.trade(s.day(-4.1), 15, all)
	if err := s.propose(res[7], resolving[7].verdict, resolving[7].evidence); err != nil {
		return err
	}
	if s.revealCase, err = s.dispute(res[7], "The crossings of 24 February were test runs without passengers."); err != nil {
		return err
	}
	if err := s.commitAll(s.revealCase, "yes", s.revealSalt()); err != nil {
		return err
	}
	s.trade(s.day(-3), 30, all)
	d3, err := s.decisionMarkets(t3, 0.75, 0.5)
	if err != nil {
		return err
	}
	if err := s.propose(res[5], resolving[5].verdict, resolving[5].evidence); err != nil {
		return err
	}
	if s.commitCase, err = s.dispute(res[5], "The gauge was under water; the flood marks on the bridge show 4.2 m."); err != nil {
		return err
	}
	live3 := append(append([]*storyMarket{}, live...), d3...)
	s.trade(s.day(-2.5), 20, live3)
	// The appeal-stage case: decided, its appeal window open now.
	if err := s.decide([]int64{appeal}, map[int64]string{appeal: "no"}, false, live3); err != nil {
		return err
	}
	if err := s.claim("dave", c2, 1, "Piles driven and foundations poured; the engineer's pour records are attached."); err != nil {
		return err
	}
	// Tender 4: the sea-wall repair, open for bids now.
	t4, err := s.tender(2, "Sea-wall repair at the fish market", "Repair 40 m of storm damage to the old sea wall by the fish market.", "harbour", 150,
		s.t0.Add(7*24*time.Hour), s.t0.Add(10*24*time.Hour), "Damage cleared", "Wall repaired")
	if err != nil {
		return err
	}
	s.openTender = t4
	s.trade(s.day(-0.2), 25, live3)
	// A quorum proposal, one approval short (its vote window is three days).
	payload, _ := json.Marshal(crisis.Reallocation{FromLine: 3, ToLine: 1, Amount: levee.Units(100)})
	p, err := s.m.Crisis.Propose(s.ctx, s.who("tess"), crisis.KindReallocation, payload, "Move barrier savings to the north pumps before the spring storms")
	if err != nil {
		return fmt.Errorf("seed quorum proposal: %w", err)
	}
	s.quorumProposal = p.ID
	s.at(s.m.now().Add(40 * time.Minute))
	if _, err := s.m.neighbourVote(s.ctx, "Delta City", p.ID, true); err != nil {
		return err
	}
	s.trade(s.day(-0.05), 5, live3)
	if err := s.propose(res[6], resolving[6].verdict, resolving[6].evidence); err != nil {
		return err
	}
	if s.evidenceCase, err = s.dispute(res[6], "Drains 314 and 316 were still blocked when I walked past on 3 March."); err != nil {
		return err
	}
	d, err := s.m.Settlement.Draw(s.ctx, s.evidenceCase)
	if err != nil {
		return err
	}
	for _, j := range d.Jurors {
		var id int64
		fmt.Sscan(j, &id)
		if a, err := s.m.Accounts.Get(s.ctx, id); err == nil {
			s.evidenceJurors = append(s.evidenceJurors, a.Name)
		}
	}
	// Two jurors of the commit-stage case have committed already.
	v, err := s.m.Settlement.Case(s.ctx, nil, s.commitCase)
	if err != nil {
		return err
	}
	for _, j := range v.Rounds[len(v.Rounds)-1].Jurors[:2] {
		p, _ := s.m.Accounts.Principal(s.ctx, j.Account)
		if _, err := s.m.Settlement.Commit(s.ctx, p, s.commitCase, draw.BallotCommitment("no", s.salt(s.commitCase, j.Account))); err != nil {
			return fmt.Errorf("seed commit: %w", err)
		}
	}
	return nil
}
