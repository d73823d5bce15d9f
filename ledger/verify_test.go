package ledger_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/ledger"
)

// TestVerifyFindsTampering edits the tables behind the ledger's back, as
// someone with database access could, and expects Verify to name the first
// entry (or account) that no longer adds up.
func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, db *sqlx.DB, l *ledger.Ledger)
		seq     int64
		account string
		problem string
	}{
		{
			name:    "posting amount changed",
			tamper:  tamperSQL(`UPDATE ledger_postings SET amount = amount + 1 WHERE entry_seq = 4 AND idx = 1`),
			seq:     4,
			problem: "sum to",
		},
		{
			name: "posting amounts changed but still balanced",
			tamper: tamperSQL(`UPDATE ledger_postings SET amount = amount + 1 WHERE entry_seq = 4 AND idx = 1`,
				`UPDATE ledger_postings SET amount = amount - 1 WHERE entry_seq = 4 AND idx = 0`),
			seq:     4,
			problem: "hash does not match",
		},
		{
			name:    "posting moved to another account",
			tamper:  tamperSQL(`UPDATE ledger_postings SET account = 'cash:3' WHERE entry_seq = 7 AND idx = 1`),
			seq:     7,
			problem: "hash does not match",
		},
		{
			name:    "entry kind changed",
			tamper:  tamperSQL(`UPDATE ledger_entries SET kind = 'refund' WHERE seq = 6`),
			seq:     6,
			problem: "hash does not match",
		},
		{
			name:    "entry time changed",
			tamper:  tamperSQL(`UPDATE ledger_entries SET at = at + interval '1 microsecond' WHERE seq = 2`),
			seq:     2,
			problem: "hash does not match",
		},
		{
			name:    "postings of an entry deleted",
			tamper:  tamperSQL(`DELETE FROM ledger_postings WHERE entry_seq = 3`),
			seq:     3,
			problem: "at least two",
		},
		{
			name:    "entry deleted",
			tamper:  tamperSQL(`DELETE FROM ledger_postings WHERE entry_seq = 5`, `DELETE FROM ledger_entries WHERE seq = 5`),
			seq:     5,
			problem: "missing",
		},
		{
			name:    "entry rewritten with a fresh hash",
			tamper:  rehash(5),
			seq:     6,
			problem: "prev_hash",
		},
		{
			name: "last entry dropped",
			tamper: tamperSQL(`DELETE FROM ledger_postings WHERE entry_seq = 10`, `DELETE FROM ledger_entries WHERE seq = 10`,
				`UPDATE ledger_accounts a SET balance = balance - p.amount FROM (VALUES ('cash:1', -1::numeric), ('cash:2', 1)) AS p (key, amount) WHERE a.key = p.key`),
			seq:     10,
			problem: "head",
		},
		{
			name:    "balance changed",
			tamper:  tamperSQL(`UPDATE ledger_accounts SET balance = balance + 5 WHERE key = 'cash:2'`),
			account: "cash:2",
			problem: "balance of cash:2",
		},
		{
			name: "balances changed in step",
			tamper: tamperSQL(`UPDATE ledger_accounts SET balance = balance + 5 WHERE key = 'cash:2'`,
				`UPDATE ledger_accounts SET balance = balance - 5 WHERE key = 'cash:1'`),
			account: "cash:1",
			problem: "balance of cash:1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, db := MustLedger(t)
			MustTamperable(t, l)
			tt.tamper(t, db, l)
			r, err := l.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if r.OK || r.FirstBrokenSeq != tt.seq || r.BrokenAccount != tt.account || !strings.Contains(r.Problem, tt.problem) {
				t.Fatalf("report %+v; want first broken seq %d, account %q, problem mentioning %q", r, tt.seq, tt.account, tt.problem)
			}
		})
	}
}

// MustTamperable fills l with ten entries: four fundings of cash:1..4, then
// moves between them, the last one from cash:1 to cash:2 for one unit.
func MustTamperable(t *testing.T, l *ledger.Ledger) {
	t.Helper()
	MustOpen(t, l, "cash:1", "cash:2", "cash:3", "cash:4")
	for _, k := range []string{"cash:1", "cash:2", "cash:3", "cash:4"} {
		MustFund(t, l, k, levee.Units(100))
	}
	moves := [][2]string{{"cash:1", "cash:2"}, {"cash:2", "cash:3"}, {"cash:3", "cash:4"}, {"cash:4", "cash:2"}, {"cash:2", "cash:4"}, {"cash:1", "cash:2"}}
	for i, m := range moves {
		amt := levee.Units(int64(i + 1))
		if i == len(moves)-1 {
			amt = levee.Units(1)
		}
		if _, err := l.Transfer(context.Background(), ledger.Transfer{Kind: "move", Postings: []ledger.Posting{
			{Account: m[0], Amount: -amt}, {Account: m[1], Amount: amt}}}); err != nil {
			t.Fatal(err)
		}
	}
	if r := MustVerify(t, l); r.HeadSeq != 10 {
		t.Fatalf("head %d", r.HeadSeq)
	}
}

// tamperSQL runs SQL with the append-only triggers switched off, as a
// determined insider with a superuser login could.
func tamperSQL(queries ...string) func(t *testing.T, db *sqlx.DB, l *ledger.Ledger) {
	return func(t *testing.T, db *sqlx.DB, l *ledger.Ledger) {
		t.Helper()
		tx := db.MustBegin()
		defer tx.Rollback()
		for _, q := range append([]string{`SET LOCAL session_replication_role = replica`}, queries...) {
			if _, err := tx.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// rehash rewrites entry seq's amounts and stores a hash that matches the new
// contents, as a careful forger would; only the next entry's link betrays it.
func rehash(seq int64) func(t *testing.T, db *sqlx.DB, l *ledger.Ledger) {
	return func(t *testing.T, db *sqlx.DB, l *ledger.Ledger) {
		t.Helper()
		es, err := l.Entries(context.Background(), seq-1, 1)
		if err != nil {
			t.Fatal(err)
		}
		e := es[0]
		e.Postings[0].Amount -= levee.Units(1)
		e.Postings[1].Amount += levee.Units(1)
		h := e.ComputeHash()
		tx := db.MustBegin()
		defer tx.Rollback()
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`SET LOCAL session_replication_role = replica`, nil},
			{`UPDATE ledger_postings SET amount = $2 WHERE entry_seq = $1 AND idx = 0`, []any{seq, e.Postings[0].Amount}},
			{`UPDATE ledger_postings SET amount = $2 WHERE entry_seq = $1 AND idx = 1`, []any{seq, e.Postings[1].Amount}},
			{`UPDATE ledger_entries SET hash = $2 WHERE seq = $1`, []any{seq, h}},
		} {
			if _, err := tx.Exec(q.sql, q.args...); err != nil {
				t.Fatalf("%s: %v", q.sql, err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkVerify measures a full verification of a 20,000-entry ledger.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	l, db := MustLedger(b)
	accounts := benchAccounts(b, l, 100)
	r := rand.New(rand.NewPCG(3, 4))
	for range 4 {
		ts := make([]ledger.Transfer, 5000)
		for i := range ts {
			ts[i] = benchTrade(r, accounts)
		}
		if err := postBatchTx(ctx, db, ts); err != nil {
			b.Fatal(err)
		}
	}
	var n int64
	for b.Loop() {
		rep, err := l.Verify(ctx)
		if err != nil || !rep.OK {
			b.Fatalf("%+v %v", rep, err)
		}
		n += rep.Entries
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
}
