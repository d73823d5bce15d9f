package crisis

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/federation"
	"levee/pgtx"
)

// Node is what crisis needs of this node in the network (federation.Node):
// signing and delivering statements, and announcing the ledger head.
type Node interface {
	Publish(ctx context.Context, tx *sqlx.Tx, kind string, payload any, to []federation.Peer) (federation.Statement, error)
	PublishHead(ctx context.Context, tx *sqlx.Tx) error
	Handle(kind string, h federation.Handler)
	Name() string
}

// Statement kinds of the quorum across nodes.
const (
	StatementProposal = "proposal" // a proposal put to the neighbours
	StatementVote     = "vote"     // a neighbour's answer to a proposal
	StatementNotice   = "notice"   // an emergency's declaration, act or end, announced
)

// ProposalStatement is the payload of a proposal statement.
type ProposalStatement struct {
	City     string          `json:"city"`
	ID       int64           `json:"id"`
	Kind     string          `json:"kind"`
	Payload  json.RawMessage `json:"payload"`
	Summary  string          `json:"summary"` // the payload in words
	Reason   string          `json:"reason"`
	ClosesAt int64           `json:"closes_at"` // unix microseconds
}

// VoteStatement is the payload of a vote: the proposal it answers, by the
// hash of its statement.
type VoteStatement struct {
	Proposal string `json:"proposal"`
	Approve  bool   `json:"approve"`
}

// NoticeStatement is the payload of an emergency notice.
type NoticeStatement struct {
	City      string `json:"city"`
	Kind      string `json:"kind"`
	Emergency int64  `json:"emergency"`
	Message   string `json:"message"`
}

// registerHandlers makes this service the receiver of the quorum's
// statements.
func (s *Service) registerHandlers() {
	if s.opts.Node == nil {
		return
	}
	s.opts.Node.Handle(StatementProposal, s.receiveProposal)
	s.opts.Node.Handle(StatementVote, s.receiveVote)
	s.opts.Node.Handle(StatementNotice, s.receiveNotice)
	s.opts.Node.Handle(StatementEndRequest, s.receiveEndRequest)
}

type neighbourRow struct {
	ID          int64      `db:"id"`
	Name        string     `db:"name"`
	URL         *string    `db:"url"`
	Key         []byte     `db:"public_key"`
	SuspendedAt *time.Time `db:"suspended_at"`
}

func (r neighbourRow) peer() federation.Peer {
	p := federation.Peer{ID: r.ID, Name: r.Name, Key: ed25519.PublicKey(r.Key), Suspended: r.SuspendedAt != nil}
	if r.URL != nil {
		p.URL = *r.URL
	}
	return p
}

// PeerByKey is federation.Network: the neighbour whose key the charter pins.
func (s *Service) PeerByKey(ctx context.Context, q sqlx.QueryerContext, key ed25519.PublicKey) (federation.Peer, error) {
	var r neighbourRow
	err := sqlx.GetContext(ctx, q, &r, `SELECT id, name, url, public_key, suspended_at FROM neighbours WHERE public_key = $1`, []byte(key))
	if errors.Is(err, sql.ErrNoRows) {
		return federation.Peer{}, levee.Errorf(levee.ENOTFOUND, "no neighbour has key %x", []byte(key))
	} else if err != nil {
		return federation.Peer{}, pgtx.Unavailable(err)
	}
	return r.peer(), nil
}

// Peers is federation.Network: the neighbours that are nodes.
func (s *Service) Peers(ctx context.Context, q sqlx.QueryerContext) ([]federation.Peer, error) {
	var rs []neighbourRow
	if err := sqlx.SelectContext(ctx, q, &rs, `SELECT id, name, url, public_key, suspended_at FROM neighbours WHERE public_key IS NOT NULL ORDER BY id`); err != nil {
		return nil, pgtx.Unavailable(err)
	}
	ps := []federation.Peer{}
	for _, r := range rs {
		ps = append(ps, r.peer())
	}
	return ps, nil
}

// Heard is federation.Network: a neighbour spoke, so it is not silent, and
// a suspended one is restored.
func (s *Service) Heard(ctx context.Context, tx *sqlx.Tx, p federation.Peer) error {
	_, err := tx.ExecContext(ctx, `UPDATE neighbours SET last_heard_at = $2, suspended_at = NULL WHERE id = $1`, p.ID, s.now())
	return err
}

