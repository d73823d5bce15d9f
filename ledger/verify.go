package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/big"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"levee"
	"levee/pgtx"
)

// verifyPage is how many entries Verify holds in memory at once.
const verifyPage = 2000

// Verify checks the whole ledger against itself in one consistent snapshot,
// streaming entries in seq order a page at a time: seqs dense from 1, every
// prev_hash equal to the previous hash, every hash recomputed from the
// entry's contents, every entry balanced with at least two non-zero
// postings, the head row equal to the last entry, every account balance
// equal to the sum of its postings, and all balances summing to zero.
// A failed check is a Report with OK false, not an error; errors mean the
// check could not run (EUNAVAILABLE when the database is down).
func (l *Ledger) Verify(ctx context.Context) (Report, error) {
	// Repeatable read: appends may go on meanwhile, and the balances must
	// be read at the same point of the chain as the entries.
	tx, err := l.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return Report{}, fmt.Errorf("verify ledger: %w", pgtx.Unavailable(err))
	}
	defer tx.Rollback()
	r, err := verify(ctx, tx)
	if err != nil {
		return Report{}, fmt.Errorf("verify ledger: %w", pgtx.Unavailable(err))
	}
	return r, nil
}

// verifier accumulates what Verify has seen; only the first problem counts.
// It can be extended later with the entries appended since (see Verified).
type verifier struct {
	Report
	sums     map[string]Sum // account -> exact sum of its postings so far
	balances map[string]Sum // account -> stored balance, as last read
	last     int64          // seq of the last entry checked
	prev     []byte         // its hash
}

func newVerifier() *verifier {
	return &verifier{sums: map[string]Sum{}, balances: map[string]Sum{}, prev: make([]byte, HashSize)}
}

func (v *verifier) fail(seq int64, account, format string, args ...any) {
	if v.Problem != "" {
		return
	}
	v.FirstBrokenSeq, v.BrokenAccount = seq, account
	v.Problem = fmt.Sprintf(format, args...)
}

func verify(ctx context.Context, tx *sqlx.Tx) (Report, error) {
	v, err := verifyAll(ctx, tx)
	if err != nil {
		return Report{}, err
	}
	return v.Report, nil
}

// verifyAll checks everything from the first entry, in tx's snapshot.
func verifyAll(ctx context.Context, tx *sqlx.Tx) (*verifier, error) {
	v := newVerifier()
	if _, err := v.extend(ctx, tx); err != nil {
		return nil, err
	}
	if err := v.checkHead(ctx, tx); err != nil {
		return nil, err
	}
	if err := v.checkBalances(ctx, tx); err != nil {
		return nil, err
	}
	v.OK = v.Problem == ""
	return v, nil
}

// extend checks the entries after v.last, continuing the chain from v.prev
// and the postings' sums, and returns the accounts they post to.
func (v *verifier) extend(ctx context.Context, tx *sqlx.Tx) (map[string]bool, error) {
	touched := map[string]bool{}
	for {
		page, err := verifyEntries(ctx, tx, v.last)
		if err != nil {
			return nil, err
		}
		for i := range page {
			v.checkEntry(&page[i], v.last, v.prev)
			v.last, v.prev = page[i].Seq, page[i].Hash
			for _, p := range page[i].Postings {
				touched[p.Account] = true
			}
		}
		if len(page) < verifyPage {
			return touched, nil
		}
	}
}

// checkHead compares the head row with the last entry checked.
func (v *verifier) checkHead(ctx context.Context, tx *sqlx.Tx) error {
	var head struct {
		Seq  int64  `db:"seq"`
		Hash []byte `db:"hash"`
	}
	if err := tx.GetContext(ctx, &head, `SELECT seq, hash FROM ledger_head`); err != nil {
		return fmt.Errorf("read head: %w", err)
	}
	v.HeadSeq, v.HeadHash = head.Seq, hex.EncodeToString(head.Hash)
	switch {
	case head.Seq != v.last:
		v.fail(min(head.Seq, v.last)+1, "", "the head says the last entry is %d but it is %d", head.Seq, v.last)
	case !bytes.Equal(head.Hash, v.prev):
		v.fail(v.last, "", "the head hash does not match the hash of entry %d", v.last)
	}
	return nil
}

