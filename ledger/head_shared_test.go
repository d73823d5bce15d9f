package ledger_test

import (
	"context"
	"testing"
	"time"

	"levee"
	"levee/ledger"
)

// TestHeadSharedHoldsAppends: a transaction that read the head with
// HeadShared keeps every append waiting until it ends, so what it records
// with that head (a node's announcement of it) is ordered with the appends;
// the append then goes on, and the head it read was the head at its end.
func TestHeadSharedHoldsAppends(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	MustOpen(t, l, "cash:1")
	tx := db.MustBegin()
	defer tx.Rollback()
	seq, _, err := ledger.HeadShared(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fund(l, "cash:1", levee.Units(5)) }()
	select {
	case err := <-done:
		t.Fatalf("an append committed while the head was read under a share lock: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	after, _, err := ledger.Head(ctx, tx)
	if err != nil || after != seq {
		t.Fatalf("head inside the reader: %d, %v; want %d", after, err, seq)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the append did not go on once the reader ended")
	}
	if now, _, _ := ledger.Head(ctx, db); now != seq+1 {
		t.Fatalf("head after the append: %d; want %d", now, seq+1)
	}
}

func fund(l *ledger.Ledger, account string, amount levee.Micros) error {
	_, err := l.Transfer(context.Background(), ledger.Transfer{Kind: "treasury_funding", Ref: "test", Postings: []ledger.Posting{
		{Account: ledger.Issuance, Amount: -amount}, {Account: account, Amount: amount}}})
	return err
}
