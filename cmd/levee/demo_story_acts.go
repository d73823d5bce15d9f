package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"levee"
	"levee/contracting"
	"levee/market"
	"levee/market/engine"
	"levee/settlement"
)

// The story's acts: what a resident, contractor, treasurer or juror does,
// through the services, at the story's time.

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

// revealSalt is the one salt of the reveal-period case's ballots.
func (s *demoStory) revealSalt() string { return fmt.Sprintf("demo-reveal-%d", s.revealCase) }

// commitAll has every seated juror of a case seal verdict with salt.
func (s *demoStory) commitAll(id int64, verdict, salt string) error {
	v, err := s.m.Settlement.Case(s.ctx, nil, id)
	if err != nil {
		return err
	}
	for _, j := range v.Rounds[len(v.Rounds)-1].Jurors {
		p, err := s.m.Accounts.Principal(s.ctx, j.Account)
		if err != nil {
			return err
		}
		s.at(s.m.now().Add(23 * time.Minute))
		if _, err := s.m.Settlement.Commit(s.ctx, p, id, settlement.BallotCommitment(verdict, salt)); err != nil {
			return fmt.Errorf("seed commit on case %d: %w", id, err)
		}
	}
	return nil
}

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
