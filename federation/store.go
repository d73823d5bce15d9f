package federation

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/pgtx"
)

type statementRow struct {
	Seq       int64  `db:"seq"`
	Hash      []byte `db:"hash"`
	Signer    []byte `db:"signer"`
	Kind      string `db:"kind"`
	AtUS      int64  `db:"at_us"`
	Payload   string `db:"payload"`
	Signature []byte `db:"signature"`
	Ours      bool   `db:"ours"`
	InReplyTo []byte `db:"in_reply_to"`
}

func (r statementRow) statement() Statement {
	return Statement{Signer: ed25519.PublicKey(r.Signer), Kind: r.Kind, At: time.UnixMicro(r.AtUS).UTC(), Payload: []byte(r.Payload), Signature: r.Signature}
}

const statementColumns = `seq, hash, signer, kind, at_us, payload, signature, ours, in_reply_to`

// storeStatement keeps st; stored reports false when it was already there
// (a retried delivery), which is not an error: delivery is idempotent.
func storeStatement(ctx context.Context, tx *sqlx.Tx, st *Statement, ours bool, now time.Time, inReplyTo []byte) (stored bool, err error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO statements (hash, signer, kind, at_us, payload, signature, ours, received_at, in_reply_to)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (hash) DO NOTHING`,
		st.Hash(), []byte(st.Signer), st.Kind, st.At.UnixMicro(), string(st.Payload), st.Signature, ours, now, inReplyTo)
	if err != nil {
		return false, fmt.Errorf("store statement: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func getStatement(ctx context.Context, q sqlx.QueryerContext, hash []byte) (Statement, error) {
	var r statementRow
	err := sqlx.GetContext(ctx, q, &r, `SELECT `+statementColumns+` FROM statements WHERE hash = $1`, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Statement{}, levee.Errorf(levee.ENOTFOUND, "no statement %x", hash)
	} else if err != nil {
		return Statement{}, pgtx.Unavailable(fmt.Errorf("statement: %w", err))
	}
	return r.statement(), nil
}

// replyTo returns the stored reply to the statement hash, if any.
func replyTo(ctx context.Context, q sqlx.QueryerContext, hash []byte) (*Statement, error) {
	var rs []statementRow
	if err := sqlx.SelectContext(ctx, q, &rs, `SELECT `+statementColumns+` FROM statements WHERE in_reply_to = $1 ORDER BY seq LIMIT 1`, hash); err != nil {
		return nil, pgtx.Unavailable(err)
	}
	if len(rs) == 0 {
		return nil, nil
	}
	st := rs[0].statement()
	return &st, nil
}

// Page is one page of the public export of statements.
type Page struct {
	Statements []Wire `json:"statements"`
	NextAfter  int64  `json:"next_after"`
}

// Statements is the public export: every statement this node signed or
// received, in the order it stored them, after seq after; kind "" is all.
func (n *Node) Statements(ctx context.Context, kind string, after int64, limit int) (Page, error) {
	var rs []statementRow
	if err := n.db.SelectContext(ctx, &rs, `SELECT `+statementColumns+` FROM statements WHERE seq > $1 AND ($2 = '' OR kind = $2) ORDER BY seq LIMIT $3`,
		after, kind, limit); err != nil {
		return Page{}, pgtx.Unavailable(fmt.Errorf("statements: %w", err))
	}
	p := Page{Statements: []Wire{}, NextAfter: after}
	for _, r := range rs {
		st := r.statement()
		p.Statements = append(p.Statements, st.Wire())
		p.NextAfter = r.Seq
	}
	return p, nil
}

// keepRefusals is how many refusals are kept.
const keepRefusals = 1000

// Refusal is a statement refused on arrival.
type Refusal struct {
	ID     int64     `json:"id,string" db:"id"`
	At     time.Time `json:"at" db:"at"`
	Hash   string    `json:"hash" db:"hash"`
	Signer string    `json:"signer" db:"signer"`
	Kind   string    `json:"kind" db:"kind"`
	Reason string    `json:"reason" db:"reason"`
}

func (n *Node) recordRefusal(ctx context.Context, st *Statement, reason string) {
	var hash, signer []byte
	kind := "unknown"
	if st != nil {
		hash, signer, kind = st.Hash(), st.Signer, st.Kind
	}
	n.opts.Logger.Warn("statement refused", slog.String("kind", kind), slog.String("signer", fmt.Sprintf("%x", signer)),
		slog.String("hash", fmt.Sprintf("%x", hash)), slog.String("reason", reason))
	// Anyone can post junk here, so the record is bounded: the newest
	// keepRefusals stay (the log keeps every one).
	if _, err := n.db.ExecContext(ctx, `WITH r AS (INSERT INTO refusals (at, hash, signer, kind, reason) VALUES ($1, $2, $3, $4, $5) RETURNING id)
		DELETE FROM refusals WHERE id <= (SELECT id FROM r) - $6`, n.now(), hash, signer, kind, reason, keepRefusals); err != nil {
		n.opts.Logger.Error("record refusal", slog.Any("error", err))
	}
}

// Refusals lists the statements refused on arrival, newest first.
func (n *Node) Refusals(ctx context.Context) ([]Refusal, error) {
	rs := []Refusal{}
	err := n.db.SelectContext(ctx, &rs, `SELECT id, at, coalesce(encode(hash, 'hex'), '') AS hash, coalesce(encode(signer, 'hex'), '') AS signer, kind, reason
		FROM refusals ORDER BY id DESC LIMIT 500`)
	return rs, pgtx.Unavailable(err)
}
