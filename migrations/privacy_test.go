package migrations_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/migrations"
	"levee/migrations/dbtest"
)

// TestPrivacyMigrationOnExistingData applies migration 0021 to a database
// that already has people, an organisation and ledger entries: each person's
// cash gets its own random pseudonym, the organisation's keeps its name, and
// the private epoch is left for ledger.BeginPrivateEpoch to begin (the chain
// is never rewritten). A database with no entries starts private at once.
func TestPrivacyMigrationOnExistingData(t *testing.T) {
	ctx := context.Background()
	fresh := dbtest.New(t)
	var from *int64
	if err := fresh.GetContext(ctx, &from, `SELECT private_from FROM ledger_head`); err != nil || from == nil || *from != 1 {
		t.Fatalf("a new ledger's private_from = %v, %v; want 1", from, err)
	}

	name := fmt.Sprintf("levee_pre15_%d", time.Now().UnixNano())
	if _, err := fresh.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`) })
	db, err := sqlx.Open("postgres", dbtest.WithDBName(dbtest.NewURL(t), name))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	apply := func(m migrations.Migration) {
		t.Helper()
		if _, err := db.ExecContext(ctx, m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	var privacy migrations.Migration
	for _, m := range all {
		if m.Name == "0021_privacy.sql" {
			privacy = m
			break
		}
		apply(m)
	}
	db.MustExec(`INSERT INTO accounts (id, name, kind, roles) OVERRIDING SYSTEM VALUE VALUES
		(1, 'alice', 'person', '{}'), (2, 'bob', 'person', '{}'), (3, 'dykeworks', 'organisation', '{contractor}')`)
	db.MustExec(`INSERT INTO ledger_accounts (key, kind, balance) VALUES ('cash:1', 'cash', 5), ('cash:2', 'cash', 0), ('cash:3', 'cash', 0)`)
	db.MustExec(`UPDATE ledger_accounts SET balance = -5 WHERE key = 'treasury:issuance'`)
	db.MustExec(`INSERT INTO ledger_entries (seq, at, kind, ref, prev_hash, hash) VALUES (1, now(), 'issue', '', $1, $1)`, make([]byte, 32))
	db.MustExec(`UPDATE ledger_head SET seq = 1`)
	apply(privacy)

	var rows []struct {
		Key    string  `db:"key"`
		Public *string `db:"public"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT key, public FROM ledger_accounts WHERE key LIKE 'cash:%' ORDER BY key`); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^cash:p[0-9a-f]{20}$`)
	if len(rows) != 3 || rows[0].Public == nil || rows[1].Public == nil || rows[2].Public != nil ||
		!re.MatchString(*rows[0].Public) || !re.MatchString(*rows[1].Public) || *rows[0].Public == *rows[1].Public {
		t.Fatalf("public names after 0021: %+v", rows)
	}
	if err := db.GetContext(ctx, &from, `SELECT private_from FROM ledger_head`); err != nil || from != nil {
		t.Fatalf("an existing ledger's private_from = %v, %v; want NULL until BeginPrivateEpoch", from, err)
	}
}
