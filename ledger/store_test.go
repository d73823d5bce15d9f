package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/ledger"
)

// model is the obviously-correct reference: balances in a map, each
// transfer applied whole or not at all.
type model struct {
	bal      map[string]levee.Micros
	negative map[string]bool // accounts that may go negative
}

// apply applies ts in order if none overdraws or takes a balance past
// ±levee.MaxMoney at its turn, and reports whether it did. Amounts and
// balances within the bound cannot overflow int64 here.
func (m *model) apply(ts ...ledger.Transfer) bool {
	next := maps.Clone(m.bal)
	for _, t := range ts {
		for _, p := range t.Postings {
			next[p.Account] += p.Amount
		}
		for _, p := range t.Postings {
			b := next[p.Account]
			if b < 0 && !m.negative[p.Account] || b > levee.MaxMoney || b < -levee.MaxMoney {
				return false
			}
		}
	}
	m.bal = next
	return true
}

// randomTransfer moves random amounts among random accounts; it often
// overdraws.
func randomTransfer(r *rand.Rand, accounts []string) ledger.Transfer {
	n := 2 + r.IntN(3)
	ps := make([]ledger.Posting, n)
	var sum levee.Micros
	for i := range n - 1 {
		a := levee.Micros(r.Int64N(int64(levee.Units(60)))) - levee.Units(30)
		if a == 0 {
			a = 1
		}
		ps[i] = ledger.Posting{Account: accounts[r.IntN(len(accounts))], Amount: a}
		sum += a
	}
	if sum == 0 {
		ps[0].Amount++
		sum++
	}
	ps[n-1] = ledger.Posting{Account: accounts[r.IntN(len(accounts))], Amount: -sum}
	return ledger.Transfer{Kind: "random", Ref: fmt.Sprintf("r/%d", r.IntN(1000)), Postings: ps}
}

func TestRandomTransfersMatchModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			ctx := context.Background()
			l, db := MustLedger(t)
			r := rand.New(rand.NewPCG(seed, 0x1e7ee))
			accounts := []string{"treasury:issuance", "treasury", "fees", "jury_fees",
				"cash:1", "cash:2", "cash:3", "cash:4", "cash:5", "escrow:1", "escrow:2", "market:7:collateral"}
			MustOpen(t, l, accounts[4:]...)
			m := &model{bal: map[string]levee.Micros{}, negative: map[string]bool{"treasury:issuance": true}}
			var appended, refused int64
			for step := range 250 {
				var ts []ledger.Transfer
				switch {
				case step%7 == 0: // keep money flowing in so not everything overdraws
					acct := accounts[1+r.IntN(len(accounts)-1)]
					amt := levee.Micros(r.Int64N(int64(levee.Units(100)))) + 1
					ts = append(ts, ledger.Transfer{Kind: "issue", Postings: []ledger.Posting{
						{Account: "treasury:issuance", Amount: -amt}, {Account: acct, Amount: amt}}})
				case step%10 == 3: // a batch, all or nothing
					for range 1 + r.IntN(5) {
						ts = append(ts, randomTransfer(r, accounts))
					}
				default:
					ts = append(ts, randomTransfer(r, accounts))
				}
				want := m.apply(ts...)
				var err error
				if len(ts) == 1 {
					_, err = l.Transfer(ctx, ts[0])
				} else {
					err = postBatchTx(ctx, db, ts)
				}
				switch {
				case want && err != nil:
					t.Fatalf("step %d: %v", step, err)
				case !want && (levee.ErrorCode(err) != levee.ECONFLICT || !strings.Contains(levee.ErrorMessage(err), "insufficient funds in ")):
					t.Fatalf("step %d: overdraft gave %v", step, err)
				case want:
					appended += int64(len(ts))
				default:
					refused++
				}
				checkBalances(t, db, m)
			}
			if refused == 0 || appended < 100 {
				t.Fatalf("the random flow is lopsided: %d appended, %d refused", appended, refused)
			}
			if rep := MustVerify(t, l); rep.Entries != appended || rep.HeadSeq != appended {
				t.Fatalf("verify saw %d entries (head %d), want %d", rep.Entries, rep.HeadSeq, appended)
			}
		})
	}
}

