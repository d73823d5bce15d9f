package ledger_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/ledger"
	"levee/migrations/dbtest"
)

// mustSession returns a Session on a connection of db's of its own.
func mustSession(t *testing.T, db *sqlx.DB) (*ledger.Session, *sqlx.Conn) {
	t.Helper()
	c, err := db.Connx(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ledger.NewSession(c), c
}

// mustBeIdle fails unless c is outside any transaction: lib/pq refuses to
// begin one on a connection that is still in one.
func mustBeIdle(t *testing.T, s *ledger.Session, c *sqlx.Conn) {
	t.Helper()
	if s.Broken() {
		t.Fatal("the session says its connection is broken")
	}
	tx, err := c.BeginTxx(context.Background(), nil)
	if err != nil {
		t.Fatalf("the session's connection is still in a transaction: %v", err)
	}
	tx.Rollback()
}

// TestSessionMatchesPostBatch posts the same flow through PostBatch and
// through a Session (BEGIN with the caller's writes and the locks, then the
// append with COMMIT): see mustMatchPostBatch; and after each post the
// session's connection is outside any transaction.
func TestSessionMatchesPostBatch(t *testing.T) {
	mustMatchPostBatch(t, func(t *testing.T, db *sqlx.DB) poster {
		s, c := mustSession(t, db)
		return func(w ledger.With, batch []ledger.Transfer) (map[string]levee.Micros, error) {
			balances, err := s.PostCommitWith(context.Background(), w, batch, []string{"treasury"})
			mustBeIdle(t, s, c)
			return balances, err
		}
	})
}

// TestSessionRefuses: the ledger's refusals, and a failing write of the
// caller's (in the first round trip), each leave nothing behind, neither
// the batch nor the caller's rows, and the connection outside any
// transaction and usable: the next post commits.
func TestSessionRefuses(t *testing.T) {
	ctx := context.Background()
	l, db := mustRefusalLedger(t)
	db.MustExec(`INSERT INTO caller_rows VALUES (99)`)
	s, c := mustSession(t, db)
	w := ledger.With{CTEs: `added AS (INSERT INTO caller_rows VALUES ($1) RETURNING 1)`, First: `(SELECT count(*) FROM added) >= 0`}
	type refusalOf struct {
		refusal
		id int // the caller's row: 99 is taken
	}
	var cases []refusalOf
	for _, r := range refusals(levee.EINVALID) { // the Go path names the account's field
		cases = append(cases, refusalOf{r, 1})
	}
	cases = append(cases, refusalOf{refusal{"the caller's write fails", []ledger.Transfer{move("cash:1", "cash:2", levee.Units(1))},
		func(err error) bool { return err != nil && strings.Contains(err.Error(), "caller_rows_pkey") }}, 99})
	for _, tc := range cases {
		w.Args = []any{tc.id}
		_, err := s.PostCommitWith(ctx, w, tc.ts, nil)
		if err == nil || !tc.check(err) {
			t.Fatalf("%s: %v", tc.name, err)
		}
		mustBeIdle(t, s, c)
	}
	var rows, entries int
	db.Get(&rows, `SELECT count(*) FROM caller_rows`)
	db.Get(&entries, `SELECT count(*) FROM ledger_entries`)
	if rows != 1 || entries != 1 {
		t.Fatalf("%d caller rows and %d entries, want the first 1 and the funding's 1", rows, entries)
	}
	w.Args = []any{1}
	if _, err := s.PostCommitWith(ctx, w, []ledger.Transfer{move("cash:1", "cash:2", levee.Units(10))}, nil); err != nil {
		t.Fatal(err)
	}
	if b := MustBalance(t, l, "cash:2"); b != levee.Units(10) {
		t.Fatalf("cash:2 holds %s after the last post, want 10", b)
	}
	MustVerify(t, l)
}

// TestSessionTakesTwoRoundTrips counts what the client sends through a
// proxy: a Session's transaction is two round trips (two simple queries,
// no extended-protocol Sync), where the same post through database/sql in a
// transaction of its own is four. Warm-up posts prepare the statements
// first.
func TestSessionTakesTwoRoundTrips(t *testing.T) {
	ctx := context.Background()
	url := dbtest.NewURL(t)
	p := startCountingProxy(t, url)
	db, err := sqlx.Open("postgres", p.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(2) // a transaction's, and one to prepare statements on
	l := ledger.New(db)
	MustOpen(t, l, "cash:1", "cash:2")
	MustFund(t, l, "cash:1", levee.Units(10))
	db.MustExec(`CREATE TABLE caller_rows (id int PRIMARY KEY)`)
	w := ledger.With{CTEs: `added AS (INSERT INTO caller_rows VALUES ($1) RETURNING 1)`, First: `(SELECT count(*) FROM added) >= 0`}
	pay := []ledger.Transfer{{Kind: "move", Postings: []ledger.Posting{{Account: "cash:1", Amount: -1}, {Account: "cash:2", Amount: 1}}}}
	c, err := db.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := ledger.NewSession(c)
	for id := 1; id <= 3; id++ {
		w.Args = []any{id}
		before := p.trips.Load()
		if _, err := s.PostCommitWith(ctx, w, pay, []string{"cash:1"}); err != nil {
			t.Fatal(err)
		}
		if n := p.trips.Load() - before; id > 1 && n != 2 {
			t.Fatalf("a session's post took %d round trips, want 2", n)
		}
	}
	c.Close()
	prep := ledger.NewPrepared(db)
	defer prep.Close()
	for id := 4; id <= 7; id++ {
		w.Args = []any{id}
		before := p.trips.Load()
		tx := db.MustBegin()
		if _, _, err := prep.PostBatchBalancesWith(ctx, tx, w, pay); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if n := p.trips.Load() - before; id > 5 && n != 4 {
			t.Fatalf("a post through database/sql took %d round trips, want 4", n)
		}
	}
	MustVerify(t, l)
}

// countingProxy forwards loopback connections to PostgreSQL and counts the
// client's round trips: each simple Query ('Q') and each Sync ('S') of the
// extended protocol is answered with ReadyForQuery, after which the client
// waits.
type countingProxy struct {
	url   string
	trips atomic.Int64
}

func startCountingProxy(t *testing.T, url string) *countingProxy {
	t.Helper()
	network, target := serverAddr(t, url)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p := &countingProxy{url: url + " host=127.0.0.1 port=" + port} // later keys win in lib/pq
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial(network, target)
			if err != nil {
				client.Close()
				continue
			}
			wg.Go(func() { io.Copy(client, server); client.Close() })
			wg.Go(func() { p.count(client, server); server.Close() })
		}
	})
	return p
}