// checkEntry checks e, which follows entry last whose hash is prev.
func (v *verifier) checkEntry(e *verifyEntry, last int64, prev []byte) {
	v.Entries++
	// Exact sums: an amount out of range is reported below, and must not
	// make a later balance or the trial balance look wrong as well.
	var sum Sum
	zero := false
	for i, p := range e.Postings {
		v.sums[p.Account] = v.sums[p.Account].AddSum(e.exact[i])
		sum = sum.AddSum(e.exact[i])
		zero = zero || e.exact[i].IsZero()
	}
	switch {
	case e.Seq != last+1:
		v.fail(last+1, "", "entry %d is missing: the entry after %d is %d", last+1, last, e.Seq)
	case !bytes.Equal(e.PrevHash, prev):
		v.fail(e.Seq, "", "entry %d: prev_hash does not match the hash of entry %d", e.Seq, last)
	case e.unreadable != "":
		v.fail(e.Seq, "", "entry %d: amount %s cannot be read", e.Seq, e.unreadable)
	case e.beyond != "":
		v.fail(e.Seq, "", "entry %d: amount %s is beyond the bound on money, %s", e.Seq, e.beyond, levee.MaxMoney)
	case len(e.Postings) < 2:
		v.fail(e.Seq, "", "entry %d has %d postings; an entry needs at least two", e.Seq, len(e.Postings))
	case zero:
		v.fail(e.Seq, "", "entry %d has a zero posting", e.Seq)
	case !sum.IsZero():
		v.fail(e.Seq, "", "entry %d: postings sum to %s, not zero", e.Seq, sum)
	case !bytes.Equal(chainHash(e.PrevHash, e.appendCanonical(nil, e.shown)), e.Hash):
		v.fail(e.Seq, "", "entry %d: hash does not match its contents", e.Seq)
	}
}

