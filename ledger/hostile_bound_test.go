package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"levee"
	"levee/ledger"
)

// nearBound returns a positive amount at most top, most often within a few
// micro-units of top, of top/2 or of top/3, where sums cross the bound.
func nearBound(r *rand.Rand, top levee.Micros) levee.Micros {
	var a levee.Micros
	switch r.IntN(5) {
	case 0:
		a = top - levee.Micros(r.Int64N(3))
	case 1:
		a = top/2 + levee.Micros(r.Int64N(5)) - 2
	case 2:
		a = top/3 + levee.Micros(r.Int64N(5)) - 2
	case 3:
		a = levee.Micros(r.Int64N(int64(top))) + 1
	default:
		a = levee.Micros(r.Int64N(1000)) + 1
	}
	return min(max(a, 1), top)
}

// boundTransfer moves amounts near the bound among accounts, each posting
// within ±MaxMoney (so that only the balances can pass it).
func boundTransfer(r *rand.Rand, accounts []string) ledger.Transfer {
	for {
		n := 2 + r.IntN(3)
		ps := make([]ledger.Posting, n)
		var sum levee.Micros
		for i := range n - 1 {
			a := nearBound(r, levee.MaxMoney)
			if r.IntN(2) == 0 {
				a = -a
			}
			ps[i] = ledger.Posting{Account: accounts[r.IntN(len(accounts))], Amount: a}
			sum += a
		}
		if sum == 0 || sum > levee.MaxMoney || sum < -levee.MaxMoney {
			continue
		}
		ps[n-1] = ledger.Posting{Account: accounts[r.IntN(len(accounts))], Amount: -sum}
		return ledger.Transfer{Kind: "bound", Postings: ps}
	}
}

// TestHostileMoneyBound posts random entries near levee.MaxMoney, singly and
// in batches: every refusal is a 409 naming funds or the bound, never another
// error; balances always match the model, which refuses past the bound, and
// can always be read; the ledger always verifies with a trial balance of 0.
func TestHostileMoneyBound(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			ctx := context.Background()
			l, db := MustLedger(t)
			r := rand.New(rand.NewPCG(seed, 0xb0a4d))
			accounts := []string{"treasury:issuance", "treasury", "cash:1", "cash:2", "cash:3", "market:7:collateral"}
			MustOpen(t, l, accounts[2:]...)
			m := &model{bal: map[string]levee.Micros{}, negative: map[string]bool{"treasury:issuance": true}}
			var appended, bound int
			for step := range 150 {
				var ts []ledger.Transfer
				switch {
				case step%3 == 0: // issue near the bound, often past it in all
					amt := nearBound(r, levee.MaxMoney)
					ts = append(ts, ledger.Transfer{Kind: "issue", Postings: []ledger.Posting{
						{Account: "treasury:issuance", Amount: -amt}, {Account: accounts[1+r.IntN(len(accounts)-1)], Amount: amt}}})
				case step%5 == 1:
					for range 1 + r.IntN(4) {
						ts = append(ts, boundTransfer(r, accounts))
					}
				default:
					ts = append(ts, boundTransfer(r, accounts))
				}
				want := m.apply(ts...)
				var err error
				if len(ts) == 1 {
					_, err = l.Transfer(ctx, ts[0])
				} else {
					err = postBatchTx(ctx, db, ts)
				}
				msg := levee.ErrorMessage(err)
				switch {
				case want && err != nil:
					t.Fatalf("step %d: %v", step, err)
				case !want && (levee.ErrorCode(err) != levee.ECONFLICT ||
					!strings.Contains(msg, "insufficient funds in ") && !strings.Contains(msg, "bound on money")):
					t.Fatalf("step %d: %+v gave %v", step, ts, err)
				case want:
					appended += len(ts)
				case strings.Contains(msg, "bound on money"):
					bound++
				}
				checkBalances(t, db, m)
				for _, a := range accounts {
					MustBalance(t, l, a)
				}
			}
			if appended < 20 || bound < 10 {
				t.Fatalf("the flow misses the bound: %d appended, %d refused at the bound", appended, bound)
			}
			if rep := MustVerify(t, l); rep.Entries != int64(appended) {
				t.Fatalf("verify saw %d entries, want %d", rep.Entries, appended)
			}
			t.Logf("%d entries appended, %d refused at the bound; issued %s", appended, bound, -m.bal["treasury:issuance"])
		})
	}
}

