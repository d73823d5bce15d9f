package ledger_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/ledger"
	"levee/pgtx"
)

// mustPersonal opens person id's cash account with a pseudonym.
func mustPersonal(t testing.TB, db *sqlx.DB, id int64) string {
	t.Helper()
	var p string
	err := pgtx.Run(context.Background(), db, func(tx *sqlx.Tx) error {
		var err error
		p, err = ledger.OpenPersonal(context.Background(), tx, id)
		return err
	})
	if err != nil {
		t.Fatalf("open personal %d: %v", id, err)
	}
	return p
}

// mustExport reads the whole public export.
func mustExport(t testing.TB, l *ledger.Ledger) []ledger.Entry {
	t.Helper()
	var all []ledger.Entry
	after := int64(0)
	for {
		p, err := l.Page(context.Background(), after, ledger.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) == 0 {
			return all
		}
		all = append(all, p.Entries...)
		after = p.NextAfter
	}
}

// checkExport recomputes every hash and link of an export, as an outsider
// would, and returns the balances that follow from it.
func checkExport(t testing.TB, es []ledger.Entry) map[string]levee.Micros {
	t.Helper()
	prev := make([]byte, ledger.HashSize)
	bal := map[string]levee.Micros{}
	for i, e := range es {
		if e.Seq != int64(i+1) || !bytes.Equal(e.PrevHash, prev) {
			t.Fatalf("entry %d: seq or link broken", e.Seq)
		}
		if !bytes.Equal(e.ComputeHash(), e.Hash) {
			t.Fatalf("entry %d: the export's hash does not recompute: %+v", e.Seq, e)
		}
		for _, p := range e.Postings {
			bal[p.Account] += p.Amount
		}
		prev = e.Hash
	}
	return bal
}

// TestNewLedgerIsPrivate: a fresh ledger starts in the private epoch, a
// person's cash shows as cash:<pseudonym> in the export and the hash covers
// that name, while the key inside stays cash:<id>.
func TestNewLedgerIsPrivate(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	p := mustPersonal(t, db, 42)
	if !ledger.ValidPseudonym(p) || strings.Contains(p, "42") && len(p) < 5 {
		t.Fatalf("pseudonym %q", p)
	}
	if again := mustPersonal(t, db, 42); again != p {
		t.Fatalf("pseudonym changed on reopening: %s then %s", p, again)
	}
	MustOpen(t, l, "cash:7") // an organisation's cash keeps its name
	MustFund(t, l, ledger.Cash(42), levee.Units(10))
	MustFund(t, l, "cash:7", levee.Units(5))
	if from, err := l.PrivateEpoch(ctx); err != nil || from != 1 {
		t.Fatalf("private epoch of a new ledger = %d, %v; want 1", from, err)
	}
	es := mustExport(t, l)
	bal := checkExport(t, es)
	if bal["cash:"+p] != levee.Units(10) || bal["cash:7"] != levee.Units(5) {
		t.Fatalf("export balances %v", bal)
	}
	if _, ok := bal[ledger.Cash(42)]; ok {
		t.Fatalf("the export names cash:42: %v", bal)
	}
	if MustBalance(t, l, ledger.Cash(42)) != levee.Units(10) {
		t.Fatal("the key inside changed")
	}
	MustVerify(t, l)
	got, err := ledger.Pseudonyms(ctx, db, []int64{42, 7, 99})
	if err != nil || len(got) != 1 || got[42] != p {
		t.Fatalf("Pseudonyms = %v, %v", got, err)
	}
	// The chain commits to the public name: it can never change.
	if _, err := db.ExecContext(ctx, `UPDATE ledger_accounts SET public = 'cash:p00000000000000000000' WHERE key = 'cash:42'`); err == nil {
		t.Fatal("a public name was changed")
	}
}

