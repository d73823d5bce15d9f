package main

import (
	"context"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee/accounts"
	"levee/ledger"
	"levee/market/engine"
)

// Plan is EXPLAIN (ANALYZE, BUFFERS) of one query of the order path.
type Plan struct {
	Name     string
	Source   string // where the query lives
	SQL      string
	Note     string
	Text     string   // the plan
	SeqScans []string // "Seq Scan on t" lines on tables of at least largeTable rows
	Err      string
}

// largeTable is the row count from which a sequential scan is flagged: the
// tables the order path reads grow with trades or with accounts, so a scan
// that is cheap on a benchmark's 2,000 accounts is not on a city's 200,000.
const largeTable = 1_000

// planBatch is the number of rows in the journal and ledger statements
// explained: a typical group commit under load.
const planBatch = 256

// query is one statement to explain, with its arguments.
type query struct {
	name, source, sql, note string
	write                   bool // run inside a transaction that is rolled back
	// generic: the statement runs on the journal's connection, where
	// PostgreSQL always uses its generic plan and scans no table
	// (engine.JournalSettings, market/engine/journal_conn.go), so that
	// plan is the one explained.
	generic bool
	args    []any
}

// explainOrderPath explains every statement an order goes through, with
// realistic arguments taken from the seeded database. The SQL is the very
// text the owning packages run, which they export for this.
func (e *env) explainOrderPath(ctx context.Context) ([]Plan, error) {
	qs, err := e.orderPathQueries(ctx)
	if err != nil {
		return nil, err
	}
	var plans []Plan
	for _, q := range qs {
		p := Plan{Name: q.name, Source: q.source, SQL: strings.TrimSpace(dedent(q.sql)), Note: q.note}
		text, err := explain(ctx, e.db, q)
		if err != nil {
			p.Err = err.Error()
		}
		p.Text = text
		p.SeqScans = e.largeSeqScans(ctx, text)
		plans = append(plans, p)
	}
	return plans, nil
}

func explain(ctx context.Context, db *sqlx.DB, q query) (string, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback() // writes are measured, never kept
	var lines []string
	if !q.generic {
		if err := tx.SelectContext(ctx, &lines, `EXPLAIN (ANALYZE, BUFFERS) `+q.sql, q.args...); err != nil {
			return "", err
		}
		return strings.Join(lines, "\n"), nil
	}
	// A statement sent with parameters is planned for their values once;
	// only a named prepared statement gets the generic plan.
	for _, set := range engine.JournalSettings {
		if _, err := tx.ExecContext(ctx, "SET LOCAL "+set); err != nil {
			return "", err
		}
	}
	if _, err := tx.ExecContext(ctx, `PREPARE levee_explained AS `+q.sql); err != nil {
		return "", err
	}
	defer tx.ExecContext(ctx, `DEALLOCATE levee_explained`)
	// EXPLAIN EXECUTE takes no parameters of its own: the arguments go in
	// as literals, which PostgreSQL coerces to the prepared types.
	params := make([]string, len(q.args))
	for i, a := range q.args {
		lit, err := sqlLiteral(a)
		if err != nil {
			return "", fmt.Errorf("argument %d: %w", i+1, err)
		}
		params[i] = lit
	}
	if err := tx.SelectContext(ctx, &lines, `EXPLAIN (ANALYZE, BUFFERS) EXECUTE levee_explained(`+strings.Join(params, ", ")+`)`); err != nil {
		return "", err
	}
	return "(generic plan)\n" + strings.Join(lines, "\n"), nil
}

// sqlLiteral spells a query argument as a SQL literal.
func sqlLiteral(a any) (string, error) {
	if v, ok := a.(driver.Valuer); ok {
		x, err := v.Value()
		if err != nil {
			return "", err
		}
		a = x
	}
	switch x := a.(type) {
	case nil:
		return "NULL", nil
	case string:
		return pq.QuoteLiteral(x), nil
	case []byte: // bytea, in hex input form
		return pq.QuoteLiteral(`\x` + hex.EncodeToString(x)), nil
	case int, int64, int32, float64, bool:
		return fmt.Sprint(x), nil
	case time.Time:
		return pq.QuoteLiteral(x.Format(time.RFC3339Nano)), nil
	}
	return "", fmt.Errorf("no literal for %T", a)
}

