package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/ledger"
)

// noKeys returns ts without idempotency keys (AppendWith takes none; the
// hash does not cover them).
func noKeys(ts []ledger.Transfer) []ledger.Transfer {
	out := make([]ledger.Transfer, len(ts))
	for i, t := range ts {
		t.IdempotencyKey = ""
		out[i] = t
	}
	return out
}

// TestAppendWithMatchesPostBatch posts the same flow through PostBatch (the
// chain computed in Go) and through AppendWith (ledger_append, computed in
// PostgreSQL): see mustMatchPostBatch.
func TestAppendWithMatchesPostBatch(t *testing.T) {
	mustMatchPostBatch(t, func(t *testing.T, db *sqlx.DB) poster {
		p := ledger.NewPrepared(db)
		t.Cleanup(func() { p.Close() })
		return func(w ledger.With, batch []ledger.Transfer) (map[string]levee.Micros, error) {
			return p.AppendWith(context.Background(), w, batch, []string{"treasury"})
		}
	})
}

// poster posts batch after the caller's writes w, in a transaction of its
// own, and returns the balances the path returns (the treasury's read).
type poster func(w ledger.With, batch []ledger.Transfer) (map[string]levee.Micros, error)

// mustMatchPostBatch posts the same flow, in batches of 1 to 512, through
// PostBatch and through the poster that newPost makes on a second ledger's
// database, each batch with a caller's row whose text SQL would choke on:
// the exports must be identical byte for byte, each batch's caller row
// committed with it and intact, every balance returned (the treasury's,
// read, too) the one stored, and both ledgers must verify.
func mustMatchPostBatch(t *testing.T, newPost func(t *testing.T, db *sqlx.DB) poster) {
	ctx := context.Background()
	accounts, ts := batchFlow(1200)
	ts = noKeys(ts)
	plain, plainDB := MustLedger(t)
	other, otherDB := MustLedger(t)
	MustOpen(t, plain, append(accounts, "fees")...)
	MustOpen(t, other, append(accounts, "fees")...)
	otherDB.MustExec(`CREATE TABLE caller_rows (id int PRIMARY KEY, note text NOT NULL)`)
	post := newPost(t, otherDB)
	const note = `it's a "note" \ with; -- what SQL would choke on`
	w := ledger.With{CTEs: `added AS (INSERT INTO caller_rows VALUES ($1, $2) RETURNING 1)`, First: `(SELECT count(*) FROM added) >= 0`}
	for from, size := 0, 1; from < len(ts); from, size = from+size, size*2 {
		batch := ts[from:min(from+size, len(ts))]
		tx := plainDB.MustBegin()
		if _, err := ledger.PostBatch(ctx, tx, batch); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		w.Args = []any{from, note}
		balances, err := post(w, batch)
		if err != nil {
			t.Fatalf("batch of %d from %d: %v", len(batch), from, err)
		}
		if _, ok := balances["treasury"]; !ok {
			t.Fatal("the balance of an account read was not returned")
		}
		for k, b := range balances {
			if stored := MustBalance(t, other, k); stored != b {
				t.Fatalf("%s: returned %s, stored %s", k, b, stored)
			}
		}
	}
	var rows, notes int
	otherDB.Get(&rows, `SELECT count(*) FROM caller_rows`)
	otherDB.Get(&notes, `SELECT count(*) FROM caller_rows WHERE note = $1`, note)
	if rows != 11 || notes != 11 {
		t.Fatalf("%d of the caller's rows (%d with the note intact), want one per batch (11)", rows, notes)
	}
	mustSameChain(t, plain, other)
}

