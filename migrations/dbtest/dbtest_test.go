package dbtest_test

import (
	"context"
	"testing"

	"levee/migrations"
	"levee/migrations/dbtest"
)

func TestNewGivesIsolatedMigratedDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := dbtest.New(t), dbtest.New(t)
	if err := migrations.Check(ctx, a); err != nil {
		t.Fatalf("check: %v", err)
	}
	if _, err := a.ExecContext(ctx, `INSERT INTO districts (name) VALUES ('north')`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.GetContext(ctx, &n, `SELECT count(*) FROM districts`); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("databases share rows: %d districts in b", n)
	}
}
