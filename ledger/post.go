package ledger

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/pgtx"
)

// Post appends one balanced entry inside the caller's transaction, so a
// business change and its money move commit together. It takes the ledger
// head lock, held until tx ends: post as the last step of the transaction.
// On error tx must be rolled back. Errors: EINVALID for a malformed transfer
// or an unknown account (naming the field), ECONFLICT "insufficient funds in
// <account>", for a balance (or the money issued) that would pass
// levee.MaxMoney, or for an idempotency key reused with different postings.
func Post(ctx context.Context, tx *sqlx.Tx, t Transfer) (Entry, error) {
	es, _, err := postBatch(ctx, tx, []Transfer{t}, call{trips: txTrips{tx: tx}})
	if err != nil {
		return Entry{}, fmt.Errorf("ledger post: %w", unbatch(err))
	}
	return es[0], nil
}

// PostBatch appends the entries of ts, in order, inside the caller's
// transaction, with the same outcome as calling Post for each in turn
// (including the funds check after every entry) but with one head lock and a
// handful of statements in all. All or nothing: on error nothing is appended
// and tx must be rolled back. Errors as Post, with fields named
// "transfers[i]....".
func PostBatch(ctx context.Context, tx *sqlx.Tx, ts []Transfer) ([]Entry, error) {
	es, _, err := PostBatchBalances(ctx, tx, ts)
	return es, err
}

// PostBatchBalances is PostBatch that also returns, by account key, the
// balance that every account touched by a newly appended entry has after the
// batch (accounts touched only by replays of stored entries are not in it).
// The balances were read under the account locks, which are held until tx
// ends, so they are what tx commits; a caller that needs them saves reading
// them back. Errors as PostBatch.
func PostBatchBalances(ctx context.Context, tx *sqlx.Tx, ts []Transfer) ([]Entry, map[string]levee.Micros, error) {
	return postBatchBalances(ctx, tx, ts, call{trips: txTrips{tx: tx}})
}

func postBatchBalances(ctx context.Context, q querier, ts []Transfer, c call) ([]Entry, map[string]levee.Micros, error) {
	if len(ts) > MaxBatch {
		return nil, nil, levee.Invalid("transfers", "at most %d transfers per batch", MaxBatch)
	}
	es, balances, err := postBatch(ctx, q, ts, c)
	if err != nil {
		var be *batchError
		if errors.As(err, &be) {
			var le *levee.Error
			if errors.As(be.err, &le) && le.Field != "" {
				cp := *le
				cp.Field = "transfers[" + strconv.Itoa(be.index) + "]." + le.Field
				return nil, nil, fmt.Errorf("ledger post batch: transfer %d: %w", be.index, &cp)
			}
			return nil, nil, fmt.Errorf("ledger post batch: transfer %d: %w", be.index, be.err)
		}
		return nil, nil, fmt.Errorf("ledger post batch: %w", err)
	}
	return es, balances, nil
}

// batchError ties an error to the transfer that caused it, so PostBatch can
// name it while Post and Transfer keep the plain error.
type batchError struct {
	index int
	err   error
}

func (e *batchError) Error() string { return fmt.Sprintf("transfer %d: %v", e.index, e.err) }
func (e *batchError) Unwrap() error { return e.err }

func unbatch(err error) error {
	var be *batchError
	if errors.As(err, &be) {
		return be.err
	}
	return err
}

// FundsError is the refusal of a posting that would take an account that may
// not go negative below zero. It unwraps to an ECONFLICT "insufficient funds
// in <account>", so callers that only map codes need nothing more; a caller
// that posts for many parties at once (the market journal) uses Account to
// drop the one party's transfers and post the rest.
type FundsError struct {
	Account string // the account's key, or "an account" when the database refused it unnamed
	err     *levee.Error
}

func insufficientFunds(account string) *FundsError {
	return &FundsError{Account: account, err: levee.Errorf(levee.ECONFLICT, "insufficient funds in %s", account)}
}

func (e *FundsError) Error() string { return e.err.Error() }
func (e *FundsError) Unwrap() error { return e.err }

// account is what the funds check needs to know about one ledger account.
type account struct {
	Key           string       `db:"key"`
	Balance       levee.Micros `db:"balance"`
	MayGoNegative bool         `db:"may_go_negative"`
	// Public is the name the hash chain and the export use for the account
	// from the private epoch on (a person's pseudonymous "cash:p…"), or ""
	// when it is the key itself (docs/privacy.md).
	Public string `db:"public"`
}

