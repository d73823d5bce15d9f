package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"levee"
	"levee/accounts"
	"levee/contracting"
	"levee/crisis"
	"levee/settlement"
	"levee/settlement/draw"
)

// skipClock is real time plus an offset that only moves forward, so the
// drill (and the tests) pass deadlines without sleeping.
type skipClock struct{ offset atomic.Int64 }

func (c *skipClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Skip moves the clock forward by d.
func (c *skipClock) Skip(d time.Duration) { c.offset.Add(int64(d)) }

// SkipPast moves the clock just past t, if it is not already.
func (c *skipClock) SkipPast(t time.Time) {
	if d := t.Sub(c.Now()); d >= 0 {
		c.Skip(d + time.Second)
	}
}

// drill runs `levee drill`: a fresh demo city in a temporary data
// directory (unless --data names one), the hurricane scenario of
// docs/crisis.md on an injected clock, and a report of every step.
func drill(ctx context.Context, cfg Config, stdout io.Writer) (int, error) {
	if cfg.DataDir == "" || cfg.DataDir == defaultConfig().DataDir {
		dir, err := os.MkdirTemp("", "levee-drill-")
		if err != nil {
			return 1, err
		}
		defer os.RemoveAll(dir)
		cfg.DataDir = dir
	}
	cfg.Addr = "127.0.0.1:0"
	m := NewMain(cfg, slog.New(slog.DiscardHandler), io.Discard)
	clk := &skipClock{}
	m.Clock = clk.Now
	defer m.Close()
	if err := m.Open(ctx); err != nil {
		return 1, err
	}
	if err := m.startServices(nil); err != nil {
		return 1, err
	}
	if err := m.SeedDemo(ctx); err != nil {
		return 1, err
	}
	if err := m.Drill(ctx, clk, stdout); err != nil {
		fmt.Fprintf(stdout, "\nDRILL FAILED: %v\n", err)
		return 1, nil
	}
	return 0, nil
}

// drillRun carries the drill's state between its steps.
type drillRun struct {
	m   *Main
	clk *skipClock
	out io.Writer
	ctx context.Context
	n   int
}

func (d *drillRun) step(format string, args ...any) {
	d.n++
	fmt.Fprintf(d.out, "%2d. %s\n", d.n, fmt.Sprintf(format, args...))
}

func (d *drillRun) note(format string, args ...any) {
	fmt.Fprintf(d.out, "    %s\n", fmt.Sprintf(format, args...))
}

func (d *drillRun) who(name string) (*accounts.Principal, error) {
	id, err := d.m.Accounts.IDByName(d.ctx, name)
	if err != nil {
		return nil, err
	}
	return d.m.Accounts.Principal(d.ctx, id)
}

// expect fails the drill unless err has the code want.
func expect(err error, want string, what string) error {
	if levee.ErrorCode(err) != want {
		return fmt.Errorf("%s: got %v, want a %s error", what, err, want)
	}
	return nil
}

// Drill runs the hurricane scenario on a seeded demo city: three neighbour
// nodes of which two never answer; a cross-district reallocation waits for
// the quorum; the steward declares a 72-hour emergency over two districts,
// reallocates, approves the waiting reallocation, direct-awards an
// emergency repair; the contractor claims and is paid a milestone; the
// clock passes the expiry and a further act is refused; review juries are
// drawn (stratified by district) and decide; the ledger verifies.
func (m *Main) Drill(ctx context.Context, clk *skipClock, out io.Writer) error {
	d := &drillRun{m: m, clk: clk, out: out, ctx: ctx}
	fmt.Fprintln(out, "Levee crisis drill: a hurricane has knocked out power in two of the three neighbouring nodes.")
	lines, err := m.Budgets.BudgetLines(ctx)
	if err != nil {
		return err
	}
	line := map[string]int64{}
	for _, l := range lines {
		line[l.District] = l.ID
		d.note("budget line %d %-32s %s (%s)", l.ID, l.Title, l.Balance, l.District)
	}
	if line["north"] == 0 || line["harbour"] == 0 || line["south"] == 0 {
		return errors.New("the demo city has no budget line per district")
	}
	tess, err := d.who("tess")
	if err != nil {
		return err
	}
	sam, err := d.who("sam")
	if err != nil {
		return err
	}
	before, err := m.Crisis.Record(ctx, sam.AccountID) // the demo city's past storms
	if err != nil {
		return err
	}

	// 1. Routine: a cross-district reallocation waits for the quorum.
	payload, _ := json.Marshal(crisis.Reallocation{FromLine: line["harbour"], ToLine: line["north"], Amount: levee.Units(100)})
	p, err := m.Crisis.Propose(ctx, tess, crisis.KindReallocation, payload, "Move sea-wall money to the pumping stations before the storm")
	if err != nil {
		return err
	}
	if p, err = m.neighbourVote(ctx, "Delta City", p.ID, true); err != nil { // its node's signed vote
		return err
	}
	var waiting []string
	for _, v := range p.Votes {
		if v.Approve == nil {
			waiting = append(waiting, v.Neighbour)
		}
	}
	d.step("Treasurer proposes moving 100 from the harbour line to the north line: %s, %d of %d approvals; no answer from %s",
		p.Status, p.Approved, p.Quorum, strings.Join(waiting, " and "))
	if p.Status != "open" || len(waiting) != 2 {
		return fmt.Errorf("the reallocation should await the quorum: %+v", p)
	}

	// 2. The steward declares a 72-hour emergency over two districts.
	e, err := m.Crisis.Declare(ctx, sam, crisis.Declaration{Reason: "Hurricane: power out in two of three neighbour nodes; pumping stations must shut tonight",
		Districts: []string{"north", "harbour"}, Duration: "72h", Cap: levee.Units(1000)})
	if err != nil {
		return err
	}
	d.step("Steward sam declares emergency %d over north and harbour for 72h, cap %s (ends %s)", e.ID, e.Cap, e.EndsAt.Format(time.RFC3339))

	// 3. Acts within scope and cap, without the quorum.
	a1, err := m.Crisis.Act(ctx, sam, e.ID, crisis.ActRequest{Kind: "reallocate", Reason: "Pumping-station budget first",
		FromLine: line["harbour"], ToLine: line["north"], Amount: levee.Units(200)})
	if err != nil {
		return err
	}
	d.step("sam reallocates %s from the harbour line to the north pumping-station line (act %d)", a1.Amount, a1.ID)
	a2, err := m.Crisis.Act(ctx, sam, e.ID, crisis.ActRequest{Kind: "approve_proposal", Reason: "Cannot wait for the neighbours", Proposal: p.ID})
	if err != nil {
		return err
	}
	d.step("sam approves the waiting reallocation proposal %d under emergency powers (act %d)", p.ID, a2.ID)
	err = expect(func() error {
		_, err := m.Crisis.Act(ctx, sam, e.ID, crisis.ActRequest{Kind: "reallocate", Reason: "south too", FromLine: line["south"], ToLine: line["north"], Amount: levee.Units(10)})
		return err
	}(), levee.ECONFLICT, "a reallocation from outside the emergency's districts")
	if err != nil {
		return err
	}
	if err := expect(func() error {
		_, err := m.Crisis.Act(ctx, sam, e.ID, crisis.ActRequest{Kind: "edit_ledger", Reason: "tidy up"})
		return err
	}(), levee.EFORBIDDEN, "editing the ledger"); err != nil {
		return err
	}
	d.step("Refused, with clear errors: a reallocation from the south line (out of scope) and editing the ledger (never granted)")
	dyke, err := m.Accounts.IDByName(ctx, "dykeworks")
	if err != nil {
		return err
	}
	now := clk.Now()
	a3, err := m.Crisis.Act(ctx, sam, e.ID, crisis.ActRequest{Kind: "direct_award", Reason: "Shut the north pumping stations and bypass them tonight",
		BudgetLine: line["north"], Contractor: dyke, Title: "Emergency pumping-station shutdown and bypass", Price: levee.Units(400),
		CompletionAt: now.Add(14 * 24 * time.Hour), AcceptanceCriteria: "Stations shut safely; bypass carries the flow",
		Milestones: []contracting.DirectMilestone{{Title: "Stations shut, bypass installed", Share: levee.Units(1) / 2, DueAt: now.Add(24 * time.Hour)},
			{Title: "Pumps restored", Share: levee.Units(1) / 2, DueAt: now.Add(10 * 24 * time.Hour)}}})
	if err != nil {
		return err
	}
	d.step("sam direct-awards the emergency repair to dykeworks for %s, contract %d (OCDS procurementMethod limited)", a3.Amount, *a3.ContractID)
	if err := expect(func() error {
		_, err := m.Crisis.Act(ctx, sam, e.ID, crisis.ActRequest{Kind: "reallocate", Reason: "more", FromLine: line["harbour"], ToLine: line["north"], Amount: levee.Units(400)})
		return err
	}(), levee.ECONFLICT, "an act over the cap"); err != nil {
		return err
	}
	cur, err := m.Crisis.Emergency(ctx, e.ID)
	if err != nil {
		return err
	}
	d.step("Cap used %s of %s; a further 400 is refused as over the cap. Acts shown to everyone: %d", cur.CapUsed, cur.Cap, len(cur.Acts))

	// 4. The contractor claims a milestone and is paid after its window.
	dave, err := d.who("dave")
	if err != nil {
		return err
	}
	if _, err := m.Contracting.Claim(ctx, dave, *a3.ContractID, 1, "Stations 1-4 shut at 23:40, bypass running; photos attached"); err != nil {
		return err
	}
	d.step("dave (dykeworks) claims milestone 1")
	clk.Skip(73 * time.Hour)
	k, err := m.Contracting.Contract(ctx, *a3.ContractID)
	if err != nil {
		return err
	}
	if k.Milestones[0].Status != contracting.MilestoneAccepted {
		return fmt.Errorf("milestone 1 should be paid after its dispute window: %+v", k.Milestones[0])
	}
	d.step("73 hours later: milestone 1 was not disputed and is paid (%s); escrow holds %s", k.Milestones[0].Amount, k.Escrow)

	// 5. Expiry is checked on every act.
	if err := expect(func() error {
		_, err := m.Crisis.Act(ctx, sam, e.ID, crisis.ActRequest{Kind: "reallocate", Reason: "late", FromLine: line["harbour"], ToLine: line["north"], Amount: levee.Units(1)})
		return err
	}(), levee.ECONFLICT, "an act after the expiry"); err != nil {
		return err
	}
	d.step("The emergency has expired: a further act is refused")

	// 6. Review juries, stratified by district, decide every act.
	if err := m.Crisis.Advance(ctx); err != nil {
		return err
	}
	verdicts := map[int64]string{a1.ID: crisis.VerdictRatify, a2.ID: crisis.VerdictRatify, a3.ID: crisis.VerdictRefer}
	for _, act := range []crisis.Act{a1, a2, a3} {
		c, err := d.review(act.ID, verdicts[act.ID])
		if err != nil {
			return err
		}
		d.step("Act %d (%s): jury of case %d drawn from %s decides %q", act.ID, act.Kind, c.ID, c.strata, c.verdict)
	}
	rec, err := m.Crisis.Record(ctx, sam.AccountID)
	if err != nil {
		return err
	}
	k, err = m.Contracting.Contract(ctx, *a3.ContractID)
	if err != nil {
		return err
	}
	d.step("sam's public record: %d acts, %d ratified, %d referred; the referred award is %s and its unspent escrow returned to the treasury",
		rec.Acts, rec.Ratified, rec.Referred, k.Status)
	if rec.Referred != before.Referred+1 || k.Status != contracting.ContractReferred || k.Escrow != 0 {
		return fmt.Errorf("after the reviews: record %+v, contract %s escrow %s", rec, k.Status, k.Escrow)
	}

	// 7. The books balance.
	r, err := m.Ledger.Verify(ctx)
	if err != nil {
		return err
	}
	if !r.OK {
		return fmt.Errorf("ledger broken at %d: %s", r.FirstBrokenSeq, r.Problem)
	}
	d.step("Ledger verified: %d entries, trial balance %s", r.Entries, r.TrialBalance)
	fmt.Fprintln(out, "Drill passed.")
	return nil
}

type reviewed struct {
	ID      int64
	strata  string
	verdict string
}

// review has the jurors of an act's review case vote verdict, and moves the
// clock through the case's periods until it settles.
func (d *drillRun) review(act int64, verdict string) (reviewed, error) {
	ctx, s := d.ctx, d.m.Settlement
	var id int64
	cs, err := s.Cases(ctx, "", 0, settlement.MaxCasePage)
	if err != nil {
		return reviewed{}, err
	}
	for _, c := range cs {
		if c.Subject == crisis.ActSubject(act) {
			id = c.ID
		}
	}
	if id == 0 {
		return reviewed{}, fmt.Errorf("no review case for act %d", act)
	}
	published, err := s.Draw(ctx, id)
	if err != nil {
		return reviewed{}, err
	}
	var strata []string
	for _, st := range published.Strata {
		strata = append(strata, fmt.Sprintf("%s (%d)", st.Key, len(st.IDs)))
	}
	v, err := s.Case(ctx, nil, id)
	if err != nil {
		return reviewed{}, err
	}
	salt := fmt.Sprintf("drill-salt-%d", act)
	jurors := v.Rounds[len(v.Rounds)-1].Jurors
	for _, j := range jurors {
		p, err := d.m.Accounts.Principal(ctx, j.Account)
		if err != nil {
			return reviewed{}, err
		}
		if _, err := s.Commit(ctx, p, id, draw.BallotCommitment(verdict, salt)); err != nil {
			return reviewed{}, err
		}
	}
	round := v.Rounds[len(v.Rounds)-1]
	d.clk.SkipPast(round.CommitUntil)
	for _, j := range jurors {
		p, _ := d.m.Accounts.Principal(ctx, j.Account)
		if _, err := s.Reveal(ctx, p, id, verdict, salt); err != nil {
			return reviewed{}, err
		}
	}
	d.clk.SkipPast(round.RevealUntil)
	if v, err = s.Case(ctx, nil, id); err != nil {
		return reviewed{}, err
	}
	if v.AppealUntil != nil {
		d.clk.SkipPast(*v.AppealUntil)
	}
	if v, err = s.Case(ctx, nil, id); err != nil {
		return reviewed{}, err
	}
	if v.Status != settlement.StatusSettled || v.Verdict == nil || *v.Verdict != verdict {
		return reviewed{}, fmt.Errorf("review case %d: %s %v", id, v.Status, v.Verdict)
	}
	return reviewed{ID: id, strata: strings.Join(strata, ", "), verdict: *v.Verdict}, nil
}
