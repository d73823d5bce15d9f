package settlement

import (
	"context"
	"fmt"

	"levee"
	"levee/pgtx"
)

// JurorRecord is a resident's public record of jury service: seats taken,
// votes revealed, no-shows (not paid, replaced), and fees earned.
type JurorRecord struct {
	Account  int64        `json:"account,string" db:"account_id"`
	Seats    int          `json:"seats" db:"seats"`
	Revealed int          `json:"revealed" db:"revealed"`
	NoShows  int          `json:"no_shows" db:"no_shows"`
	Paid     levee.Micros `json:"paid" db:"paid"`
}

// JurorRecord returns account's record over every tallied round.
func (s *Service) JurorRecord(ctx context.Context, account int64) (JurorRecord, error) {
	r := JurorRecord{Account: account}
	err := s.db.GetContext(ctx, &r, `SELECT $1::bigint AS account_id, count(*) AS seats, count(j.revealed_at) AS revealed,
		count(*) FILTER (WHERE j.no_show) AS no_shows, coalesce(sum(j.paid), 0) AS paid
		FROM jurors j JOIN case_rounds r ON r.case_id = j.case_id AND r.round = j.round
		WHERE j.account_id = $1 AND r.tally IS NOT NULL`, account)
	if err != nil {
		return JurorRecord{}, pgtx.Unavailable(fmt.Errorf("juror record %d: %w", account, err))
	}
	return r, nil
}