// CharterHash is federation.Network: SHA-256 of the charter in force and its
// neighbours, as JSON, so neighbours can tell whether they read the same.
func (s *Service) CharterHash(ctx context.Context) (string, error) {
	c, err := s.Charter(ctx)
	if err != nil {
		return "", err
	}
	// What the charter says, not what its neighbours last did: the hash
	// changes only when the charter does.
	c.Changes = nil
	for i := range c.Neighbours {
		c.Neighbours[i].LastHeardAt, c.Neighbours[i].SuspendedAt = nil, nil
	}
	b, _ := json.Marshal(c)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// suspendSilent suspends the neighbour nodes not heard from for the
// charter's neighbour_silence (counted from when they were added if never).
func (s *Service) suspendSilent(ctx context.Context) error {
	const silent = `n.public_key IS NOT NULL AND n.suspended_at IS NULL
		AND coalesce(n.last_heard_at, n.added_at) < $1::timestamptz - make_interval(secs => c.neighbour_silence_us / 1e6)`
	var due bool // most calls find no one silent: a read, not a write
	if err := s.db.GetContext(ctx, &due, `SELECT EXISTS (SELECT 1 FROM neighbours n, charter c WHERE `+silent+`)`, s.now()); err != nil || !due {
		return pgtx.Unavailable(err)
	}
	var names []string
	err := s.db.SelectContext(ctx, &names, `UPDATE neighbours n SET suspended_at = $1 FROM charter c WHERE `+silent+` RETURNING n.name`, s.now())
	for _, n := range names {
		s.opts.Logger.Warn("neighbour suspended: silent for longer than the charter's neighbour_silence", slog.String("neighbour", n))
	}
	return pgtx.Unavailable(err)
}

// checkNodeSpec validates a neighbour node named in a charter change.
func checkNodeSpec(i int, n NeighbourSpec) ([]byte, error) {
	field := fmt.Sprintf("neighbours[%d]", i)
	u, err := url.Parse(n.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, levee.Invalid(field+".url", "url must be the neighbour's http(s) address, such as https://delta.example.org")
	}
	key, err := hex.DecodeString(n.PublicKey)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, levee.Invalid(field+".public_key", "public_key must be the neighbour's Ed25519 key: 64 hex digits, as its /api/v1/node shows")
	}
	return key, nil
}

// summary says a proposal's payload in words for the neighbours' pages.
func summary(kind string, payload json.RawMessage) string {
	var m map[string]any
	json.Unmarshal(payload, &m)
	switch kind {
	case KindReallocation:
		var r Reallocation
		json.Unmarshal(payload, &r)
		return fmt.Sprintf("move %s from budget line %d to budget line %d", r.Amount, r.FromLine, r.ToLine)
	case KindIssue:
		var is Issue
		json.Unmarshal(payload, &is)
		return fmt.Sprintf("issue %s of new money into the treasury (%s)", is.Amount, is.Memo)
	case KindRenew:
		return fmt.Sprintf("renew emergency %v by the charter's renewal step", m["emergency"])
	case KindEnd:
		return fmt.Sprintf("end emergency %v now", m["emergency"])
	case KindDeclare:
		return fmt.Sprintf("declare an emergency within the cooldown: %v", m["reason"])
	case KindCharter:
		return "change the charter: " + string(payload)
	}
	return string(payload)
}

