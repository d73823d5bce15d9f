package mail

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	gomail "github.com/wneessen/go-mail"

	"levee"
	"levee/accounts"
	"levee/outbox"
	"levee/pgtx"
)

// unavailable turns a failed confirmation send into an error for the user.
func unavailable(err error, later string) error {
	if permanent(err) {
		return fmt.Errorf("%w: %w", levee.Invalid("address", "the mail server refused to send to this address"), err)
	}
	return fmt.Errorf("%w: %w", levee.Errorf(levee.EUNAVAILABLE, "the mail could not be sent now; %s", later), err)
}

// WorkerOptions configure a Worker; zero fields take the defaults.
type WorkerOptions struct {
	Poll        time.Duration // how often to look for undelivered notifications; default 2 s
	Batch       int           // the most sent in one round; default 50
	BackoffBase time.Duration // the wait after the first temporary failure, doubled after each; default 30 s
	BackoffMax  time.Duration // the longest wait; default 1 h
	MaxAttempts int           // attempts before a notification is marked failed; default 12
	// MaxAge keeps in the app a notification older than this when the worker
	// first sees it (say, written while mail was off); default 3 days.
	MaxAge time.Duration
	// Now is the clock that notifications' created_at were written with
	// (the services' clock); default time.Now. Retries run on real time.
	Now func() time.Time
	// ID names this worker in logs.
	ID string
}

// Worker sends the notification outbox. Several may run on one database.
type Worker struct {
	db     *sqlx.DB
	m      *Mailer
	opts   WorkerOptions
	logger *slog.Logger
}

// NewWorker returns a worker that sends through m.
func NewWorker(db *sqlx.DB, m *Mailer, opts WorkerOptions) *Worker {
	if opts.Poll <= 0 {
		opts.Poll = 2 * time.Second
	}
	if opts.Batch <= 0 {
		opts.Batch = 50
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 30 * time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = time.Hour
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 12
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 72 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Worker{db: db, m: m, opts: opts, logger: m.opts.Logger.With(slog.String("component", "mail"), slog.String("worker", opts.ID))}
}

// Run sends until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.opts.Poll)
	defer t.Stop()
	for {
		if _, err := w.Round(ctx); err != nil && ctx.Err() == nil {
			w.logger.Warn("mail round", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// backoff is the wait after the attempts-th failed attempt.
func (w *Worker) backoff(attempts int) time.Duration {
	d := w.opts.BackoffBase
	for i := 1; i < attempts && d < w.opts.BackoffMax; i++ {
		d *= 2
	}
	return min(d, w.opts.BackoffMax)
}

// claimed is a notification taken by this worker, with its reader.
type claimed struct {
	note
	Address   *string        `db:"address"`
	Confirmed bool           `db:"confirmed"`
	Muted     pq.StringArray `db:"muted"`
	Attempts  int            `db:"attempts"`
	CreatedAt time.Time      `db:"created_at"`
}

// Round delivers up to Batch due notifications and returns how many it
// decided (sent, kept in the app or failed). It stops at the first
// failure to send: the server is likely refusing everything for now.
func (w *Worker) Round(ctx context.Context) (int, error) {
	var c *gomail.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	done := 0
	for done < w.opts.Batch {
		decided, stop, err := w.one(ctx, &c)
		if err != nil {
			return done, err
		}
		if decided {
			done++
		}
		if stop {
			break
		}
	}
	return done, nil
}

// one takes the next due notification, sends it if its reader wants it,
// and records what happened, all under the row's lock. stop says there is
// nothing more to do in this round.
func (w *Worker) one(ctx context.Context, client **gomail.Client) (decided, stop bool, err error) {
	tx, err := w.db.BeginTxx(ctx, nil)
	if err != nil {
		return false, true, pgtx.Unavailable(fmt.Errorf("mail: begin: %w", err))
	}
	defer tx.Rollback()
	now := time.Now().UTC()
	due, ok, err := outbox.Claim(ctx, tx, now)
	if err != nil {
		return false, true, fmt.Errorf("mail: claim: %w", err)
	}
	if !ok {
		return false, true, nil
	}
	box, err := accounts.MailboxOf(ctx, tx, due.Account)
	if err != nil {
		return false, true, fmt.Errorf("mail: claim: %w", err)
	}
	n := claimed{note: note{ID: due.ID, Name: box.Name, Kind: due.Kind, Message: due.Message, Deadline: due.Deadline, CaseID: due.CaseID, Link: due.Link},
		Address: box.Address, Confirmed: box.Confirmed, Muted: box.Muted, Attempts: due.Attempts, CreatedAt: due.CreatedAt}
	category := Category(n.Kind)
	var why string
	switch {
	case n.Address == nil:
		why = "no address"
	case !n.Confirmed:
		why = "address not confirmed"
	case contains(n.Muted, category):
		why = "category " + category + " not wanted"
	case w.opts.Now().Sub(n.CreatedAt) > w.opts.MaxAge:
		why = "too old when mail was first tried"
	}
	if why != "" {
		if err := outbox.Kept(ctx, tx, n.ID, why); err != nil {
			return false, true, fmt.Errorf("mail: keep %d: %w", n.ID, err)
		}
		return true, false, commit(tx, n.ID)
	}

	sendErr := w.send(ctx, client, *n.Address, n.note)
	attempts := n.Attempts + 1
	switch {
	case sendErr == nil:
		err = outbox.Sent(ctx, tx, n.ID, now, attempts)
	case permanent(sendErr) || attempts >= w.opts.MaxAttempts:
		w.logger.Warn("mail failed", slog.Int64("notification", n.ID), slog.Int("attempts", attempts), slog.Any("error", sendErr))
		err = outbox.Failed(ctx, tx, n.ID, attempts, errText(sendErr))
	default:
		next := now.Add(w.backoff(attempts))
		w.logger.Info("mail deferred", slog.Int64("notification", n.ID), slog.Int("attempts", attempts), slog.Time("next_attempt_at", next), slog.Any("error", sendErr))
		err = outbox.Retry(ctx, tx, n.ID, attempts, errText(sendErr), next)
	}
	if err != nil {
		return false, true, fmt.Errorf("mail: record %d: %w", n.ID, err)
	}
	if err := commit(tx, n.ID); err != nil {
		return false, true, err
	}
	return sendErr == nil || permanent(sendErr), sendErr != nil, nil
}

// send mails n to address over *client, dialling it first if needed; after
// a failure the connection is closed, since its state is unknown.
func (w *Worker) send(ctx context.Context, client **gomail.Client, address string, n note) error {
	subject, body := compose(w.m.opts.BaseURL, n)
	msg, err := w.m.message(address, subject, body, "levee-notification-"+strconv.FormatInt(n.ID, 10))
	if err != nil {
		return err
	}
	if *client == nil {
		c, err := w.m.dial(ctx)
		if err != nil {
			return err
		}
		*client = c
	}
	if err := (*client).Send(msg); err != nil {
		(*client).Close()
		*client = nil
		return err
	}
	return nil
}

func commit(tx *sqlx.Tx, id int64) error {
	if err := tx.Commit(); err != nil {
		return pgtx.Unavailable(fmt.Errorf("mail: record %d: %w", id, err))
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// errText is an error as stored in last_error: at most 1000 bytes.
func errText(err error) string {
	s := err.Error()
	if len(s) > 1000 {
		s = s[:1000]
	}
	return strings.ToValidUTF8(s, "")
}
