package ledger_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/ledger"
	"levee/migrations/dbtest"
)

// mustRememberingSession returns a Session that remembers, on a connection
// of db's of its own.
func mustRememberingSession(t *testing.T, db *sqlx.DB) (*ledger.Session, *sqlx.Conn) {
	t.Helper()
	s, c := mustSession(t, db)
	s.Remember()
	return s, c
}

// TestRememberingSessionMatchesPostBatch: the flow of
// TestSessionMatchesPostBatch through a Session that remembers gives the
// same chain byte for byte and returns the stored balances, and commits in
// one round trip whenever it knows every account of a batch.
func TestRememberingSessionMatchesPostBatch(t *testing.T) {
	var s *ledger.Session
	mustMatchPostBatch(t, func(t *testing.T, db *sqlx.DB) poster {
		var c *sqlx.Conn
		s, c = mustRememberingSession(t, db)
		return func(w ledger.With, batch []ledger.Transfer) (map[string]levee.Micros, error) {
			balances, err := s.PostCommitWith(context.Background(), w, batch, []string{"treasury"})
			mustBeIdle(t, s, c)
			return balances, err
		}
	})
	if st := s.Stats(); st.OneTrip == 0 || st.Missed != 0 {
		t.Fatalf("%+v: want commits in one round trip, and no memory found wrong (nothing else writes)", st)
	}
}

// TestRememberingSessionRefuses: TestSessionRefuses's refusals through a
// Session that remembers every account of them: each is the ledger's own
// error, leaves nothing behind, and the next post commits.
func TestRememberingSessionRefuses(t *testing.T) {
	ctx := context.Background()
	l, db := mustRefusalLedger(t)
	MustOpen(t, l, "cash:3")
	s, c := mustRememberingSession(t, db)
	w := ledger.With{CTEs: `added AS (INSERT INTO caller_rows VALUES ($1) RETURNING 1)`, First: `(SELECT count(*) FROM added) >= 0`}
	id := 0
	post := func(ts []ledger.Transfer) error {
		id++
		w.Args = []any{id}
		_, err := s.PostCommitWith(ctx, w, ts, []string{"cash:1", "cash:2", "fees", "treasury:issuance"})
		mustBeIdle(t, s, c)
		return err
	}
	// Remember every account the refusals name.
	if err := post([]ledger.Transfer{move("cash:1", "cash:3", 1), move("cash:3", "cash:1", 1)}); err != nil {
		t.Fatal(err)
	}
	for _, r := range refusals(levee.EINVALID) {
		if err := post(r.ts); err == nil || !r.check(err) {
			t.Fatalf("%s: %v", r.name, err)
		}
	}
	if err := post([]ledger.Transfer{move("cash:1", "cash:2", levee.Units(10))}); err != nil {
		t.Fatal(err)
	}
	if b := MustBalance(t, l, "cash:2"); b != levee.Units(10) {
		t.Fatalf("cash:2 holds %s after the last post, want 10", b)
	}
	var entries int
	db.Get(&entries, `SELECT count(*) FROM ledger_entries`)
	if entries != 4 {
		t.Fatalf("%d entries, want the funding, the first post's two and the last", entries)
	}
	MustVerify(t, l)
}

