package migrations_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/lib/pq"

	"levee/migrations/dbtest"
)

// TestHotUpdateChecks: the rules that migration 0023 moved from CHECK
// constraints into triggers (a ledger account's key, kind and public name; a
// market's fixed columns and status; the ledger head's id and private_from)
// hold as before, with the same SQLSTATE and constraint names, on insert and
// on every update that writes those columns; the updates a journal commit
// makes (a balance; q, seq and volume; the head's seq and hash) still pass.
func TestHotUpdateChecks(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	db.MustExec(`INSERT INTO ledger_accounts (key, kind) VALUES ('cash:names', 'cash')`)
	var market int64
	if err := db.GetContext(ctx, &market, `INSERT INTO markets (question, outcomes, liquidity, subsidy, q, closes_at)
		VALUES ('Will it hold?', '{yes,no}', 100, 70, '{0,0}', now() + interval '1 day') RETURNING id`); err != nil {
		t.Fatal(err)
	}
	insertMarket := func(question, outcomes, liquidity, subsidy, status string) string {
		return `INSERT INTO markets (question, outcomes, liquidity, subsidy, q, closes_at, status) VALUES ('` + question + `', '` +
			outcomes + `', ` + liquidity + `, ` + subsidy + `, '{0,0}', now(), '` + status + `')`
	}
	m := strconv.FormatInt(market, 10)
	for _, c := range []struct {
		name, sql, constraint string
	}{
		{"key with a space", `INSERT INTO ledger_accounts (key, kind) VALUES ('cash: 1', 'cash')`, "ledger_accounts_key_check"},
		{"empty key", `INSERT INTO ledger_accounts (key, kind) VALUES ('', 'cash')`, "ledger_accounts_key_check"},
		{"key of 101", `INSERT INTO ledger_accounts (key, kind) VALUES (repeat('a', 101), 'cash')`, "ledger_accounts_key_check"},
		{"upper-case kind", `INSERT INTO ledger_accounts (key, kind) VALUES ('cash:x', 'Cash')`, "ledger_accounts_kind_check"},
		{"newline in public", `INSERT INTO ledger_accounts (key, kind, public) VALUES ('cash:y', 'cash', e'p\n1')`, "ledger_accounts_public_check"},
		{"kind set later", `UPDATE ledger_accounts SET kind = 'a b' WHERE key = 'cash:names'`, "ledger_accounts_kind_check"},
		{"public set later", `UPDATE ledger_accounts SET public = 'P' WHERE key = 'cash:names'`, "ledger_accounts_public_check"},
		{"public beside a balance", `UPDATE ledger_accounts SET balance = 1, public = '' WHERE key = 'cash:names'`, "ledger_accounts_public_check"},
		{"no liquidity", insertMarket("q?", "{a,b}", "0", "1", "open"), "markets_liquidity_check"},
		{"negative subsidy", insertMarket("q?", "{a,b}", "1", "-1", "open"), "markets_subsidy_check"},
		{"one outcome", `INSERT INTO markets (question, outcomes, liquidity, subsidy, q, closes_at) VALUES ('q?', '{a}', 1, 1, '{0}', now())`, "markets_outcomes_check"},
		{"empty question", insertMarket("", "{a,b}", "1", "1", "open"), "markets_question_check"},
		{"unknown status", insertMarket("q?", "{a,b}", "1", "1", "paused"), "markets_status_check"},
		{"resolved without outcome", insertMarket("q?", "{a,b}", "1", "1", "resolved"), "markets_check1"},
		{"question emptied", `UPDATE markets SET question = '' WHERE id = ` + m, "markets_question_check"},
		{"liquidity beside q", `UPDATE markets SET q = '{1,0}', liquidity = -1 WHERE id = ` + m, "markets_liquidity_check"},
		{"outcome without resolving", `UPDATE markets SET resolved_outcome = 0 WHERE id = ` + m, "markets_check1"},
		{"status unknown later", `UPDATE markets SET status = 'gone' WHERE id = ` + m, "markets_status_check"},
		{"q of another length", `UPDATE markets SET q = '{1,0,0}' WHERE id = ` + m, "markets_check"},
		{"a second head", `INSERT INTO ledger_head (id, seq, hash) VALUES (false, 0, decode(repeat('00', 32), 'hex'))`, "ledger_head_id_check"},
		{"private_from 0", `UPDATE ledger_head SET private_from = 0`, "ledger_head_private_from_check"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := db.ExecContext(ctx, c.sql)
			var pe *pq.Error
			if !errors.As(err, &pe) || pe.Code != "23514" || pe.Constraint != c.constraint {
				t.Fatalf("%s: err = %v; want a check violation of %s", c.sql, err, c.constraint)
			}
		})
	}
	if _, err := db.ExecContext(ctx, `UPDATE ledger_accounts SET balance = balance + 1 WHERE key = 'cash:names'`); err != nil {
		t.Fatalf("a balance update: %v", err)
	}
	for _, q := range []string{
		`UPDATE ledger_accounts SET public = 'cash:p0123' WHERE key = 'cash:names'`,
		`UPDATE markets SET q = '{1.5,0}', seq = 1, volume = 0.75 WHERE id = ` + m,
		`UPDATE markets SET status = 'resolved', resolved_outcome = 0 WHERE id = ` + m,
		`UPDATE ledger_head SET seq = seq, hash = hash`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
