package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/contracting"
	"levee/crisis"
	"levee/market"
	"levee/market/engine"
	"levee/settlement"
)

// The demo city's past: six weeks of its life played through the real
// services on a rewound clock (Main.rewind), so that every page has
// something to show and every printed sign-in something to do. Nothing here
// writes a table directly.

// storyDays is how far back the demo city's history starts.
const storyDays = 45

// demoStory carries the seeding's state: who is who, and what was made for
// the sign-in list to point at.
type demoStory struct {
	m   *Main
	ctx context.Context
	ids map[string]int64
	t0  time.Time // the real time the story ends at (rewind zero)
	rng *rand.Rand

	trades    int // orders filled
	tradeTime time.Duration
	// made for the "where to start" list
	liveMarket, openRound, openTender, decisionTender, claimedContract int64
	commitCase, evidenceCase, quorumProposal                           int64
	evidenceJurors                                                     []string
}

// day returns the story's time x days from its end (x <= 0).
func (s *demoStory) day(x float64) time.Time {
	return s.t0.Add(time.Duration(x * float64(24*time.Hour)))
}

// at moves the services' clock forward to t (never backward, never past
// the real time).
func (s *demoStory) at(t time.Time) {
	d := t.Sub(s.m.now())
	if d <= 0 {
		return
	}
	if r := s.m.rewind.Load() + int64(d); r < 0 {
		s.m.rewind.Store(r)
	} else {
		s.m.rewind.Store(0)
	}
}

func (s *demoStory) who(name string) *accounts.Principal {
	p, err := s.m.Accounts.Principal(s.ctx, s.ids[name])
	if err != nil {
		return nil // every service refuses a nil caller
	}
	return p
}

// seedDemoStory plays the demo city's history, from storyDays ago to now.
func (m *Main) seedDemoStory(ctx context.Context, ids map[string]int64) (*demoStory, error) {
	s := &demoStory{m: m, ctx: ctx, ids: ids, t0: m.now(), rng: rand.New(rand.NewPCG(20, 26))}
	m.rewind.Store(-int64(storyDays * 24 * time.Hour))
	defer m.rewind.Store(0)
	for i, step := range []func() error{s.charter, s.fundingRound, s.emergency, s.marketsAndTenders} {
		start := time.Now()
		if err := step(); err != nil {
			return nil, err
		}
		m.logger.Debug("demo story step", slog.Int("step", i), slog.Duration("took", time.Since(start)), slog.Duration("trading", s.tradeTime))
	}
	s.at(s.t0)
	return s, nil
}

// charter founds the node's charter: three neighbours, sam as steward.
func (s *demoStory) charter() error {
	neighbours := demoNeighbours
	quorum, spend, threshold := 2, levee.Units(5000), 10
	districts, stewards := demoDistricts, []string{"sam"}
	if _, err := s.m.Crisis.Found(s.ctx, 0, crisis.CharterChange{Districts: &districts, Stewards: &stewards, Neighbours: &neighbours,
		Quorum: &quorum, SpendingCap: &spend, PetitionThreshold: &threshold}); err != nil {
		return fmt.Errorf("seed charter: %w", err)
	}
	return nil
}

// fundingRound runs a quadratic funding round to its end, so the city has
// a budget line per district (north, harbour, south: lines 1, 2, 3) and
// its contributors an explain-my-match.
func (s *demoStory) fundingRound() error {
	svc := s.m.Budgets
	now := s.m.now()
	r, err := svc.OpenRound(s.ctx, budgets.NewRound{Title: "Storm season 2026", Pool: levee.Units(3500), ClosesAt: now.Add(36 * time.Hour), CreatedBy: s.ids["tess"]})
	if err != nil {
		return fmt.Errorf("seed round: %w", err)
	}
	for _, p := range []struct {
		title, district, by string
		cost                int64
		each                []int64
	}{
		{"North pumping station repair", "north", "alice", 3500, []int64{50, 50, 40, 30, 20, 10}},
		{"Harbour sea wall", "harbour", "carol", 3500, []int64{60, 50, 50, 40, 25, 25}},
		{"South flood barrier", "south", "bob", 3000, []int64{50, 40, 30, 30, 20, 5}},
	} {
		proj, err := svc.Propose(s.ctx, s.who(p.by), r.ID, budgets.NewProject{Title: p.title, District: p.district, EstimatedCost: levee.Units(p.cost)})
		if err != nil {
			return fmt.Errorf("seed project: %w", err)
		}
		if _, err := svc.SetEligibility(s.ctx, s.ids["tess"], proj.ID, true, "storm works"); err != nil {
			return err
		}
		for i, amount := range p.each {
			s.at(s.m.now().Add(time.Hour))
			if _, err := svc.Contribute(s.ctx, s.who(fmt.Sprintf("%s-%d", p.district, i+1)), proj.ID, levee.Units(amount), ""); err != nil {
				return fmt.Errorf("seed contribution: %w", err)
			}
		}
	}
	s.at(now.Add(37 * time.Hour))
	if _, err := svc.Finalize(s.ctx, s.ids["tess"], r.ID); err != nil {
		return fmt.Errorf("seed round results: %w", err)
	}
	return nil
}

