package settlement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/pgtx"
)

// CaseFor returns the newest case about subject ("market:12",
// "milestone:3/1"), so that the subject's own page can link to it. It does
// not advance the case: the case page does that when it is opened.
// Errors: ENOTFOUND.
func (s *Service) CaseFor(ctx context.Context, subject string) (Case, error) {
	var c Case
	err := s.db.GetContext(ctx, &c, `SELECT `+caseColumns+` FROM cases WHERE subject = $1 ORDER BY id DESC LIMIT 1`, subject)
	if errors.Is(err, sql.ErrNoRows) {
		return Case{}, levee.Errorf(levee.ENOTFOUND, "no case about %s", subject)
	} else if err != nil {
		return Case{}, pgtx.Unavailable(fmt.Errorf("case for %s: %w", subject, err))
	}
	return c, nil
}

// LatestCases returns the newest case about each of subjects that has one,
// by subject, as q sees them.
func LatestCases(ctx context.Context, q sqlx.QueryerContext, subjects []string) (map[string]int64, error) {
	var rows []struct {
		Subject string `db:"subject"`
		ID      int64  `db:"id"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT subject, max(id) AS id FROM cases WHERE subject = ANY($1) GROUP BY subject`, pq.Array(subjects)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("cases about subjects: %w", err))
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Subject] = r.ID
	}
	return out, nil
}
