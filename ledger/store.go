package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/pgtx"
)

// MaxPageSize bounds one page of the public export.
const MaxPageSize = 1000

// Ledger moves money in transactions of its own, serves the public export and
// verifies the chain. Code that changes business state together with money
// calls Post or PostBatch inside its own transaction instead.
type Ledger struct {
	db       *sqlx.DB
	verified verifyCache // what Verified serves and extends
}

// New returns a Ledger on db.
func New(db *sqlx.DB) *Ledger { return &Ledger{db: db} }

// Transfer appends one entry in a transaction of its own, retried on
// deadlock or serialization failure. Errors: EINVALID for a malformed
// transfer or an unknown account, ECONFLICT for insufficient funds or a
// reused idempotency key, EUNAVAILABLE when the database is down.
func (l *Ledger) Transfer(ctx context.Context, t Transfer) (Entry, error) {
	var e Entry
	err := pgtx.Run(ctx, l.db, func(tx *sqlx.Tx) error {
		es, _, err := postBatch(ctx, tx, []Transfer{t}, call{trips: txTrips{tx: tx}})
		if err != nil {
			return err
		}
		e = es[0]
		return nil
	})
	if err != nil {
		return Entry{}, fmt.Errorf("ledger transfer: %w", unbatch(err))
	}
	return e, nil
}

// OpenAccount opens a ledger account in a transaction of its own; see the
// package-level OpenAccount.
func (l *Ledger) OpenAccount(ctx context.Context, key, kind string, mayGoNegative bool) error {
	return pgtx.Run(ctx, l.db, func(tx *sqlx.Tx) error {
		return OpenAccount(ctx, tx, key, kind, mayGoNegative)
	})
}

// Balance returns the balance of account key. Errors: ENOTFOUND.
func (l *Ledger) Balance(ctx context.Context, key string) (levee.Micros, error) {
	return Balance(ctx, l.db, key)
}

// Balances returns the balances of the accounts among keys that exist, by
// key; see the function Balances.
func (l *Ledger) Balances(ctx context.Context, keys []string) (map[string]levee.Micros, error) {
	return Balances(ctx, l.db, keys)
}

// Entries returns up to limit entries with seq > after, in seq order, with
// their postings: one page of the public export. Entries of the private
// epoch name their accounts by their public names (a person's cash is
// "cash:<pseudonym>"), the names their hashes cover. Paging by seq never skips an
// entry, because entries commit in seq order (the head lock). Errors:
// EINVALID for after < 0 or limit outside 1..MaxPageSize.
func (l *Ledger) Entries(ctx context.Context, after int64, limit int) ([]Entry, error) {
	if after < 0 {
		return nil, levee.Invalid("after", "after must not be negative")
	}
	if limit < 1 || limit > MaxPageSize {
		return nil, levee.Invalid("limit", "limit must be between 1 and %d", MaxPageSize)
	}
	es, err := selectEntries(ctx, l.db, after, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger entries after %d: %w", after, pgtx.Unavailable(err))
	}
	return es, nil
}

// Page returns one page of the public export in the shape the web layer
// serves. Errors as Entries.
func (l *Ledger) Page(ctx context.Context, after int64, limit int) (Page, error) {
	es, err := l.Entries(ctx, after, limit)
	if err != nil {
		return Page{}, err
	}
	p := Page{Entries: es, NextAfter: after}
	if p.Entries == nil {
		p.Entries = []Entry{}
	}
	if n := len(es); n > 0 {
		p.NextAfter = es[n-1].Seq
	}
	return p, nil
}

