package settlement

import (
	"context"
	"fmt"

	"levee"
	"levee/ledger"
	"levee/pgtx"
)

// JurorRecord is a resident's public record of jury service, under their
// pseudonym: seats taken, votes revealed, no-shows (not paid, replaced), and
// fees earned.
type JurorRecord struct {
	Pseudonym string       `json:"pseudonym" db:"-"`
	Seats     int          `json:"seats" db:"seats"`
	Revealed  int          `json:"revealed" db:"revealed"`
	NoShows   int          `json:"no_shows" db:"no_shows"`
	Paid      levee.Micros `json:"paid" db:"paid"`
}

// JurorRecord returns the record over every tallied round of the resident
// whose pseudonym is p. Errors: ENOTFOUND for a pseudonym nobody has.
func (s *Service) JurorRecord(ctx context.Context, p string) (JurorRecord, error) {
	owners, err := ledger.PseudonymOwners(ctx, s.db, []string{p})
	if err != nil {
		return JurorRecord{}, err
	}
	account, ok := owners[p]
	if !ok {
		return JurorRecord{}, levee.Errorf(levee.ENOTFOUND, "no resident has the pseudonym %q", p)
	}
	r := JurorRecord{Pseudonym: p}
	err = s.db.GetContext(ctx, &r, `SELECT count(*) AS seats, count(j.revealed_at) AS revealed,
		count(*) FILTER (WHERE j.no_show) AS no_shows, coalesce(sum(j.paid), 0) AS paid
		FROM jurors j JOIN case_rounds r ON r.case_id = j.case_id AND r.round = j.round
		WHERE j.account_id = $1 AND r.tally IS NOT NULL`, account)
	if err != nil {
		return JurorRecord{}, pgtx.Unavailable(fmt.Errorf("juror record %s: %w", p, err))
	}
	r.Pseudonym = p
	return r, nil
}
