package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee/pgtx"
)

// StatementsPath is where a node takes statements from its neighbours.
const StatementsPath = "/api/v1/federation/statements"

// lease is how long a claimed delivery is left to its worker before
// another (or this one after a restart) may try it again.
const lease = 30 * time.Second

func enqueue(ctx context.Context, tx *sqlx.Tx, hash []byte, p Peer, now time.Time) error {
	if p.URL == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO deliveries (statement_hash, peer_key, url, next_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, hash, []byte(p.Key), strings.TrimRight(p.URL, "/")+StatementsPath, now)
	return err
}

// Delivery is the state of one statement's delivery to one neighbour.
type Delivery struct {
	PeerKey       []byte     `json:"-" db:"peer_key"`
	Attempts      int        `json:"attempts" db:"attempts"`
	LastAttemptAt *time.Time `json:"last_attempt_at,omitempty" db:"last_attempt_at"`
	LastError     *string    `json:"last_error,omitempty" db:"last_error"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty" db:"delivered_at"`
	RefusedAt     *time.Time `json:"refused_at,omitempty" db:"refused_at"`
	NextAt        time.Time  `json:"next_attempt_at" db:"next_at"`
}

// Deliveries returns the delivery of each of the statements hashes to each
// neighbour, in one query: by the statement's hash, then by the neighbour's
// key (both as strings of their bytes).
func Deliveries(ctx context.Context, q sqlx.QueryerContext, hashes [][]byte) (map[string]map[string]Delivery, error) {
	var ds []struct {
		Hash []byte `db:"statement_hash"`
		Delivery
	}
	if err := sqlx.SelectContext(ctx, q, &ds, `SELECT statement_hash, peer_key, attempts, last_attempt_at, last_error, delivered_at, refused_at, next_at
		FROM deliveries WHERE statement_hash = ANY($1)`, pq.ByteaArray(hashes)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("deliveries: %w", err))
	}
	out := map[string]map[string]Delivery{}
	for _, d := range ds {
		if out[string(d.Hash)] == nil {
			out[string(d.Hash)] = map[string]Delivery{}
		}
		out[string(d.Hash)][string(d.PeerKey)] = d.Delivery
	}
	return out, nil
}

type due struct {
	Hash     []byte `db:"statement_hash"`
	PeerKey  []byte `db:"peer_key"`
	URL      string `db:"url"`
	Attempts int    `db:"attempts"`
}

// DeliverDue makes one attempt at every delivery that is due, each claimed
// under a lease (FOR UPDATE SKIP LOCKED) so that several workers, or a
// worker after a crash, never send one twice at once. It returns how many
// were delivered.
func (n *Node) DeliverDue(ctx context.Context) (int, error) {
	var ds []due
	now := n.now()
	err := pgtx.Run(ctx, n.db, func(tx *sqlx.Tx) error {
		ds = nil
		return tx.SelectContext(ctx, &ds, `UPDATE deliveries d SET next_at = $2, attempts = d.attempts + 1, last_attempt_at = $1
			FROM (SELECT statement_hash, peer_key FROM deliveries WHERE delivered_at IS NULL AND refused_at IS NULL AND next_at <= $1
			      ORDER BY next_at LIMIT 50 FOR UPDATE SKIP LOCKED) c
			WHERE d.statement_hash = c.statement_hash AND d.peer_key = c.peer_key
			RETURNING d.statement_hash, d.peer_key, d.url, d.attempts`, now, now.Add(lease))
	})
	if err != nil {
		return 0, fmt.Errorf("claim deliveries: %w", err)
	}
	delivered := 0
	down := map[string]string{} // neighbours unreachable in this round, and why
	for _, d := range ds {
		if ctx.Err() != nil {
			return delivered, ctx.Err()
		}
		if why, ok := down[string(d.PeerKey)]; ok {
			// One connection refused is enough to know: the others wait
			// their own backoff without a try each.
			n.retryLater(ctx, d, why)
			continue
		}
		ok, unreachable := n.deliverOne(ctx, d)
		if ok {
			delivered++
		}
		if unreachable != "" {
			down[string(d.PeerKey)] = unreachable
		}
	}
	return delivered, nil
}

