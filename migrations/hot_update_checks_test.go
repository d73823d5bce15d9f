package migrations_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/jmoiron/sqlx"
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
	db, market := hotRows(t, "cash:names")
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
		t.Run(c.name, func(t *testing.T) { mustViolate(t, db, c.sql, c.constraint) })
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

// TestHotRulesAsDomains: the single-column rules that migration 0024 moved
// from the tables every journal commit writes into domains hold as before,
// on insert and on the updates a commit makes (SQLSTATE 23514, named after
// the domain's constraint), and the rules that span columns hold as each
// table's one CHECK.
func TestHotRulesAsDomains(t *testing.T) {
	ctx := context.Background()
	db, market := hotRows(t, "cash:dom")
	m := strconv.FormatInt(market, 10)
	trade := func(side, shares, amount string) string {
		return `INSERT INTO trades (market_id, seq, account_id, outcome, side, shares, amount, prices, at)
			VALUES (` + m + `, 1, 1, 0, '` + side + `', ` + shares + `, ` + amount + `, '{0.5,0.5}', now())`
	}
	entry := func(seq, key, prevHash, hash string) string {
		return `INSERT INTO ledger_entries (seq, at, kind, ref, idempotency_key, prev_hash, hash)
			VALUES (` + seq + `, now(), 'test', 'test', ` + key + `, decode(repeat('00', ` + prevHash + `), 'hex'), decode(repeat('00', ` + hash + `), 'hex'))`
	}
	posting := func(idx, amount string) string {
		return `INSERT INTO ledger_postings (entry_seq, idx, account, amount) VALUES (1, ` + idx + `, 'cash:dom', ` + amount + `)`
	}
	for _, c := range []struct {
		name, sql, constraint string
	}{
		{"balance past the bound", `UPDATE ledger_accounts SET balance = balance + 1000000000000.000001 WHERE key = 'cash:dom'`, "money_bound"},
		{"balance below the bound", `UPDATE ledger_accounts SET balance = -1000000000000.000001, may_go_negative = true WHERE key = 'cash:dom'`, "money_bound"},
		{"overdraft", `UPDATE ledger_accounts SET balance = balance - 1 WHERE key = 'cash:dom'`, "ledger_accounts_no_overdraft"},
		{"zero posting", posting("0", "0"), "posting_not_zero"},
		{"posting past the bound", posting("0", "-1000000000000.000001"), "posting_money_bound"},
		{"negative posting index", posting("-1", "1"), "index_nonnegative"},
		{"entry seq 0", entry("0", "NULL", "32", "32"), "ledger_entries_shape"},
		{"short hash", entry("1", "NULL", "32", "31"), "ledger_entries_shape"},
		{"short previous hash", entry("1", "NULL", "0", "32"), "ledger_entries_shape"},
		{"empty entry key", entry("1", "''", "32", "32"), "key_length"},
		{"entry key of 201", entry("1", "repeat('k', 201)", "32", "32"), "key_length"},
		{"head seq below 0", `UPDATE ledger_head SET seq = -1`, "ledger_head_shape"},
		{"short head hash", `UPDATE ledger_head SET hash = decode('00', 'hex')`, "ledger_head_shape"},
		{"volume past the bound", `UPDATE markets SET volume = volume + 1000000000000.000001 WHERE id = ` + m, "volume_bound"},
		{"q of another length", `UPDATE markets SET q = '{1,0,0}' WHERE id = ` + m, "markets_check"},
		{"side", trade("hold", "1", "1"), "side"},
		{"no shares", trade("buy", "0", "1"), "positive"},
		{"negative amount", trade("sell", "1", "-0.000001"), "nonnegative"},
		{"negative position", `INSERT INTO positions (market_id, account_id, outcome, shares) VALUES (` + m + `, 1, 0, -1)`, "nonnegative"},
		{"negative stake put in", `INSERT INTO market_stakes (market_id, account_id, put_in, held) VALUES (` + m + `, 1, -1, 0)`, "nonnegative"},
		{"negative stake held", `INSERT INTO market_stakes (market_id, account_id, put_in, held) VALUES (` + m + `, 1, 0, -1)`, "nonnegative"},
		{"empty order key", `INSERT INTO order_keys (account_id, key, market_id, seq, at) VALUES (1, '', ` + m + `, 1, now())`, "key_length"},
	} {
		t.Run(c.name, func(t *testing.T) { mustViolate(t, db, c.sql, c.constraint) })
	}
	// The largest values the rules allow pass.
	for _, q := range []string{
		`UPDATE ledger_accounts SET balance = 1000000000000 WHERE key = 'cash:dom'`,
		`UPDATE markets SET volume = 1000000000000 WHERE id = ` + m,
		trade("sell", "0.000001", "0"),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestHotTablesCheckOnce: each table a journal commit writes has at most one
// CHECK constraint, since PostgreSQL builds every CHECK of a table from its
// text for every statement that writes it (0023, 0024). A rule on one column
// belongs in a domain; one that spans columns joins the table's CHECK.
// Measure it (make orders) before changing this list.
func TestHotTablesCheckOnce(t *testing.T) {
	db := dbtest.New(t)
	want := map[string]string{
		"ledger_accounts": "ledger_accounts_no_overdraft",
		"ledger_entries":  "ledger_entries_shape",
		"ledger_head":     "ledger_head_shape",
		"markets":         "markets_check",
	}
	var rows []struct {
		Table string `db:"t"`
		Name  string `db:"conname"`
	}
	if err := db.Select(&rows, `SELECT conrelid::regclass::text AS t, conname FROM pg_constraint WHERE contype = 'c'
		AND conrelid::regclass::text IN ('ledger_accounts', 'ledger_entries', 'ledger_postings', 'ledger_head', 'markets',
			'trades', 'positions', 'market_stakes', 'order_keys') ORDER BY 1, 2`); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		if got[r.Table] != "" {
			t.Errorf("%s has CHECKs %s and %s: one at most", r.Table, got[r.Table], r.Name)
		}
		got[r.Table] = r.Name
	}
	for table, name := range want {
		if got[table] != name {
			t.Errorf("%s: CHECK %q, want %q", table, got[table], name)
		}
	}
	for table, name := range got {
		if want[table] == "" {
			t.Errorf("%s: unexpected CHECK %s", table, name)
		}
	}
}

// hotRows gives a test a migrated database with a ledger account key and a
// market, whose id it returns.
func hotRows(t *testing.T, key string) (*sqlx.DB, int64) {
	t.Helper()
	db := dbtest.New(t)
	db.MustExec(`INSERT INTO ledger_accounts (key, kind) VALUES ($1, 'cash')`, key)
	var market int64
	if err := db.Get(&market, `INSERT INTO markets (question, outcomes, liquidity, subsidy, q, closes_at)
		VALUES ('Will it hold?', '{yes,no}', 100, 70, '{0,0}', now() + interval '1 day') RETURNING id`); err != nil {
		t.Fatal(err)
	}
	return db, market
}

// mustViolate runs query and wants it refused as a check violation
// (23514) of constraint.
func mustViolate(t *testing.T, db *sqlx.DB, query, constraint string) {
	t.Helper()
	_, err := db.Exec(query)
	var pe *pq.Error
	if !errors.As(err, &pe) || pe.Code != "23514" || pe.Constraint != constraint {
		t.Fatalf("%s: err = %v; want a check violation of %s", query, err, constraint)
	}
}
