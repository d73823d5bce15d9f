package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/lib/pq"

	"levee/pgtx"
)

// A Session that remembers (Remember) keeps what its last commit left in the
// ledger: the head it wrote, and the balance and public name of every
// account it read or posted to. Its next append can then be computed before
// anything is sent (the funds check, the seqs and the hash chain from that
// memory), and the whole transaction goes in one round trip: BEGIN, the
// caller's writes with the head's lock, the append and COMMIT.
//
// The memory is never trusted, only checked. The append's statement
// (appendExpectSQL) runs once the head is locked, and writes nothing unless
// the ledger still holds exactly what the append was computed from: the
// head's seq, hash and private epoch, and each account's balance and public
// name (for the accounts the batch changes, as conditions of the balance
// UPDATE that reads the row anyway; for those it posts to with no net
// change, by a look-up of their own). Anything else (another writer moved
// the head, a balance changed, a person was given a pseudonym, the private
// epoch began) makes ledger_expect (migration 0025) abort the transaction
// before its COMMIT, and the Session appends again in two round trips from
// what it then reads (the first of them rolling the failed transaction
// back). So a commit in one round trip writes what a commit in two would
// have written at the same moment, byte for byte. While the memory was
// lately found wrong, the message first looks at the head unlocked
// (peekHeadSQL): where another writer keeps moving it (instances of a
// cluster sharing a ledger), most misses so fail before any work that would
// be undone.
//
// One round trip instead of two saves a commit the second trip's wake-ups
// (the journal's goroutine and PostgreSQL's backend, each waiting for the
// other) and the accounts' read: at low load that is a tenth of an order's
// latency, and under load the read was an index look-up per trader.

// memoAccounts bounds the accounts a Session remembers: past it, it starts
// over, and the accounts it forgot cost their next commit the two round
// trips.
const memoAccounts = 1 << 16

// maxMemoBackoff bounds how many commits a Session sends in two round trips
// after its memory was found wrong, before it tries one again. The backoff
// doubles with each miss and halves with each commit from memory, so a
// Session whose ledger others write all the time (instances of a cluster
// sharing one ledger) tries once in about that many commits: a miss wastes
// the whole transaction's work in PostgreSQL, since the caller's writes run
// before the append finds the ledger changed.
const maxMemoBackoff = 64

// errForgotten: an account of the batch is not remembered. Nothing was sent.
var errForgotten = errors.New("ledger session: an account of the batch is not remembered")

// memo is what a remembering Session knows of the ledger.
type memo struct {
	head    ledgerHead
	valid   bool // head is as this Session's last commit left it
	accts   map[string]account
	skip    int // commits left to send in two round trips before trying one
	backoff int
	stats   SessionStats
}

// SessionStats counts a Session's commits by the way they went.
type SessionStats struct {
	OneTrip int64 // committed in one round trip, from memory
	Missed  int64 // the memory was wrong: nothing written, then two round trips
}

func newMemo() *memo { return &memo{accts: map[string]account{}} }

// ready says whether the next commit tries one round trip.
func (m *memo) ready() bool {
	if m == nil || !m.valid {
		return false
	}
	if m.skip > 0 {
		m.skip--
		return false
	}
	return true
}

// learn records the ledger as a commit left it: head with out's last entry
// (the commit's entries in seq order) and the accounts after it.
func (m *memo) learn(head ledgerHead, out []Entry, accts map[string]*account) {
	if m == nil || len(out) == 0 {
		return
	}
	last := out[len(out)-1]
	head.Seq, head.Hash = last.Seq, last.Hash
	if len(m.accts)+len(accts) > memoAccounts {
		clear(m.accts)
	}
	for k, a := range accts {
		m.accts[k] = *a
	}
	m.head, m.valid = head, true
}

// forget drops the head: after a failed commit the ledger's state is the
// database's to say.
func (m *memo) forget() {
	if m != nil {
		m.valid = false
	}
}

// suspect says whether the memory was found wrong lately: since its last
// miss, fewer hits than halve the backoff to nothing.
func (m *memo) suspect() bool { return m.backoff > 0 }

func (m *memo) hit() {
	m.stats.OneTrip++
	m.backoff /= 2
}

func (m *memo) miss() {
	m.stats.Missed++
	m.valid = false
	m.backoff = min(max(1, 2*m.backoff), maxMemoBackoff)
	m.skip = m.backoff
}

// oneTrip is a remembering Session's append in one round trip: lock takes
// the head and accounts from memory without sending anything, and write
// sends BEGIN, the caller's writes with the head's lock, the append with its
// expectations, and COMMIT.
type oneTrip struct {
	s          *Session
	peekName   string // peekHeadSQL
	headName   string
	expectName string
	headArgs   []any
	head       ledgerHead
	keys       []string
	before     []account // the accounts as remembered, in keys' order
	accts      map[string]*account
	sent       bool // the round trip was sent
	refused    bool // PostgreSQL answered it with an error: nothing committed
}

func (t *oneTrip) lock(_ context.Context, args []any, keys []string) (ledgerHead, map[string]*account, error) {
	m := t.s.memo
	before := make([]account, 2*len(keys))
	now := before[len(keys):] // checkFunds updates these; before keeps the expectations
	before = before[:len(keys)]
	accts := make(map[string]*account, len(keys))
	for i, k := range keys {
		a, ok := m.accts[k]
		if !ok {
			return ledgerHead{}, nil, errForgotten
		}
		before[i], now[i] = a, a
		accts[k] = &now[i]
	}
	t.headArgs, t.head, t.keys, t.before, t.accts = args, m.head, keys, before, accts
	return m.head, accts, nil
}

