package mail_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/accounts"
	"levee/mail"
	"levee/mail/mailtest"
	"levee/migrations/dbtest"
	"levee/outbox"
)

// MustPerson opens a person's account directly (accounts' own tests cover
// opening accounts through the service) and, if address is set, gives it
// that address, confirmed when confirm is set.
func MustPerson(t *testing.T, db *sqlx.DB, name, address string, confirm bool) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := db.GetContext(ctx, &id, `INSERT INTO accounts (name, kind, roles) VALUES ($1, 'person', '{}') RETURNING id`, name); err != nil {
		t.Fatal(err)
	}
	if address == "" {
		return id
	}
	as := accounts.New(db)
	_, token, err := as.SetEmail(ctx, id, address)
	if err != nil {
		t.Fatal(err)
	}
	if confirm {
		if _, err := as.ConfirmEmail(ctx, token); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// MustNotify writes n notifications of kind for account.
func MustNotify(t *testing.T, db *sqlx.DB, account int64, kind string, n int) {
	t.Helper()
	ctx := context.Background()
	tx := db.MustBeginTx(ctx, nil)
	defer tx.Rollback()
	deadline := time.Now().Add(48 * time.Hour)
	for i := range n {
		if err := outbox.Add(ctx, tx, account, outbox.Notice{Kind: kind, Message: fmt.Sprintf("Notice %d of %s.", i, kind),
			Link: "/quorum", Deadline: &deadline, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func newWorker(t *testing.T, db *sqlx.DB, smtpURL, id string) *mail.Worker {
	t.Helper()
	srv, err := mail.ParseURL(smtpURL)
	if err != nil {
		t.Fatal(err)
	}
	m := mail.New(mail.Options{Server: srv, From: "levee@example.org", BaseURL: "http://levee.test", Logger: slog.New(slog.DiscardHandler)})
	return mail.NewWorker(db, m, mail.WorkerOptions{Poll: 5 * time.Millisecond, BackoffBase: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond, ID: id})
}

// runWorkers runs workers until every notification is decided or the
// deadline passes.
func runWorkers(t *testing.T, db *sqlx.DB, ws ...*mail.Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); w.Run(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left int
		if err := db.Get(&left, `SELECT count(*) FROM notifications WHERE delivery IS NULL`); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d notifications still undelivered", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mustEachOnce checks that the server received each of the account's
// notifications exactly once, and nothing else for address.
func mustEachOnce(t *testing.T, db *sqlx.DB, s *mailtest.Server, account int64, address string) {
	t.Helper()
	var ids []int64
	if err := db.Select(&ids, `SELECT id FROM notifications WHERE account_id = $1 ORDER BY id`, account); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range s.To(address) {
		count[r.MessageID]++
	}
	for _, id := range ids {
		if n := count[fmt.Sprintf("levee-notification-%d@levee.test", id)]; n != 1 {
			t.Errorf("notification %d received %d times", id, n)
		}
	}
	if len(count) != len(ids) {
		t.Errorf("%s got %d distinct mails for %d notifications", address, len(count), len(ids))
	}
}

func TestRefusedThenAccepted(t *testing.T) {
	db := dbtest.New(t)
	s := mailtest.MustStart(t)
	alice := MustPerson(t, db, "alice", "alice@example.org", true)
	MustNotify(t, db, alice, "quorum_request", 5)
	s.Refuse(3, 451)
	runWorkers(t, db, newWorker(t, db, s.URL(), "w1"))

	if s.Refused() != 3 {
		t.Fatalf("refused %d, want 3", s.Refused())
	}
	mustEachOnce(t, db, s, alice, "alice@example.org")
	var rows []struct {
		Delivery string  `db:"delivery"`
		Attempts int     `db:"attempts"`
		SentAt   *string `db:"sent_at"`
		Err      *string `db:"last_error"`
	}
	if err := db.Select(&rows, `SELECT delivery, attempts, sent_at::text, last_error FROM notifications ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, r := range rows {
		if r.Delivery != "sent" || r.SentAt == nil || r.Err != nil {
			t.Errorf("notification %d: %+v", i, r)
		}
		total += r.Attempts
	}
	if total != 5+3 {
		t.Errorf("%d attempts in all, want 8 (5 sends and 3 refusals)", total)
	}
	got := s.To("alice@example.org")[0]
	for _, want := range []string{"Hello alice,", " of quorum_request.", "What to do: Approve or reject the proposal on the quorum page by ",
		"Open: http://levee.test/quorum", "http://levee.test/portfolio#email"} {
		if !strings.Contains(got.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, got.Body)
		}
	}
	if got.Subject != "Levee: The quorum asks your vote" || got.From != "levee@example.org" {
		t.Errorf("subject %q from %q", got.Subject, got.From)
	}
}

func TestRefusedForGood(t *testing.T) {
	db := dbtest.New(t)
	s := mailtest.MustStart(t)
	alice := MustPerson(t, db, "alice", "alice@example.org", true)
	MustNotify(t, db, alice, "verdict", 2)
	s.Refuse(1, 550)
	runWorkers(t, db, newWorker(t, db, s.URL(), "w1"))
	var failed []string
	if err := db.Select(&failed, `SELECT last_error FROM notifications WHERE delivery = 'failed'`); err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "550") {
		t.Fatalf("failed: %q", failed)
	}
	if n := len(s.To("alice@example.org")); n != 1 {
		t.Fatalf("received %d, want 1", n)
	}
}

func TestServerDownThenUp(t *testing.T) {
	db := dbtest.New(t)
	alice := MustPerson(t, db, "alice", "alice@example.org", true)
	MustNotify(t, db, alice, "payment", 3)
	// Nothing listens: every attempt fails to connect and is put off.
	w := newWorker(t, db, "smtp://127.0.0.1:1", "w1")
	if _, err := w.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	var deferred int
	db.Get(&deferred, `SELECT count(*) FROM notifications WHERE delivery IS NULL AND attempts = 1 AND last_error IS NOT NULL AND next_attempt_at IS NOT NULL`)
	if deferred != 1 {
		t.Fatalf("%d deferred after a round against no server, want 1 (the round stops at the first failure)", deferred)
	}
	s := mailtest.MustStart(t)
	runWorkers(t, db, newWorker(t, db, s.URL(), "w2"))
	mustEachOnce(t, db, s, alice, "alice@example.org")
}

func TestTwoWorkersSendEachOnce(t *testing.T) {
	url := dbtest.NewURL(t)
	db, other := sqlx.MustOpen("postgres", url), sqlx.MustOpen("postgres", url)
	t.Cleanup(func() { db.Close(); other.Close() })
	s := mailtest.MustStart(t)
	alice := MustPerson(t, db, "alice", "alice@example.org", true)
	bob := MustPerson(t, db, "bob", "bob@example.org", true)
	MustNotify(t, db, alice, "juror_seated", 60)
	MustNotify(t, db, bob, "emergency_act", 60)
	s.Refuse(10, 451)
	// Two workers, each with its own pool, as two instances would be.
	runWorkers(t, db, newWorker(t, db, s.URL(), "w1"), newWorker(t, other, s.URL(), "w2"))
	mustEachOnce(t, db, s, alice, "alice@example.org")
	mustEachOnce(t, db, s, bob, "bob@example.org")
}

func TestOnlyConfirmedAndWanted(t *testing.T) {
	db := dbtest.New(t)
	s := mailtest.MustStart(t)
	alice := MustPerson(t, db, "alice", "alice@example.org", true)
	bob := MustPerson(t, db, "bob", "bob@example.org", false) // never confirmed
	carol := MustPerson(t, db, "carol", "", false)            // no address
	dave := MustPerson(t, db, "dave", "dave@example.org", true)
	if _, err := accounts.New(db).SetEmailCategories(context.Background(), dave, []string{accounts.MailSeats}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []int64{alice, bob, carol, dave} {
		MustNotify(t, db, a, "juror_seated", 1)
		MustNotify(t, db, a, "verdict", 1)
	}
	runWorkers(t, db, newWorker(t, db, s.URL(), "w1"))
	mustEachOnce(t, db, s, alice, "alice@example.org")
	if n := len(s.To("bob@example.org")); n != 0 {
		t.Errorf("an unconfirmed address got %d mails", n)
	}
	dm := s.To("dave@example.org")
	if len(dm) != 1 || dm[0].Subject != "Levee: You were drawn for a jury" {
		t.Errorf("dave, who wants only seats, got %+v", dm)
	}
	var kept int
	db.Get(&kept, `SELECT count(*) FROM notifications WHERE delivery = 'kept'`)
	if kept != 5 { // bob's 2, carol's 2, dave's verdict
		t.Errorf("%d kept in the app, want 5", kept)
	}
	if len(s.Received()) != 3 {
		t.Errorf("%d mails in all, want 3", len(s.Received()))
	}
}

func TestConfirmationLink(t *testing.T) {
	db := dbtest.New(t)
	s := mailtest.MustStart(t)
	ctx := context.Background()
	alice := MustPerson(t, db, "alice", "", false)
	as := accounts.New(db)
	_, token, err := as.SetEmail(ctx, alice, "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := mail.ParseURL(s.URL())
	m := mail.New(mail.Options{Server: srv, From: "levee@example.org", BaseURL: "http://levee.test/", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := m.SendConfirmation(ctx, "alice@example.org", token); err != nil {
		t.Fatal(err)
	}
	got := s.To("alice@example.org")
	if len(got) != 1 || !strings.Contains(got[0].Body, "http://levee.test/email/confirm?token="+token) {
		t.Fatalf("confirmation: %+v", got)
	}
	if e, err := as.ConfirmEmail(ctx, token); err != nil || !e.Confirmed {
		t.Fatalf("confirm: %+v %v", e, err)
	}
	if _, err := as.ConfirmEmail(ctx, token); err == nil {
		t.Fatal("the link worked twice")
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		bad  bool
	}{
		{in: "smtp://mail.example.org", want: "smtp://mail.example.org:587"},
		{in: "smtps://u:p@mail.example.org", want: "smtps://u@mail.example.org:465"},
		{in: "smtp://u:p@127.0.0.1:2525?starttls=required", want: "smtp://u@127.0.0.1:2525"},
		{in: "http://mail.example.org", bad: true},
		{in: "smtp://", bad: true},
		{in: "smtp://h:99999", bad: true},
		{in: "smtp://h?starttls=maybe", bad: true},
	} {
		s, err := mail.ParseURL(tc.in)
		if tc.bad != (err != nil) || (err == nil && s.String() != tc.want) {
			t.Errorf("%s: %v %v", tc.in, s, err)
		}
	}
}
