package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/pgtx"
)

// Session appends with a caller's writes on a connection of the caller's
// own, in a transaction of two round trips in all: BEGIN, the caller's
// writes with the head's lock and a read of the accounts in the first (the
// accounts unlocked: ReadAccountsSQL says why), the append and COMMIT in
// the second. Through database/sql the same transaction is four (BEGIN, the
// lock, the append, COMMIT), since lib/pq sends one statement per round
// trip; PostgreSQL's simple query protocol takes several statements in one
// message, but no parameters. So each statement is prepared once on the
// connection at the SQL level (PREPARE) and run as EXECUTE with its
// arguments written as literals: PostgreSQL parses the short EXECUTE and
// runs the plan it keeps, as it does for a statement prepared through the
// protocol. The hash chain is still computed here, in Go, between the two
// round trips, under the head lock.
//
// Under load a round trip costs far more than its network time: the
// process that sent it waits to be scheduled again among busy ones (on the
// market journal's connection, 1.2-1.8 ms for a BEGIN at 256 clients on two
// cores, docs/engine.md).
//
// A Session is not safe for concurrent use, nor is its connection to be
// used by anyone else while the Session is. Drop both when Broken says so.
type Session struct {
	conn     *sqlx.Conn
	prepared map[string]string // statement text → its name on conn
	open     bool              // a transaction began and has not ended
	broken   bool
	buf      []byte // the last round trip's query, kept for the next one's
	memo     *memo  // what its last commit left in the ledger; nil unless it remembers
}

// NewSession returns a Session on c, which it does not own: the caller
// closes c, and when c is replaced, makes a new Session.
func NewSession(c *sqlx.Conn) *Session {
	return &Session{conn: c, prepared: map[string]string{}}
}

// Remember makes s keep what each of its commits left in the ledger, and
// commit the next in one round trip when the ledger is still so (memo.go).
// Worth it only where s is the ledger's usual writer: each commit that finds
// the ledger changed costs a round trip more.
func (s *Session) Remember() {
	if s.memo == nil {
		s.memo = newMemo()
	}
}

// Stats counts s's commits in one round trip and those whose memory was
// found wrong (zero unless s remembers).
func (s *Session) Stats() SessionStats {
	if s.memo == nil {
		return SessionStats{}
	}
	return s.memo.stats
}

// Broken reports that the connection was left in an unknown state (a
// transaction that could not be rolled back): it must not be used again.
func (s *Session) Broken() bool { return s.broken }

// PostCommitWith runs the caller's writes w, appends ts after them and
// commits, in one transaction of two round trips; w.Locked, if set, runs
// between them. It returns the balance after the batch of every account ts
// posts to and of the accounts read, all locked with the head. The
// transfers must carry no idempotency key (a batch of replays would have
// nothing to append, and the caller's writes must still commit). On error
// the transaction is rolled back and nothing committed, except when the
// connection failed during the second round trip: then whether it committed
// is unknown (as with any COMMIT whose answer is lost). Errors as
// PostBatchBalancesWith.
func (s *Session) PostCommitWith(ctx context.Context, w With, ts []Transfer, read []string) (map[string]levee.Micros, error) {
	if len(ts) == 0 || len(ts) > MaxBatch {
		return nil, levee.Invalid("transfers", "between 1 and %d transfers per batch", MaxBatch)
	}
	for i, t := range ts {
		if t.IdempotencyKey != "" {
			return nil, levee.Invalid("transfers["+strconv.Itoa(i)+"].idempotency_key", "PostCommitWith takes no idempotency keys")
		}
	}
	locked := false
	if w.Locked != nil {
		callers := w.Locked
		w.Locked = func() { locked = true; callers() }
	}
	balances, err := s.post(ctx, w, ts, read)
	if pe := (*pq.Error)(nil); errors.As(err, &pe) && pe.Code == "26000" && !s.broken && !locked {
		// The connection no longer has the statements (a DISCARD ALL, or
		// a new server connection behind the same client one). Nothing
		// was committed: the statement that was not found failed, and the
		// transaction was rolled back. Prepare them again, once. Not once
		// w.Locked ran: the caller may have acted on holding the locks (the
		// journal orders its commits from there), so the error is its.
		clear(s.prepared)
		balances, err = s.post(ctx, w, ts, read)
	}
	return balances, err
}

// post is one attempt of PostCommitWith.
func (s *Session) post(ctx context.Context, w With, ts []Transfer, read []string) (map[string]levee.Micros, error) {
	var headName, readName, app string
	if err := s.prepareAll(ctx, statement{&headName, headSQLAfter(w)}, statement{&readName, ReadAccountsSQL}, statement{&app, AppendSQL}); err != nil {
		return nil, err
	}
	defer s.rollbackIfOpen()
	if s.memo.ready() {
		t := &oneTrip{s: s, headName: headName}
		if err := s.prepareAll(ctx, statement{&t.peekName, peekHeadSQL}, statement{&t.expectName, appendExpectSQL}); err != nil {
			return nil, err
		}
		balances, done, err := s.postOneTrip(ctx, w, ts, read, t)
		if done {
			return balances, err
		}
	}
	t := &sessionTrips{s: s, headName: headName, readName: readName, appendName: app}
	out, balances, err := postBatchBalances(ctx, s.conn, ts, call{trips: t, lockArgs: w.Args, locked: w.Locked, read: read})
	if err != nil {
		s.memo.forget()
		return nil, err
	}
	s.memo.learn(t.head, out, t.accts)
	return balances, nil
}

