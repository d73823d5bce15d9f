package ledger_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"levee"
	"levee/ledger"
)

// mustMove transfers amount from one account to another.
func mustMove(t *testing.T, l *ledger.Ledger, from, to string, amount levee.Micros) {
	t.Helper()
	if _, err := l.Transfer(context.Background(), ledger.Transfer{Kind: "move", Postings: []ledger.Posting{
		{Account: from, Amount: -amount}, {Account: to, Amount: amount}}}); err != nil {
		t.Fatal(err)
	}
}

func mustVerified(t *testing.T, l *ledger.Ledger) ledger.Verified {
	t.Helper()
	v, err := l.Verified(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVerifiedExtendsTheChain: the cached verification, extended entry by
// entry, reports exactly what a full Verify does, and says how old it is.
func TestVerifiedExtendsTheChain(t *testing.T) {
	ctx := context.Background()
	l, _ := MustLedger(t)
	MustTamperable(t, l)
	v := mustVerified(t, l)
	if !v.OK || v.ThroughSeq != 10 || v.VerifiedAt.IsZero() || v.FullScanAt.IsZero() || v.AgeSeconds < 0 || v.AgeSeconds > 5 {
		t.Fatalf("first verification: %+v", v)
	}
	for i := range 5 {
		mustMove(t, l, "cash:3", "cash:1", levee.Units(int64(i+1)))
		if err := l.RefreshVerified(ctx); err != nil {
			t.Fatal(err)
		}
	}
	v = mustVerified(t, l)
	full := MustVerify(t, l)
	if v.Report != full || v.ThroughSeq != 15 || !v.VerifiedAt.After(v.FullScanAt) {
		t.Fatalf("extended verification %+v\nfull %+v", v, full)
	}
}

// TestVerifiedFindsTamperingOfNewEntries: what is appended after the last
// verification is checked as it is added to the chain; what was verified
// before is rechecked by the full rescan.
func TestVerifiedFindsTamperingOfNewEntries(t *testing.T) {
	for _, tt := range []struct {
		name    string
		tamper  string
		seq     int64
		account string
		problem string
	}{
		{"new posting changed", `UPDATE ledger_postings SET amount = amount + 1 WHERE entry_seq = 12 AND idx = 1`, 12, "", "sum to"},
		{"new entry deleted", `DELETE FROM ledger_postings WHERE entry_seq = 11; DELETE FROM ledger_entries WHERE seq = 11`, 11, "", "missing"},
		{"balance of an account just posted to", `UPDATE ledger_accounts SET balance = balance + 5 WHERE key = 'cash:4'`, 0, "cash:4", "balance of cash:4"},
		{"balances changed in step", `UPDATE ledger_accounts SET balance = balance + 5 WHERE key = 'cash:4'; UPDATE ledger_accounts SET balance = balance - 5 WHERE key = 'cash:3'`, 0, "cash:3", "balance of cash:3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l, db := MustLedger(t)
			MustTamperable(t, l)
			mustVerified(t, l)
			mustMove(t, l, "cash:3", "cash:4", levee.Units(1))
			mustMove(t, l, "cash:3", "cash:4", levee.Units(2))
			tamperSQL(strings.Split(tt.tamper, "; ")...)(t, db, l)
			if err := l.RefreshVerified(ctx); err != nil {
				t.Fatal(err)
			}
			v := mustVerified(t, l)
			if v.OK || v.FirstBrokenSeq != tt.seq || v.BrokenAccount != tt.account || !strings.Contains(v.Problem, tt.problem) {
				t.Fatalf("report %+v; want first broken seq %d, account %q, problem mentioning %q", v.Report, tt.seq, tt.account, tt.problem)
			}
		})
	}
}

// TestRescanFindsOldTampering: an entry changed after it was verified is
// beyond the incremental check (it reads only new entries, which is what
// makes it cheap) and is found by the next full rescan.
func TestRescanFindsOldTampering(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	MustTamperable(t, l)
	mustVerified(t, l)
	tamperSQL(`UPDATE ledger_entries SET kind = 'refund' WHERE seq = 6`)(t, db, l)
	mustMove(t, l, "cash:3", "cash:4", levee.Units(1))
	if err := l.RefreshVerified(ctx); err != nil {
		t.Fatal(err)
	}
	if v := mustVerified(t, l); !v.OK || v.ThroughSeq != 11 {
		t.Fatalf("incremental refresh reread old entries: %+v", v)
	}
	if err := l.Rescan(ctx); err != nil {
		t.Fatal(err)
	}
	if v := mustVerified(t, l); v.OK || v.FirstBrokenSeq != 6 {
		t.Fatalf("after a rescan: %+v, want entry 6 broken", v)
	}
}

// TestVerifiedUnderConcurrentAppends: many readers and a writer at once
// (run with -race); every answer verifies.
func TestVerifiedUnderConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	l, _ := MustLedger(t)
	MustTamperable(t, l)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for range 40 {
			mustMove(t, l, "cash:4", "cash:2", levee.Units(1))
		}
	})
	for range 20 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				v, err := l.Verified(ctx)
				if err != nil || !v.OK {
					t.Errorf("verified: %+v %v", v, err)
					return
				}
				if err := l.RefreshVerified(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.RefreshVerified(ctx); err != nil {
		t.Fatal(err)
	}
	if v := mustVerified(t, l); !v.OK || v.ThroughSeq != 50 || v.Report != MustVerify(t, l) {
		t.Fatalf("after the appends: %+v", v)
	}
}
