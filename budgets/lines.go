package budgets

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/pgtx"
)

const lineColumns = `b.id, b.project_id, b.round_id, b.district_id, b.title, b.funded, b.ledger_key, b.created_at`

// Line reads one budget line and its balance through q. Errors: ENOTFOUND.
func Line(ctx context.Context, q sqlx.QueryerContext, id int64) (BudgetLine, error) {
	var l BudgetLine
	err := sqlx.GetContext(ctx, q, &l, `SELECT `+lineColumns+` FROM budget_lines b WHERE b.id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return BudgetLine{}, levee.Errorf(levee.ENOTFOUND, "no budget line %d", id)
	} else if err != nil {
		return BudgetLine{}, pgtx.Unavailable(fmt.Errorf("budget line %d: %w", id, err))
	}
	names, err := accounts.DistrictNames(ctx, q)
	if err != nil {
		return BudgetLine{}, fmt.Errorf("budget line %d: %w", id, err)
	}
	l.District = names[l.DistrictID]
	if l.Balance, err = ledger.Balance(ctx, q, l.LedgerKey); err != nil {
		return BudgetLine{}, fmt.Errorf("budget line %d: %w", id, err)
	}
	return l, nil
}

// Move moves amount of unspent money from one budget line to another
// inside tx, as one ledger entry of kind with ref.
// Errors: EINVALID, ENOTFOUND, ECONFLICT (the line holds less).
func Move(ctx context.Context, tx *sqlx.Tx, from, to int64, amount levee.Micros, kind, ref string) (ledger.Entry, error) {
	if amount <= 0 {
		return ledger.Entry{}, levee.Invalid("amount", "amount must be positive")
	}
	if from == to {
		return ledger.Entry{}, levee.Invalid("to_line", "the lines must differ")
	}
	for _, id := range []int64{from, to} {
		if _, err := Line(ctx, tx, id); err != nil {
			return ledger.Entry{}, err
		}
	}
	e, err := ledger.Post(ctx, tx, ledger.Transfer{Kind: kind, Ref: ref,
		Postings: []ledger.Posting{{Account: ledger.BudgetLine(from), Amount: -amount}, {Account: ledger.BudgetLine(to), Amount: amount}}})
	if levee.ErrorCode(err) == levee.ECONFLICT {
		return ledger.Entry{}, levee.Errorf(levee.ECONFLICT, "budget line %d holds less than %s", from, amount)
	}
	return e, err
}