// count forwards the client's messages to server: the startup message
// (no type byte; an SSL request first, refused by sslmode=disable), then
// typed messages.
func (p *countingProxy) count(client io.Reader, server io.Writer) {
	var n [4]byte
	if _, err := io.ReadFull(client, n[:]); err != nil {
		return
	}
	size := binary.BigEndian.Uint32(n[:])
	body := make([]byte, size-4)
	if _, err := io.ReadFull(client, body); err != nil {
		return
	}
	server.Write(append(n[:], body...))
	for {
		var h [5]byte
		if _, err := io.ReadFull(client, h[:]); err != nil {
			return
		}
		size := binary.BigEndian.Uint32(h[1:])
		msg := make([]byte, size-4)
		if _, err := io.ReadFull(client, msg); err != nil {
			return
		}
		if h[0] == 'Q' || h[0] == 'S' {
			p.trips.Add(1)
		}
		if _, err := server.Write(append(h[:], msg...)); err != nil {
			return
		}
	}
}

// serverAddr is where the key=value connection string url reaches
// PostgreSQL: a Unix socket when host is a directory, as the tests' own
// server has it.
func serverAddr(t *testing.T, url string) (network, addr string) {
	t.Helper()
	host, port := "localhost", "5432"
	for _, kv := range strings.Fields(url) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "host":
			host = v
		case "port":
			port = v
		}
	}
	if strings.Contains(url, "://") {
		t.Fatalf("the proxy reads key=value connection strings, not %q", url)
	}
	if strings.HasPrefix(host, "/") {
		return "unix", host + "/.s.PGSQL." + port
	}
	return "tcp", net.JoinHostPort(host, port)
}