// querier runs an append's statements other than its two round trips (the
// stored idempotency keys, accounts opened late): the caller's transaction,
// or a Session's connection inside the transaction the Session began.
type querier interface {
	sqlx.QueryerContext
	sqlx.ExecerContext
}

// trips runs an append's two round trips: the lock of the head after the
// caller's writes (args are theirs), which returns the head and the
// accounts keys, and the write (args are AppendSQL's; changes the balance
// changes of its $12 and $13).
type trips interface {
	lock(ctx context.Context, args []any, keys []string) (ledgerHead, map[string]*account, error)
	write(ctx context.Context, args []any, changes []balanceChange) error
}

// txTrips runs them in the caller's transaction, as LockSQL and AppendSQL
// or as statements prepared on the database (Prepared).
type txTrips struct {
	tx                   *sqlx.Tx
	lockStmt, appendStmt *sqlx.Stmt // nil: LockSQL and AppendSQL, not prepared
}

func (t txTrips) lock(ctx context.Context, args []any, keys []string) (ledgerHead, map[string]*account, error) {
	args = append(args[:len(args):len(args)], pq.StringArray(keys))
	var rows *sql.Rows
	var err error
	if t.lockStmt == nil {
		rows, err = t.tx.QueryContext(ctx, LockSQL, args...)
	} else {
		rows, err = t.tx.StmtxContext(ctx, t.lockStmt).QueryContext(ctx, args...)
	}
	if err != nil {
		return ledgerHead{}, nil, fmt.Errorf("lock ledger head and accounts: %w", pgtx.Unavailable(err))
	}
	return scanLocked(rows, len(keys))
}

func (t txTrips) write(ctx context.Context, args []any, _ []balanceChange) error {
	var err error
	if t.appendStmt == nil {
		_, err = t.tx.ExecContext(ctx, AppendSQL, args...)
	} else {
		_, err = t.tx.StmtxContext(ctx, t.appendStmt).ExecContext(ctx, args...)
	}
	return err
}

// call is how one append runs: its round trips, the caller's arguments
// that come before the account keys in the lock statement (With.Args) and
// what runs once that statement has returned (With.Locked), and accounts
// beyond those posted to that it locks and reads (Session.PostCommitWith).
type call struct {
	trips    trips
	lockArgs []any
	locked   func()
	read     []string
}

// postBatch does the work of Post and PostBatch and returns the balances
// after the batch of the accounts its fresh entries touch. Validation, the
// part that needs no lock, comes first; the head lock is taken as late as
// possible and everything after it is a fixed number of statements whatever
// len(ts) is: two (lock, append: c.trips) when no transfer carries an
// idempotency key. The balances returned include those of c.read.
func postBatch(ctx context.Context, q querier, ts []Transfer, c call) ([]Entry, map[string]levee.Micros, error) {
	if len(ts) == 0 {
		return nil, nil, nil
	}
	now := time.Now()
	out := make([]Entry, len(ts))
	for i, t := range ts {
		e, err := prepare(t, now)
		if err != nil {
			return nil, nil, &batchError{i, err}
		}
		out[i] = e
	}

	// From here until tx ends we are the only appender. The accounts of
	// every transfer are locked with the head, in the same round trip,
	// before we know which transfers are replays: locking a few accounts
	// that a replay turns out not to need costs nothing, a round trip does.
	head, accts, err := lockHeadAndAccounts(ctx, q, c, lockKeys(out, c.read))
	if err != nil {
		return nil, nil, err
	}
	if c.locked != nil {
		c.locked()
	}

	// Resolve idempotency keys under the lock, so two racing calls with the
	// same key cannot both miss the other's entry.
	fresh, alias, err := resolveKeys(ctx, q, ts, out)
	if err != nil {
		return nil, nil, err
	}
	if len(fresh) == 0 {
		return out, nil, nil // all replays of stored entries
	}

	changes, balances, err := checkFunds(accts, out, fresh)
	if err != nil {
		return nil, nil, err
	}
	if err := appendEntries(ctx, c.trips, head, accts, ts, out, fresh, changes); err != nil {
		return nil, nil, err
	}
	for _, k := range c.read {
		if a := accts[k]; a != nil {
			balances[k] = a.Balance // after the batch: checkFunds updated it
		}
	}
	for i, j := range alias {
		out[i] = out[j]
	}
	return out, balances, nil
}