// postOneTrip tries the append in one round trip from what s remembers.
// done is false when nothing was committed and the append should go the
// usual way: an account not remembered, a refusal computed from memory
// (which the database's own balances decide), or PostgreSQL's refusal of
// the round trip, the memory found wrong or not (a caller's write that
// fails, fails again the usual way with the usual error).
func (s *Session) postOneTrip(ctx context.Context, w With, ts []Transfer, read []string, t *oneTrip) (balances map[string]levee.Micros, done bool, err error) {
	out, balances, err := postBatchBalances(ctx, s.conn, ts, call{trips: t, lockArgs: w.Args, read: read})
	if err == nil {
		s.memo.learn(t.head, out, t.accts)
		s.memo.hit()
		if w.Locked != nil {
			w.Locked() // it held them, for the round trip
		}
		return balances, true, nil
	}
	if t.sent && !t.refused {
		s.memo.forget()
		return nil, true, err // committed or not: unknown
	}
	// Refused or never sent: nothing was committed. A transaction the
	// refusal left open is rolled back with the next round trip's BEGIN.
	if isMiss(err) {
		s.memo.miss()
	}
	return nil, false, nil
}

// statement is a query and where prepareAll puts the name it is prepared
// under.
type statement struct {
	name  *string
	query string
}

// prepareAll prepares each of sts on first use and sets its name.
func (s *Session) prepareAll(ctx context.Context, sts ...statement) error {
	for _, st := range sts {
		name, err := s.prepare(ctx, st.query)
		if err != nil {
			return err
		}
		*st.name = name
	}
	return nil
}

// prepare returns the name under which query is prepared on the
// connection, preparing it on first use.
func (s *Session) prepare(ctx context.Context, query string) (string, error) {
	if name, ok := s.prepared[query]; ok {
		return name, nil
	}
	// Unique in the process, so that a Session made on a connection that
	// another one used before cannot find its name taken.
	name := "levee_ledger_" + strconv.FormatInt(statementNames.Add(1), 10)
	if _, err := s.conn.ExecContext(ctx, "PREPARE "+name+" AS "+query); err != nil {
		return "", fmt.Errorf("ledger session prepare: %w", pgtx.Unavailable(err))
	}
	s.prepared[query] = name
	return name, nil
}

// rollbackIfOpen ends a transaction that an error left open. A connection
// on which that fails is Broken.
func (s *Session) rollbackIfOpen() {
	if !s.open {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		s.broken = true
		return
	}
	s.open = false
}

// statementNames numbers the statements Sessions prepare.
var statementNames atomic.Int64

// sessionTrips are a Session's two round trips of one append. The first
// is BEGIN, the caller's writes with the head's lock (headSQLAfter), and
// the accounts read once the head is held (ReadAccountsSQL), three
// statements in one simple query.
type sessionTrips struct {
	s          *Session
	headName   string
	readName   string
	appendName string
	head       ledgerHead          // as lock read it
	accts      map[string]*account // as lock read them, and checkFunds left them
}

func (t *sessionTrips) lock(ctx context.Context, args []any, keys []string) (ledgerHead, map[string]*account, error) {
	// READ COMMITTED whatever the database's default, so that the read
	// takes a snapshot of its own, after the head's lock.
	begin := "BEGIN ISOLATION LEVEL READ COMMITTED; EXECUTE "
	if t.s.open {
		// A commit from memory that PostgreSQL refused left its
		// transaction open and failed: end it in the same message.
		begin = "ROLLBACK; " + begin
	}
	q, err := appendExecute(t.s.buf[:0], begin+t.headName, args, "")
	if err != nil {
		return ledgerHead{}, nil, err
	}
	if q, err = appendExecute(q, "; EXECUTE "+t.readName, []any{pq.StringArray(keys)}, ""); err != nil {
		return ledgerHead{}, nil, err
	}
	t.s.buf = q
	t.s.open = true // whatever the answer: a BEGIN may have run
	rows, err := t.s.conn.QueryContext(ctx, string(q))
	if err != nil {
		return ledgerHead{}, nil, fmt.Errorf("lock ledger head: %w", pgtx.Unavailable(err))
	}
	t.head, t.accts, err = scanHeadThenAccounts(rows, keys)
	return t.head, t.accts, err
}

func (t *sessionTrips) write(ctx context.Context, args []any, _ []balanceChange) error {
	q, err := appendExecute(t.s.buf[:0], "EXECUTE "+t.appendName, args, "; COMMIT")
	if err != nil {
		return err
	}
	t.s.buf = q
	if _, err := t.s.conn.ExecContext(ctx, string(q)); err != nil {
		return err
	}
	t.s.open = false
	return nil
}