// checkBalances compares every stored balance with the sum of its postings,
// streaming the accounts, and computes the trial balance, exactly: a balance
// beyond levee.MaxMoney is a finding, but it still counts in the total.
func (v *verifier) checkBalances(ctx context.Context, tx *sqlx.Tx) error {
	rows, err := tx.QueryxContext(ctx, `SELECT key, balance::text AS balance FROM ledger_accounts ORDER BY key`)
	if err != nil {
		return fmt.Errorf("read balances: %w", err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var a struct {
			Key     string `db:"key"`
			Balance string `db:"balance"`
		}
		if err := rows.StructScan(&a); err != nil {
			return fmt.Errorf("read balances: %w", err)
		}
		bal, err := parseExact(a.Balance)
		if err != nil {
			v.fail(0, a.Key, "balance of %s (%s) cannot be read: %v", a.Key, a.Balance, err)
			continue
		}
		sum, posted := v.sums[a.Key]
		if posted {
			seen++
		}
		if bal != sum {
			v.fail(0, a.Key, "balance of %s is %s but its postings sum to %s", a.Key, bal, sum)
		}
		if m, ok := bal.Micros(); !ok || m > levee.MaxMoney || m < -levee.MaxMoney {
			v.fail(0, a.Key, "balance of %s (%s) is beyond the bound on money, %s", a.Key, bal, levee.MaxMoney)
		}
		v.TrialBalance = v.TrialBalance.AddSum(bal)
		v.balances[a.Key] = bal
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read balances: %w", err)
	}
	if seen != len(v.sums) {
		v.fail(0, "", "postings name %d accounts that do not exist", len(v.sums)-seen)
	}
	if !v.TrialBalance.IsZero() {
		v.fail(0, "", "balances sum to %s, not zero", v.TrialBalance)
	}
	return nil
}

// checkTouched compares the stored balances of the accounts in touched with
// the sums of their postings, and brings the trial balance up to date from
// the balances read before: the incremental form of checkBalances.
func (v *verifier) checkTouched(ctx context.Context, tx *sqlx.Tx, touched map[string]bool) error {
	if len(touched) == 0 {
		return nil
	}
	keys := make([]string, 0, len(touched))
	for k := range touched {
		keys = append(keys, k)
	}
	var rows []struct {
		Key     string `db:"key"`
		Balance string `db:"balance"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT key, balance::text AS balance FROM ledger_accounts WHERE key = ANY($1) ORDER BY key`, pq.Array(keys)); err != nil {
		return fmt.Errorf("read balances: %w", err)
	}
	if len(rows) != len(keys) {
		v.fail(0, "", "postings name %d accounts that do not exist", len(keys)-len(rows))
	}
	for _, a := range rows {
		bal, err := parseExact(a.Balance)
		if err != nil {
			v.fail(0, a.Key, "balance of %s (%s) cannot be read: %v", a.Key, a.Balance, err)
			continue
		}
		if sum := v.sums[a.Key]; bal != sum {
			v.fail(0, a.Key, "balance of %s is %s but its postings sum to %s", a.Key, bal, sum)
		}
		if m, ok := bal.Micros(); !ok || m > levee.MaxMoney || m < -levee.MaxMoney {
			v.fail(0, a.Key, "balance of %s (%s) is beyond the bound on money, %s", a.Key, bal, levee.MaxMoney)
		}
		v.TrialBalance = v.TrialBalance.AddSum(v.balances[a.Key].Neg()).AddSum(bal)
		v.balances[a.Key] = bal
	}
	if !v.TrialBalance.IsZero() {
		v.fail(0, "", "balances sum to %s, not zero", v.TrialBalance)
	}
	return nil
}

// verifyEntry is an Entry as Verify reads it: an amount that does not parse
// is a finding, not an error that would stop the check.
type verifyEntry struct {
	Entry
	exact      []Sum    // each posting's amount, exactly, whatever its size
	shown      []string // in the private epoch, each posting's account by its public name
	unreadable string   // the first stored amount that is not a number of micro-units
	beyond     string   // the first stored amount beyond ±levee.MaxMoney
}

// verifyEntries reads the next page of entries after seq after, with their
// postings.
func verifyEntries(ctx context.Context, tx *sqlx.Tx, after int64) ([]verifyEntry, error) {
	var rows []entryRow
	if err := tx.SelectContext(ctx, &rows, `
		SELECT seq, at, kind, ref, prev_hash, hash
		FROM ledger_entries WHERE seq > $1 ORDER BY seq LIMIT $2`, after, verifyPage); err != nil {
		return nil, fmt.Errorf("read entries after %d: %w", after, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	var ps []struct {
		EntrySeq int64   `db:"entry_seq"`
		Account  string  `db:"account"`
		Shown    *string `db:"shown"`
		Amount   string  `db:"amount"`
	}
	if err := tx.SelectContext(ctx, &ps, `
		SELECT p.entry_seq, p.account, p.amount::text AS amount,
			CASE WHEN p.entry_seq >= h.private_from THEN coalesce(a.public, p.account) END AS shown
		FROM ledger_postings p
		CROSS JOIN ledger_head h
		LEFT JOIN ledger_accounts a ON a.key = p.account AND a.public IS NOT NULL
		WHERE p.entry_seq > $1 AND p.entry_seq <= $2
		ORDER BY p.entry_seq, p.idx`, after, rows[len(rows)-1].Seq); err != nil {
		return nil, fmt.Errorf("read postings after %d: %w", after, err)
	}
	es := make([]verifyEntry, len(rows))
	for i, r := range rows {
		es[i].Entry = r.entry()
	}
	i := 0
	for _, p := range ps {
		for es[i].Seq != p.EntrySeq {
			i++
		}
		x, err := parseExact(p.Amount)
		if err != nil && es[i].unreadable == "" {
			es[i].unreadable = p.Amount
		}
		m, fits := x.Micros()
		if err == nil && (!fits || m > levee.MaxMoney || m < -levee.MaxMoney) && es[i].beyond == "" {
			es[i].beyond = p.Amount
		}
		es[i].exact = append(es[i].exact, x)
		if p.Shown != nil {
			es[i].shown = append(es[i].shown, *p.Shown)
		}
		es[i].Postings = append(es[i].Postings, Posting{Account: p.Account, Amount: m})
	}
	return es, nil
}

// parseExact reads a stored NUMERIC amount as its exact number of
// micro-units, without levee.ParseMicros's bound: Verify must be able to
// report, and add up, what was stored even where it should not have been.
func parseExact(text string) (Sum, error) {
	d, err := decimal.NewFromString(text)
	if err != nil {
		return Sum{}, err
	}
	scaled := d.Shift(6)
	if !scaled.Equal(scaled.Truncate(0)) {
		return Sum{}, fmt.Errorf("more than 6 decimal places")
	}
	b := scaled.BigInt()
	if b.BitLen() > 126 {
		return Sum{}, fmt.Errorf("far too large")
	}
	neg := b.Sign() < 0
	b.Abs(b)
	hi := new(big.Int).Rsh(b, 64)
	s := Sum{hi: hi.Int64(), lo: b.Uint64()}
	if neg {
		s = s.Neg()
	}
	return s, nil
}
