package crisis

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/pgtx"
	"levee/settlement"
)

// Review verdicts.
const (
	VerdictRatify = "ratify"
	VerdictRefer  = "refer"
)

// ActSubject names an act as the subject of its review case.
func ActSubject(act int64) string { return "act:" + levee.FormatID(act) }

// openReviews sends every act of every ended emergency to a jury drawn
// from the residents of the emergency's districts, stratified by district.
// An emergency is marked reviewed once each of its acts has a case; acts
// no jury can be drawn for yet are retried on the next Advance.
func (s *Service) openReviews(ctx context.Context) error {
	if s.opts.Reviews == nil {
		return nil
	}
	var due []struct {
		Emergency int64  `db:"emergency_id"`
		Act       int64  `db:"id"`
		Reason    string `db:"reason"`
	}
	if err := s.db.SelectContext(ctx, &due, `SELECT x.emergency_id, x.id, e.reason FROM emergency_acts x JOIN emergencies e ON e.id = x.emergency_id
		WHERE e.ended_at IS NOT NULL AND NOT e.reviews_opened
		  AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.subject = 'act:' || x.id) ORDER BY x.id`); err != nil {
		return pgtx.Unavailable(fmt.Errorf("acts to review: %w", err))
	}
	var errs []error
	for _, d := range due {
		_, err := s.opts.Reviews.OpenReview(ctx, ActSubject(d.Act), fmt.Sprintf("Review of an act under emergency %d (%s)", d.Emergency, d.Reason))
		if err != nil && levee.ErrorCode(err) != levee.ECONFLICT {
			errs = append(errs, err)
		} else if err != nil {
			s.opts.Logger.Warn("review not opened yet", "act", d.Act, "err", err)
		}
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE emergencies e SET reviews_opened = true WHERE ended_at IS NOT NULL AND NOT reviews_opened
		AND NOT EXISTS (SELECT 1 FROM emergency_acts x WHERE x.emergency_id = e.id AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.subject = 'act:' || x.id))`); err != nil {
		errs = append(errs, pgtx.Unavailable(err))
	}
	return errors.Join(errs...)
}

// ActOwner makes emergency acts the subjects of review cases.
func (s *Service) ActOwner() settlement.Owner { return actOwner{s} }

type actOwner struct{ s *Service }

func parseAct(ref string) (int64, error) {
	id, err := strconv.ParseInt(ref, 10, 64)
	if err != nil || id <= 0 {
		return 0, levee.Invalid("subject", "an act subject is act:<id>")
	}
	return id, nil
}

func (o actOwner) Facts(ctx context.Context, q sqlx.QueryerContext, ref string) (settlement.Facts, error) {
	id, err := parseAct(ref)
	if err != nil {
		return settlement.Facts{}, err
	}
	var a struct {
		Act
		StewardID    int64         `db:"steward_id"`
		Districts    pq.Int64Array `db:"district_ids"`
		EReason      string        `db:"ereason"`
		ContractorID *int64        `db:"contractor_id"`
	}
	err = sqlx.GetContext(ctx, q, &a, `SELECT x.id, x.emergency_id, x.kind, x.detail, x.amount, x.reason, x.contract_id, x.at, x.review,
		x.reviewed_at, x.returned, NULL::bigint AS case_id, x.steward_id, e.reason AS ereason, k.contractor_id,
		e.district_ids
		FROM emergency_acts x JOIN emergencies e ON e.id = x.emergency_id LEFT JOIN contracts k ON k.id = x.contract_id WHERE x.id = $1`, id)
	if err != nil {
		return settlement.Facts{}, levee.Errorf(levee.ENOTFOUND, "no emergency act %d", id)
	}
	districts := []int64(a.Districts)
	f := settlement.Facts{
		Kind: "act",
		Question: fmt.Sprintf("Emergency %d (%s): was this %s of %s justified and within the emergency's limits? %q",
			a.EmergencyID, a.EReason, a.Kind, a.Amount, a.Reason),
		Verdicts:  []string{VerdictRatify, VerdictRefer},
		Default:   VerdictRefer, // if no jury can be formed, a human body must look at it
		Districts: districts,
		Parties:   map[int64]string{a.StewardID: "steward"},
	}
	if a.ContractorID != nil {
		f.Parties[*a.ContractorID] = "contractor"
		var members []int64
		if err := sqlx.SelectContext(ctx, q, &members, `SELECT member_id FROM organisation_members WHERE organisation_id = $1`, *a.ContractorID); err != nil {
			return settlement.Facts{}, pgtx.Unavailable(err)
		}
		for _, m := range members {
			f.Parties[m] = "contractor"
		}
	}
	return f, nil
}

func (o actOwner) Hold(ctx context.Context, tx *sqlx.Tx, who *accounts.Principal, ref string) (string, error) {
	return "", levee.Errorf(levee.ECONFLICT, "emergency acts go to review by a jury on their own once the emergency ends; they are not disputed")
}

// Settle records the jury's review; a referred direct award's unspent
// escrow returns to the treasury, in the same transaction.
func (o actOwner) Settle(ctx context.Context, ref, verdict string, mark func(ctx context.Context, tx *sqlx.Tx) error) error {
	id, err := parseAct(ref)
	if err != nil {
		return err
	}
	if verdict != VerdictRatify && verdict != VerdictRefer {
		return fmt.Errorf("act verdict %q", verdict)
	}
	return pgtx.Run(ctx, o.s.db, func(tx *sqlx.Tx) error {
		if err := mark(ctx, tx); err != nil {
			return err
		}
		var contract *int64
		if err := tx.GetContext(ctx, &contract, `SELECT contract_id FROM emergency_acts WHERE id = $1 FOR UPDATE`, id); err != nil {
			return err
		}
		var returned *levee.Micros
		if verdict == VerdictRefer && contract != nil {
			r, err := o.s.opts.Contracts.ReferDirectAward(ctx, tx, *contract)
			if err != nil {
				return err
			}
			returned = &r
		}
		_, err := tx.ExecContext(ctx, `UPDATE emergency_acts SET review = $2, reviewed_at = $3, returned = $4 WHERE id = $1`, id, verdict, o.s.now(), returned)
		return err
	})
}