// TestSessionTimesOutCleanly: a post whose first round trip waits on a lock
// past its deadline (the journal posts with one on every commit) is
// cancelled and leaves nothing; lib/pq closes a connection whose query a
// context cancelled, so the session says Broken and the caller takes a new
// one, on which the next post commits. Both for a wait on the caller's row
// and for one on the head, after the caller's rows were written.
func TestSessionTimesOutCleanly(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	MustOpen(t, l, "cash:1", "cash:2")
	MustFund(t, l, "cash:1", levee.Units(10))
	db.MustExec(`CREATE TABLE caller_rows (id int PRIMARY KEY, n int NOT NULL)`)
	db.MustExec(`INSERT INTO caller_rows VALUES (1, 0)`)
	s, c := mustSession(t, db)
	w := ledger.With{CTEs: `bump AS (UPDATE caller_rows SET n = n + 1 WHERE id = 1 RETURNING 1)`, First: `(SELECT count(*) FROM bump) >= 0`}
	pay := []ledger.Transfer{{Kind: "move", Postings: []ledger.Posting{{Account: "cash:1", Amount: -1}, {Account: "cash:2", Amount: 1}}}}
	for _, hold := range []string{`UPDATE caller_rows SET n = n WHERE id = 1`, `SELECT 1 FROM ledger_head FOR UPDATE`} {
		holder := db.MustBegin()
		holder.MustExec(hold)
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := s.PostCommitWith(short, w, pay, nil)
		cancel()
		holder.Rollback()
		if err == nil {
			t.Fatalf("holding %q: the post went through", hold)
		}
		if !s.Broken() {
			t.Fatalf("holding %q: a connection lib/pq closed is not called broken", hold)
		}
		c.Close()
		s, c = mustSession(t, db)
	}
	var n, entries int
	db.Get(&n, `SELECT n FROM caller_rows WHERE id = 1`)
	db.Get(&entries, `SELECT count(*) FROM ledger_entries`)
	if n != 0 || entries != 1 {
		t.Fatalf("n = %d and %d entries after two timed-out posts, want 0 and the funding's 1", n, entries)
	}
	if _, err := s.PostCommitWith(ctx, w, pay, nil); err != nil {
		t.Fatal(err)
	}
	mustBeIdle(t, s, c)
	MustVerify(t, l)
}

// TestSessionsShareAConnection: a second Session on a connection a first
// one prepared its statements on (as the journal makes one when it has
// none for a connection it keeps) prepares its own and posts.
func TestSessionsShareAConnection(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	MustOpen(t, l, "cash:1", "cash:2")
	MustFund(t, l, "cash:1", levee.Units(10))
	first, c := mustSession(t, db)
	w := ledger.With{CTEs: `nothing AS (SELECT 1 AS one)`, First: `(SELECT count(*) FROM nothing) >= 0`}
	pay := []ledger.Transfer{{Kind: "move", Postings: []ledger.Posting{{Account: "cash:1", Amount: -1}, {Account: "cash:2", Amount: 1}}}}
	if _, err := first.PostCommitWith(ctx, w, pay, nil); err != nil {
		t.Fatal(err)
	}
	second := ledger.NewSession(c)
	if _, err := second.PostCommitWith(ctx, w, pay, nil); err != nil {
		t.Fatal(err)
	}
	if b := MustBalance(t, l, "cash:2"); b != 2 {
		t.Fatalf("cash:2 holds %s, want 0.000002", b)
	}
	MustVerify(t, l)
}