func (t *oneTrip) write(ctx context.Context, args []any, changes []balanceChange) error {
	// The expectations: for each balance change (in the order of the
	// append's $12), the account's balance before it and its public name;
	// for each other account posted to, its key, balance and public name;
	// and the head.
	// Both keys and changes are in key order, changes a subset of keys.
	var (
		cBefore = make([]int64, 0, len(changes))
		cPublic = make([]string, 0, len(changes))
		uKey    = []string{} // '{}' when empty, not NULL
		uBefore = []int64{}
		uPublic = []string{}
		j       int
	)
	for i, a := range t.before {
		if j < len(changes) && changes[j].key == t.keys[i] {
			cBefore = append(cBefore, int64(a.Balance))
			cPublic = append(cPublic, a.Public)
			j++
			continue
		}
		uKey = append(uKey, t.keys[i])
		uBefore = append(uBefore, int64(a.Balance))
		uPublic = append(uPublic, a.Public)
	}
	if j != len(changes) {
		return fmt.Errorf("append in one round trip: %d balance changes, %d of them among the accounts", len(changes), j)
	}
	args = append(args[:len(args):len(args)],
		pq.Int64Array(cBefore), pq.StringArray(cPublic),
		pq.StringArray(uKey), pq.Int64Array(uBefore), pq.StringArray(uPublic),
		t.head.Seq, t.head.Hash, t.head.PrivateFrom)
	// While the memory has lately been wrong, first a look at the head,
	// unlocked: when another writer keeps moving it (instances of a cluster
	// share the ledger), the transaction then fails before the caller's
	// writes, which would otherwise be done and undone. The append's own
	// check, under the head's lock, is the one that counts, so a Session
	// whose memory keeps holding (the only writer's) saves the statement.
	q := append(t.s.buf[:0], "BEGIN ISOLATION LEVEL READ COMMITTED"...)
	var err error
	if t.s.memo.suspect() {
		head := []any{t.head.Seq, t.head.Hash, t.head.PrivateFrom}
		if q, err = appendExecute(q, "; EXECUTE "+t.peekName, head, ""); err != nil {
			return err
		}
	}
	if q, err = appendExecute(q, "; EXECUTE "+t.headName, t.headArgs, ""); err != nil {
		return err
	}
	if q, err = appendExecute(q, "; EXECUTE "+t.expectName, args, "; COMMIT"); err != nil {
		return err
	}
	t.s.buf = q
	t.s.open, t.sent = true, true
	if _, err := t.s.conn.ExecContext(ctx, string(q)); err != nil {
		// An error answered by PostgreSQL ended the string of statements
		// before its COMMIT: nothing of it was committed. Any other
		// (the connection lost, the context done) leaves that unknown.
		var pe *pq.Error
		t.refused = errors.As(err, &pe)
		return fmt.Errorf("append in one round trip: %w", pgtx.Unavailable(err))
	}
	t.s.open = false
	return nil
}

// isMiss reports PostgreSQL's refusal of an append computed from a memory
// that no longer holds (ledger_expect).
func isMiss(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "LV001"
}

// peekHeadSQL fails with LV001 unless the head is at seq $1, hash $2 and
// private_from $3 (0 for none), read without a lock.
const peekHeadSQL = `SELECT ledger_expect(seq = $1 AND hash = $2 AND coalesce(private_from, 0) = $3) FROM ledger_head`

// appendExpectSQL is AppendSQL that writes only if the ledger is as the
// append was computed from, and otherwise fails with SQLSTATE LV001
// (ledger_expect). $16 and $17 are the balance before the change and the
// public name (empty for none) of each account of $12; $18-$20 the key,
// balance and public name of each other account the batch posts to; $21-$23
// the head's seq, hash and private_from (0 for none) before the batch.
// Balances travel as micro-units, as the deltas do.
const appendExpectSQL = appendRowsSQL + `
		), b AS (
			UPDATE ledger_accounts a SET balance = a.balance + d.delta * 0.000001
			FROM unnest($12::text[], $13::bigint[], $16::bigint[], $17::text[]) AS d (key, delta, before, public)
			WHERE a.key = d.key AND a.balance = d.before * 0.000001 AND coalesce(a.public, '') = d.public
			RETURNING 1
		), u AS (
			SELECT 1 FROM unnest($18::text[], $19::bigint[], $20::text[]) AS d (key, before, public)
			JOIN ledger_accounts a ON a.key = d.key AND a.balance = d.before * 0.000001 AND coalesce(a.public, '') = d.public
		), h AS (
			UPDATE ledger_head SET seq = $14, hash = $15
			WHERE seq = $21 AND hash = $22 AND coalesce(private_from, 0) = $23
			RETURNING 1
		)
		SELECT ledger_expect(
			(SELECT count(*) FROM b) = coalesce(cardinality($12::text[]), 0)
			AND (SELECT count(*) FROM u) = coalesce(cardinality($18::text[]), 0)
			AND (SELECT count(*) FROM h) = 1)`
