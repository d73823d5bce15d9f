package ledger

import (
	"fmt"
	"testing"

	"github.com/lib/pq"

	"levee/migrations/dbtest"
	"levee/pgtx"
)

func TestFailingKey(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&pq.Error{Code: "23514", Detail: "Failing row contains (cash:42, cash, f, -1.000000, 2025-01-01 00:00:00+00)."}, "cash:42"},
		{fmt.Errorf("wrapped: %w", &pq.Error{Code: "23514", Detail: "Failing row contains (market:7:collateral, x, f, -1, now)."}), "market:7:collateral"},
		{&pq.Error{Code: "23514"}, "an account"},
		{&pq.Error{Code: "23514", Detail: "Failing row contains (Bad Key, x)."}, "an account"},
		{fmt.Errorf("not postgres"), "an account"},
	}
	for _, tt := range tests {
		if got := failingKey(tt.err); got != tt.want {
			t.Errorf("failingKey(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestConstraintNames checks the names and error details the store relies on
// against the real schema.
func TestConstraintNames(t *testing.T) {
	db := dbtest.New(t)
	_, err := db.Exec(`UPDATE ledger_accounts SET balance = -1 WHERE key = 'treasury'`)
	if !pgtx.IsCheckViolation(err, "ledger_accounts_no_overdraft") || failingKey(err) != "treasury" {
		t.Fatalf("overdraft: %v (key %q)", err, failingKey(err))
	}
	insert := `INSERT INTO ledger_entries (seq, at, kind, ref, idempotency_key, prev_hash, hash)
		VALUES ($1, now(), 'x', '', 'k', $2, $2)`
	zero := make([]byte, HashSize)
	if _, err := db.Exec(insert, 1, zero); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(insert, 2, zero); !pgtx.IsUniqueViolation(err, "ledger_entries_idempotency_key_idx") {
		t.Fatalf("duplicate key: %v", err)
	}
}