var seqScanRE = regexp.MustCompile(`Seq Scan on (\w+)`)

func (e *env) largeSeqScans(ctx context.Context, plan string) []string {
	var out []string
	for _, m := range seqScanRE.FindAllStringSubmatch(plan, -1) {
		var rows float64
		if err := e.db.GetContext(ctx, &rows, `SELECT reltuples FROM pg_class WHERE relname = $1 AND relkind = 'r'`, m[1]); err != nil {
			continue
		}
		if rows >= largeTable {
			out = append(out, fmt.Sprintf("Seq Scan on %s (~%.0f rows)", m[1], rows))
		}
	}
	return out
}

var spaceRE = regexp.MustCompile(`\s+`)

func squash(s string) string { return spaceRE.ReplaceAllString(strings.TrimSpace(s), " ") }

func dedent(s string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimLeft(l, "\t")
	}
	return strings.Join(lines, "\n")
}

// orderPathQueries builds the statements with arguments from the database:
// planBatch traders of the hot market, their cash accounts, an existing
// idempotency key, and the ledger's head.
func (e *env) orderPathQueries(ctx context.Context) ([]query, error) {
	var ids []int64
	keys := make([]string, 0, planBatch)
	for _, t := range e.traders {
		if len(ids) == planBatch {
			break
		}
		ids = append(ids, t.id)
		keys = append(keys, ledger.Cash(t.id))
	}
	// A batch's keyed orders: half retries of stored orders, half new keys.
	var keyed []struct {
		Account int64  `db:"account_id"`
		Key     string `db:"idempotency_key"`
	}
	if err := e.db.SelectContext(ctx, &keyed, `SELECT account_id, idempotency_key FROM trades WHERE idempotency_key IS NOT NULL LIMIT $1`, planBatch/2); err != nil {
		return nil, fmt.Errorf("plans: %w", err)
	}
	var kAcct []int64
	var kKey []string
	for _, k := range keyed {
		kAcct, kKey = append(kAcct, k.Account), append(kKey, k.Key)
	}
	for i := 0; len(kAcct) < len(ids); i++ {
		kAcct, kKey = append(kAcct, ids[i]), append(kKey, fmt.Sprintf("new-key-%d", i))
	}
	var seq int64
	if err := e.db.GetContext(ctx, &seq, `SELECT seq FROM markets WHERE id = $1`, e.hot); err != nil {
		return nil, fmt.Errorf("plans: %w", err)
	}
	var head int64
	if err := e.db.GetContext(ctx, &head, `SELECT seq FROM ledger_head`); err != nil {
		return nil, fmt.Errorf("plans: %w", err)
	}
	collateral := ledger.Collateral(e.hot)
	now := time.Now().UTC()

	// A batch of planBatch buys on the hot market, one per trader.
	n := len(ids)
	var (
		tMarket, tSeq, tAcct, tOutcome []int64
		tSide, tShares, tAmount        []string
		tPrices, tAt                   []string
		pMarket, pAcct, pOutcome       []int64
		pShares, pPaid, pRecv          []string
		sShares, sPaid, sRecv          []string // net sells, below
	)
	for i, id := range ids {
		tMarket, tSeq, tAcct, tOutcome = append(tMarket, e.hot), append(tSeq, seq+int64(i)+1), append(tAcct, id), append(tOutcome, int64(i%2))
		tSide, tShares, tAmount = append(tSide, "buy"), append(tShares, "1.000000"), append(tAmount, "0.500000")
		tPrices, tAt = append(tPrices, "{0.500000,0.500000}"), append(tAt, now.Format(time.RFC3339Nano))
		pMarket, pAcct, pOutcome = append(pMarket, e.hot), append(pAcct, id), append(pOutcome, int64(i%2))
		pShares, pPaid, pRecv = append(pShares, "1.000000"), append(pPaid, "0.500000"), append(pRecv, "0")
	}
	posArgs := func(shares, paid, recv []string) []any {
		return []any{pq.Array(pMarket), pq.Array(pAcct), pq.Array(pOutcome), pq.Array(shares), pq.Array(paid), pq.Array(recv)}
	}
	// Net sells shrink positions that exist: take them from the database.
	var held []struct {
		Account int64 `db:"account_id"`
		Outcome int64 `db:"outcome"`
	}
	if err := e.db.SelectContext(ctx, &held, `SELECT account_id, outcome FROM positions
		WHERE market_id = $1 AND shares >= 0.000001 ORDER BY account_id, outcome LIMIT $2`, e.hot, planBatch); err != nil {
		return nil, fmt.Errorf("plans: %w", err)
	}
	// In the journal's one statement growing and shrinking positions are
	// different rows, as they are in a real batch.
	grown := map[[2]int64]bool{}
	for i := range pAcct {
		grown[[2]int64{pAcct[i], pOutcome[i]}] = true
	}
	var sMarket, sAcct, sOutcome []int64
	for _, h := range held {
		if grown[[2]int64{h.Account, h.Outcome}] {
			continue
		}
		sMarket, sAcct, sOutcome = append(sMarket, e.hot), append(sAcct, h.Account), append(sOutcome, h.Outcome)
		sShares, sPaid, sRecv = append(sShares, "-0.000001"), append(sPaid, "0"), append(sRecv, "0.000001")
	}
	shrinkArgs := []any{pq.Array(sMarket), pq.Array(sAcct), pq.Array(sOutcome), pq.Array(sShares), pq.Array(sPaid), pq.Array(sRecv)}
	mIDs, mQ, mSeq, mVol := []int64{}, []string{}, []int64{}, []string{}
	for _, m := range e.markets[:min(8, len(e.markets))] {
		mIDs, mSeq, mVol = append(mIDs, m.ID), append(mSeq, 1), append(mVol, "0")
		qs := make([]string, len(m.Outcomes))
		for i := range qs {
			qs[i] = "0"
		}
		mQ = append(mQ, "{"+strings.Join(qs, ",")+"}")
	}
	// The ledger append of the same batch: one entry of two postings per trade.
	var (
		lSeq, pSeq, pIdx, pAmt []int64
		lAt, lKind, lRef, lKey []string
		lPrev, lHash           [][]byte
		pAcctKey               []string
		bKey                   []string
		bDelta                 []int64
	)
	prev := make([]byte, 32)
	for i := 0; i < n; i++ {
		s := head + int64(i) + 1
		h := sha256.Sum256([]byte(strconv.FormatInt(s, 10)))
		lSeq, lAt, lKind = append(lSeq, s), append(lAt, now.Format(time.RFC3339Nano)), append(lKind, "trade")
		lRef, lKey = append(lRef, fmt.Sprintf("market:%d/trade:%d", e.hot, seq+int64(i)+1)), append(lKey, "")
		lPrev, lHash = append(lPrev, prev), append(lHash, h[:])
		prev = h[:]
		pSeq, pIdx, pAcctKey, pAmt = append(pSeq, s, s), append(pIdx, 0, 1), append(pAcctKey, keys[i], collateral), append(pAmt, -500000, 500000)
		bKey, bDelta = append(bKey, keys[i]), append(bDelta, -500000)
	}
	bKey, bDelta = append(bKey, collateral), append(bDelta, int64(n)*500000)
	lockKeys := append(append([]string(nil), keys...), collateral)

	// The journal's statement for this batch: no conditional market, so no stakes.
	journalArgs := []any{pq.Array(tMarket), pq.Array(tSeq), pq.Array(tAcct), pq.Array(tOutcome), pq.Array(tSide), pq.Array(tShares),
		pq.Array(tAmount), pq.Array(tPrices), pq.Array(tAt), pq.Array(make([]string, len(tMarket)))}
	journalArgs = append(journalArgs, posArgs(pShares, pPaid, pRecv)...)
	journalArgs = append(journalArgs, shrinkArgs...)
	journalArgs = append(journalArgs, pq.Array(mIDs), pq.Array(mQ), pq.Array(mSeq), pq.Array(mVol))
	journalArgs = append(journalArgs, pq.Array([]int64{}), pq.Array([]int64{}), pq.Array([]string{}), pq.Array([]string{}),
		pq.Array([]int64{}), pq.Array([]int64{}), pq.Array([]string{}), pq.Array([]string{}))
	// The market rows are written only at their epoch (a cluster's
	// instance moves it when it takes a lease: make orders' variant
	// "cluster") and at the seq the batch was priced after, the row's own
	// here.
	mEpoch, mAfter := make([]int64, len(mIDs)), make([]int64, len(mIDs))
	for i, id := range mIDs {
		if err := e.db.QueryRowContext(ctx, `SELECT epoch, seq FROM markets WHERE id = $1`, id).Scan(&mEpoch[i], &mAfter[i]); err != nil {
			return nil, fmt.Errorf("market %d epoch and seq: %w", id, err)
		}
	}
	journalArgs = append(journalArgs, pq.Array(mEpoch), pq.Array(mAfter))

	return []query{
		{name: "authenticate (every API request)", source: "accounts/store.go", sql: accounts.AuthenticateSQL,
			args: []any{accounts.HashToken(e.traders[0].token)}},
		{name: fmt.Sprintf("tradesByKeys (%d keyed orders in a batch, %d of them retries)", len(kKey), len(keyed)), source: "market/engine/store_market.go",
			sql: engine.TradesByKeysSQL, args: []any{pq.Array(kAcct), pq.Array(kKey)}},
		{name: "loadMarket (a book's start, and its reload)", source: "market/engine/store_market.go", sql: engine.LoadMarketSQL,
			args: []any{e.hot}},
		{name: fmt.Sprintf("loadPositions (%d traders new to a book)", n), source: "market/engine/store_market.go", sql: engine.LoadPositionsSQL,
			args: []any{e.hot, pq.Array(ids)}},
		{name: fmt.Sprintf("wallets.ensure (%d wallets not cached)", n), source: "ledger/store.go", sql: ledger.BalancesSQL,
			args: []any{pq.Array(keys)}},
		{name: fmt.Sprintf("journal: %d trades, %d positions grown, %d shrunk, %d market rows", n, len(pMarket), len(held), len(mIDs)),
			source: "market/engine/store_journal.go", write: true,
			note: "The journal writes trades, positions, stakes and market rows in one statement (JournalSQL). The journal " +
				"runs its statements prepared on a connection that always uses their generic plan (it estimates an unnest of a " +
				"parameter at 10 rows, which favours the same index look-ups), so that plan is the one shown.",
			generic: true, sql: engine.JournalSQL, args: journalArgs},
		{name: fmt.Sprintf("ledger.PostBatch: lock the head, then accounts (%d)", len(lockKeys)), source: "ledger/post.go", write: true,
			note:    "One statement: the accounts are a LATERAL subquery on the head row, so the head is locked first (the lock order).",
			generic: true, sql: ledger.LockSQL, args: []any{pq.StringArray(lockKeys)}},
		{name: fmt.Sprintf("ledger.Session: read the accounts (%d) once the head is held", len(lockKeys)), source: "ledger/post.go",
			note: "The journal's default path (ledger.Session) locks the head with its writes and then reads the accounts unlocked, " +
				"in a statement of its own (ReadAccountsSQL); LockSQL above is PostBatch's and the four-trips journal's.",
			generic: true, sql: ledger.ReadAccountsSQL, args: []any{pq.StringArray(lockKeys)}},
		{name: fmt.Sprintf("ledger.PostBatch: append %d entries, %d postings, balances, head", n, 2*n), source: "ledger/post.go", write: true,
			note: "The journal's transfers carry no idempotency key, so PostBatch's key look-up (entriesByKey) does not run on the order path; " +
				"PostBatchBalances returns the balances it locked and updated, so the journal reads none back.",
			generic: true, sql: ledger.AppendSQL,
			args: []any{pq.Int64Array(lSeq), pq.StringArray(lAt), pq.StringArray(lKind), pq.StringArray(lRef), pq.StringArray(lKey),
				pq.ByteaArray(lPrev), pq.ByteaArray(lHash), pq.Int64Array(pSeq), pq.Int64Array(pIdx), pq.StringArray(pAcctKey),
				pq.Int64Array(pAmt), pq.StringArray(bKey), pq.Int64Array(bDelta), head + int64(n), prev}},
	}, nil
}

// moduleRoot finds the directory holding go.mod, from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
