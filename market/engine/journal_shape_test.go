package engine_test

import (
	"context"
	"testing"

	"levee/market/engine"
	"levee/migrations/dbtest"
)

// TestJournalShapes: every shape of the journal's statement (optional parts
// replaced by inert ones) is valid SQL whose 35 parameters all have types,
// runs with nothing to write, and writes nothing through an inert part; the
// engine tests with keys, sales and decision markets run the real parts.
func TestJournalShapes(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	stmts := engine.JournalStatements()
	if len(stmts) != 8 {
		t.Fatalf("%d shapes; want 8", len(stmts))
	}
	args := make([]any, 36)
	for i := range args {
		args[i] = "{}"
	}
	for name, sql := range stmts {
		t.Run(name, func(t *testing.T) {
			tx, err := db.BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			st, err := tx.PreparexContext(ctx, sql)
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			var one int
			if err := st.GetContext(ctx, &one, args...); err != nil || one != 1 {
				t.Fatalf("run with empty arrays: %d, %v", one, err)
			}
		})
	}
}
