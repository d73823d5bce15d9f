package settlement

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/input"
	"levee/ledger"
	"levee/pgtx"
	"levee/settlement/draw"
)

var commitmentRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// act runs f on case id after advancing it, with the case row locked.
func (s *Service) act(ctx context.Context, id int64, f func(tx *sqlx.Tx, c *Case) error) (Case, error) {
	if err := s.advanceCase(ctx, id); err != nil {
		return Case{}, err
	}
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		c, err := getCase(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		return f(tx, &c)
	})
	if err != nil {
		return Case{}, fmt.Errorf("case %d: %w", id, err)
	}
	return s.getCase(ctx, id)
}

// seat returns who's seat in the case's current round. Errors: EFORBIDDEN.
func seat(ctx context.Context, tx *sqlx.Tx, c *Case, who int64) (*string, error) {
	var commitment []sql.NullString
	if err := tx.SelectContext(ctx, &commitment, `SELECT commitment FROM jurors WHERE case_id = $1 AND round = $2 AND account_id = $3`, c.ID, c.Round, who); err != nil {
		return nil, err
	}
	if len(commitment) == 0 {
		return nil, levee.Errorf(levee.EFORBIDDEN, "you are not on the jury of case %d's current round", c.ID)
	}
	if !commitment[0].Valid {
		return nil, nil
	}
	return &commitment[0].String, nil
}

// Commit records a juror's sealed vote: SHA-256(verdict ":" salt) in hex.
// A juror may replace it until the commit period ends.
// Errors: EINVALID, EFORBIDDEN, ENOTFOUND, ECONFLICT (not the commit period).
func (s *Service) Commit(ctx context.Context, who *accounts.Principal, id int64, commitment string) (Case, error) {
	if !commitmentRE.MatchString(commitment) {
		return Case{}, levee.Invalid("commitment", "commitment must be the 64 lower-case hex digits of SHA-256(verdict \":\" salt)")
	}
	return s.act(ctx, id, func(tx *sqlx.Tx, c *Case) error {
		if _, err := seat(ctx, tx, c, who.AccountID); err != nil {
			return err
		}
		if c.Status != StatusCommit && c.Status != StatusEvidence {
			return levee.Errorf(levee.ECONFLICT, "case %d is in its %s period; votes are committed in the evidence and commit periods", c.ID, c.Status)
		}
		_, err := tx.ExecContext(ctx, `UPDATE jurors SET commitment = $4, committed_at = $5 WHERE case_id = $1 AND round = $2 AND account_id = $3`,
			c.ID, c.Round, who.AccountID, commitment, s.now())
		return err
	})
}

// Reveal opens a juror's committed vote; verdict and salt must hash to the
// commitment. Errors: EINVALID (no match, unknown verdict), EFORBIDDEN,
// ENOTFOUND, ECONFLICT (not the reveal period, nothing committed, revealed).
func (s *Service) Reveal(ctx context.Context, who *accounts.Principal, id int64, verdict, salt string) (Case, error) {
	if err := input.Length("salt", salt, 8, 200); err != nil {
		return Case{}, err
	}
	return s.act(ctx, id, func(tx *sqlx.Tx, c *Case) error {
		commitment, err := seat(ctx, tx, c, who.AccountID)
		if err != nil {
			return err
		}
		if c.Status != StatusReveal {
			return levee.Errorf(levee.ECONFLICT, "case %d is in its %s period, not the reveal period", c.ID, c.Status)
		}
		if commitment == nil {
			return levee.Errorf(levee.ECONFLICT, "you did not commit a vote in time, so there is nothing to reveal")
		}
		if !slices.Contains([]string(c.Verdicts), verdict) {
			return levee.Invalid("verdict", "verdict must be one of %q", []string(c.Verdicts))
		}
		if draw.BallotCommitment(verdict, salt) != *commitment {
			return levee.Invalid("salt", "this verdict and salt do not match your commitment")
		}
		res, err := tx.ExecContext(ctx, `UPDATE jurors SET verdict = $4, salt = $5, revealed_at = $6
			WHERE case_id = $1 AND round = $2 AND account_id = $3 AND verdict IS NULL`, c.ID, c.Round, who.AccountID, verdict, salt, s.now())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return levee.Errorf(levee.ECONFLICT, "you have already revealed your vote")
		}
		return nil
	})
}

