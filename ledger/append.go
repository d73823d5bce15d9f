package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/pgtx"
)

// AppendSQL's one-call form is the database function ledger_append
// (migration 0022): it locks the head and the accounts, checks the funds
// entry by entry, chains the hashes and writes, all inside PostgreSQL, so
// that a caller can post in the same statement as its own writes, in
// autocommit: one round trip for the whole transaction, and the head lock
// never held across the network. The Go path (PostBatch) stays for everyone
// else: it resolves idempotency keys and names the failing transfer.

// AppendWith posts ts after the caller's writes w, in one statement run
// with autocommit on db: the caller's CTEs, then ledger_append. It returns
// the balance after the batch of every account ts posts to and of the
// accounts read. The transfers must carry no idempotency key. Errors:
// EINVALID for a malformed transfer (field transfers[i]...), a *FundsError
// for an overdraft, ECONFLICT for a balance past the bound on money or an
// account that does not exist, or the database's error (EUNAVAILABLE when it
// is down), wrapped.
func (p *Prepared) AppendWith(ctx context.Context, w With, ts []Transfer, read []string) (map[string]levee.Micros, error) {
	if len(ts) == 0 || len(ts) > MaxBatch {
		return nil, levee.Invalid("transfers", "between 1 and %d transfers per batch", MaxBatch)
	}
	now := time.Now()
	var (
		ats    = make([]string, len(ts))
		micros = make([]int64, len(ts))
		kinds  = make([]string, len(ts))
		refs   = make([]string, len(ts))
		pEntry = make([]int64, 0, 3*len(ts))
		pAcct  = make([]string, 0, 3*len(ts))
		pAmt   = make([]int64, 0, 3*len(ts))
	)
	for i, t := range ts {
		if t.IdempotencyKey != "" {
			return nil, levee.Invalid("transfers["+strconv.Itoa(i)+"].idempotency_key", "AppendWith takes no idempotency keys")
		}
		e, err := prepare(t, now)
		if err != nil {
			return nil, fmt.Errorf("ledger append: transfer %d: %w", i, err)
		}
		ats[i], micros[i], kinds[i], refs[i] = e.At.Format(time.RFC3339Nano), e.At.UnixMicro(), e.Kind, e.Ref
		for _, po := range e.Postings {
			pEntry, pAcct, pAmt = append(pEntry, int64(i+1)), append(pAcct, po.Account), append(pAmt, int64(po.Amount))
		}
	}
	st, err := p.appendWith(ctx, w)
	if err != nil {
		return nil, err
	}
	args := append(w.Args[:len(w.Args):len(w.Args)], pq.StringArray(ats), pq.Int64Array(micros), pq.StringArray(kinds), pq.StringArray(refs),
		pq.Int64Array(pEntry), pq.StringArray(pAcct), pq.Int64Array(pAmt), pq.StringArray(read))
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, appendError(err)
	}
	defer rows.Close()
	out := make(map[string]levee.Micros, len(pAcct)+len(read))
	for rows.Next() {
		var key string
		var bal int64
		if err := rows.Scan(&key, &bal); err != nil {
			return nil, fmt.Errorf("ledger append: read balances: %w", err)
		}
		out[key] = levee.Micros(bal)
	}
	if err := rows.Err(); err != nil {
		return nil, appendError(err)
	}
	return out, nil
}

// appendWithSQL is the statement of AppendWith: the caller's writes, run
// first because the condition reads them (With.First, a one-time filter
// evaluated before the function is called), then ledger_append.
func appendWithSQL(w With) string {
	n := len(w.Args)
	arg := func(i int) string { return "$" + strconv.Itoa(n+i) }
	return "WITH " + w.CTEs + `
		SELECT key, balance FROM ledger_append(` + arg(1) + `::timestamptz[], ` + arg(2) + `::bigint[], ` + arg(3) + `::text[], ` +
		arg(4) + `::text[], ` + arg(5) + `::int[], ` + arg(6) + `::text[], ` + arg(7) + `::bigint[], ` + arg(8) + `::text[])
		WHERE ` + w.First
}

// appendWith prepares AppendWith's statement, once per CTEs and condition.
func (p *Prepared) appendWith(ctx context.Context, w With) (*sqlx.Stmt, error) {
	return p.prepareWith(ctx, "append\x00"+w.CTEs+"\x00"+w.First, appendWithSQL(w))
}

// appendError turns ledger_append's refusals into the ledger's errors.
func appendError(err error) error {
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23514" && pe.Constraint == "ledger_accounts_no_overdraft":
			return fmt.Errorf("ledger append: %w", insufficientFunds(detailKey(pe)))
		case pe.Code == "23514" && (pe.Constraint == "ledger_accounts_money_bound" || pe.Constraint == "money_bound"):
			// ledger_append names the bound itself; the balance's domain
			// (levee_money, migration 0024) is the backstop.
			return fmt.Errorf("ledger append: %w", levee.Errorf(levee.ECONFLICT, "the balance of %s would pass the bound on money, %s", detailKey(pe), levee.MaxMoney))
		case pe.Code == "23503" && pe.Constraint == "":
			return fmt.Errorf("ledger append: %w", levee.Errorf(levee.ECONFLICT, "no ledger account %s", detailKey(pe)))
		}
	}
	return fmt.Errorf("ledger append: %w", pgtx.Unavailable(err))
}

// detailKey is the account key ledger_append puts in an error's detail, or
// what failingKey makes of a table constraint's "Failing row contains (…)".
func detailKey(pe *pq.Error) string {
	if validKey(pe.Detail) {
		return pe.Detail
	}
	return failingKey(pe)
}