// TestHostileIssueAtTheBound issues exactly up to levee.MaxMoney, then one
// micro-unit more: the first is taken, the second refused with a 409, and
// every balance stays readable and the ledger verifies.
func TestHostileIssueAtTheBound(t *testing.T) {
	ctx := context.Background()
	l, _ := MustLedger(t)
	MustFund(t, l, "treasury", levee.Units(1000))
	MustFund(t, l, "treasury", levee.MaxMoney-levee.Units(1000))
	_, err := l.Transfer(ctx, ledger.Transfer{Kind: "issue", Postings: []ledger.Posting{
		{Account: "treasury:issuance", Amount: -1}, {Account: "fees", Amount: 1}}})
	if levee.ErrorCode(err) != levee.ECONFLICT || !strings.Contains(levee.ErrorMessage(err), "bound on money") {
		t.Fatalf("issuing past the bound: %v", err)
	}
	if b := MustBalance(t, l, "treasury"); b != levee.MaxMoney {
		t.Fatalf("treasury %s", b)
	}
	if b := MustBalance(t, l, "treasury:issuance"); b != -levee.MaxMoney {
		t.Fatalf("issuance %s", b)
	}
	MustVerify(t, l)
}

// TestHostileVerifyAddsUpExactly stores balances and postings beyond the bound
// on money behind the ledger's back (the checks dropped, as a superuser
// could). Verify must name the problem and still report the exact trial
// balance: 0 when the balances still cancel, however large they are, where
// int64 arithmetic wrapped or stopped at the first unreadable balance.
func TestHostileVerifyAddsUpExactly(t *testing.T) {
	drop := `ALTER DOMAIN levee_money DROP CONSTRAINT money_bound`
	dropP := `ALTER DOMAIN levee_posting DROP CONSTRAINT posting_money_bound`
	tests := []struct {
		name    string
		tamper  []string
		account string
		trial   string
		problem string
	}{
		{"balances past the bound that cancel", []string{drop,
			`UPDATE ledger_accounts SET balance = balance + 9000000000000 WHERE key IN ('cash:1', 'cash:2')`,
			`UPDATE ledger_accounts SET balance = balance - 18000000000000 WHERE key = 'treasury:issuance'`},
			"cash:1", "0.000000", "postings sum to"},
		{"balances past the bound that do not cancel", []string{drop,
			`UPDATE ledger_accounts SET balance = balance + 9000000000000 WHERE key IN ('cash:1', 'cash:2')`},
			"cash:1", "18000000000000.000000", "postings sum to"},
		{"postings and balances past the bound, consistent", []string{drop, dropP,
			`UPDATE ledger_postings SET amount = amount * 100000000000 WHERE entry_seq = 1`,
			`UPDATE ledger_accounts a SET balance = (SELECT coalesce(sum(amount), 0) FROM ledger_postings WHERE account = a.key)`},
			"", "0.000000", "entry 1: amount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, db := MustLedger(t)
			MustTamperable(t, l)
			tamperSQL(tt.tamper...)(t, db, l)
			r, err := l.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if r.OK || r.BrokenAccount != tt.account || r.TrialBalance.String() != tt.trial || !strings.Contains(r.Problem, tt.problem) {
				t.Fatalf("report %+v; want account %q, trial balance %s, problem mentioning %q", r, tt.account, tt.trial, tt.problem)
			}
		})
	}
}

// TestMoneyBoundMatchesSchema checks that the database's bounds on balances
// and postings (migration 0012, domains since 0024) state the same bound as
// levee.MaxMoney.
func TestMoneyBoundMatchesSchema(t *testing.T) {
	_, db := MustLedger(t)
	var defs []string
	if err := db.Select(&defs, `SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE (contypid, conname) IN (('levee_money'::regtype, 'money_bound'), ('levee_posting'::regtype, 'posting_money_bound'))`); err != nil {
		t.Fatal(err)
	}
	units := fmt.Sprint(int64(levee.MaxMoney / levee.Scale))
	if len(defs) != 2 {
		t.Fatalf("bound constraints: %v", defs)
	}
	for _, d := range defs {
		if !strings.Contains(d, "'-"+units+"'") && !strings.Contains(d, "-"+units) || strings.Count(d, units) != 2 {
			t.Errorf("constraint %s does not bound by ±%s", d, units)
		}
	}
}