// emergency is the storm of six weeks ago: sam declares, acts twice, the
// emergency expires, and review juries ratify one act and refer the other.
// It ended long enough ago that the charter's cooldown is over.
func (s *demoStory) emergency() error {
	s.at(s.day(-42))
	c, sam := s.m.Crisis, s.who("sam")
	e, err := c.Declare(s.ctx, sam, crisis.Declaration{Reason: "Storm surge: the harbour gates are jammed open and the north pumps are overloaded",
		Districts: []string{"north", "harbour"}, Duration: "72h", Cap: levee.Units(1000)})
	if err != nil {
		return fmt.Errorf("seed emergency: %w", err)
	}
	s.at(s.m.now().Add(3 * time.Hour))
	a1, err := c.Act(s.ctx, sam, e.ID, crisis.ActRequest{Kind: "reallocate", Reason: "Pumping-station budget first: hire two mobile pumps",
		FromLine: 2, ToLine: 1, Amount: levee.Units(150)})
	if err != nil {
		return fmt.Errorf("seed act: %w", err)
	}
	s.at(s.m.now().Add(20 * time.Hour))
	a2, err := c.Act(s.ctx, sam, e.ID, crisis.ActRequest{Kind: "reallocate", Reason: "More for the north, in case the pumps fail again",
		FromLine: 2, ToLine: 1, Amount: levee.Units(100)})
	if err != nil {
		return fmt.Errorf("seed act: %w", err)
	}
	s.at(e.EndsAt.Add(time.Minute))
	if err := c.Advance(s.ctx); err != nil {
		return fmt.Errorf("seed emergency end: %w", err)
	}
	verdicts := map[string]string{crisis.ActSubject(a1.ID): crisis.VerdictRatify, crisis.ActSubject(a2.ID): crisis.VerdictRefer}
	cases, err := s.m.Settlement.Cases(s.ctx, "", 200)
	if err != nil {
		return err
	}
	var ids []int64
	want := map[int64]string{}
	for _, cs := range cases {
		if v, ok := verdicts[cs.Subject]; ok {
			ids = append(ids, cs.ID)
			want[cs.ID] = v
		}
	}
	if len(ids) != 2 {
		return fmt.Errorf("seed emergency reviews: %d review cases, want 2", len(ids))
	}
	if err := s.decide(ids, want, true, nil); err != nil {
		return fmt.Errorf("seed reviews: %w", err)
	}
	return nil
}

