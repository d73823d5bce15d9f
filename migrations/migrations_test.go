package migrations_test

import (
	"context"
	"sync"
	"testing"

	"levee"
	"levee/migrations"
	"levee/migrations/dbtest"
)

func TestMigrateIsIdempotentAndConcurrencySafe(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t) // already migrated from the template
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- migrations.Migrate(ctx, db)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM schema_migrations`); err != nil {
		t.Fatal(err)
	}
	ms, _ := migrations.All()
	if n != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
	}
	if err := migrations.Check(ctx, db); err != nil {
		t.Fatalf("check: %v", err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future.sql')`, migrations.Latest()+1); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Migrate(ctx, db); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("migrate on newer schema: got %v, want a conflict", err)
	}
	if err := migrations.Check(ctx, db); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("check on newer schema: got %v, want a conflict", err)
	}
}

func TestMigrationsAreNumberedInOrder(t *testing.T) {
	ms, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Fatalf("migration %s has version %d, want %d (no gaps)", m.Name, m.Version, i+1)
		}
	}
}