// publishProposal signs proposal p and queues it for every neighbour node.
func (s *Service) publishProposal(ctx context.Context, tx *sqlx.Tx, p Proposal) error {
	if s.opts.Node == nil {
		return nil
	}
	st, err := s.opts.Node.Publish(ctx, tx, StatementProposal, ProposalStatement{City: s.opts.Node.Name(), ID: p.ID, Kind: p.Kind,
		Payload: json.RawMessage(p.Payload), Summary: summary(p.Kind, json.RawMessage(p.Payload)), Reason: p.Reason, ClosesAt: p.ClosesAt.UnixMicro()}, nil)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE quorum_proposals SET statement_hash = $2 WHERE id = $1`, p.ID, st.Hash())
	return err
}

// receiveProposal puts a neighbour's proposal on this node's incoming page
// and tells the people who answer for the city.
func (s *Service) receiveProposal(ctx context.Context, tx *sqlx.Tx, from federation.Peer, st federation.Statement) (*federation.Statement, error) {
	var p ProposalStatement
	if err := json.Unmarshal(st.Payload, &p); err != nil || p.ID <= 0 {
		return nil, levee.Invalid("payload", "a proposal is {\"city\",\"id\",\"kind\",\"payload\",\"summary\",\"reason\",\"closes_at\"}")
	}
	if len(p.Payload) == 0 {
		p.Payload = json.RawMessage("{}")
	}
	closes := time.UnixMicro(p.ClosesAt).UTC()
	var id int64
	if err := tx.GetContext(ctx, &id, `INSERT INTO incoming_requests (neighbour_id, statement_hash, remote_id, kind, payload, reason, summary, closes_at, received_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`, from.ID, st.Hash(), p.ID, p.Kind, []byte(p.Payload), p.Reason, p.Summary, closes, s.now()); err != nil {
		return nil, fmt.Errorf("incoming request: %w", err)
	}
	return nil, s.tellVoters(ctx, tx, id, from.Name, p, closes)
}

// receiveVote counts a neighbour node's signed vote: it must answer a
// proposal of this node that is open, be signed inside its window, and be
// the neighbour's first answer. The vote that reaches the quorum executes
// the proposal in this transaction.
func (s *Service) receiveVote(ctx context.Context, tx *sqlx.Tx, from federation.Peer, st federation.Statement) (*federation.Statement, error) {
	var v VoteStatement
	if err := json.Unmarshal(st.Payload, &v); err != nil {
		return nil, levee.Invalid("payload", "a vote is {\"proposal\",\"approve\"}")
	}
	hash, err := hex.DecodeString(v.Proposal)
	if err != nil {
		return nil, levee.Invalid("payload.proposal", "proposal must be the hex hash of a proposal statement")
	}
	c, err := getCharter(ctx, tx, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	var id int64
	if err := tx.GetContext(ctx, &id, `SELECT id FROM quorum_proposals WHERE statement_hash = $1`, hash); errors.Is(err, sql.ErrNoRows) {
		return nil, levee.Errorf(levee.EFORBIDDEN, "the vote names no proposal of this node (%s)", v.Proposal)
	} else if err != nil {
		return nil, err
	}
	p, err := getProposal(ctx, tx, id, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	switch {
	case p.Status != "open":
		return nil, levee.Errorf(levee.EFORBIDDEN, "proposal %d is %s; the vote came too late", id, p.Status)
	case st.At.Before(p.CreatedAt) || st.At.After(p.ClosesAt):
		return nil, levee.Errorf(levee.EFORBIDDEN, "the vote was signed at %s, outside proposal %d's window (%s to %s)",
			st.At.Format(time.RFC3339), id, p.CreatedAt.Format(time.RFC3339), p.ClosesAt.Format(time.RFC3339))
	case st.At.After(s.now().Add(time.Minute)):
		return nil, levee.Errorf(levee.EFORBIDDEN, "the vote is signed at %s, in the future", st.At.Format(time.RFC3339))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO quorum_votes (proposal_id, neighbour_id, approve, at, statement_hash) VALUES ($1, $2, $3, $4, $5)`,
		id, from.ID, v.Approve, st.At, st.Hash()); pgtx.IsUniqueViolation(err, "") {
		return nil, levee.Errorf(levee.EFORBIDDEN, "%s has already voted on proposal %d; a second vote is refused", from.Name, id)
	} else if err != nil {
		return nil, err
	}
	return nil, s.tally(ctx, tx, c, &p)
}

// receiveNotice keeps a neighbour's emergency notice for this node's pages.
func (s *Service) receiveNotice(ctx context.Context, tx *sqlx.Tx, from federation.Peer, st federation.Statement) (*federation.Statement, error) {
	var n NoticeStatement
	if err := json.Unmarshal(st.Payload, &n); err != nil || n.Kind == "" {
		return nil, levee.Invalid("payload", "a notice is {\"city\",\"kind\",\"emergency\",\"message\"}")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO neighbour_notices (neighbour_id, statement_hash, kind, message, detail, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		from.ID, st.Hash(), n.Kind, n.Message, []byte(st.Payload), st.At)
	return nil, err
}

// announce sends an emergency notice to every neighbour node.
func (s *Service) announce(ctx context.Context, tx *sqlx.Tx, emergency int64, kind, msg string) error {
	if s.opts.Node == nil {
		return nil
	}
	_, err := s.opts.Node.Publish(ctx, tx, StatementNotice, NoticeStatement{City: s.opts.Node.Name(), Kind: kind, Emergency: emergency, Message: msg}, nil)
	return err
}
