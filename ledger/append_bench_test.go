package ledger_test

import (
	"context"
	"fmt"
	"testing"

	"levee"
	"levee/ledger"
)

// BenchmarkAppend posts batches of n trade-like transfers, one batch per
// commit, through a transaction (Prepared.PostBatchBalances: BEGIN, lock,
// append, COMMIT; the chain in Go) and through one statement in autocommit
// (AppendWith: ledger_append, the chain in PostgreSQL).
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1, 128} {
		for _, path := range []string{"transaction", "one statement"} {
			b.Run(fmt.Sprintf("%s/%d", path, n), func(b *testing.B) {
				l, db := MustLedger(b)
				var accounts []string
				for i := range 256 {
					accounts = append(accounts, ledger.Cash(int64(i+1)))
				}
				MustOpen(b, l, append(accounts, "market:1")...)
				for _, a := range accounts {
					MustFund(b, l, a, levee.Units(1_000_000))
				}
				p := ledger.NewPrepared(db)
				defer p.Close()
				w := ledger.With{CTEs: `nothing AS (SELECT 1 AS one)`, First: `(SELECT count(*) FROM nothing) >= 0`}
				batch := make([]ledger.Transfer, n)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := range batch {
						batch[j] = ledger.Transfer{Kind: "trade", Ref: fmt.Sprintf("market:1/trade:%d", i*n+j), Postings: []ledger.Posting{
							{Account: accounts[(i*n+j)%len(accounts)], Amount: -levee.Units(1)}, {Account: "market:1", Amount: levee.Units(1)}}}
					}
					if path == "transaction" {
						tx := db.MustBegin()
						if _, _, err := p.PostBatchBalances(ctx, tx, batch); err != nil {
							b.Fatal(err)
						}
						if err := tx.Commit(); err != nil {
							b.Fatal(err)
						}
					} else if _, err := p.AppendWith(ctx, w, batch, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