// TestSessionPreparesAgain: a connection that lost the session's prepared
// statements (DEALLOCATE ALL here; a DISCARD ALL or a pooler's new server
// connection elsewhere) costs the post nothing but preparing them again:
// it commits once, with the caller's row.
func TestSessionPreparesAgain(t *testing.T) {
	ctx := context.Background()
	l, db := mustRefusalLedger(t)
	s, c := mustSession(t, db)
	w := ledger.With{CTEs: `added AS (INSERT INTO caller_rows VALUES ($1) RETURNING 1)`, First: `(SELECT count(*) FROM added) >= 0`}
	for id := 1; id <= 3; id++ {
		if id > 1 {
			if _, err := c.ExecContext(ctx, `DEALLOCATE ALL`); err != nil {
				t.Fatal(err)
			}
		}
		w.Args = []any{id}
		if _, err := s.PostCommitWith(ctx, w, []ledger.Transfer{move("cash:1", "cash:2", 1)}, nil); err != nil {
			t.Fatalf("post %d: %v", id, err)
		}
	}
	var rows int
	db.Get(&rows, `SELECT count(*) FROM caller_rows`)
	if b := MustBalance(t, l, "cash:2"); b != 3 || rows != 3 {
		t.Fatalf("cash:2 holds %s and %d caller rows after 3 posts", b, rows)
	}
	mustBeIdle(t, s, c)
	MustVerify(t, l)
}

// TestSessionReadsWhatTheHeadHolderCommitted: a Session reads the accounts
// without locking them, in a statement of its own once it holds the head.
// A post that waited for the head while another transaction moved money in
// and out of the same accounts must see that transaction's balances: it
// returns the balances the database then holds, and it refuses an overdraft
// that only the other transaction's payment made (with the ledger's own
// error, not the database's CHECK catching balances read too early).
func TestSessionReadsWhatTheHeadHolderCommitted(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	MustOpen(t, l, "cash:1", "cash:2", "cash:3")
	MustFund(t, l, "cash:1", levee.Units(10))
	s, c := mustSession(t, db)
	w := ledger.With{CTEs: `nothing AS (SELECT 1 AS one)`, First: `(SELECT count(*) FROM nothing) >= 0`}
	// post runs the Session's post while a transaction holding the head
	// has posted held and not yet committed, and commits it once the
	// Session waits for the head.
	post := func(held, ts ledger.Transfer) (map[string]levee.Micros, error) {
		t.Helper()
		holder := db.MustBegin()
		defer holder.Rollback()
		if _, err := ledger.Post(ctx, holder, held); err != nil {
			t.Fatal(err)
		}
		type answer struct {
			balances map[string]levee.Micros
			err      error
		}
		done := make(chan answer, 1)
		go func() {
			b, err := s.PostCommitWith(ctx, w, []ledger.Transfer{ts}, []string{"cash:1"})
			done <- answer{b, err}
		}()
		mustWaitForLock(t, db)
		if err := holder.Commit(); err != nil {
			t.Fatal(err)
		}
		a := <-done
		mustBeIdle(t, s, c)
		return a.balances, a.err
	}
	// cash:1 receives 5 in the holder's transaction and pays 12 in the
	// Session's: possible only with the 5.
	MustFund(t, l, "cash:2", levee.Units(5))
	balances, err := post(move("cash:2", "cash:1", levee.Units(5)), move("cash:1", "cash:3", levee.Units(12)))
	if err != nil {
		t.Fatalf("cash:1 held 15 once the head was free, and could not pay 12: %v", err)
	}
	if balances["cash:1"] != levee.Units(3) || MustBalance(t, l, "cash:1") != levee.Units(3) {
		t.Fatalf("the post returned cash:1 = %s and the ledger holds %s, want 3 and 3", balances["cash:1"], MustBalance(t, l, "cash:1"))
	}
	// cash:1 pays 3 in the holder's transaction: the Session's payment of
	// 1 finds nothing left and is refused by the ledger's funds check.
	_, err = post(move("cash:1", "cash:2", levee.Units(3)), move("cash:1", "cash:3", levee.Units(1)))
	var funds *ledger.FundsError
	if !errors.As(err, &funds) || funds.Account != "cash:1" {
		t.Fatalf("paying from an account the head holder emptied: %v, want the ledger's insufficient funds in cash:1", err)
	}
	if b := MustBalance(t, l, "cash:3"); b != levee.Units(12) {
		t.Fatalf("cash:3 holds %s, want 12", b)
	}
	MustVerify(t, l)
}

// mustWaitForLock waits until some backend of db's waits for a lock.
func mustWaitForLock(t *testing.T, db *sqlx.DB) {
	t.Helper()
	for range 500 {
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM pg_locks WHERE NOT granted AND database IS NOT DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database()) OR NOT granted AND locktype = 'transactionid'`); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no one waits for a lock")
}
