package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"text/tabwriter"
	"time"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/crisis"
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
	commitCase, evidenceCase, revealCase, quorumProposal               int64
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
	neighbours, err := s.m.demoNeighbourSpecs()
	if err != nil {
		return err
	}
	quorum, spend, threshold := 2, levee.Units(5000), 10
	// The neighbours' nodes do not run in the demo, so they never speak:
	// the charter gives them longer than the city's history before a
	// silent one is suspended.
	silence := "90d"
	districts, stewards := demoDistricts, []string{"sam"}
	if _, err := s.m.Crisis.Found(s.ctx, 0, crisis.CharterChange{Districts: &districts, Stewards: &stewards, Neighbours: &neighbours,
		Quorum: &quorum, SpendingCap: &spend, PetitionThreshold: &threshold, NeighbourSilence: &silence}); err != nil {
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
	cases, err := s.m.Settlement.Cases(s.ctx, "", 0, settlement.MaxCasePage)
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
	)
}

// writeStart prints the story's summary and where each role starts.
func (s *demoStory) writeStart(w io.Writer, admin bool) {
	fmt.Fprintf(w, "  Jury duty: case %d (alice disputes a market's proposed outcome); jurors %s\n", s.evidenceCase, strings.Join(s.evidenceJurors, ", "))
	fmt.Fprintf(w, "  Quorum: proposal %d waits for one more neighbour node on /quorum (Delta City's signed vote is in; the others cannot be reached)\n", s.quorumProposal)
	fmt.Fprintf(w, "  Reveal period: case %d; its jurors sealed \"yes\" with the salt %s (paste it on the case page to reveal)\n", s.revealCase, s.revealSalt())
	fmt.Fprintf(w, "\nThe demo city has %d days of history (%d trades); where each sign-in starts:\n", storyDays, s.trades)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range s.starts(admin) {
		fmt.Fprintf(tw, "  %s (%s)\t%s\t%s\n", l.name, l.role, l.path, l.try)
	}
	tw.Flush()
}