// OpenAccount creates ledger account key inside the caller's transaction.
// Opening an existing account with the same kind and mayGoNegative does
// nothing. Errors: EINVALID for a malformed key or kind, ECONFLICT if key
// exists with a different kind or mayGoNegative.
func OpenAccount(ctx context.Context, tx *sqlx.Tx, key, kind string, mayGoNegative bool) error {
	if !validKey(key) {
		return levee.Invalid("key", "account key must be 1-100 characters of a-z, 0-9, '_', '.', ':' or '-'")
	}
	if !kindRe.MatchString(kind) {
		return levee.Invalid("kind", "account kind must be 1-64 characters of a-z, 0-9, '_', '.', ':' or '-'")
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO ledger_accounts (key, kind, may_go_negative) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO NOTHING`, key, kind, mayGoNegative)
	if err != nil {
		return fmt.Errorf("open ledger account %s: %w", key, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("open ledger account %s: %w", key, err)
	} else if n == 1 {
		return nil
	}
	var have struct {
		Kind          string `db:"kind"`
		MayGoNegative bool   `db:"may_go_negative"`
	}
	if err := tx.GetContext(ctx, &have, `SELECT kind, may_go_negative FROM ledger_accounts WHERE key = $1`, key); err != nil {
		return fmt.Errorf("open ledger account %s: %w", key, err)
	}
	if have.Kind != kind || have.MayGoNegative != mayGoNegative {
		return levee.Errorf(levee.ECONFLICT, "ledger account %s already exists with kind %s (may go negative: %t)", key, have.Kind, have.MayGoNegative)
	}
	return nil
}

// Balance returns the balance of account key as q sees it. Errors: ENOTFOUND.
func Balance(ctx context.Context, q sqlx.QueryerContext, key string) (levee.Micros, error) {
	var b levee.Micros
	err := sqlx.GetContext(ctx, q, &b, `SELECT balance FROM ledger_accounts WHERE key = $1`, key)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, levee.Errorf(levee.ENOTFOUND, "no ledger account %s", key)
	} else if err != nil {
		return 0, fmt.Errorf("ledger balance %s: %w", key, pgtx.Unavailable(err))
	}
	return b, nil
}

// BalancesSQL reads the balances of the accounts $1 (the engine's wallets,
// on the order path), exported for tools that explain its plan.
const BalancesSQL = `SELECT key, balance FROM ledger_accounts WHERE key = ANY($1)`

// Balances returns the balances of the accounts among keys that exist, by
// key, as q sees them; a key with no account is absent from the map. It reads
// without locking: a caller that must not race a posting reads inside the
// transaction that holds the account locks (PostBatchBalances).
func Balances(ctx context.Context, q sqlx.QueryerContext, keys []string) (map[string]levee.Micros, error) {
	var rows []struct {
		Key     string       `db:"key"`
		Balance levee.Micros `db:"balance"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, BalancesSQL, pq.Array(keys)); err != nil {
		return nil, fmt.Errorf("ledger balances: %w", err)
	}
	m := make(map[string]levee.Micros, len(rows))
	for _, r := range rows {
		m[r.Key] = r.Balance
	}
	return m, nil
}

// entryRow is one ledger_entries row without its postings.
type entryRow struct {
	Seq      int64     `db:"seq"`
	At       time.Time `db:"at"`
	Kind     string    `db:"kind"`
	Ref      string    `db:"ref"`
	PrevHash []byte    `db:"prev_hash"`
	Hash     []byte    `db:"hash"`
}

func (r entryRow) entry() Entry {
	return Entry{Seq: r.Seq, At: r.At.UTC(), Kind: r.Kind, Ref: r.Ref, PrevHash: r.PrevHash, Hash: r.Hash}
}

// postingRow is one ledger_postings row.
type postingRow struct {
	EntrySeq int64        `db:"entry_seq"`
	Idx      int          `db:"idx"`
	Account  string       `db:"account"`
	Amount   levee.Micros `db:"amount"`
}