// backoff is the wait after the attempts-th failed attempt: 1 s, doubling,
// at most MaxBackoff.
func (n *Node) backoff(attempts int) time.Duration {
	d := time.Second
	for i := 1; i < attempts && d < n.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, n.opts.MaxBackoff)
}

// retryLater records a failed attempt and when to try again.
func (n *Node) retryLater(ctx context.Context, d due, why string) {
	if _, err := n.db.ExecContext(ctx, `UPDATE deliveries SET next_at = $3, last_error = $4 WHERE statement_hash = $1 AND peer_key = $2`,
		d.Hash, d.PeerKey, n.now().Add(n.backoff(d.Attempts)), why); err != nil {
		n.opts.Logger.Error("delivery: record the attempt", slog.Any("error", err))
	}
}

// deliverOne makes one attempt; unreachable says why when the neighbour
// could not be reached at all (no HTTP answer).
func (n *Node) deliverOne(ctx context.Context, d due) (ok bool, unreachable string) {
	st, err := getStatement(ctx, n.db, d.Hash)
	if err != nil {
		n.opts.Logger.Error("delivery: statement", slog.Any("error", err))
		return false, ""
	}
	body, _ := json.Marshal(st.Wire())
	status, reply, err := n.post(ctx, d.URL, body)
	now := n.now()
	logger := n.opts.Logger.With(slog.String("kind", st.Kind), slog.String("hash", st.HashHex()), slog.String("url", d.URL), slog.Int("attempt", d.Attempts))
	if err == nil && status/100 == 2 && reply != nil {
		if _, rerr := n.receive(ctx, reply, d.Hash); rerr != nil {
			logger.Warn("delivery: the reply was refused", slog.Any("error", rerr))
			n.recordRefusal(ctx, reply, rerr.Error())
		}
	}
	var q string
	var args []any
	switch {
	case err == nil && status/100 == 2:
		q, args = `UPDATE deliveries SET delivered_at = $3, last_error = NULL WHERE statement_hash = $1 AND peer_key = $2`, []any{d.Hash, d.PeerKey, now}
		logger.Debug("delivered")
	case status/100 == 4 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout:
		q, args = `UPDATE deliveries SET refused_at = $3, last_error = $4 WHERE statement_hash = $1 AND peer_key = $2`,
			[]any{d.Hash, d.PeerKey, now, "refused: " + err.Error()}
		logger.Warn("delivery refused by the neighbour", slog.Int("status", status))
	default:
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if status == 0 {
			unreachable = msg
		}
		q, args = `UPDATE deliveries SET next_at = $3, last_error = $4 WHERE statement_hash = $1 AND peer_key = $2`,
			[]any{d.Hash, d.PeerKey, now.Add(n.backoff(d.Attempts)), msg}
		// A neighbour down for days would fill the log: the first attempt
		// and every tenth are worth an operator's eye.
		level := slog.LevelDebug
		if d.Attempts == 1 || d.Attempts%10 == 0 {
			level = slog.LevelInfo
		}
		logger.Log(ctx, level, "delivery failed; will retry", slog.String("error", msg), slog.Duration("retry_in", n.backoff(d.Attempts)))
	}
	if _, err := n.db.ExecContext(ctx, q, args...); err != nil {
		logger.Error("delivery: record the attempt", slog.Any("error", err))
	}
	return err == nil && status/100 == 2, unreachable
}

// post sends a statement and reads the answer: {"reply": Wire} or an error body.
func (n *Node) post(ctx context.Context, url string, body []byte) (int, *Statement, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.opts.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		json.Unmarshal(b, &e)
		msg := e.Error.Message
		if msg == "" {
			msg = strings.TrimSpace(string(b))
		}
		return resp.StatusCode, nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	}
	var r struct {
		Reply *Wire `json:"reply"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("the answer is not JSON: %w", err)
	}
	if r.Reply == nil {
		return resp.StatusCode, nil, nil
	}
	st, err := r.Reply.Statement()
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("the reply does not verify: %w", err)
	}
	return resp.StatusCode, &st, nil
}

// Run delivers what is due every poll until ctx ends.
func (n *Node) Run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if err := n.CheckHeads(ctx); err != nil && ctx.Err() == nil {
			n.opts.Logger.Warn("witnessing neighbours' ledgers", slog.Any("error", err))
		}
		if _, err := n.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			n.opts.Logger.Warn("delivering statements", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