// Appeal asks for a larger jury (2k+1 where k sat last, none of them
// seated before) within the appeal window. Only a party may appeal; the
// appeal bond comes back if the new jury changes the verdict.
// Errors: EFORBIDDEN, ENOTFOUND, ECONFLICT (not appealable, no appeals
// left, the bond is more than the appellant's cash).
func (s *Service) Appeal(ctx context.Context, who *accounts.Principal, id int64, reason string) (Case, error) {
	if err := input.Length("reason", reason, 1, 5000); err != nil {
		return Case{}, err
	}
	c, err := s.act(ctx, id, func(tx *sqlx.Tx, c *Case) error {
		var party bool
		if err := tx.GetContext(ctx, &party, `SELECT EXISTS (SELECT 1 FROM case_parties WHERE case_id = $1 AND account_id = $2)`, c.ID, who.AccountID); err != nil {
			return err
		}
		if !party {
			return levee.Errorf(levee.EFORBIDDEN, "only the parties to case %d can appeal", c.ID)
		}
		if c.Status != StatusAppealable || c.AppealUntil == nil || !s.now().Before(*c.AppealUntil) {
			return levee.Errorf(levee.ECONFLICT, "case %d cannot be appealed now (it is %s)", c.ID, c.Status)
		}
		if c.Appeals >= c.MaxAppeals {
			return levee.Errorf(levee.ECONFLICT, "case %d has had its %d appeals", c.ID, c.MaxAppeals)
		}
		var last int
		if err := tx.GetContext(ctx, &last, `SELECT seats FROM case_rounds WHERE case_id = $1 AND round = $2`, c.ID, c.Round); err != nil {
			return err
		}
		now := s.now()
		if _, err := ledger.Post(ctx, tx, ledger.Transfer{Kind: "appeal_bond", Ref: caseRef(c.ID), At: now,
			Postings: []ledger.Posting{{Account: ledger.Cash(who.AccountID), Amount: -c.AppealBond}, {Account: ledger.CaseBonds(c.ID), Amount: c.AppealBond}}}); err != nil {
			if levee.ErrorCode(err) == levee.ECONFLICT {
				return levee.Errorf(levee.ECONFLICT, "an appeal needs a bond of %s and your cash is less", c.AppealBond)
			}
			return err
		}
		owner, _, ref, err := s.owner(c.Subject)
		if err != nil {
			return err
		}
		facts, err := owner.Facts(ctx, tx, ref)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET appeals = appeals + 1, appeal_until = NULL WHERE id = $1`, c.ID); err != nil {
			return err
		}
		c.Appeals++
		round := c.Round + 1
		if err := s.seatRound(ctx, tx, c, round, "appeal", 2*last+1, now, facts.Excluded); err != nil {
			if err == errNoJury {
				return levee.Errorf(levee.ECONFLICT, "no residents are left to sit on an appeal jury")
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE case_rounds SET appealed_by = $3, appeal_bond = $4 WHERE case_id = $1 AND round = $2`,
			c.ID, round, who.AccountID, c.AppealBond); err != nil {
			return err
		}
		return s.setStatus(ctx, tx, c, StatusCommit, "appealed", fmt.Sprintf("Case %d was appealed: %s", c.ID, reason), nil, false)
	})
	if err == nil {
		s.invalidate(who.AccountID)
	}
	return c, err
}

// OptOut sets whether a resident is left out of future jury pools.
func (s *Service) OptOut(ctx context.Context, who *accounts.Principal, out bool) error {
	q := `INSERT INTO jury_opt_outs (account_id) VALUES ($1) ON CONFLICT DO NOTHING`
	if !out {
		q = `DELETE FROM jury_opt_outs WHERE account_id = $1`
	}
	if _, err := s.db.ExecContext(ctx, q, who.AccountID); err != nil {
		return pgtx.Unavailable(fmt.Errorf("jury opt-out: %w", err))
	}
	return nil
}

// OptedOut reports whether account asked to be left out of jury pools.
func (s *Service) OptedOut(ctx context.Context, account int64) (bool, error) {
	var out bool
	err := s.db.GetContext(ctx, &out, `SELECT EXISTS (SELECT 1 FROM jury_opt_outs WHERE account_id = $1)`, account)
	return out, err
}