// selectEntries returns up to limit entries after seq after, with postings.
func selectEntries(ctx context.Context, q sqlx.QueryerContext, after int64, limit int) ([]Entry, error) {
	var rows []entryRow
	if err := sqlx.SelectContext(ctx, q, &rows, `
		SELECT seq, at, kind, ref, prev_hash, hash
		FROM ledger_entries WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit); err != nil {
		return nil, err
	}
	es := make([]Entry, len(rows))
	for i, r := range rows {
		es[i] = r.entry()
	}
	if err := attachPostings(ctx, q, es, true); err != nil {
		return nil, err
	}
	return es, nil
}

// postingsSQL reads the postings of the entries $1 in order; with $2 it
// names the accounts of entries of the private epoch by their public names.
const postingsSQL = `
		SELECT p.entry_seq, p.idx, p.amount,
			CASE WHEN $2 AND h.private_from IS NOT NULL AND p.entry_seq >= h.private_from
				THEN coalesce(a.public, p.account) ELSE p.account END AS account
		FROM ledger_postings p
		CROSS JOIN ledger_head h
		LEFT JOIN ledger_accounts a ON a.key = p.account AND a.public IS NOT NULL
		WHERE p.entry_seq = ANY($1) ORDER BY p.entry_seq, p.idx`

// attachPostings loads the postings of es, which must be in seq order,
// under their public names when public is set (the export) and their keys
// otherwise.
func attachPostings(ctx context.Context, q sqlx.QueryerContext, es []Entry, public bool) error {
	if len(es) == 0 {
		return nil
	}
	seqs := make([]int64, len(es))
	for i, e := range es {
		seqs[i] = e.Seq
	}
	var ps []postingRow
	if err := sqlx.SelectContext(ctx, q, &ps, postingsSQL, pq.Int64Array(seqs), public); err != nil {
		return fmt.Errorf("load postings: %w", err)
	}
	i := 0
	for _, p := range ps {
		for es[i].Seq != p.EntrySeq {
			i++
		}
		es[i].Postings = append(es[i].Postings, Posting{Account: p.Account, Amount: p.Amount})
	}
	return nil
}

// Movement is one posting to an account with its entry's time, kind and
// reference: a line of an account's statement.
type Movement struct {
	Seq    int64        `json:"seq" db:"seq"`
	At     time.Time    `json:"at" db:"at"`
	Kind   string       `json:"kind" db:"kind"`
	Ref    string       `json:"ref" db:"ref"`
	Amount levee.Micros `json:"amount" db:"amount"`
}

// History returns the newest movements of account, newest first, at most
// limit of them (the postings index serves it).
func (l *Ledger) History(ctx context.Context, account string, limit int) ([]Movement, error) {
	ms := []Movement{}
	err := l.db.SelectContext(ctx, &ms, `SELECT e.seq, e.at, e.kind, e.ref, p.amount FROM ledger_postings p
		JOIN ledger_entries e ON e.seq = p.entry_seq WHERE p.account = $1 ORDER BY p.entry_seq DESC, p.idx LIMIT $2`, account, limit)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("history of %s: %w", account, err))
	}
	return ms, nil
}

// Flow is the money that moved in or out of one account on one day by one
// kind of entry.
type Flow struct {
	Day     string       `json:"day" db:"day"`
	Kind    string       `json:"kind" db:"kind"`
	Entries int64        `json:"entries" db:"entries"`
	In      levee.Micros `json:"in" db:"inflow"`
	Out     levee.Micros `json:"out" db:"outflow"`
}

// Flows sums the postings to account by UTC day and entry kind, oldest
// first.
func (l *Ledger) Flows(ctx context.Context, account string) ([]Flow, error) {
	flows := []Flow{}
	if err := l.db.SelectContext(ctx, &flows, `
		SELECT to_char(date_trunc('day', e.at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day, e.kind, count(*) AS entries,
			coalesce(sum(p.amount) FILTER (WHERE p.amount > 0), 0) AS inflow,
			coalesce(-sum(p.amount) FILTER (WHERE p.amount < 0), 0) AS outflow
		FROM ledger_postings p JOIN ledger_entries e ON e.seq = p.entry_seq
		WHERE p.account = $1
		GROUP BY 1, 2 ORDER BY 1, 2`, account); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("flows of %s: %w", account, err))
	}
	return flows, nil
}

// EntryTimes returns the times of the entries among seqs, by seq.
func EntryTimes(ctx context.Context, q sqlx.QueryerContext, seqs []int64) (map[int64]time.Time, error) {
	var rows []struct {
		Seq int64     `db:"seq"`
		At  time.Time `db:"at"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT seq, at FROM ledger_entries WHERE seq = ANY($1)`, pq.Array(seqs)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("entry times: %w", err))
	}
	at := make(map[int64]time.Time, len(rows))
	for _, r := range rows {
		at[r.Seq] = r.At
	}
	return at, nil
}

// Head returns the seq and hash of the last entry as q sees it (seq 0 and a
// zero hash for an empty ledger): what a backup records so that a restore
// can be checked against it.
func Head(ctx context.Context, q sqlx.QueryerContext) (int64, []byte, error) {
	return readHead(ctx, q, "")
}

// HeadShared reads the head as Head does, inside tx, and keeps a share lock
// on it until tx ends: no append commits meanwhile (appends lock the head FOR
// UPDATE), so whatever tx records with this head, such as the statement that
// announces it to the neighbours, is ordered with the appends. A transaction
// that reads it must not append after (the ledger comes last in the lock
// order, docs/locks.md, and two readers upgrading would deadlock).
func HeadShared(ctx context.Context, tx *sqlx.Tx) (int64, []byte, error) {
	return readHead(ctx, tx, " FOR SHARE")
}

// readHead reads the head's seq and hash, with lock ("" or a locking clause).
func readHead(ctx context.Context, q sqlx.QueryerContext, lock string) (int64, []byte, error) {
	var head struct {
		Seq  int64  `db:"seq"`
		Hash []byte `db:"hash"`
	}
	if err := sqlx.GetContext(ctx, q, &head, `SELECT seq, hash FROM ledger_head`+lock); err != nil {
		return 0, nil, fmt.Errorf("ledger head: %w", err)
	}
	return head.Seq, head.Hash, nil
}
