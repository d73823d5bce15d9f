package crisis

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/pgtx"
)

// The founder steps back: after founding, new money comes only from a
// quorum decision of kind issue, and `levee admin retire` revokes every
// admin token so that the charter changes only by the quorum.

func founded(ctx context.Context, q sqlx.QueryerContext) (bool, error) {
	var ok bool
	err := sqlx.GetContext(ctx, q, &ok, `SELECT EXISTS (SELECT 1 FROM charter_changes)`)
	return ok, pgtx.Unavailable(err)
}

// AdminIssue creates money in the treasury on an admin's word, which is
// allowed only before the charter is founded. Errors: EINVALID, ECONFLICT
// (founded: propose a quorum decision of kind issue).
func (s *Service) AdminIssue(ctx context.Context, actor int64, amount levee.Micros, memo string) (ledger.Entry, error) {
	var e ledger.Entry
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, err := getCharter(ctx, tx, "FOR SHARE"); err != nil {
			return err
		}
		ok, err := founded(ctx, tx)
		if err != nil {
			return err
		}
		if ok {
			return levee.Errorf(levee.ECONFLICT, "the charter is founded: new money is issued only by a quorum decision of kind \"issue\" (POST /api/v1/quorum/proposals)")
		}
		e, err = accounts.IssueInTx(ctx, tx, actor, amount, memo, "admin:"+levee.FormatID(actor))
		return err
	})
	return e, err
}

// Retire revokes every admin token and session and takes the admin role
// away, once the charter is founded, and records it in the charter.
// Returns the number of tokens revoked. Errors: ECONFLICT (not founded, or
// retired already).
func (s *Service) Retire(ctx context.Context) (int, error) {
	var n int
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		c, err := getCharter(ctx, tx, "FOR UPDATE")
		if err != nil {
			return err
		}
		if c.RetiredAt != nil {
			return levee.Errorf(levee.ECONFLICT, "the founder retired at %s", c.RetiredAt.UTC().Format("2006-01-02 15:04 UTC"))
		}
		ok, err := founded(ctx, tx)
		if err != nil {
			return err
		}
		if !ok {
			return levee.Errorf(levee.ECONFLICT, "found the charter first: retiring before it would leave the city with no way to found it")
		}
		if n, err = accounts.RetireAdmins(ctx, tx, s.now()); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE charter SET retired_at = $1`, s.now())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("retire the founder: %w", err)
	}
	return n, nil
}
