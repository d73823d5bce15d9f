package migrations_test

import (
	"context"
	"errors"
	"testing"

	"github.com/lib/pq"

	"levee/migrations/dbtest"
)

// TestLedgerAccountNames: the rules on a ledger account's key, kind and
// public name hold through the trigger of migration 0023 as they did as CHECK
// constraints, with the same SQLSTATE and constraint names, on insert and on
// every update that writes those columns; a balance update still passes.
func TestLedgerAccountNames(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	db.MustExec(`INSERT INTO ledger_accounts (key, kind) VALUES ('cash:names', 'cash')`)
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
	if _, err := db.ExecContext(ctx, `UPDATE ledger_accounts SET public = 'cash:p0123' WHERE key = 'cash:names'`); err != nil {
		t.Fatalf("a good public name: %v", err)
	}
}
