package ledger_test

import (
	"context"
	"testing"
	"time"

	"levee"
	"levee/ledger"
)

// TestPreparedMatchesPostBatch posts the same flow through PostBatch and
// through Prepared, batch after batch on the same connections, and checks
// that the chains are identical and that the balances Prepared returns are
// those the database stores after commit.
func TestPreparedMatchesPostBatch(t *testing.T) {
	ctx := context.Background()
	accounts, ts := batchFlow(1000)
	plain, plainDB := MustLedger(t)
	prep, prepDB := MustLedger(t)
	MustOpen(t, plain, accounts...)
	MustOpen(t, prep, accounts...)
	p := ledger.NewPrepared(prepDB)
	defer p.Close()
	for from := 0; from < len(ts); from += 100 {
		batch := ts[from : from+100]
		tx := plainDB.MustBegin()
		want, err := ledger.PostBatch(ctx, tx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		tx = prepDB.MustBegin()
		got, balances, err := p.PostBatchBalances(ctx, tx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if string(got[i].Hash) != string(want[i].Hash) {
				t.Fatalf("entry %d: prepared and plain posts disagree", want[i].Seq)
			}
		}
		if len(balances) == 0 {
			t.Fatal("no balances returned")
		}
		for k, b := range balances {
			if stored := MustBalance(t, prep, k); stored != b {
				t.Fatalf("%s: returned %s, stored %s", k, b, stored)
			}
		}
	}
	mustSameChain(t, plain, prep)
}

// TestPostSeesAccountOpenedWhileWaitingForTheHead posts to an account that
// another transaction opens and commits while the post waits for the head
// lock: the post's lock statement has an older snapshot that cannot see the
// account, and must look it up again rather than call it unknown.
func TestPostSeesAccountOpenedWhileWaitingForTheHead(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	MustOpen(t, l, "cash:1")
	MustFund(t, l, "cash:1", levee.Units(10))

	holder := db.MustBegin()
	defer holder.Rollback()
	if err := ledger.OpenAccount(ctx, holder, "cash:2", "cash", false); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Post(ctx, holder, ledger.Transfer{Kind: "move", Postings: []ledger.Posting{
		{Account: "cash:1", Amount: -levee.Units(4)}, {Account: "cash:2", Amount: levee.Units(4)}}}); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := l.Transfer(ctx, ledger.Transfer{Kind: "move", Postings: []ledger.Posting{
			{Account: "cash:2", Amount: -levee.Units(3)}, {Account: "cash:1", Amount: levee.Units(3)}}})
		done <- err
	}()
	// Wait until the transfer is blocked on the head lock, then commit.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := db.GetContext(ctx, &waiting, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the transfer never waited for the head lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("transfer from an account opened meanwhile: %v", err)
	}
	if got := MustBalance(t, l, "cash:2"); got != levee.Units(1) {
		t.Fatalf("cash:2 is %s, want 1.000000", got)
	}
	if got := MustBalance(t, l, "cash:1"); got != levee.Units(9) {
		t.Fatalf("cash:1 is %s, want 9.000000", got)
	}
	MustVerify(t, l)
}

// TestPostBatchWithRunsTheCallersWritesFirst: PostBatchBalancesWith writes
// the caller's rows and the batch in one statement, both or neither, and
// takes the caller's row locks before the head lock (docs/locks.md): while
// the caller's write waits for a row another transaction holds, the head is
// free for any other poster. (With First always true, PostgreSQL runs the
// caller's writes after taking the head, and this test fails.)
func TestPostBatchWithRunsTheCallersWritesFirst(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	accounts, ts := batchFlow(40)
	MustOpen(t, l, accounts...)
	db.MustExec(`CREATE TABLE caller_rows (id int PRIMARY KEY, n int NOT NULL)`)
	db.MustExec(`INSERT INTO caller_rows VALUES (1, 0)`)
	p := ledger.NewPrepared(db)
	defer p.Close()
	w := ledger.With{
		CTEs:  `bump AS (UPDATE caller_rows SET n = n + $1 WHERE id = 1 RETURNING 1), added AS (INSERT INTO caller_rows VALUES ($2, 0) RETURNING 1)`,
		First: `(SELECT count(*) FROM bump) + (SELECT count(*) FROM added) >= 0`,
	}
	post := func(batch []ledger.Transfer, bump, id int) error {
		tx := db.MustBegin()
		defer tx.Rollback()
		w.Args = []any{bump, id}
		if _, _, err := p.PostBatchBalancesWith(ctx, tx, w, batch); err != nil {
			return err
		}
		return tx.Commit()
	}
	if err := post(ts[:20], 5, 2); err != nil {
		t.Fatal(err)
	}
	// The caller's write fails (id 2 exists): nothing of the batch either.
	if err := post(ts[20:], 1, 2); err == nil {
		t.Fatal("a failing write of the caller's was not reported")
	}
	var n, rows int
	db.Get(&n, `SELECT n FROM caller_rows WHERE id = 1`)
	db.Get(&rows, `SELECT count(*) FROM ledger_entries`)
	if n != 5 || rows != 20 {
		t.Fatalf("n = %d and %d entries, want 5 and 20", n, rows)
	}

	// Lock order: hold the caller's row, start a post, and see the head free.
	hold := db.MustBegin()
	defer hold.Rollback()
	hold.MustExec(`UPDATE caller_rows SET n = n WHERE id = 1`)
	done := make(chan error, 1)
	go func() { done <- post(ts[20:], 1, 3) }()
	deadline := time.Now().Add(10 * time.Second)
	for waiting := 0; waiting == 0; time.Sleep(5 * time.Millisecond) {
		db.Get(&waiting, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
		if time.Now().After(deadline) {
			t.Fatal("the post never waited for the caller's row")
		}
	}
	probe := db.MustBegin()
	if _, err := probe.Exec(`SELECT 1 FROM ledger_head FOR UPDATE NOWAIT`); err != nil {
		probe.Rollback()
		t.Fatalf("the head was locked while the caller's write waited: %v", err)
	}
	probe.Rollback()
	hold.Rollback()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	db.Get(&n, `SELECT n FROM caller_rows WHERE id = 1`)
	if n != 6 {
		t.Fatalf("n = %d, want 6", n)
	}
	MustVerify(t, l)
}
