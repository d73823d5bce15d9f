package federation

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/ledger"
	"levee/pgtx"
)

// Statement kinds of witnessing.
const (
	KindLedgerHead = "ledger_head" // {"seq","hash"}: this node's ledger head
	KindCosign     = "cosign"      // {"node","seq","hash"}: a witness saw that node's ledger extend to this head
	KindAlarm      = "alarm"       // {"node","problem","seq","hash"}: a witness found it does not
)

// Cosign is the payload of a cosignature.
type Cosign struct {
	Node string `json:"node"` // the public key of the node whose ledger it is, hex
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Alarm is the payload of an alarm, and an alarm as listed.
type Alarm struct {
	Node    string `json:"node"`
	Problem string `json:"problem"`
	Seq     int64  `json:"seq"`
	Hash    string `json:"hash"`
}

// PublishHead announces this node's ledger head to every neighbour (every
// LEVEE_WITNESS_EVERY and at each quorum decision). Inside tx, so the head
// announced is the one the decision produced.
func (n *Node) PublishHead(ctx context.Context, tx *sqlx.Tx) error {
	// Under a share lock, so that heads are announced in the order of the
	// ledger: read without it, a head read before an append could be
	// announced after the append's own (a quorum decision and the witness
	// round at once), and the neighbours would see the head go back.
	seq, hash, err := ledger.HeadShared(ctx, tx)
	if err != nil {
		return err
	}
	_, err = n.Publish(ctx, tx, KindLedgerHead, Head{Seq: seq, Hash: hex.EncodeToString(hash)}, nil)
	return err
}

// Witness publishes the ledger head in its own transaction.
func (n *Node) Witness(ctx context.Context) error {
	return pgtx.Run(ctx, n.db, func(tx *sqlx.Tx) error { return n.PublishHead(ctx, tx) })
}

// lastCosigned is the last head of node's ledger this node cosigned, and
// when node signed the statement that announced it (zero when unknown: a
// cosignature that answers no stored head).
func lastCosigned(ctx context.Context, q sqlx.QueryerContext, self, node ed25519.PublicKey) (Cosign, time.Time, bool, error) {
	var rs []struct {
		Payload string `db:"payload"`
		HeadAt  *int64 `db:"head_at_us"`
	}
	if err := sqlx.SelectContext(ctx, q, &rs, `SELECT c.payload, h.at_us AS head_at_us FROM statements c
		LEFT JOIN statements h ON h.hash = c.in_reply_to
		WHERE c.signer = $1 AND c.kind = 'cosign' AND (c.payload::jsonb)->>'node' = $2
		ORDER BY ((c.payload::jsonb)->>'seq')::bigint DESC, c.seq DESC LIMIT 1`, []byte(self), hex.EncodeToString(node)); err != nil {
		return Cosign{}, time.Time{}, false, pgtx.Unavailable(err)
	}
	if len(rs) == 0 {
		return Cosign{}, time.Time{}, false, nil
	}
	var c Cosign
	var at time.Time
	if rs[0].HeadAt != nil {
		at = time.UnixMicro(*rs[0].HeadAt)
	}
	return c, at, true, json.Unmarshal([]byte(rs[0].Payload), &c)
}

// handleHead takes a neighbour's ledger head: it is stored now and checked
// by CheckHeads in the background, since the check reads the neighbour's
// export and may take long; the answer goes back through the outbox.
func (n *Node) handleHead(_ context.Context, _ *sqlx.Tx, _ Peer, st Statement) (*Statement, error) {
	var h Head
	if err := json.Unmarshal(st.Payload, &h); err != nil || h.Seq < 0 {
		return nil, levee.Invalid("payload", "a ledger head is {\"seq\",\"hash\"}")
	}
	return nil, nil
}

// CheckHeads answers the neighbours' ledger heads not answered yet, oldest
// first: a cosignature or an alarm, stored as the reply to the head and
// delivered to its node. A head whose node's export cannot be read now is
// tried again at the next call.
func (n *Node) CheckHeads(ctx context.Context) error {
	var rs []statementRow
	if err := n.db.SelectContext(ctx, &rs, `SELECT `+statementColumns+` FROM statements s WHERE kind = 'ledger_head' AND NOT ours
		AND NOT EXISTS (SELECT 1 FROM statements r WHERE r.in_reply_to = s.hash) ORDER BY seq LIMIT 20`); err != nil {
		return pgtx.Unavailable(fmt.Errorf("heads to witness: %w", err))
	}
	for _, r := range rs {
		st := r.statement()
		from, err := n.net.PeerByKey(ctx, n.db, st.Signer)
		if levee.ErrorCode(err) == levee.ENOTFOUND {
			continue // no longer a neighbour
		} else if err != nil {
			return err
		}
		answer, err := n.checkHead(ctx, from, &st)
		if err != nil {
			n.opts.Logger.Debug("witnessing: the neighbour's export cannot be read now", slog.String("neighbour", from.Name), slog.Any("error", err))
			continue
		}
		err = pgtx.Run(ctx, n.db, func(tx *sqlx.Tx) error {
			reply, err := answer(tx)
			if err != nil {
				return err
			}
			if _, err := storeStatement(ctx, tx, reply, true, n.now(), st.Hash()); err != nil {
				return err
			}
			return enqueue(ctx, tx, reply.Hash(), from, n.now())
		})
		if err != nil {
			return fmt.Errorf("witness %s's head: %w", from.Name, err)
		}
	}
	return nil
}

// checkHead checks that a neighbour's new ledger head extends the last one
// this node cosigned: it fetches the entries in between (and the cosigned
// one itself) from the neighbour's public export and rechains them. What
// it returns runs inside the receiving transaction and signs the answer: a
// cosignature, or an alarm raised here and sent back.
func (n *Node) checkHead(ctx context.Context, from Peer, st *Statement) (func(tx *sqlx.Tx) (*Statement, error), error) {
	var h Head
	if err := json.Unmarshal(st.Payload, &h); err != nil || h.Seq < 0 {
		return nil, levee.Invalid("payload", "a ledger head is {\"seq\",\"hash\"}")
	}
	last, lastAt, have, err := lastCosigned(ctx, n.db, n.PublicKey(), from.Key)
	if err != nil {
		return nil, err
	}
	problem := ""
	switch {
	case have && h.Seq < last.Seq && !lastAt.IsZero() && st.At.Before(lastAt):
		// An older announcement that arrived late (the outbox retries a
		// neighbour it could not reach, and a newer head may pass it): not
		// a step back if it is an ancestor of the head cosigned since, in
		// the neighbour's export today.
		if h.Seq == 0 && h.Hash != hex.EncodeToString(make([]byte, ledger.HashSize)) {
			problem = fmt.Sprintf("an empty ledger's head has hash %s, not zeros", h.Hash)
			break
		}
		problem, err = n.rechain(ctx, from, Cosign{Node: last.Node, Seq: h.Seq, Hash: h.Hash}, Head{Seq: last.Seq, Hash: last.Hash})
		if err != nil {
			return nil, err // unreachable export: the sender retries; no alarm for a network failure
		}
		if problem != "" {
			problem = fmt.Sprintf("a late head at seq %d is no ancestor of the head %d cosigned since: %s", h.Seq, last.Seq, problem)
		}
	case have && h.Seq < last.Seq:
		problem = fmt.Sprintf("the head went back from seq %d to %d", last.Seq, h.Seq)
	case have && h.Seq == last.Seq && h.Hash != last.Hash:
		problem = fmt.Sprintf("entry %d had hash %s when cosigned and now has %s", last.Seq, last.Hash, h.Hash)
	case have && h.Seq == last.Seq:
	default:
		problem, err = n.rechain(ctx, from, last, h)
		if err != nil {
			return nil, err // unreachable export: the sender retries; no alarm for a network failure
		}
	}
	node := hex.EncodeToString(from.Key)
	return func(tx *sqlx.Tx) (*Statement, error) {
		if problem == "" {
			st, err := n.Sign(KindCosign, Cosign{Node: node, Seq: h.Seq, Hash: h.Hash})
			return &st, err
		}
		a := Alarm{Node: node, Problem: problem, Seq: h.Seq, Hash: h.Hash}
		al, err := n.Sign(KindAlarm, a)
		if err != nil {
			return nil, err
		}
		n.opts.Logger.Error("ledger alarm: a neighbour's ledger does not extend the head this node cosigned",
			slog.String("neighbour", from.Name), slog.String("problem", problem))
		// The alarm is stored by the caller as our reply; record it here too.
		return &al, n.raise(ctx, tx, from.Key, n.PublicKey(), problem, nil)
	}, nil
}

func (n *Node) raise(ctx context.Context, tx *sqlx.Tx, about, by ed25519.PublicKey, problem string, hash []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO alarms (at, about, raised_by, problem, statement_hash) VALUES ($1, $2, $3, $4, $5)`,
		n.now(), []byte(about), []byte(by), problem, hash)
	return err
}

// rechain fetches from's export from last.Seq (or the start) to h.Seq and
// checks every entry's hash and link. It returns the problem found, or an
// error when the export cannot be read at all.
func (n *Node) rechain(ctx context.Context, from Peer, last Cosign, h Head) (string, error) {
	after := max(last.Seq-1, 0)
	prev := make([]byte, ledger.HashSize) // entry 1 links to zeros
	for after < h.Seq {
		page, err := n.fetchEntries(ctx, from.URL, after)
		if err != nil {
			return "", err
		}
		if len(page.Entries) == 0 {
			return fmt.Sprintf("the export ends at seq %d, before the announced head %d", after, h.Seq), nil
		}
		for _, e := range page.Entries {
			switch {
			case e.Seq != after+1:
				return fmt.Sprintf("the export skips from seq %d to %d", after, e.Seq), nil
			case !bytes.Equal(e.ComputeHash(), e.Hash):
				return fmt.Sprintf("entry %d's hash does not match its content", e.Seq), nil
			case e.Seq == last.Seq && hex.EncodeToString(e.Hash) != last.Hash:
				return fmt.Sprintf("entry %d had hash %s when cosigned and the export now says %s", e.Seq, last.Hash, hex.EncodeToString(e.Hash)), nil
			case e.Seq > last.Seq && !bytes.Equal(e.PrevHash, prev):
				return fmt.Sprintf("entry %d does not link to entry %d", e.Seq, e.Seq-1), nil
			}
			prev, after = e.Hash, e.Seq
			if after == h.Seq {
				break
			}
		}
	}
	if h.Seq > 0 && hex.EncodeToString(prev) != h.Hash {
		return fmt.Sprintf("entry %d has hash %s in the export, not the announced %s", h.Seq, hex.EncodeToString(prev), h.Hash), nil
	}
	return "", nil
}

func (n *Node) fetchEntries(ctx context.Context, base string, after int64) (ledger.Page, error) {
	url := strings.TrimRight(base, "/") + "/api/v1/ledger/entries?limit=1000&after=" + strconv.FormatInt(after, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ledger.Page{}, err
	}
	resp, err := n.opts.HTTP.Do(req)
	if err != nil {
		return ledger.Page{}, levee.Errorf(levee.EUNAVAILABLE, "the neighbour's ledger export is unreachable: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return ledger.Page{}, levee.Errorf(levee.EUNAVAILABLE, "the neighbour's ledger export answered HTTP %d", resp.StatusCode)
	}
	var p ledger.Page
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&p); err != nil {
		return ledger.Page{}, levee.Errorf(levee.EUNAVAILABLE, "the neighbour's ledger export is not readable: %v", err)
	}
	return p, nil
}

// handleCosign takes a cosignature of this node's ledger (the reply to a
// ledger head): it must name this node.
func (n *Node) handleCosign(_ context.Context, _ *sqlx.Tx, _ Peer, st Statement) (*Statement, error) {
	var c Cosign
	if err := json.Unmarshal(st.Payload, &c); err != nil || c.Node != hex.EncodeToString(n.PublicKey()) {
		return nil, refuse("a cosignature must name this node's key")
	}
	return nil, nil
}

// handleAlarm records a neighbour's alarm about this node's ledger.
func (n *Node) handleAlarm(ctx context.Context, tx *sqlx.Tx, from Peer, st Statement) (*Statement, error) {
	var a Alarm
	if err := json.Unmarshal(st.Payload, &a); err != nil {
		return nil, levee.Invalid("payload", "an alarm is {\"node\",\"problem\",\"seq\",\"hash\"}")
	}
	about, err := hex.DecodeString(a.Node)
	if err != nil || len(about) != ed25519.PublicKeySize {
		return nil, levee.Invalid("payload.node", "node must be a public key in hex")
	}
	n.opts.Logger.Error("ledger alarm raised by a neighbour", slog.String("neighbour", from.Name), slog.String("problem", a.Problem))
	return nil, n.raise(ctx, tx, about, from.Key, a.Problem, st.Hash())
}

// Witnessed is one cosignature of this node's ledger, as listed.
type Witnessed struct {
	Witness   string    `json:"witness"` // the neighbour's key, hex
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	At        time.Time `json:"at"`
	Statement Wire      `json:"statement"`
}

// Witnesses lists the cosignatures of this node's ledger, newest first.
func (n *Node) Witnesses(ctx context.Context) ([]Witnessed, error) {
	var rs []statementRow
	if err := n.db.SelectContext(ctx, &rs, `SELECT `+statementColumns+` FROM statements WHERE kind = 'cosign' AND NOT ours
		AND (payload::jsonb)->>'node' = $1 ORDER BY seq DESC LIMIT 1000`, hex.EncodeToString(n.PublicKey())); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("witnesses: %w", err))
	}
	out := []Witnessed{}
	for _, r := range rs {
		st := r.statement()
		var c Cosign
		json.Unmarshal(st.Payload, &c)
		out = append(out, Witnessed{Witness: hex.EncodeToString(st.Signer), Seq: c.Seq, Hash: c.Hash, At: st.At, Statement: st.Wire()})
	}
	return out, nil
}

// AlarmView is an alarm as listed.
type AlarmView struct {
	ID       int64     `json:"id,string" db:"id"`
	At       time.Time `json:"at" db:"at"`
	About    string    `json:"about" db:"about"`
	RaisedBy string    `json:"raised_by" db:"raised_by"`
	Problem  string    `json:"problem" db:"problem"`
}

// Alarms lists every alarm raised here or by a neighbour about this node.
func (n *Node) Alarms(ctx context.Context) ([]AlarmView, error) {
	as := []AlarmView{}
	err := n.db.SelectContext(ctx, &as, `SELECT id, at, encode(about, 'hex') AS about, encode(raised_by, 'hex') AS raised_by, problem FROM alarms ORDER BY id DESC LIMIT 500`)
	return as, pgtx.Unavailable(err)
}

// WitnessReport is what levee ledger verify --witnesses found.
type WitnessReport struct {
	Checked  int
	Problems []string
}

// VerifyWitnesses checks the local ledger against every cosigned head: the
// cosignature must verify, and the local entry at its seq must have its
// hash. A database owner who rewrote history cannot also rewrite what the
// neighbours signed.
func VerifyWitnesses(ctx context.Context, db *sqlx.DB, self ed25519.PublicKey) (WitnessReport, error) {
	var rs []statementRow
	if err := db.SelectContext(ctx, &rs, `SELECT `+statementColumns+` FROM statements WHERE kind = 'cosign' AND signer <> $1
		AND (payload::jsonb)->>'node' = $2 ORDER BY seq`, []byte(self), hex.EncodeToString(self)); err != nil {
		return WitnessReport{}, fmt.Errorf("witnesses: %w", err)
	}
	l := ledger.New(db)
	var r WitnessReport
	for _, row := range rs {
		st := row.statement()
		r.Checked++
		if err := st.Verify(); err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("cosignature %s: %s", st.HashHex(), levee.ErrorMessage(err)))
			continue
		}
		var c Cosign
		if err := json.Unmarshal(st.Payload, &c); err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("cosignature %s: unreadable payload", st.HashHex()))
			continue
		}
		if c.Seq == 0 {
			continue
		}
		es, err := l.Entries(ctx, c.Seq-1, 1)
		if err != nil {
			return r, err
		}
		if len(es) == 0 || es[0].Seq != c.Seq {
			r.Problems = append(r.Problems, fmt.Sprintf("witness %s cosigned entry %d, which this ledger no longer has", Fingerprint(st.Signer), c.Seq))
		} else if hex.EncodeToString(es[0].Hash) != c.Hash {
			r.Problems = append(r.Problems, fmt.Sprintf("witness %s cosigned entry %d with hash %s; this ledger now has %s",
				Fingerprint(st.Signer), c.Seq, c.Hash, hex.EncodeToString(es[0].Hash)))
		}
	}
	return r, nil
}
