package hostile

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/jmoiron/sqlx"
)

// LedgerCheck is the state of the treasury after a run: the ledger's own
// verification (hash chain and trial balance) over the API, and the
// balances read from the database.
type LedgerCheck struct {
	Verified     bool
	Entries      int64
	Problem      string
	TrialBalance string // as verification reports it
	SumOfAll     string // the sum of every account's balance, from the database
	Accounts     int
	Negative     []string // accounts below zero that may not go negative (every one but issuance)
	Err          string
}

// Passed reports whether the ledger verifies, balances to zero both ways,
// and no account that must stay at or above zero is below it.
func (c LedgerCheck) Passed() bool {
	return c.Err == "" && c.Verified && isZero(c.TrialBalance) && isZero(c.SumOfAll) && len(c.Negative) == 0
}

func isZero(s string) bool { return s != "" && strings.Trim(s, "-0.") == "" }

// CheckLedger runs GET /api/v1/ledger/verify and reads every balance.
func CheckLedger(ctx context.Context, base string, db *sqlx.DB) LedgerCheck {
	var c LedgerCheck
	var r struct {
		OK           bool   `json:"ok"`
		Entries      int64  `json:"entries"`
		Problem      string `json:"problem"`
		TrialBalance string `json:"trial_balance"`
	}
	if err := call(ctx, http.DefaultClient, base, "GET", "/api/v1/ledger/verify", Principal{}, "", &r); err != nil {
		c.Err = fmt.Sprintf("verify the ledger: %v", err)
	}
	c.Verified, c.Entries, c.Problem, c.TrialBalance = r.OK, r.Entries, r.Problem, r.TrialBalance
	// Only issuance may go negative (ledger); the sum is taken in
	// NUMERIC, which no bound of ours limits.
	var negative []struct {
		Key     string `db:"key"`
		Balance string `db:"balance"`
	}
	if err := db.SelectContext(ctx, &negative, `SELECT key, balance::text AS balance FROM ledger_accounts
		WHERE balance < 0 AND NOT may_go_negative ORDER BY key`); err != nil {
		c.Err = strings.TrimPrefix(c.Err+"; ", "; ") + fmt.Sprintf("read negative balances: %v", err)
		return c
	}
	for _, n := range negative {
		c.Negative = append(c.Negative, n.Key+" "+n.Balance)
	}
	var sum struct {
		Sum      string `db:"sum"`
		Accounts int    `db:"accounts"`
	}
	if err := db.GetContext(ctx, &sum, `SELECT coalesce(sum(balance), 0)::text AS sum, count(*) AS accounts FROM ledger_accounts`); err != nil {
		c.Err = strings.TrimPrefix(c.Err+"; ", "; ") + fmt.Sprintf("sum the balances: %v", err)
		return c
	}
	c.SumOfAll, c.Accounts = sum.Sum, sum.Accounts
	return c
}

// String is one line for a report.
func (c LedgerCheck) String() string {
	s := fmt.Sprintf("ledger verified: %t (%d entries, trial balance %s); %d accounts summing to %s; %d below zero that may not be",
		c.Verified, c.Entries, c.TrialBalance, c.Accounts, c.SumOfAll, len(c.Negative))
	if c.Problem != "" {
		s += "; problem: " + c.Problem
	}
	if len(c.Negative) > 0 {
		s += ": " + strings.Join(c.Negative[:min(10, len(c.Negative))], ", ")
	}
	if c.Err != "" {
		s += "; error: " + c.Err
	}
	return s
}
