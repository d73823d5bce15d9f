package crisis

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
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
	// The emergencies come first: an ended emergency takes no more acts, so
	// the acts read next are all of theirs.
	var ended []int64
	if err := s.db.SelectContext(ctx, &ended, `SELECT id FROM emergencies WHERE ended_at IS NOT NULL AND NOT reviews_opened ORDER BY id`); err != nil {
		return pgtx.Unavailable(fmt.Errorf("emergencies to review: %w", err))
	}
	if len(ended) == 0 {
		return nil
	}
	var acts []struct {
		Emergency int64  `db:"emergency_id"`
		Act       int64  `db:"id"`
		Reason    string `db:"reason"`
	}
	if err := s.db.SelectContext(ctx, &acts, `SELECT x.emergency_id, x.id, e.reason FROM emergency_acts x JOIN emergencies e ON e.id = x.emergency_id
		WHERE x.emergency_id = ANY($1) ORDER BY x.id`, pq.Array(ended)); err != nil {
		return pgtx.Unavailable(fmt.Errorf("acts to review: %w", err))
	}
	subjects := make([]string, len(acts))
	for i, a := range acts {
		subjects[i] = ActSubject(a.Act)
	}
	cases, err := settlement.LatestCases(ctx, s.db, subjects)
	if err != nil {
		return fmt.Errorf("acts to review: %w", err)
	}
	var errs []error
	for i, d := range acts {
		if _, ok := cases[subjects[i]]; ok {
			continue
		}
		_, err := s.opts.Reviews.OpenReview(ctx, subjects[i], fmt.Sprintf("Review of an act under emergency %d (%s)", d.Emergency, d.Reason))
		if err != nil && levee.ErrorCode(err) != levee.ECONFLICT {
			errs = append(errs, err)
		} else if err != nil {
			s.opts.Logger.Warn("review not opened yet", "act", d.Act, "err", err)
		}
	}
	// An emergency is reviewed once each of its acts has a case.
	if cases, err = settlement.LatestCases(ctx, s.db, subjects); err != nil {
		return errors.Join(append(errs, fmt.Errorf("acts reviewed: %w", err))...)
	}
	waiting := map[int64]bool{}
	for i, a := range acts {
		if _, ok := cases[subjects[i]]; !ok {
			waiting[a.Emergency] = true
		}
	}
	var reviewed []int64
	for _, id := range ended {
		if !waiting[id] {
			reviewed = append(reviewed, id)
		}
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE emergencies SET reviews_opened = true WHERE id = ANY($1)`, pq.Array(reviewed)); err != nil {
		errs = append(errs, pgtx.Unavailable(err))
	}
	return errors.Join(errs...)
}

// ActReview is what a review jury is told about an act.
type ActReview struct {
	Act
	StewardID       int64         `db:"steward_id"`
	Districts       pq.Int64Array `db:"district_ids"`
	EmergencyReason string        `db:"ereason"`
}

// ReviewOf returns the act under review. Errors: ENOTFOUND.
func ReviewOf(ctx context.Context, q sqlx.QueryerContext, id int64) (ActReview, error) {
	var a ActReview
	err := sqlx.GetContext(ctx, q, &a, `SELECT x.id, x.emergency_id, x.kind, x.detail, x.amount, x.reason, x.contract_id, x.at, x.review,
		x.reviewed_at, x.returned, NULL::bigint AS case_id, x.steward_id, e.reason AS ereason, e.district_ids
		FROM emergency_acts x JOIN emergencies e ON e.id = x.emergency_id WHERE x.id = $1`, id)
	if err != nil {
		return ActReview{}, levee.Errorf(levee.ENOTFOUND, "no emergency act %d", id)
	}
	return a, nil
}

// SettleReview records the jury's review of act id; a referred direct
// award's unspent escrow returns to the treasury, in the same transaction,
// which mark joins (settlement's record of the verdict).
func (s *Service) SettleReview(ctx context.Context, id int64, verdict string, mark func(ctx context.Context, tx *sqlx.Tx) error) error {
	if verdict != VerdictRatify && verdict != VerdictRefer {
		return fmt.Errorf("act verdict %q", verdict)
	}
	return pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		if err := mark(ctx, tx); err != nil {
			return err
		}
		var contract *int64
		if err := tx.GetContext(ctx, &contract, `SELECT contract_id FROM emergency_acts WHERE id = $1 FOR UPDATE`, id); err != nil {
			return err
		}
		var returned *levee.Micros
		if verdict == VerdictRefer && contract != nil {
			r, err := s.opts.Contracts.ReferDirectAward(ctx, tx, *contract)
			if err != nil {
				return err
			}
			returned = &r
		}
		_, err := tx.ExecContext(ctx, `UPDATE emergency_acts SET review = $2, reviewed_at = $3, returned = $4 WHERE id = $1`, id, verdict, s.now(), returned)
		return err
	})
}