// decide has every seated juror of each case commit and reveal its verdict
// while the markets in live trade, moving the clock through the periods;
// settle also waits out the appeal window so the cases settle, otherwise
// they are left in it.
func (s *demoStory) decide(ids []int64, verdicts map[int64]string, settle bool, live []*storyMarket) error {
	st := s.m.Settlement
	var commitUntil, revealUntil time.Time
	jurors := map[int64][]int64{}
	for _, id := range ids {
		v, err := st.Case(s.ctx, nil, id)
		if err != nil {
			return err
		}
		r := v.Rounds[len(v.Rounds)-1]
		for _, j := range r.Jurors {
			jurors[id] = append(jurors[id], j.Account)
			p, err := s.m.Accounts.Principal(s.ctx, j.Account)
			if err != nil {
				return err
			}
			s.at(s.m.now().Add(17 * time.Minute))
			if _, err := st.Commit(s.ctx, p, id, settlement.BallotCommitment(verdicts[id], s.salt(id, j.Account))); err != nil {
				return fmt.Errorf("seed commit on case %d: %w", id, err)
			}
		}
		commitUntil, revealUntil = later(commitUntil, r.CommitUntil), later(revealUntil, r.RevealUntil)
	}
	s.trade(commitUntil.Add(time.Minute), 15, live)
	for _, id := range ids {
		for _, a := range jurors[id] {
			p, _ := s.m.Accounts.Principal(s.ctx, a)
			s.at(s.m.now().Add(11 * time.Minute))
			if _, err := st.Reveal(s.ctx, p, id, verdicts[id], s.salt(id, a)); err != nil {
				return fmt.Errorf("seed reveal on case %d: %w", id, err)
			}
		}
	}
	s.trade(revealUntil.Add(time.Minute), 10, live)
	var appealUntil time.Time
	for _, id := range ids {
		v, err := st.Case(s.ctx, nil, id) // tallies
		if err != nil {
			return err
		}
		if v.AppealUntil != nil {
			appealUntil = later(appealUntil, *v.AppealUntil)
		}
	}
	if !settle {
		return nil
	}
	s.trade(appealUntil.Add(time.Minute), 15, live)
	for _, id := range ids {
		v, err := st.Case(s.ctx, nil, id)
		if err != nil {
			return err
		}
		if v.Status != settlement.StatusSettled {
			return fmt.Errorf("seed case %d: %s, want settled", id, v.Status)
		}
	}
	return nil
}

func (s *demoStory) salt(caseID, juror int64) string { return fmt.Sprintf("demo-%d-%d", caseID, juror) }

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// storyMarket is a market of the story and the probabilities its traders
// believe in (what its prices drift towards).
type storyMarket struct {
	id     int64
	belief []float64
	// traders, if set, are the only ones who trade in it: a market that
	// will be disputed leaves enough residents untouched to sit on its jury.
	traders []string
}

// demoTraders are the residents who trade in the story.
func demoTraders() []string {
	return append([]string{"alice", "bob", "carol", "sam", "alice", "bob", "carol"}, demoJurors()...)
}

// tradeBatch orders go to the engine at once, so its journal commits them
// together: the history costs a few hundred milliseconds, not seconds.
const tradeBatch = 12

// trade places n orders spread evenly until t, each a buy of the outcome a
// random trader believes underpriced. Refused orders (a juror barred from
// its case's market, not enough cash) are skipped: they are part of life.
func (s *demoStory) trade(until time.Time, n int, ms []*storyMarket) {
	if len(ms) == 0 || n == 0 {
		s.at(until)
		return
	}
	batches := (n + tradeBatch - 1) / tradeBatch
	step := until.Sub(s.m.now()) / time.Duration(batches+1)
	traders := demoTraders()
	begin := time.Now()
	defer func() { s.tradeTime += time.Since(begin) }()
	type order struct {
		who, market int64
		o           market.Order
	}
	for b := range batches {
		s.at(s.m.now().Add(step))
		var orders []order
		for range min(tradeBatch, n-b*tradeBatch) {
			mk := ms[s.rng.IntN(len(ms))]
			snap, err := s.m.Engine.Snapshot(s.ctx, mk.id)
			if err != nil || snap.Market.EffectiveStatus(s.m.now()) != engine.StatusOpen {
				continue
			}
			// Noise around the belief, so the chart has shape.
			best, edge := 0, -1.0
			for k, b := range mk.belief {
				e := b + (s.rng.Float64()-0.5)*0.5 - float64(snap.Prices[k])/float64(levee.Scale)
				if e > edge {
					best, edge = k, e
				}
			}
			amount := levee.Units(int64(2+s.rng.IntN(14))) + levee.Micros(s.rng.IntN(100))*levee.Scale/100
			pick := traders
			if mk.traders != nil {
				pick = mk.traders
			}
			orders = append(orders, order{who: s.ids[pick[s.rng.IntN(len(pick))]], market: mk.id,
				o: market.Order{Outcome: best, Side: market.Buy, Amount: amount}})
		}
		var wg sync.WaitGroup
		var filled atomic.Int64
		for _, o := range orders {
			wg.Go(func() {
				if _, err := s.m.Engine.Submit(s.ctx, o.who, o.market, o.o, ""); err == nil {
					filled.Add(1)
				}
			})
		}
		wg.Wait()
		s.trades += int(filled.Load())
	}
	s.at(until)
}

