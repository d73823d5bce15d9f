package settlement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
