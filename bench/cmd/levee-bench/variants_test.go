package main

import (
	"slices"
	"testing"

	"levee/migrations/dbtest"
)

// TestVariantsUndoTheirSetup runs each orders variant's Setup on a migrated
// database and then its Undo: the schema's constraints, domain constraints
// and indexes, and the server's settings made by ALTER SYSTEM, must be those
// it started with, so that a variant measured
// earlier in a run does not change the ones measured after it. (A
// constraint put back NOT VALID is the same rule: the rows it did not check
// again were checked when they were written.)
func TestVariantsUndoTheirSetup(t *testing.T) {
	db := dbtest.New(t)
	schema := func() []string {
		var defs []string
		if err := db.Select(&defs, `
			SELECT CASE WHEN conrelid <> 0 THEN conrelid::regclass::text ELSE contypid::regtype::text END
				|| ' ' || conname || ' ' || replace(pg_get_constraintdef(oid), ' NOT VALID', '')
			FROM pg_constraint WHERE connamespace = 'public'::regnamespace
			UNION ALL
			SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'
			UNION ALL
			SELECT 'ALTER SYSTEM ' || name || ' = ' || setting FROM pg_file_settings
			WHERE sourcefile LIKE '%postgresql.auto.conf'`); err != nil {
			t.Fatal(err)
		}
		slices.Sort(defs)
		return defs
	}
	before := schema()
	for _, v := range ordersVariants {
		if len(v.Setup) == 0 {
			continue
		}
		for _, q := range v.Setup {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s setup: %s: %v", v.Key, q, err)
			}
		}
		if slices.Equal(schema(), before) {
			t.Errorf("%s: setup changed nothing", v.Key)
		}
		for _, q := range v.Undo {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s undo: %s: %v", v.Key, q, err)
			}
		}
		after := schema()
		for _, d := range after {
			if !slices.Contains(before, d) {
				t.Errorf("%s: after undo the schema has %s", v.Key, d)
			}
		}
		for _, d := range before {
			if !slices.Contains(after, d) {
				t.Errorf("%s: after undo the schema lacks %s", v.Key, d)
			}
		}
	}
}