// TestBeginPrivateEpoch: a ledger with entries from before pseudonyms keeps
// them exactly (the old export still verifies as it was); the epoch change
// carries each person's balance to their pseudonym through epoch:2:carry;
// the first private entry links to the old head; Verify and an outsider's
// recomputation agree, and the balances an outsider computes are the real
// ones under their public names.
func TestBeginPrivateEpoch(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	// A ledger from before the migration: no private epoch yet.
	if _, err := db.ExecContext(ctx, `UPDATE ledger_head SET private_from = NULL`); err != nil {
		t.Fatal(err)
	}
	pa, pb := mustPersonal(t, db, 1), mustPersonal(t, db, 2)
	mustPersonal(t, db, 3) // no money: no carry posting
	MustOpen(t, l, "cash:9")
	MustFund(t, l, ledger.Cash(1), levee.Units(100))
	MustFund(t, l, ledger.Cash(2), levee.Units(40))
	MustFund(t, l, "cash:9", levee.Units(7))
	mustMove(t, l, ledger.Cash(1), ledger.Cash(2), levee.Units(30))
	old := mustExport(t, l)
	checkExport(t, old)
	for _, e := range old {
		for _, p := range e.Postings {
			if strings.HasPrefix(p.Account, "cash:p") {
				t.Fatalf("an old entry shows a pseudonym: %+v", e)
			}
		}
	}

	ep, err := l.BeginPrivateEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ep.PrivateFrom != int64(len(old))+2 || len(ep.Carry) != 2 {
		t.Fatalf("epoch %+v after %d entries", ep, len(old))
	}
	if again, err := l.BeginPrivateEpoch(ctx); err != nil || again.PrivateFrom != ep.PrivateFrom || len(again.Carry) != 0 {
		t.Fatalf("second BeginPrivateEpoch = %+v, %v", again, err)
	}
	mustMove(t, l, ledger.Cash(2), ledger.Cash(1), levee.Units(5))

	all := mustExport(t, l)
	for i, e := range old { // the old export, unchanged
		if !bytes.Equal(all[i].Hash, e.Hash) {
			t.Fatalf("entry %d changed", e.Seq)
		}
	}
	first := all[ep.PrivateFrom-1]
	if !bytes.Equal(first.PrevHash, all[ep.PrivateFrom-2].Hash) {
		t.Fatal("the private epoch does not commit to the old head")
	}
	bal := checkExport(t, all)
	want := map[string]levee.Micros{
		"cash:1": 0, "cash:2": 0, "epoch:2:carry": 0, "cash:9": levee.Units(7),
		"cash:" + pa: levee.Units(75), "cash:" + pb: levee.Units(65),
	}
	for k, v := range want {
		if bal[k] != v {
			t.Errorf("outsider's balance of %s = %s, want %s", k, bal[k], v)
		}
	}
	// The carry-in entry lists people by pseudonym, not by id.
	var names []string
	for _, p := range first.Postings[1:] {
		names = append(names, p.Account)
	}
	if !strings.HasPrefix(names[0], "cash:p") || (len(names) == 2 && names[0] > names[1]) {
		t.Fatalf("carry-in postings %v", names)
	}
	MustVerify(t, l)
	if MustBalance(t, l, ledger.Cash(1)) != levee.Units(75) {
		t.Fatal("the balance inside changed")
	}
}

// TestEveryPathHashesUnderPseudonyms: Post, Prepared's PostBatchBalances and
// PostBatchBalancesWith (the market journal's path) all hash a private
// entry under the person's pseudonym, so the export recomputes whichever
// path wrote it.
func TestEveryPathHashesUnderPseudonyms(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	p := mustPersonal(t, db, 5)
	MustOpen(t, l, "fees")
	MustFund(t, l, ledger.Cash(5), levee.Units(10))
	pay := []ledger.Transfer{{Kind: "fee", Postings: []ledger.Posting{{Account: ledger.Cash(5), Amount: -levee.Units(1)}, {Account: "fees", Amount: levee.Units(1)}}}}
	prep := ledger.NewPrepared(db)
	defer prep.Close()
	sess, _ := mustSession(t, db)
	for name, post := range map[string]func(tx *sqlx.Tx) error{
		"prepared": func(tx *sqlx.Tx) error { _, _, err := prep.PostBatchBalances(ctx, tx, pay); return err },
		"prepared with the caller's writes": func(tx *sqlx.Tx) error {
			_, _, err := prep.PostBatchBalancesWith(ctx, tx, ledger.With{CTEs: `nothing AS (SELECT 1 AS one)`, First: `(SELECT count(*) FROM nothing) >= 0`}, pay)
			return err
		},
		"in one statement": appendInOneStatement(ctx, prep, pay),
		"a session's two round trips": func(*sqlx.Tx) error { // commits on a connection of its own
			_, err := sess.PostCommitWith(ctx, ledger.With{CTEs: `nothing AS (SELECT 1 AS one)`, First: `(SELECT count(*) FROM nothing) >= 0`}, pay, nil)
			return err
		},
	} {
		tx := db.MustBegin()
		if err := post(tx); err != nil {
			tx.Rollback()
			t.Fatalf("%s: %v", name, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	es := mustExport(t, l)
	bal := checkExport(t, es)
	if bal["cash:"+p] != levee.Units(6) || len(es) != 5 {
		t.Fatalf("export %v over %d entries", bal, len(es))
	}
	MustVerify(t, l)
}