// TestAppendWithRefuses: an overdraft (checked after each whole entry, in
// order, so money coming back in a later entry of the batch does not excuse
// it), a balance past the bound on money, an account that does not exist and
// a keyed transfer are each refused with the ledger's error, and neither the
// batch nor the caller's writes are left behind.
func TestAppendWithRefuses(t *testing.T) {
	ctx := context.Background()
	l, db := mustRefusalLedger(t)
	p := ledger.NewPrepared(db)
	defer p.Close()
	w := ledger.With{CTEs: `added AS (INSERT INTO caller_rows VALUES (1) RETURNING 1)`, First: `(SELECT count(*) FROM added) >= 0`}
	cases := refusals(levee.ECONFLICT) // ledger_append finds no such account in PostgreSQL
	for _, c := range cases {
		_, err := p.AppendWith(ctx, w, c.ts, nil)
		if err == nil || !c.check(err) {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	var rows, entries int
	db.Get(&rows, `SELECT count(*) FROM caller_rows`)
	db.Get(&entries, `SELECT count(*) FROM ledger_entries`)
	if rows != 0 || entries != 1 {
		t.Fatalf("%d caller rows and %d entries left, want 0 and the funding's 1", rows, entries)
	}
	if _, err := p.AppendWith(ctx, w, []ledger.Transfer{move("cash:1", "cash:2", levee.Units(10))}, nil); err != nil {
		t.Fatal(err)
	}
	MustVerify(t, l)
}

// move is a transfer of amt from one account to another.
func move(from, to string, amt levee.Micros) ledger.Transfer {
	return ledger.Transfer{Kind: "move", Postings: []ledger.Posting{{Account: from, Amount: -amt}, {Account: to, Amount: amt}}}
}

// refusal is a batch the ledger must refuse, and how it must say so.
type refusal struct {
	name  string
	ts    []ledger.Transfer
	check func(error) bool
}

// mustRefusalLedger is the ledger refusals are tried on: cash:1 holding
// 10, cash:2 and fees nothing, and a table for the caller's rows.
func mustRefusalLedger(t *testing.T) (*ledger.Ledger, *sqlx.DB) {
	t.Helper()
	l, db := MustLedger(t)
	MustOpen(t, l, "cash:1", "cash:2", "fees")
	MustFund(t, l, "cash:1", levee.Units(10))
	db.MustExec(`CREATE TABLE caller_rows (id int PRIMARY KEY)`)
	return l, db
}

// refusals are the batches that every path posting after a caller's
// writes refuses, with cash:1 holding 10 and cash:2 and fees nothing:
// an overdraft (checked after each whole entry, in order, so money coming
// back in a later entry of the batch does not excuse it), a balance past
// the bound on money, an account that does not exist (noAccount: the code
// the path gives), a keyed transfer and an unbalanced one.
func refusals(noAccount string) []refusal {
	return []refusal{
		{"overdraft", []ledger.Transfer{move("cash:1", "cash:2", levee.Units(11))},
			func(err error) bool { var fe *ledger.FundsError; return errors.As(err, &fe) && fe.Account == "cash:1" }},
		{"overdraft repaid by a later entry", []ledger.Transfer{move("cash:2", "fees", levee.Units(1)), move("cash:1", "cash:2", levee.Units(5))},
			func(err error) bool { var fe *ledger.FundsError; return errors.As(err, &fe) && fe.Account == "cash:2" }},
		{"past the bound on money", []ledger.Transfer{move("treasury:issuance", "cash:2", levee.MaxMoney), move("treasury:issuance", "cash:2", levee.Units(1))},
			func(err error) bool { return levee.ErrorCode(err) == levee.ECONFLICT }},
		{"no such account", []ledger.Transfer{move("cash:1", "cash:9", levee.Units(1))},
			func(err error) bool { return levee.ErrorCode(err) == noAccount }},
		{"keyed", []ledger.Transfer{{Kind: "move", IdempotencyKey: "k", Postings: move("cash:1", "cash:2", 1).Postings}},
			func(err error) bool { return levee.ErrorCode(err) == levee.EINVALID }},
		{"unbalanced", []ledger.Transfer{{Kind: "move", Postings: []ledger.Posting{{Account: "cash:1", Amount: -1}, {Account: "cash:2", Amount: 2}}}},
			func(err error) bool { return levee.ErrorCode(err) == levee.EINVALID }},
	}
}

// appendInOneStatement is TestEveryPathHashesUnderPseudonyms' path through
// AppendWith (autocommit: tx is not used).
func appendInOneStatement(ctx context.Context, p *ledger.Prepared, ts []ledger.Transfer) func(*sqlx.Tx) error {
	return func(*sqlx.Tx) error {
		_, err := p.AppendWith(ctx, ledger.With{CTEs: `nothing AS (SELECT 1 AS one)`, First: `(SELECT count(*) FROM nothing) >= 0`}, ts, nil)
		return err
	}
}
