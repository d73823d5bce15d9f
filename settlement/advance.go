package settlement

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/ledger"
	"levee/pgtx"
)

// Advance does what the clock has made due, everywhere: proposals past their
// dispute window become final and settle, cases move from one period to the
// next, rounds are tallied, final verdicts settle. cmd/levee runs it every
// few seconds; every read and act on a case also advances that case first,
// so nothing waits for the ticker.
func (s *Service) Advance(ctx context.Context) error {
	var ids []int64
	// Only the cases with something due: a period over, or a final verdict
	// not yet settled.
	if err := s.db.SelectContext(ctx, &ids, `SELECT c.id FROM cases c JOIN case_rounds r ON r.case_id = c.id AND r.round = c.round
		WHERE c.status <> 'settled' AND (c.status = 'final'
		   OR c.status = 'evidence' AND c.evidence_until <= $1
		   OR c.status = 'commit' AND r.commit_until <= $1
		   OR c.status = 'reveal' AND r.reveal_until <= $1
		   OR c.status = 'appealable' AND c.appeal_until <= $1)
		ORDER BY c.id`, s.now()); err != nil {
		return pgtx.Unavailable(fmt.Errorf("due cases: %w", err))
	}
	var errs []error
	for _, id := range ids {
		if err := s.advanceCase(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.advanceProposals(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// advanceCase moves one case as far as the clock allows, one step per
// transaction, then settles it if its verdict is final.
func (s *Service) advanceCase(ctx context.Context, id int64) error {
	unlock, lerr := s.serial.Lock(ctx, s.db)
	if lerr != nil {
		return lerr
	}
	defer unlock()
	for range 10 { // each step moves a period forward; a few suffice
		var moved bool
		var paid []int64
		err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
			var err error
			moved, paid, err = s.step(ctx, tx, id)
			return err
		})
		if err != nil {
			return fmt.Errorf("advance case %d: %w", id, err)
		}
		s.invalidate(paid...)
		if !moved {
			break
		}
	}
	if err := s.settle(ctx, id); err != nil {
		return fmt.Errorf("%w: %w", errSettlePending, err)
	}
	return nil
}

// errSettlePending marks a final verdict that could not be applied yet:
// the next pass retries it. Reads show such a case as final instead of
// failing, so one stuck subject does not hide every juror's cases.
var errSettlePending = errors.New("settlement pending")

// advanceForRead is advanceCase for reads: a settlement that fails is
// logged and left for the next pass.
func (s *Service) advanceForRead(ctx context.Context, id int64) error {
	err := s.advanceCase(ctx, id)
	if errors.Is(err, errSettlePending) {
		s.opts.Logger.Warn("case settlement failed; will retry", "case", id, "err", err)
		return nil
	}
	return err
}

// step makes the next transition of case id that is due, if any.
func (s *Service) step(ctx context.Context, tx *sqlx.Tx, id int64) (moved bool, paid []int64, err error) {
	c, err := getCase(ctx, tx, id, "FOR UPDATE")
	if err != nil {
		return false, nil, err
	}
	now := s.now()
	var r Round
	if err := tx.GetContext(ctx, &r, `SELECT case_id, round, draw_n, why, seats, commit_until, reveal_until, verdict, tally, appealed_by, appeal_bond
		FROM case_rounds WHERE case_id = $1 AND round = $2`, id, c.Round); err != nil {
		return false, nil, fmt.Errorf("case %d round %d: %w", id, c.Round, err)
	}
	switch {
	case c.Status == StatusEvidence && !now.Before(c.EvidenceUntil):
		return true, nil, s.setStatus(ctx, tx, &c, StatusCommit, "commit_open",
			fmt.Sprintf("Case %d: the evidence period is over; commit your vote by %s.", id, r.CommitUntil.Format(time.RFC3339)), &r.CommitUntil, true)
	case c.Status == StatusCommit && !now.Before(r.CommitUntil):
		return true, nil, s.setStatus(ctx, tx, &c, StatusReveal, "reveal_open",
			fmt.Sprintf("Case %d: reveal your vote and salt by %s.", id, r.RevealUntil.Format(time.RFC3339)), &r.RevealUntil, true)
	case c.Status == StatusReveal && !now.Before(r.RevealUntil):
		paid, err := s.tally(ctx, tx, &c, &r)
		return true, paid, err
	case c.Status == StatusAppealable && c.AppealUntil != nil && !now.Before(*c.AppealUntil):
		return true, nil, s.finalise(ctx, tx, &c)
	}
	return false, nil, nil
}

// setStatus moves a case to status and tells its jurors (and, when parties
// is set, its parties) about the new deadline.
func (s *Service) setStatus(ctx context.Context, tx *sqlx.Tx, c *Case, status, kind, msg string, deadline *time.Time, jurorsOnly bool) error {
	if _, err := tx.ExecContext(ctx, `UPDATE cases SET status = $2 WHERE id = $1`, c.ID, status); err != nil {
		return err
	}
	c.Status = status
	who := `SELECT account_id FROM jurors WHERE case_id = $1 AND round = $2`
	if !jurorsOnly {
		who += ` UNION SELECT account_id FROM case_parties WHERE case_id = $1`
	}
	return notifyAll(ctx, tx, who, []any{c.ID, c.Round}, c.ID, kind, msg, deadline, s.now())
}

// tally closes a round's reveal period: jurors who revealed are paid their
// seat's fee, the rest of the reserve returns to the fee pool, and either a
// verdict stands (open to appeal) or a new round is drawn.
func (s *Service) tally(ctx context.Context, tx *sqlx.Tx, c *Case, r *Round) ([]int64, error) {
	now := s.now()
	var js []struct {
		Account   int64   `db:"account_id"`
		Committed bool    `db:"committed"`
		Verdict   *string `db:"verdict"`
	}
	if err := tx.SelectContext(ctx, &js, `SELECT account_id, commitment IS NOT NULL AS committed, verdict FROM jurors
		WHERE case_id = $1 AND round = $2 ORDER BY draw_index`, c.ID, r.Round); err != nil {
		return nil, err
	}
	t := Tally{Seats: r.Seats, Votes: map[string]int{}}
	var revealers []int64
	for _, j := range js {
		if j.Committed {
			t.Committed++
		}
		if j.Verdict != nil {
			t.Revealed++
			t.Votes[*j.Verdict]++
			revealers = append(revealers, j.Account)
		}
	}
	// Pay the revealers; unpaid seats go back to the fee pool.
	ps := []ledger.Posting{}
	for _, a := range revealers {
		ps = append(ps, ledger.Posting{Account: ledger.Cash(a), Amount: c.JurorFee})
	}
	reserved := levee.Micros(r.Seats) * c.JurorFee
	if back := reserved - levee.Micros(len(revealers))*c.JurorFee; back > 0 {
		ps = append(ps, ledger.Posting{Account: ledger.CaseFees(c.ID), Amount: back})
	}
	ps = append(ps, ledger.Posting{Account: ledger.CaseSeats(c.ID), Amount: -reserved})
	if _, err := ledger.Post(ctx, tx, ledger.Transfer{Kind: "juror_fees", Ref: caseRef(c.ID), At: now, Postings: ps}); err != nil {
		return nil, fmt.Errorf("pay jurors: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE jurors SET paid = CASE WHEN verdict IS NOT NULL THEN $3::numeric END, no_show = verdict IS NULL
		WHERE case_id = $1 AND round = $2`, c.ID, r.Round, c.JurorFee); err != nil {
		return nil, err
	}
	if c.JurorFee > 0 {
		if err := notifyAll(ctx, tx, `SELECT account_id FROM jurors WHERE case_id = $1 AND round = $2 AND verdict IS NOT NULL`, []any{c.ID, r.Round}, c.ID,
			"payment", fmt.Sprintf("Case %d: you were paid %s for your seat on the jury, since you revealed your vote.", c.ID, c.JurorFee), nil, now); err != nil {
			return nil, err
		}
	}

	verdict := winner(t, c.Supermajority)
	switch {
	case t.Revealed < min(c.MinReveals, r.Seats):
		t.Outcome = "too_few_reveals"
	case verdict == "":
		t.Outcome = "tie"
	default:
		t.Outcome = verdict
	}
	var v *string
	if verdict != "" && t.Outcome == verdict {
		v = &verdict
	}
	if _, err := tx.ExecContext(ctx, `UPDATE case_rounds SET tally = $3, verdict = $4 WHERE case_id = $1 AND round = $2`,
		c.ID, r.Round, jsonTally{t}, v); err != nil {
		return nil, err
	}
	if v == nil {
		// A new round with fresh jurors, continuing the same draw.
		err := s.seatRound(ctx, tx, c, r.Round+1, "redraw", r.Seats, now, nil)
		if errors.Is(err, errNoJury) {
			more, err := s.decide(ctx, tx, c, r, c.Default, "no jurors are left to draw; the default verdict stands")
			return append(revealers, more...), err
		}
		if err != nil {
			return nil, err
		}
		return revealers, s.setStatus(ctx, tx, c, StatusCommit, "round_redrawn",
			fmt.Sprintf("Case %d: round %d ended with %s; a new jury is drawn.", c.ID, r.Round, t.Outcome), nil, false)
	}
	more, err := s.decide(ctx, tx, c, r, verdict, "")
	return append(revealers, more...), err
}

// winner is the verdict with more than share of the revealed votes, or "".
func winner(t Tally, share levee.Micros) string {
	for v, n := range t.Votes {
		if int64(n)*int64(levee.Scale) > int64(share)*int64(t.Revealed) {
			return v
		}
	}
	return ""
}

// decide records a round's verdict: an appeal's bond comes back if it
// changed the verdict and goes to the fee pool if not; the verdict is open
// to appeal while appeals remain, else final.
func (s *Service) decide(ctx context.Context, tx *sqlx.Tx, c *Case, r *Round, verdict, note string) (paid []int64, err error) {
	now := s.now()
	var appeal Round
	err = tx.GetContext(ctx, &appeal, `SELECT case_id, round, draw_n, why, seats, commit_until, reveal_until, verdict, tally, appealed_by, appeal_bond
		FROM case_rounds WHERE case_id = $1 AND why = 'appeal' AND draw_n = $2`, c.ID, r.DrawN)
	if err == nil && appeal.AppealedBy != nil && appeal.AppealBond != nil {
		to := ledger.CaseFees(c.ID)
		if c.Verdict == nil || *c.Verdict != verdict {
			to = ledger.Cash(*appeal.AppealedBy)
		}
		if _, err := ledger.Post(ctx, tx, ledger.Transfer{Kind: "appeal_bond_release", Ref: caseRef(c.ID), At: now,
			Postings: []ledger.Posting{{Account: ledger.CaseBonds(c.ID), Amount: -*appeal.AppealBond}, {Account: to, Amount: *appeal.AppealBond}}}); err != nil {
			return nil, fmt.Errorf("release appeal bond: %w", err)
		}
		paid = append(paid, *appeal.AppealedBy)
		msg := fmt.Sprintf("Case %d: your appeal changed the verdict to %q, so your appeal bond of %s is returned to your account.", c.ID, verdict, *appeal.AppealBond)
		if to != ledger.Cash(*appeal.AppealedBy) {
			msg = fmt.Sprintf("Case %d: your appeal left the verdict at %q, so your appeal bond of %s goes to the case's fee pool.", c.ID, verdict, *appeal.AppealBond)
		}
		if err := notify(ctx, tx, *appeal.AppealedBy, c.ID, "payment", msg, nil, now); err != nil {
			return nil, err
		}
	}
	c.Verdict = &verdict
	msg := fmt.Sprintf("Case %d: the jury decided %q.", c.ID, verdict)
	if note != "" {
		msg = fmt.Sprintf("Case %d: %s (%q).", c.ID, note, verdict)
	}
	if c.Appeals < c.MaxAppeals {
		until := now.Add(c.appealWindow())
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET verdict = $2, appeal_until = $3 WHERE id = $1`, c.ID, verdict, until); err != nil {
			return nil, err
		}
		c.AppealUntil = &until
		return paid, s.setStatus(ctx, tx, c, StatusAppealable, "verdict", msg+" It can be appealed until "+until.Format(time.RFC3339)+".", &until, false)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE cases SET verdict = $2 WHERE id = $1`, c.ID, verdict); err != nil {
		return nil, err
	}
	return paid, s.finalise(ctx, tx, c)
}

// finalise makes the verdict final; settle applies it.
func (s *Service) finalise(ctx context.Context, tx *sqlx.Tx, c *Case) error {
	if _, err := tx.ExecContext(ctx, `UPDATE cases SET final_at = $2 WHERE id = $1`, c.ID, s.now()); err != nil {
		return err
	}
	return s.setStatus(ctx, tx, c, StatusFinal, "final", fmt.Sprintf("Case %d: the verdict %q is final.", c.ID, deref(c.Verdict)), nil, false)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