// tender opens a tender on a budget line.
func (s *demoStory) tender(line int64, title, scope, district string, budgetCap int64, closes, decision time.Time, milestones ...string) (int64, error) {
	var ms []contracting.NewMilestone
	for _, t := range milestones {
		ms = append(ms, contracting.NewMilestone{Title: t, Share: levee.Scale / levee.Micros(len(milestones))})
	}
	if len(ms) > 1 {
		ms[len(ms)-1].Share = levee.Scale - levee.Scale/levee.Micros(len(milestones))*levee.Micros(len(milestones)-1)
	}
	t, err := s.m.Contracting.CreateTender(s.ctx, contracting.NewTender{BudgetLine: line, Title: title, Scope: scope, Districts: []string{district},
		BudgetCap: levee.Units(budgetCap), ClosesAt: closes, DecisionAt: decision, MinConfidence: levee.MustMicros("0.4"), TWAPWindow: 24 * time.Hour,
		DisputeWindow: 72 * time.Hour, Liquidity: levee.Units(40), AcceptanceCriteria: "The city engineer signs off each milestone on site",
		Milestones: ms, CreatedBy: s.ids["tess"]})
	if err != nil {
		return 0, fmt.Errorf("seed tender %q: %w", title, err)
	}
	return t.ID, nil
}

// bid has who bid for org.
func (s *demoStory) bid(tender int64, who, org string, price int64, days int, method string) error {
	t, err := s.m.Contracting.Tender(s.ctx, nil, tender)
	if err != nil {
		return err
	}
	done := t.DecisionAt.Add(time.Duration(days) * 24 * time.Hour)
	var dates []time.Time
	for i := range t.Milestones {
		dates = append(dates, t.DecisionAt.Add(time.Duration(days*(i+1)/len(t.Milestones))*24*time.Hour))
	}
	dates[len(dates)-1] = done
	_, err = s.m.Contracting.SubmitBid(s.ctx, s.who(who), tender, contracting.NewBid{Organisation: s.ids[org], Price: levee.Units(price),
		CompletionAt: done, MilestoneDates: dates, MethodStatement: method})
	if err != nil {
		return fmt.Errorf("seed bid by %s: %w", org, err)
	}
	return nil
}

// decisionMarkets closes a tender's bids and returns its decision markets,
// believing in the bids in order.
func (s *demoStory) decisionMarkets(tender int64, beliefs ...float64) ([]*storyMarket, error) {
	t, err := s.m.Contracting.CloseBids(s.ctx, s.ids["tess"], tender)
	if err != nil {
		return nil, fmt.Errorf("seed close bids: %w", err)
	}
	var out []*storyMarket
	for i, b := range t.Bids {
		if b.MarketID != nil {
			out = append(out, &storyMarket{id: *b.MarketID, belief: []float64{beliefs[i%len(beliefs)], 1 - beliefs[i%len(beliefs)]}})
		}
	}
	return out, nil
}

func (s *demoStory) claim(who string, contract int64, n int, evidence string) error {
	if _, err := s.m.Contracting.Claim(s.ctx, s.who(who), contract, n, evidence); err != nil {
		return fmt.Errorf("seed claim on contract %d: %w", contract, err)
	}
	return nil
}

func (s *demoStory) award(tender int64) (int64, error) {
	t, err := s.m.Contracting.Award(s.ctx, s.ids["tess"], tender)
	if err != nil {
		return 0, fmt.Errorf("seed award: %w", err)
	}
	if t.Contract == nil {
		return 0, fmt.Errorf("seed award: tender %d was not awarded (%s)", tender, t.Status)
	}
	return *t.Contract, nil
}

// market opens a market of the story.
func (s *demoStory) market(q, district string, closes time.Time, outcomes []string, belief []float64, liquidity int64) (*storyMarket, error) {
	mk, err := s.m.Engine.CreateMarket(s.ctx, engine.NewMarket{Question: q, Outcomes: outcomes, Liquidity: levee.Units(liquidity),
		District: district, ClosesAt: closes, CreatedBy: s.ids["tess"]})
	if err != nil {
		return nil, fmt.Errorf("seed market: %w", err)
	}
	return &storyMarket{id: mk.ID, belief: belief}, nil
}