// ledgerHead is the ledger_head row: the last entry's seq and hash, and the
// first seq of the private epoch (0 while there is none: a ledger migrated
// from before it, until BeginPrivateEpoch runs).
type ledgerHead struct {
	Seq         int64  `db:"seq"`
	Hash        []byte `db:"hash"`
	PrivateFrom int64  `db:"private_from"`
}

// private reports whether entry seq is hashed and exported under the
// accounts' public names.
func (h ledgerHead) private(seq int64) bool { return h.PrivateFrom > 0 && seq >= h.PrivateFrom }

// lockKeys returns the accounts that es post to and those of read, sorted
// (the lock order).
func lockKeys(es []Entry, read []string) []string {
	seen := map[string]bool{}
	keys := make([]string, 0, 2*len(es)+len(read))
	for _, k := range read {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, e := range es {
		for _, p := range e.Postings {
			if !seen[p.Account] {
				seen[p.Account] = true
				keys = append(keys, p.Account)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// LockSQL locks the head and then the accounts $1, and reads them: the
// first statement of an append (see lockHeadAndAccounts). It and AppendSQL
// are exported for tools that explain their plans.
const LockSQL = `
		SELECT h.seq, h.hash, coalesce(h.private_from, 0) AS private_from, a.key, a.balance, a.may_go_negative, a.public
		FROM (SELECT seq, hash, private_from FROM ledger_head FOR UPDATE) h
		LEFT JOIN LATERAL (
			SELECT key, balance, may_go_negative, coalesce(public, '') AS public FROM ledger_accounts
			WHERE key = ANY($1) AND h.seq >= 0
			ORDER BY key FOR UPDATE
		) a ON true`

// lockSQLAfter is LockSQL behind a caller's writes (Prepared's
// PostBatchBalancesWith): the head is read only once first, a condition
// over the caller's CTEs, holds, and evaluating it runs them, so their row
// locks are taken before the head's, in the order of docs/locks.md. The
// account keys are parameter keys.
func lockSQLAfter(w With, keys string) string {
	return "WITH " + w.CTEs + `
		SELECT h.seq, h.hash, coalesce(h.private_from, 0) AS private_from, a.key, a.balance, a.may_go_negative, a.public
		FROM (SELECT seq, hash, private_from FROM ledger_head WHERE ` + w.First + ` FOR UPDATE) h
		LEFT JOIN LATERAL (
			SELECT key, balance, may_go_negative, coalesce(public, '') AS public FROM ledger_accounts
			WHERE key = ANY(` + keys + `) AND h.seq >= 0
			ORDER BY key FOR UPDATE
		) a ON true`
}

// headSQLAfter is lockSQLAfter without the accounts: the first statement
// of a Session's lock round trip, which reads them in a statement of its
// own (ReadAccountsSQL) once it holds the head.
func headSQLAfter(w With) string {
	return "WITH " + w.CTEs + `
		SELECT seq, hash, coalesce(private_from, 0) AS private_from FROM ledger_head WHERE ` + w.First + ` FOR UPDATE`
}

// ReadAccountsSQL reads the accounts $1 without locking them: a Session's
// second statement of its lock round trip, run once its first holds the
// head. In READ COMMITTED each statement takes a new snapshot, so this one
// sees every balance the previous head holders committed; and no one else
// can change a balance before this transaction ends, since every writer of
// balances holds the head (docs/locks.md). Row locks on the accounts would
// add nothing but their cost: each is a write to the row's page and a WAL
// record, for every account of every commit.
//
// Each account comes back as the position of its key in $1 rather than as
// the key: the caller has the key already, and a text column is two
// allocations a row in lib/pq (the string and its interface), a small
// integer none; a commit reads an account per trader.
const ReadAccountsSQL = `
		SELECT k.i, a.balance, a.may_go_negative, coalesce(a.public, '') AS public
		FROM unnest($1::text[]) WITH ORDINALITY AS k (key, i) JOIN ledger_accounts a ON a.key = k.key`

// lockHeadAndAccounts takes the head lock and then locks and reads the
// accounts keys (sorted) in key order, in one statement: the accounts are a
// LATERAL subquery that depends on the head row, so PostgreSQL locks the
// head first (the lock order) and only then the accounts. Rows locked FOR
// UPDATE are returned in their newest committed version, so the balances
// are those the previous head holder committed, although the statement's
// snapshot was taken before it did. A row inserted after that snapshot (an
// account opened by the transaction that held the head meanwhile) is not
// seen at all, so when keys are missing they are looked up again in a
// statement of their own, whose snapshot is taken under the head lock (those
// are then locked after accounts with greater keys, which cannot deadlock:
// only the head holder locks accounts). The accounts returned are those that
// exist; the caller reports the others. (A Session reads the accounts
// unlocked, in a statement of its own after the head's: ReadAccountsSQL.)
func lockHeadAndAccounts(ctx context.Context, q querier, c call, keys []string) (ledgerHead, map[string]*account, error) {
	head, accts, err := c.trips.lock(ctx, c.lockArgs, keys)
	if err != nil {
		return ledgerHead{}, nil, err
	}
	if len(accts) == len(keys) {
		return head, accts, nil
	}
	var missing []string
	for _, k := range keys {
		if accts[k] == nil {
			missing = append(missing, k)
		}
	}
	var late []account
	if err := sqlx.SelectContext(ctx, q, &late, `
		SELECT key, balance, may_go_negative, coalesce(public, '') AS public FROM ledger_accounts
		WHERE key = ANY($1) ORDER BY key FOR UPDATE`, pq.StringArray(missing)); err != nil {
		return ledgerHead{}, nil, fmt.Errorf("lock ledger accounts: %w", pgtx.Unavailable(err))
	}
	for i := range late {
		accts[late[i].Key] = &late[i]
	}
	return head, accts, nil
}

// scanLocked reads the rows of the lock statement: the head on each row,
// and an account on each, NULL where no account was asked for or found.
// Scanned by hand rather than by sqlx into a struct: the journal runs it on
// every commit for every trader in it, and reflection per row was a fifth
// of the engine's CPU per order (BenchmarkDurableOrders, issue 18). The
// head's columns, the same on every row, are kept from the first.
func scanLocked(rows *sql.Rows, n int) (ledgerHead, map[string]*account, error) {
	defer rows.Close()
	var head ledgerHead
	accts := make(map[string]*account, n)
	var hash sql.RawBytes
	var key, public sql.NullString
	var mayGoNegative sql.NullBool
	var balance levee.Micros
	first := true
	for rows.Next() {
		if err := rows.Scan(&head.Seq, &hash, &head.PrivateFrom, &key, &balance, &mayGoNegative, &public); err != nil {
			return ledgerHead{}, nil, fmt.Errorf("lock ledger head and accounts: %w", pgtx.Unavailable(err))
		}
		if first {
			head.Hash, first = bytes.Clone(hash), false
		}
		if key.Valid {
			accts[key.String] = &account{Key: key.String, Balance: balance, MayGoNegative: mayGoNegative.Bool, Public: public.String}
		}
	}
	if err := rows.Err(); err != nil {
		return ledgerHead{}, nil, fmt.Errorf("lock ledger head and accounts: %w", pgtx.Unavailable(err))
	}
	if first {
		return ledgerHead{}, nil, fmt.Errorf("lock ledger head: %w", pgtx.Unavailable(sql.ErrNoRows))
	}
	return head, accts, nil
}

// scanHeadThenAccounts reads a Session's lock round trip: the head's row,
// and then, as the next result, the accounts' rows (ReadAccountsSQL: each
// names its key by its position in keys).
func scanHeadThenAccounts(rows *sql.Rows, keys []string) (ledgerHead, map[string]*account, error) {
	n := len(keys)
	defer rows.Close()
	var head ledgerHead
	found := false
	for rows.Next() {
		if err := rows.Scan(&head.Seq, &head.Hash, &head.PrivateFrom); err != nil {
			return ledgerHead{}, nil, fmt.Errorf("lock ledger head: %w", pgtx.Unavailable(err))
		}
		found = true
	}
	if err := rows.Err(); err != nil {
		return ledgerHead{}, nil, fmt.Errorf("lock ledger head: %w", pgtx.Unavailable(err))
	}
	if !found {
		return ledgerHead{}, nil, fmt.Errorf("lock ledger head: %w", pgtx.Unavailable(sql.ErrNoRows))
	}
	if !rows.NextResultSet() {
		return ledgerHead{}, nil, fmt.Errorf("read ledger accounts: %w", pgtx.Unavailable(cmp.Or(rows.Err(), errors.New("no result"))))
	}
	accts := make(map[string]*account, n)
	all := make([]account, n) // one allocation for the commit's accounts, not one each
	for rows.Next() {
		var i int
		var a account
		if err := rows.Scan(&i, &a.Balance, &a.MayGoNegative, &a.Public); err != nil {
			return ledgerHead{}, nil, fmt.Errorf("read ledger accounts: %w", pgtx.Unavailable(err))
		}
		if i < 1 || i > n {
			return ledgerHead{}, nil, fmt.Errorf("read ledger accounts: key %d of %d", i, n)
		}
		a.Key = keys[i-1]
		all[i-1] = a
		accts[a.Key] = &all[i-1]
	}
	if err := rows.Err(); err != nil {
		return ledgerHead{}, nil, fmt.Errorf("read ledger accounts: %w", pgtx.Unavailable(err))
	}
	return head, accts, nil
}

// balanceChange is the net change of one account's balance over a batch.
type balanceChange struct {
	key   string
	delta levee.Micros
}

// checkFunds replays the entries out[fresh...] one by one on the balances of
// the locked accounts known, exactly as if each were posted alone. It returns
// the non-zero net changes in key order and the balance of every account the
// entries touch after the last of them. It updates known. Assumes the head
// lock and the account locks.
func checkFunds(known map[string]*account, out []Entry, fresh []int) ([]balanceChange, map[string]levee.Micros, error) {
	delta := map[string]levee.Micros{}
	for _, i := range fresh {
		for j, p := range out[i].Postings {
			if known[p.Account] == nil {
				return nil, nil, &batchError{i, levee.Invalid(postingField(j, "account"), "no ledger account %s", p.Account)}
			}
			delta[p.Account] = 0 // collects the keys; summed below
		}
	}
	for _, i := range fresh {
		ps := out[i].Postings
		for _, p := range ps {
			a := known[p.Account]
			b, ok := addMicros(a.Balance, p.Amount)
			if !ok {
				return nil, nil, &batchError{i, levee.Errorf(levee.ECONFLICT, "balance of %s would overflow", p.Account)}
			}
			a.Balance = b
			delta[p.Account] += p.Amount
		}
		// Checked after the whole entry, like the CHECK constraint at the
		// end of a statement: an entry may pay into and out of one account.
		for _, p := range ps {
			if err := checkBalance(known[p.Account]); err != nil {
				return nil, nil, &batchError{i, err}
			}
		}
	}
	keys := make([]string, 0, len(delta))
	balances := make(map[string]levee.Micros, len(delta))
	for k := range delta {
		keys = append(keys, k)
		balances[k] = known[k].Balance
	}
	slices.Sort(keys)
	changes := make([]balanceChange, 0, len(keys))
	for _, k := range keys {
		if d := delta[k]; d != 0 {
			changes = append(changes, balanceChange{k, d})
		}
	}
	return changes, balances, nil
}

// checkBalance refuses a balance that an entry would leave below zero (but
// for the issuance account) or past the bound on money, ±levee.MaxMoney.
// Bounding every balance bounds the money issued too: it is minus the
// issuance account's balance. So every stored balance can be read back, and
// the balances of all accounts add up within int64 (see levee.MaxMoney).
func checkBalance(a *account) error {
	switch {
	case a.Balance < 0 && !a.MayGoNegative:
		return insufficientFunds(a.Key)
	case a.Balance < -levee.MaxMoney:
		return levee.Errorf(levee.ECONFLICT, "%s would pass the bound on money: at most %s may be issued in all", a.Key, levee.MaxMoney)
	case a.Balance > levee.MaxMoney:
		return levee.Errorf(levee.ECONFLICT, "the balance of %s would pass the bound on money, %s", a.Key, levee.MaxMoney)
	}
	return nil
}

// appendRowsSQL writes an append's entries ($1-$7) and postings ($8-$11):
// the start of AppendSQL and of appendExpectSQL, whose CTEs follow.
const appendRowsSQL = `
		WITH e AS (
			INSERT INTO ledger_entries (seq, at, kind, ref, idempotency_key, prev_hash, hash)
			SELECT seq, at, kind, ref, NULLIF(ikey, ''), prev_hash, hash
			FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::bytea[])
				AS t (seq, at, kind, ref, ikey, prev_hash, hash)
		), p AS (
			INSERT INTO ledger_postings (entry_seq, idx, account, amount)
			SELECT entry_seq, idx, account, amount * 0.000001
			FROM unnest($8::bigint[], $9::int[], $10::text[], $11::bigint[]) AS t (entry_seq, idx, account, amount)`

// AppendSQL writes a batch's entries, postings, balance changes and the new
// head: the one write of an append.
const AppendSQL = appendRowsSQL + `
		), b AS (
			UPDATE ledger_accounts a SET balance = a.balance + d.delta * 0.000001
			FROM unnest($12::text[], $13::bigint[]) AS d (key, delta)
			WHERE a.key = d.key
		)
		UPDATE ledger_head SET seq = $14, hash = $15`

// appendEntries numbers and chains the entries out[fresh...] after the head,
// filling in their Seq, PrevHash and Hash, and writes them, their postings,
// the balance changes and the new head in one statement. An entry of the
// private epoch is hashed under the public names of accts (the postings
// keep the keys). Assumes the head lock.
func appendEntries(ctx context.Context, tr trips, head ledgerHead, accts map[string]*account, ts []Transfer, out []Entry, fresh []int, changes []balanceChange) error {
	seq, prev := head.Seq, head.Hash
	n := len(fresh)
	np := 0 // postings: a journal entry carries a posting per trader
	for _, i := range fresh {
		np += len(out[i].Postings)
	}
	var names []string
	var (
		seqs   = make([]int64, n)
		ats    = make([]string, n)
		kinds  = make([]string, n)
		refs   = make([]string, n)
		ikeys  = make([]string, n)
		prevs  = make([][]byte, n)
		hashes = make([][]byte, n)
		pSeq   = make([]int64, 0, np)
		pIdx   = make([]int64, 0, np)
		pAcct  = make([]string, 0, np)
		pAmt   = make([]int64, 0, np)
		bKey   = make([]string, len(changes))
		bDelta = make([]int64, len(changes))
		buf    []byte
	)
	for k, i := range fresh {
		seq++
		e := &out[i]
		e.Seq, e.PrevHash = seq, prev
		names = names[:0]
		if head.private(seq) {
			for _, p := range e.Postings {
				names = append(names, publicName(accts[p.Account]))
			}
		}
		buf = e.appendCanonical(buf[:0], names)
		e.Hash = chainHash(prev, buf)
		prev = e.Hash
		seqs[k], ats[k], kinds[k], refs[k], ikeys[k], prevs[k], hashes[k] =
			seq, e.At.Format(time.RFC3339Nano), e.Kind, e.Ref, ts[i].IdempotencyKey, e.PrevHash, e.Hash
		for j, p := range e.Postings {
			pSeq = append(pSeq, seq)
			pIdx = append(pIdx, int64(j))
			pAcct = append(pAcct, p.Account)
			pAmt = append(pAmt, int64(p.Amount))
		}
	}
	for i, c := range changes {
		bKey[i], bDelta[i] = c.key, int64(c.delta)
	}
	// Amounts travel as integer micro-units and become NUMERIC by an exact
	// multiplication. Timestamps travel as RFC 3339 text, also exact.
	args := []any{pq.Int64Array(seqs), pq.StringArray(ats), pq.StringArray(kinds), pq.StringArray(refs),
		pq.StringArray(ikeys), pq.ByteaArray(prevs), pq.ByteaArray(hashes),
		pq.Int64Array(pSeq), pq.Int64Array(pIdx), pq.StringArray(pAcct), pq.Int64Array(pAmt),
		pq.StringArray(bKey), pq.Int64Array(bDelta),
		seq, prev}
	err := tr.write(ctx, args, changes)
	switch {
	case pgtx.IsCheckViolation(err, "ledger_accounts_no_overdraft"):
		// checkFunds should have refused it: something outside the ledger
		// moved a balance under us.
		return insufficientFunds(failingKey(err))
	case pgtx.IsUniqueViolation(err, "ledger_entries_idempotency_key_idx"):
		return levee.Errorf(levee.ECONFLICT, "idempotency key reused")
	case err != nil:
		return fmt.Errorf("append %d entries: %w", n, pgtx.Unavailable(err))
	}
	return nil
}

// resolveKeys sorts ts into transfers to append (fresh), repeats of an
// earlier transfer in the same batch (alias) and repeats of a stored entry
// (out[i] replaced by the stored entry). alias maps an index to the earlier
// index it repeats. A repeat must ask for the same postings, kind and ref.
// Assumes the head lock.
func resolveKeys(ctx context.Context, q querier, ts []Transfer, out []Entry) (fresh []int, alias map[int]int, err error) {
	var keys []string
	for _, t := range ts {
		if t.IdempotencyKey != "" {
			keys = append(keys, t.IdempotencyKey)
		}
	}
	var stored map[string]Entry
	if len(keys) > 0 {
		if stored, err = entriesByKey(ctx, q, keys); err != nil {
			return nil, nil, err
		}
	}
	fresh = make([]int, 0, len(ts))
	alias = map[int]int{}
	first := map[string]int{}
	for i, t := range ts {
		k := t.IdempotencyKey
		if k == "" {
			fresh = append(fresh, i)
			continue
		}
		if e, ok := stored[k]; ok {
			if err := sameRequest(out[i], e); err != nil {
				return nil, nil, &batchError{i, err}
			}
			out[i] = e
			continue
		}
		if j, ok := first[k]; ok {
			if err := sameRequest(out[i], out[j]); err != nil {
				return nil, nil, &batchError{i, err}
			}
			alias[i] = j
			continue
		}
		first[k] = i
		fresh = append(fresh, i)
	}
	return fresh, alias, nil
}

// sameRequest reports as ECONFLICT how a repeat with the same idempotency key
// differs from the entry it repeats. At is not compared: a retry that left it
// zero gets a new "now".
func sameRequest(req, e Entry) error {
	if !slices.Equal(req.Postings, e.Postings) {
		return levee.Errorf(levee.ECONFLICT, "idempotency key reused with different postings")
	}
	if req.Kind != e.Kind || req.Ref != e.Ref {
		return levee.Errorf(levee.ECONFLICT, "idempotency key reused with a different kind or ref")
	}
	return nil
}

// entriesByKey returns the stored entries carrying any of keys, by key.
func entriesByKey(ctx context.Context, q querier, keys []string) (map[string]Entry, error) {
	var rows []struct {
		entryRow
		Key string `db:"idempotency_key"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, `
		SELECT seq, at, kind, ref, prev_hash, hash, idempotency_key
		FROM ledger_entries WHERE idempotency_key = ANY($1) ORDER BY seq`, pq.StringArray(keys)); err != nil {
		return nil, fmt.Errorf("look up idempotency keys: %w", pgtx.Unavailable(err))
	}
	if len(rows) == 0 {
		return nil, nil
	}
	es := make([]Entry, len(rows))
	for i, r := range rows {
		es[i] = r.entry()
	}
	if err := attachPostings(ctx, q, es, false); err != nil {
		return nil, err
	}
	m := make(map[string]Entry, len(rows))
	for i, r := range rows {
		m[r.Key] = es[i]
	}
	return m, nil
}

// failingKey digs the account key out of a check violation's detail,
// "Failing row contains (cash:42, cash, f, -1.000000, ...)". Keys hold no
// comma or space, so the first field is the whole key.
func failingKey(err error) string {
	var pe *pq.Error
	if !errors.As(err, &pe) {
		return "an account"
	}
	_, rest, ok := strings.Cut(pe.Detail, "(")
	key, _, ok2 := strings.Cut(rest, ",")
	if !ok || !ok2 || !validKey(key) {
		return "an account"
	}
	return key
}

// LockBalances takes the ledger's head lock and then locks and reads the
// accounts keys, in the ledger's lock order, inside tx: a caller that must
// decide how much to move from the balances (a void taking back profits
// from cash) reads them here, and they cannot change before tx ends. Keys
// with no account are missing from the result.
func LockBalances(ctx context.Context, tx *sqlx.Tx, keys []string) (map[string]levee.Micros, error) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	_, accts, err := lockHeadAndAccounts(ctx, tx, call{trips: txTrips{tx: tx}}, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]levee.Micros, len(accts))
	for k, a := range accts {
		out[k] = a.Balance
	}
	return out, nil
}