func postBatchTx(ctx context.Context, db *sqlx.DB, ts []ledger.Transfer) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := ledger.PostBatch(ctx, tx, ts); err != nil {
		return err
	}
	return tx.Commit()
}

// checkBalances compares every balance with the model, and checks the
// invariants that hold whatever the model says.
func checkBalances(t *testing.T, db *sqlx.DB, m *model) {
	t.Helper()
	var rows []struct {
		Key           string       `db:"key"`
		Balance       levee.Micros `db:"balance"`
		MayGoNegative bool         `db:"may_go_negative"`
	}
	if err := db.Select(&rows, `SELECT key, balance, may_go_negative FROM ledger_accounts`); err != nil {
		t.Fatal(err)
	}
	var trial levee.Micros
	for _, a := range rows {
		trial += a.Balance
		if a.Balance < 0 && !a.MayGoNegative {
			t.Fatalf("%s is negative: %s", a.Key, a.Balance)
		}
		if a.Balance != m.bal[a.Key] {
			t.Fatalf("%s: balance %s, model %s", a.Key, a.Balance, m.bal[a.Key])
		}
	}
	if trial != 0 {
		t.Fatalf("trial balance %s", trial)
	}
}

func TestConcurrentTransfers(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	db.SetMaxOpenConns(50)
	const accounts, workers, each = 10, 200, 5
	fee := levee.MustMicros("0.01")
	want := map[string]levee.Micros{}
	for i := range accounts {
		k := fmt.Sprintf("cash:%d", i)
		MustOpen(t, l, k)
		MustFund(t, l, k, levee.Units(1000))
		want[k] = levee.Units(1000)
	}
	plan := func(w, j int) (from, to string, amt levee.Micros) {
		return fmt.Sprintf("cash:%d", w%accounts), fmt.Sprintf("cash:%d", (w*7+j+1)%accounts), levee.Units(int64(w%5 + 1))
	}
	for w := range workers {
		for j := range each {
			from, to, amt := plan(w, j)
			want[from] -= amt + fee
			want[to] += amt
			want["fees"] += fee
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for j := range each {
				from, to, amt := plan(w, j)
				_, err := l.Transfer(ctx, ledger.Transfer{Kind: "move", Ref: fmt.Sprintf("w/%d/%d", w, j), Postings: []ledger.Posting{
					{Account: from, Amount: -amt - fee}, {Account: to, Amount: amt}, {Account: "fees", Amount: fee}}})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("transfer: %v", err)
	}
	for k, w := range want {
		if got := MustBalance(t, l, k); got != w {
			t.Errorf("%s: %s, want %s", k, got, w)
		}
	}
	if rep := MustVerify(t, l); rep.Entries != accounts+workers*each {
		t.Fatalf("%d entries, want %d", rep.Entries, accounts+workers*each)
	}
}

func TestIdempotency(t *testing.T) {
	ctx := context.Background()
	move := func(key string, amt string) ledger.Transfer {
		a := levee.MustMicros(amt)
		return ledger.Transfer{Kind: "move", IdempotencyKey: key, Postings: []ledger.Posting{
			{Account: "cash:1", Amount: -a}, {Account: "cash:2", Amount: a}}}
	}
	setup := func(t *testing.T) (*ledger.Ledger, *sqlx.DB) {
		l, db := MustLedger(t)
		MustOpen(t, l, "cash:1", "cash:2")
		MustFund(t, l, "cash:1", levee.Units(100))
		return l, db
	}

	t.Run("same key twice moves money once", func(t *testing.T) {
		l, _ := setup(t)
		a, err := l.Transfer(ctx, move("k1", "5"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := l.Transfer(ctx, move("k1", "5"))
		if err != nil {
			t.Fatal(err)
		}
		if a.Seq != b.Seq || string(a.Hash) != string(b.Hash) || !a.At.Equal(b.At) {
			t.Fatalf("second call returned %+v, first %+v", b, a)
		}
		if got := MustBalance(t, l, "cash:2"); got != levee.Units(5) {
			t.Fatalf("cash:2 = %s", got)
		}
		if rep := MustVerify(t, l); rep.Entries != 2 {
			t.Fatalf("%d entries", rep.Entries)
		}
	})

	t.Run("same key other postings conflicts", func(t *testing.T) {
		l, _ := setup(t)
		if _, err := l.Transfer(ctx, move("k1", "5")); err != nil {
			t.Fatal(err)
		}
		_, err := l.Transfer(ctx, move("k1", "6"))
		if levee.ErrorCode(err) != levee.ECONFLICT || levee.ErrorMessage(err) != "idempotency key reused with different postings" {
			t.Fatalf("err %v", err)
		}
		other := move("k1", "5")
		other.Kind = "other"
		if _, err := l.Transfer(ctx, other); levee.ErrorCode(err) != levee.ECONFLICT {
			t.Fatalf("other kind: %v", err)
		}
	})

	t.Run("concurrent same key appends once", func(t *testing.T) {
		l, db := setup(t)
		seqs := make([]int64, 20)
		var wg sync.WaitGroup
		for i := range seqs {
			wg.Go(func() {
				e, err := l.Transfer(ctx, move("race", "1"))
				if err != nil {
					t.Error(err)
				}
				seqs[i] = e.Seq
			})
		}
		wg.Wait()
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM ledger_entries WHERE idempotency_key = 'race'`); err != nil || n != 1 {
			t.Fatalf("%d entries with the key (%v)", n, err)
		}
		if slices.Min(seqs) != slices.Max(seqs) {
			t.Fatalf("calls returned different seqs: %v", seqs)
		}
		if got := MustBalance(t, l, "cash:2"); got != levee.Units(1) {
			t.Fatalf("cash:2 = %s", got)
		}
	})

	t.Run("repeats inside one batch and one transaction", func(t *testing.T) {
		l, db := setup(t)
		tx := db.MustBegin()
		es, err := ledger.PostBatch(ctx, tx, []ledger.Transfer{move("b", "2"), move("c", "3"), move("b", "2")})
		if err != nil {
			t.Fatal(err)
		}
		again, err := ledger.Post(ctx, tx, move("c", "3"))
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if es[0].Seq != es[2].Seq || es[1].Seq != again.Seq || es[0].Seq == es[1].Seq {
			t.Fatalf("seqs %d %d %d %d", es[0].Seq, es[1].Seq, es[2].Seq, again.Seq)
		}
		if got := MustBalance(t, l, "cash:2"); got != levee.Units(5) {
			t.Fatalf("cash:2 = %s", got)
		}
		tx = db.MustBegin()
		defer tx.Rollback()
		if _, err := ledger.PostBatch(ctx, tx, []ledger.Transfer{move("d", "1"), move("d", "2")}); levee.ErrorCode(err) != levee.ECONFLICT {
			t.Fatalf("conflicting repeat in a batch: %v", err)
		}
	})
}

// batchFlow is a fixed flow of funding and random trades with fixed times,
// so two ledgers fed the same flow must end up byte-identical.
func batchFlow(n int) ([]string, []ledger.Transfer) {
	r := rand.New(rand.NewPCG(7, 7))
	var accounts []string
	for i := range 50 {
		accounts = append(accounts, fmt.Sprintf("cash:%d", i))
	}
	at := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	var ts []ledger.Transfer
	for _, a := range accounts {
		ts = append(ts, ledger.Transfer{Kind: "issue", At: at, IdempotencyKey: "fund-" + a, Postings: []ledger.Posting{
			{Account: "treasury:issuance", Amount: -levee.Units(1_000_000)}, {Account: a, Amount: levee.Units(1_000_000)}}})
	}
	for i := len(ts); i < n; i++ {
		amt := levee.Micros(r.Int64N(int64(levee.Units(100)))) + 1
		fee := amt / 100
		from, to := accounts[r.IntN(len(accounts))], accounts[r.IntN(len(accounts))]
		ts = append(ts, ledger.Transfer{Kind: "trade", Ref: fmt.Sprintf("market/7/%d", i),
			IdempotencyKey: fmt.Sprintf("trade-%d", i), At: at.Add(time.Duration(i) * time.Microsecond),
			Postings: []ledger.Posting{{Account: from, Amount: -amt - fee}, {Account: to, Amount: amt}, {Account: "fees", Amount: fee}}})
	}
	return accounts, ts
}

// TestPostBatchMatchesPost feeds one flow to PostBatch in a single call and,
// on a second database, to Post one entry at a time: the chains must match
// byte for byte.
func TestPostBatchMatchesPost(t *testing.T) {
	ctx := context.Background()
	accounts, ts := batchFlow(1000)
	fast, fastDB := MustLedger(t)
	slow, slowDB := MustLedger(t)
	MustOpen(t, fast, accounts...)
	MustOpen(t, slow, accounts...)

	tx := fastDB.MustBegin()
	got, err := ledger.PostBatch(ctx, tx, ts)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx = slowDB.MustBegin()
	for i, tr := range ts {
		e, err := ledger.Post(ctx, tx, tr)
		if err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
		if string(e.Hash) != string(got[i].Hash) {
			t.Fatalf("entry %d: batch and single posts disagree", e.Seq)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	mustSameChain(t, fast, slow)
	for _, k := range append(accounts, "fees", "treasury:issuance") {
		if x, y := MustBalance(t, fast, k), MustBalance(t, slow, k); x != y {
			t.Fatalf("%s: %s after batch, %s after single posts", k, x, y)
		}
	}

	// Replaying the whole batch appends nothing: every entry has a key.
	tx = fastDB.MustBegin()
	again, err := ledger.PostBatch(ctx, tx, ts)
	if err != nil {
		t.Fatal(err)
	}
	tx.Commit()
	if again[999].Seq != 1000 {
		t.Fatalf("replay appended: last seq %d", again[999].Seq)
	}
	if rep := MustVerify(t, fast); rep.HeadSeq != 1000 {
		t.Fatalf("head %d after replay", rep.HeadSeq)
	}
}

func TestPostBatchChecksFundsInOrder(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	MustOpen(t, l, "cash:1", "cash:2")
	MustFund(t, l, "cash:1", levee.Units(10))
	move := func(from, to string, n int64) ledger.Transfer {
		return ledger.Transfer{Kind: "move", Postings: []ledger.Posting{
			{Account: from, Amount: -levee.Units(n)}, {Account: to, Amount: levee.Units(n)}}}
	}
	// Net of the batch is fine, but cash:2 pays before it is paid.
	tx := db.MustBegin()
	_, err := ledger.PostBatch(ctx, tx, []ledger.Transfer{move("cash:2", "cash:1", 5), move("cash:1", "cash:2", 5)})
	tx.Rollback()
	if levee.ErrorCode(err) != levee.ECONFLICT || levee.ErrorMessage(err) != "insufficient funds in cash:2" || !strings.Contains(err.Error(), "transfer 0") {
		t.Fatalf("err %v", err)
	}
	tx = db.MustBegin()
	if _, err := ledger.PostBatch(ctx, tx, []ledger.Transfer{move("cash:1", "cash:2", 5), move("cash:2", "cash:1", 5), move("cash:1", "cash:2", 10)}); err != nil {
		t.Fatal(err)
	}
	tx.Commit()
	if MustBalance(t, l, "cash:2") != levee.Units(10) || MustBalance(t, l, "cash:1") != 0 {
		t.Fatal("wrong balances")
	}
	MustVerify(t, l)
}

// TestExportRecomputes pages through the public export as JSON, as an
// outsider would, and recomputes the chain from it alone.
func TestExportRecomputes(t *testing.T) {
	ctx := context.Background()
	l, _ := MustLedger(t)
	accounts, ts := batchFlow(120)
	MustOpen(t, l, accounts...)
	for _, tr := range ts {
		if _, err := l.Transfer(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []struct{ after, limit int }{{0, 0}, {0, 1001}, {-1, 10}} {
		if _, err := l.Entries(ctx, int64(bad.after), bad.limit); levee.ErrorCode(err) != levee.EINVALID {
			t.Fatalf("after=%d limit=%d: %v", bad.after, bad.limit, err)
		}
	}
	prev := make([]byte, ledger.HashSize)
	var after, n int64
	for {
		p, err := l.Page(ctx, after, 50)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(p)
		if strings.Contains(string(b), "idempotency") || strings.Contains(string(b), "trade-") {
			t.Fatal("the export leaks idempotency keys")
		}
		var page struct {
			Entries   []ledger.Entry `json:"entries"`
			NextAfter int64          `json:"next_after"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) == 0 {
			if page.NextAfter != after || !strings.Contains(string(b), `"entries":[]`) {
				t.Fatalf("empty page: %s", b)
			}
			break
		}
		for _, e := range page.Entries {
			n++
			if e.Seq != n || string(e.PrevHash) != string(prev) || string(e.ComputeHash()) != string(e.Hash) {
				t.Fatalf("entry %d does not chain", e.Seq)
			}
			prev = e.Hash
		}
		after = page.NextAfter
	}
	if n != 120 {
		t.Fatalf("exported %d entries", n)
	}
}

func TestEntriesAreAppendOnly(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	MustOpen(t, l, "cash:1")
	MustFund(t, l, "cash:1", levee.Units(1))
	for _, q := range []string{
		`UPDATE ledger_postings SET amount = 2 WHERE entry_seq = 1 AND idx = 1`,
		`DELETE FROM ledger_postings`,
		`UPDATE ledger_entries SET kind = 'x'`,
		`TRUNCATE ledger_entries CASCADE`,
		`DELETE FROM ledger_accounts WHERE key = 'jury_fees'`,
		`UPDATE ledger_accounts SET key = 'cash:2' WHERE key = 'cash:1'`,
	} {
		if _, err := db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
	MustVerify(t, l)
}

// mustSameChain fails unless both ledgers verify and export the same
// entries byte for byte: the same chain, posted two ways.
func mustSameChain(t *testing.T, a, b *ledger.Ledger) {
	t.Helper()
	MustVerify(t, a)
	MustVerify(t, b)
	if exportJSON(t, a) != exportJSON(t, b) {
		t.Fatal("the exports differ")
	}
}

// exportJSON returns the whole export as one JSON document.
func exportJSON(t *testing.T, l *ledger.Ledger) string {
	t.Helper()
	var all []ledger.Entry
	for after := int64(0); ; {
		es, err := l.Entries(context.Background(), after, ledger.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		all = append(all, es...)
		after = es[len(es)-1].Seq
	}
	b, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BenchmarkPostBatch measures group commit: one transaction of size trades
// (three postings each, among 1,000 accounts) per iteration; "keyed" gives
// every trade an idempotency key.
func BenchmarkPostBatch(b *testing.B) {
	for _, c := range []struct {
		size  int
		keyed bool
	}{{100, false}, {1000, false}, {5000, false}, {1000, true}} {
		name := fmt.Sprint(c.size)
		if c.keyed {
			name += "-keyed"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			l, db := MustLedger(b)
			accounts := benchAccounts(b, l, 1000)
			r := rand.New(rand.NewPCG(1, 2))
			n := 0
			for b.Loop() {
				ts := make([]ledger.Transfer, c.size)
				for i := range ts {
					ts[i] = benchTrade(r, accounts)
					if c.keyed {
						n++
						ts[i].IdempotencyKey = "trade-" + strconv.Itoa(n)
					}
				}
				tx := db.MustBegin()
				if _, err := ledger.PostBatch(ctx, tx, ts); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*c.size)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkTransfer measures one entry per transaction through
// Ledger.Transfer, with parallel callers contending for the head lock.
func BenchmarkTransfer(b *testing.B) {
	ctx := context.Background()
	l, db := MustLedger(b)
	db.SetMaxOpenConns(32)
	accounts := benchAccounts(b, l, 1000)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 3))
		for pb.Next() {
			if _, err := l.Transfer(ctx, benchTrade(r, accounts)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
}

func benchAccounts(b *testing.B, l *ledger.Ledger, n int) []string {
	b.Helper()
	accounts := make([]string, n)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("cash:%d", i)
		MustOpen(b, l, accounts[i])
		MustFund(b, l, accounts[i], levee.Units(1_000_000_000))
	}
	return accounts
}

func benchTrade(r *rand.Rand, accounts []string) ledger.Transfer {
	amt := levee.Micros(r.Int64N(int64(levee.Units(10)))) + 100
	fee := amt / 100
	return ledger.Transfer{Kind: "trade", Ref: "market/7", Postings: []ledger.Posting{
		{Account: accounts[r.IntN(len(accounts))], Amount: -amt - fee},
		{Account: accounts[r.IntN(len(accounts))], Amount: amt},
		{Account: "fees", Amount: fee}}}
}