// propose closes a market and has the treasurer propose its outcome.
func (s *demoStory) propose(mk *storyMarket, verdict, evidence string) error {
	if err := s.m.Engine.CloseMarket(s.ctx, mk.id); err != nil {
		return err
	}
	if _, err := s.m.Settlement.Propose(s.ctx, s.who("tess"), mk.id, verdict, evidence); err != nil {
		return fmt.Errorf("seed proposal: %w", err)
	}
	return nil
}

// dispute has alice dispute a market's proposed outcome and returns the case.
func (s *demoStory) dispute(mk *storyMarket, reason string) (int64, error) {
	c, err := s.m.Settlement.Dispute(s.ctx, s.who("alice"), settlement.MarketSubject(mk.id), reason)
	if err != nil {
		return 0, fmt.Errorf("seed dispute: %w", err)
	}
	return c.ID, nil
}

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
	if _, err := s.m.Crisis.Vote(s.ctx, s.who("delta-delegate"), p.ID, true); err != nil {
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
		if _, err := s.m.Settlement.Commit(s.ctx, p, s.commitCase, settlement.BallotCommitment("no", s.salt(s.commitCase, j.Account))); err != nil {
			return fmt.Errorf("seed commit: %w", err)
		}
	}
	return nil
}

// startLine is one line of the sign-in list's "where to start": the page a
// role opens first and what to try there.
type startLine struct{ role, name, path, try string }

// starts lists, per printed sign-in, the one page to open first.
func (s *demoStory) starts(admin bool) []startLine {
	var out []startLine
	if admin {
		out = append(out, startLine{"admin", "admin", "/admin", "admit a new resident; their first sign-in is shown once"})
	}
	juror := "north-1"
	if len(s.evidenceJurors) > 0 {
		juror = s.evidenceJurors[0]
	}
	return append(out,
		startLine{"resident", "alice", fmt.Sprintf("/markets/%d", s.liveMarket), "buy \"yes\" on the pumping-station question; the ticket previews the exact cost"},
		startLine{"resident", "bob", fmt.Sprintf("/tenders/%d", s.decisionTender), "the flood barrier is in its decision window: trade in a bid's decision market"},
		startLine{"resident", "carol", fmt.Sprintf("/rounds/%d", s.openRound), "contribute to the promenade lighting and see your match"},
		startLine{"contractor", "dykeworks", fmt.Sprintf("/contracts/%d", s.claimedContract), "milestone 1 waits out its dispute window; claim milestone 2"},
		startLine{"contractor", "dave", fmt.Sprintf("/tenders/%d", s.openTender), "bid on the sea-wall repair for dykeworks (bids are sealed)"},
		startLine{"contractor", "rivalbuild", fmt.Sprintf("/tenders/%d", s.openTender), "bid on the sea-wall repair (dave cannot see your bid)"},
		startLine{"treasurer", "tess", "/tenders", "open a tender against a funded budget line"},
		startLine{"steward", "sam", "/emergency", "read your record of the last storm; declare an emergency if one comes"},
		startLine{"juror", juror, "/jury", fmt.Sprintf("commit your vote on case %d", s.evidenceCase)},
		startLine{"delegate", "estuary-delegate", "/quorum", fmt.Sprintf("vote on proposal %d (one more approval executes it)", s.quorumProposal)},
	)
}

// writeStart prints the story's summary and where each role starts.
func (s *demoStory) writeStart(w io.Writer, admin bool) {
	fmt.Fprintf(w, "  Jury duty: case %d (alice disputes a market's proposed outcome); jurors %s\n", s.evidenceCase, strings.Join(s.evidenceJurors, ", "))
	fmt.Fprintf(w, "\nThe demo city has %d days of history (%d trades); where each sign-in starts:\n", storyDays, s.trades)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range s.starts(admin) {
		fmt.Fprintf(tw, "  %s (%s)\t%s\t%s\n", l.name, l.role, l.path, l.try)
	}
	tw.Flush()
}