// TestRememberingSessionChecksItsMemory changes the ledger behind a Session
// that remembers it, in every way that would make an append computed from
// its memory wrong. The Session must then write nothing from memory (its
// memory found wrong once), append from what the database holds, return
// the balances stored, and leave a ledger that verifies.
func TestRememberingSessionChecksItsMemory(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// setup runs before the Session's first post; behind after its
		// second, which committed from memory.
		setup, behind func(t *testing.T, l *ledger.Ledger, db *sqlx.DB)
		// batch is the third post, after behind.
		batch []ledger.Transfer
		// tampered: behind broke the ledger on purpose (a balance moved
		// outside it), so it cannot verify.
		tampered bool
		// refusedFromMemory: the batch is more than the remembered balance
		// allows, so it is not sent from memory at all.
		refusedFromMemory bool
	}{
		{name: "another writer appends to the same accounts",
			behind: func(t *testing.T, l *ledger.Ledger, _ *sqlx.DB) { MustFund(t, l, "cash:1", levee.Units(3)) },
			batch:  []ledger.Transfer{move("cash:1", "cash:2", levee.Units(2))}},
		{name: "another writer pays in what the batch needs", refusedFromMemory: true,
			behind: func(t *testing.T, l *ledger.Ledger, _ *sqlx.DB) { MustFund(t, l, "cash:1", levee.Units(3)) },
			batch:  []ledger.Transfer{move("cash:1", "cash:2", levee.Units(12))}},
		{name: "another writer appends to other accounts",
			behind: func(t *testing.T, l *ledger.Ledger, _ *sqlx.DB) { MustFund(t, l, "cash:5", levee.Units(3)) },
			batch:  []ledger.Transfer{move("cash:1", "cash:2", levee.Units(1))}},
		{name: "a balance moved outside the ledger", tampered: true,
			behind: func(t *testing.T, _ *ledger.Ledger, db *sqlx.DB) {
				db.MustExec(`UPDATE ledger_accounts SET balance = balance + 1 WHERE key = 'cash:2'`)
			},
			batch: []ledger.Transfer{move("cash:1", "cash:2", levee.Units(1))}},
		{name: "a balance moved outside the ledger, of an account the batch leaves as it was", tampered: true,
			behind: func(t *testing.T, _ *ledger.Ledger, db *sqlx.DB) {
				db.MustExec(`UPDATE ledger_accounts SET balance = balance + 1 WHERE key = 'cash:3'`)
			},
			batch: []ledger.Transfer{move("cash:1", "cash:3", levee.Units(1)), move("cash:3", "cash:2", levee.Units(1))}},
		// cash:4 was read, never posted to: it has no entry that a name
		// given now would hash differently.
		{name: "a person is given a pseudonym",
			behind: func(t *testing.T, _ *ledger.Ledger, db *sqlx.DB) {
				db.MustExec(`UPDATE ledger_accounts SET public = 'cash:p0123456789abcdef0123' WHERE key = 'cash:4' AND public IS NULL`)
			},
			batch: []ledger.Transfer{move("cash:1", "cash:4", levee.Units(1))}},
		{name: "the private epoch begins",
			setup: func(t *testing.T, _ *ledger.Ledger, db *sqlx.DB) {
				db.MustExec(`UPDATE ledger_head SET private_from = NULL`)
				db.MustExec(`UPDATE ledger_accounts SET public = 'cash:p0123456789abcdef0123' WHERE key = 'cash:2'`)
			},
			// cash:2 holds nothing then, so the epoch begins without an
			// entry: the head's seq and hash stay as they were.
			behind: func(t *testing.T, l *ledger.Ledger, _ *sqlx.DB) {
				if _, err := l.BeginPrivateEpoch(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
			batch: []ledger.Transfer{move("cash:1", "cash:2", levee.Units(1))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, db := MustLedger(t)
			MustOpen(t, l, "cash:1", "cash:2", "cash:3", "cash:4", "cash:5")
			MustFund(t, l, "cash:1", levee.Units(10))
			if tc.setup != nil {
				tc.setup(t, l, db)
			}
			s, c := mustRememberingSession(t, db)
			w := ledger.With{CTEs: `nothing AS (SELECT 1 AS one)`, First: `(SELECT count(*) FROM nothing) >= 0`}
			read := []string{"cash:1", "cash:2", "cash:3", "cash:4"}
			post := func(ts []ledger.Transfer) map[string]levee.Micros {
				t.Helper()
				balances, err := s.PostCommitWith(ctx, w, ts, read)
				if err != nil {
					t.Fatal(err)
				}
				mustBeIdle(t, s, c)
				for k, b := range balances {
					if stored := MustBalance(t, l, k); stored != b {
						t.Fatalf("%s: returned %s, stored %s", k, b, stored)
					}
				}
				return balances
			}
			if cash1 := MustBalance(t, l, "cash:1"); cash1 != levee.Units(10) {
				t.Fatalf("cash:1 holds %s", cash1)
			}
			post([]ledger.Transfer{move("cash:1", "cash:3", 1), move("cash:3", "cash:2", 1)})
			post([]ledger.Transfer{move("cash:2", "cash:1", 1)})
			if st := s.Stats(); st.OneTrip != 1 || st.Missed != 0 {
				t.Fatalf("after two posts: %+v, want the second from memory", st)
			}
			tc.behind(t, l, db)
			post(tc.batch)
			want := ledger.SessionStats{OneTrip: 1, Missed: 1}
			if tc.refusedFromMemory {
				want.Missed = 0 // the database's balances decided, in two round trips
			}
			if st := s.Stats(); st != want {
				t.Fatalf("after the change behind it: %+v, want %+v", st, want)
			}
			// It has learnt the ledger again: the posts after it are from
			// memory, but for one in two round trips after a miss (it backs
			// off).
			post([]ledger.Transfer{move("cash:1", "cash:2", 1)})
			post([]ledger.Transfer{move("cash:1", "cash:2", 1)})
			want.OneTrip += 2 - want.Missed
			if st := s.Stats(); st != want {
				t.Fatalf("two posts after: %+v, want %+v", st, want)
			}
			if !tc.tampered {
				MustVerify(t, l)
			}
		})
	}
}

// TestRememberingSessionReadsUnderTheHeadLock: a commit from memory is sent
// whole, and its caller's writes run before it takes the head's lock. Here
// they wait on a lock the test holds while the ledger changes behind the
// commit, after it was sent and before it holds the head: the append must
// find each change and write nothing from memory. It guards the statements'
// snapshots: an append that read the accounts from a snapshot taken before
// the head's lock (as one statement for the caller's writes and the append
// would, tried in session 14) misses a pseudonym or a balance given
// meanwhile to an account it leaves as it was, unless it locks what it
// reads.
func TestRememberingSessionReadsUnderTheHeadLock(t *testing.T) {
	ctx := context.Background()
	learn := []ledger.Transfer{move("cash:1", "cash:3", 1), move("cash:3", "cash:4", 1)}
	for _, tc := range []struct {
		name   string
		change string // run while the statement waits
		// batch is posted behind it. cash:3 and cash:5 are posted to and
		// left as they were; cash:4 and cash:6 change. cash:5 and cash:6
		// were only read before, so a pseudonym given to them now leaves
		// no entry hashed under their key (as OpenPersonal names accounts
		// before their first entry).
		batch []ledger.Transfer
		// tampered: change moved a balance outside the ledger, so the
		// ledger cannot verify.
		tampered bool
	}{
		{"a pseudonym for an account the batch leaves as it was", `UPDATE ledger_accounts SET public = 'cash:p0123456789abcdef0123' WHERE key = 'cash:5'`,
			[]ledger.Transfer{move("cash:1", "cash:5", 1), move("cash:5", "cash:4", 1)}, false},
		{"a pseudonym for an account the batch changes", `UPDATE ledger_accounts SET public = 'cash:p0123456789abcdef0123' WHERE key = 'cash:6'`,
			[]ledger.Transfer{move("cash:1", "cash:6", 1)}, false},
		{"a balance moved, of an account the batch leaves as it was", `UPDATE ledger_accounts SET balance = balance + 1 WHERE key = 'cash:3'`, learn, true},
		{"a balance moved, of an account the batch changes", `UPDATE ledger_accounts SET balance = balance + 1 WHERE key = 'cash:4'`, learn, true},
		{"another writer appends", ``, learn, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, db := MustLedger(t)
			MustOpen(t, l, "cash:1", "cash:2", "cash:3", "cash:4", "cash:5", "cash:6")
			MustFund(t, l, "cash:1", levee.Units(10))
			s, _ := mustRememberingSession(t, db)
			w := ledger.With{CTEs: `waited AS (SELECT pg_advisory_xact_lock(4242) AS x)`, First: `(SELECT count(*) FROM waited) >= 0`}
			for range 2 { // learns the accounts, then commits from memory
				if _, err := s.PostCommitWith(ctx, w, learn, []string{"cash:5", "cash:6"}); err != nil {
					t.Fatal(err)
				}
			}
			holder, err := db.Connx(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Close()
			if _, err := holder.ExecContext(ctx, `SELECT pg_advisory_lock(4242)`); err != nil {
				t.Fatal(err)
			}
			type result struct {
				balances map[string]levee.Micros
				err      error
			}
			done := make(chan result, 1)
			go func() {
				b, err := s.PostCommitWith(ctx, w, tc.batch, nil)
				done <- result{b, err}
			}()
			for waiting := false; !waiting; {
				time.Sleep(5 * time.Millisecond)
				if err := db.Get(&waiting, `SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`); err != nil {
					t.Fatal(err)
				}
			}
			if tc.change == "" {
				MustFund(t, l, "cash:2", 1)
			} else {
				db.MustExec(tc.change)
			}
			if _, err := holder.ExecContext(ctx, `SELECT pg_advisory_unlock(4242)`); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if st := s.Stats(); st != (ledger.SessionStats{OneTrip: 1, Missed: 1}) {
				t.Fatalf("stats %+v: want the post behind the change refused from memory", st)
			}
			for k, b := range r.balances {
				if stored := MustBalance(t, l, k); stored != b {
					t.Fatalf("%s: returned %s, stored %s", k, b, stored)
				}
			}
			if !tc.tampered {
				MustVerify(t, l)
			}
		})
	}
}

// mustCountedLedger is a ledger whose connections go through a proxy that
// counts round trips, with cash:1 holding 10 and cash:2 nothing.
func mustCountedLedger(t *testing.T) (*countingProxy, *sqlx.DB, *ledger.Ledger) {
	t.Helper()
	p := startCountingProxy(t, dbtest.NewURL(t))
	db, err := sqlx.Open("postgres", p.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l := ledger.New(db)
	MustOpen(t, l, "cash:1", "cash:2")
	MustFund(t, l, "cash:1", levee.Units(10))
	return p, db, l
}

// TestRememberingSessionTakesOneRoundTrip counts what the client sends
// through a proxy: once a Session that remembers knows the accounts, each
// post is one round trip; when another writer moved the head, the post that
// finds it out takes three (the refused one, then two, the first of which
// rolls the refused transaction back), the next two (it backs off once), and
// then one again.
func TestRememberingSessionTakesOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	p, db, l := mustCountedLedger(t)
	db.MustExec(`CREATE TABLE caller_rows (id int PRIMARY KEY)`)
	w := ledger.With{CTEs: `added AS (INSERT INTO caller_rows VALUES ($1) RETURNING 1)`, First: `(SELECT count(*) FROM added) >= 0`}
	pay := []ledger.Transfer{move("cash:1", "cash:2", 1)}
	s, _ := mustRememberingSession(t, db)
	id := 0
	post := func() int64 {
		t.Helper()
		id++
		w.Args = []any{id}
		before := p.trips.Load()
		if _, err := s.PostCommitWith(ctx, w, pay, nil); err != nil {
			t.Fatal(err)
		}
		return p.trips.Load() - before
	}
	post() // learns the accounts
	post() // prepares the statement of a post from memory
	for range 3 {
		if n := post(); n != 1 {
			t.Fatalf("a post from memory took %d round trips, want 1", n)
		}
	}
	MustFund(t, l, "cash:1", 1)
	for i, want := range []int64{3, 2, 1, 1} {
		if n := post(); n != want {
			t.Fatalf("post %d after another writer's: %d round trips, want %d", i+1, n, want)
		}
	}
	var rows int
	db.Get(&rows, `SELECT count(*) FROM caller_rows`)
	if rows != id {
		t.Fatalf("%d caller rows, want one per post (%d)", rows, id)
	}
	if b := MustBalance(t, l, "cash:2"); b != levee.Micros(id) {
		t.Fatalf("cash:2 holds %s, want %d micro-units", b, id)
	}
	MustVerify(t, l)
}

// TestRememberingSessionLooksAtTheHeadAfterAMiss: the unlocked look at the
// head goes first only while the memory was lately found wrong. The
// caller's writes count their runs in a sequence (nextval is not undone by
// a rollback), so a post that ran them in a refused transaction shows: one
// from a memory still trusted runs them twice (refused, then in two round
// trips); one tried while the memory is suspect is refused by the look
// before they run.
func TestRememberingSessionLooksAtTheHeadAfterAMiss(t *testing.T) {
	ctx := context.Background()
	p, db, l := mustCountedLedger(t)
	db.MustExec(`CREATE SEQUENCE caller_runs`)
	w := ledger.With{CTEs: `ran AS (SELECT nextval('caller_runs') AS n)`, First: `(SELECT count(*) FROM ran) >= 0`}
	pay := []ledger.Transfer{move("cash:1", "cash:2", 1)}
	s, _ := mustRememberingSession(t, db)
	var runs int64
	post := func() (trips, ran int64) {
		t.Helper()
		before := p.trips.Load()
		if _, err := s.PostCommitWith(ctx, w, pay, nil); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := db.Get(&n, `SELECT last_value FROM caller_runs`); err != nil {
			t.Fatal(err)
		}
		ran, runs = n-runs, n
		return p.trips.Load() - before - 1, ran // less the read of the sequence
	}
	post() // learns the accounts
	post() // prepares the statements of a post from memory
	for i, c := range []struct {
		other      bool // another writer moves the head first
		trips, ran int64
	}{
		{false, 1, 1},
		{true, 3, 2},                 // trusted: refused after the caller's writes, then two round trips
		{false, 2, 1},                // backing off
		{true, 3, 1},                 // suspect: refused by the look, before the caller's writes
		{false, 2, 1}, {false, 2, 1}, // backing off twice as long
		{false, 1, 1}, {false, 1, 1}, // from memory, looking first until the backoff is spent
		{true, 3, 2}, // trusted again
	} {
		if c.other {
			MustFund(t, l, "cash:1", 1)
		}
		if trips, ran := post(); trips != c.trips || ran != c.ran {
			t.Fatalf("post %d: %d round trips and the caller's writes run %d times, want %d and %d", i+1, trips, ran, c.trips, c.ran)
		}
	}
	if got, want := s.Stats(), (ledger.SessionStats{OneTrip: 4, Missed: 3}); got.OneTrip < want.OneTrip || got.Missed != want.Missed {
		t.Fatalf("stats %+v, want at least %d from memory and %d misses", got, want.OneTrip, want.Missed)
	}
	MustVerify(t, l)
}

// TestRememberingSessionRacesAnotherWriter: a Session that remembers posts
// in a loop while another writer posts to the same accounts through
// PostBatch, unsynchronised. Midway the other writer gives cash:7 a
// pseudonym (as OpenPersonal does, without the head); the Session, which
// has remembered cash:7 unnamed all along, then starts paying into it. Every
// post must succeed, the balances each post returned must be those its
// entry left in the ledger (the sum of every posting up to it), and at the
// end the ledger must verify (cash:7's entries hashed under its pseudonym)
// and hold exactly the money both moved.
func TestRememberingSessionRacesAnotherWriter(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	keys := []string{"cash:1", "cash:2", "cash:3", "cash:4", "cash:5", "cash:6"}
	MustOpen(t, l, append(keys, "cash:7")...)
	for _, k := range keys {
		MustFund(t, l, k, levee.Units(1000))
	}
	read := append(slices.Clone(keys), "cash:7")
	s, _ := mustRememberingSession(t, db)
	w := ledger.With{CTEs: `nothing AS (SELECT 1 AS one)`, First: `(SELECT count(*) FROM nothing) >= 0`}
	const rounds = 300
	var named atomic.Bool
	done := make(chan error, 1)
	go func() { // the other writer
		for i := range rounds {
			if i == rounds/3 {
				if _, err := db.ExecContext(ctx, `UPDATE ledger_accounts SET public = 'cash:p0123456789abcdef0123' WHERE key = 'cash:7' AND public IS NULL`); err != nil {
					done <- err
					return
				}
				named.Store(true)
			}
			from, to := keys[i%len(keys)], keys[(i*5+1)%len(keys)]
			if from == to {
				continue
			}
			tx, err := db.BeginTxx(ctx, nil)
			if err != nil {
				done <- err
				return
			}
			if _, err := ledger.PostBatch(ctx, tx, []ledger.Transfer{move(from, to, levee.Micros(1+i))}); err != nil {
				tx.Rollback()
				done <- err
				return
			}
			if err := tx.Commit(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// The Session posts until the other writer is done and it has paid
	// cash:7 a few times since it was named, however the two run.
	var returned []map[string]levee.Micros
	var writerErr error
	writing, paid := true, 0
	for i := 0; writing || paid < 3; i++ {
		if i > 20*rounds {
			t.Fatalf("%d posts, cash:7 paid %d times since named", i, paid)
		}
		from, to := keys[(i*7)%len(keys)], keys[(i*7+2)%len(keys)]
		if i%3 == 0 && named.Load() {
			to = "cash:7"
			paid++
		}
		balances, err := s.PostCommitWith(ctx, w, []ledger.Transfer{move(from, to, levee.Micros(1000+i))}, read)
		if err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
		returned = append(returned, balances)
		select {
		case writerErr = <-done:
			writing = false
		default:
		}
	}
	if writerErr != nil {
		t.Fatal(writerErr)
	}
	// The Session's post i is the entry with a posting of 1000+i
	// micro-units (the other writer's are under 1000).
	for i, balances := range returned {
		for _, k := range read {
			var held int64
			if err := db.GetContext(ctx, &held, `
				SELECT coalesce((sum(amount) * 1000000)::bigint, 0) FROM ledger_postings
				WHERE account = $1 AND entry_seq <= (SELECT entry_seq FROM ledger_postings WHERE amount = $2 * 0.000001)`, k, 1000+i); err != nil {
				t.Fatal(err)
			}
			if balances[k] != levee.Micros(held) {
				t.Fatalf("post %d returned %s = %s, its entry left %s", i, k, balances[k], levee.Micros(held))
			}
		}
	}
	t.Logf("during the race: %+v", s.Stats())
	// Both ways of committing, whatever the interleaving was: a post from
	// memory once the other writer is done (after at most the backoff's
	// longest wait), then one that finds the ledger changed by a last
	// write of the other's.
	for j := 0; ; j++ {
		hits := s.Stats().OneTrip
		if _, err := s.PostCommitWith(ctx, w, []ledger.Transfer{move("cash:1", "cash:2", 1)}, read); err != nil {
			t.Fatal(err)
		}
		if s.Stats().OneTrip > hits {
			break
		}
		if j > 2*64 {
			t.Fatalf("%+v: no post from memory once alone", s.Stats())
		}
	}
	misses := s.Stats().Missed
	MustFund(t, l, "cash:1", 1)
	if _, err := s.PostCommitWith(ctx, w, []ledger.Transfer{move("cash:1", "cash:2", 1)}, read); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Missed != misses+1 {
		t.Fatalf("%+v: the post after another writer's did not find the ledger changed", st)
	}
	var total levee.Micros
	for _, k := range read {
		total += MustBalance(t, l, k)
	}
	if want := levee.Units(1000)*levee.Micros(len(keys)) + 1; total != want {
		t.Fatalf("the accounts hold %s in all, want %s", total, want)
	}
	MustVerify(t, l)
}
