package crisis

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/federation"
	"levee/outbox"
	"levee/pgtx"
)

// Incoming is a neighbour node's proposal awaiting this city's answer.
type Incoming struct {
	ID         int64      `json:"id,string" db:"id"`
	Neighbour  string     `json:"neighbour" db:"neighbour"`
	RemoteID   int64      `json:"remote_id,string" db:"remote_id"`
	Kind       string     `json:"kind" db:"kind"`
	Payload    jsonRaw    `json:"payload" db:"payload"`
	Summary    string     `json:"summary" db:"summary"`
	Reason     string     `json:"reason" db:"reason"`
	ClosesAt   time.Time  `json:"closes_at" db:"closes_at"`
	ReceivedAt time.Time  `json:"received_at" db:"received_at"`
	Approve    *bool      `json:"approve" db:"approve"` // null: not answered yet
	VotedByID  *int64     `json:"-" db:"voted_by"`
	VotedBy    string     `json:"voted_by,omitempty" db:"-"`
	VotedAt    *time.Time `json:"voted_at,omitempty" db:"voted_at"`
	Statement  string     `json:"statement" db:"statement"` // the proposal statement's hash
	Vote       string     `json:"vote,omitempty" db:"vote"` // our vote statement's hash
	Open       bool       `json:"open" db:"-"`
}

// Notice is an emergency notice from a neighbour node.
type Notice struct {
	ID        int64     `json:"id,string" db:"id"`
	Emergency int64     `json:"emergency,string" db:"emergency"` // the neighbour's emergency id
	Neighbour string    `json:"neighbour" db:"neighbour"`
	Kind      string    `json:"kind" db:"kind"`
	Message   string    `json:"message" db:"message"`
	At        time.Time `json:"at" db:"at"`
	Statement string    `json:"statement" db:"statement"`
}

// Inbox is what the neighbours asked of this city and told it.
type Inbox struct {
	Requests []Incoming `json:"requests"`
	Notices  []Notice   `json:"notices"`
	// Voters are the roles whose holders answer for this city (the charter's voter_roles).
	Voters []string `json:"voters"`
}

const incomingColumns = `r.id, n.name AS neighbour, r.remote_id, r.kind, r.payload, r.summary, r.reason, r.closes_at, r.received_at,
	r.approve, r.voted_by, r.voted_at, encode(r.statement_hash, 'hex') AS statement, coalesce(encode(r.vote_hash, 'hex'), '') AS vote`

// Inbox lists the neighbours' requests (newest first) and notices.
func (s *Service) Inbox(ctx context.Context) (Inbox, error) {
	in := Inbox{Requests: []Incoming{}, Notices: []Notice{}}
	c, err := getCharter(ctx, s.db, "")
	if err != nil {
		return Inbox{}, err
	}
	in.Voters = c.VoterRoles
	if err := s.db.SelectContext(ctx, &in.Requests, `SELECT `+incomingColumns+` FROM incoming_requests r JOIN neighbours n ON n.id = r.neighbour_id
		ORDER BY r.id DESC LIMIT 200`); err != nil {
		return Inbox{}, pgtx.Unavailable(fmt.Errorf("incoming requests: %w", err))
	}
	if err := s.fillIncoming(ctx, s.db, in.Requests); err != nil {
		return Inbox{}, err
	}
	if err := s.db.SelectContext(ctx, &in.Notices, `SELECT m.id, n.name AS neighbour, coalesce((m.detail->>'emergency')::bigint, 0) AS emergency, m.kind, m.message, m.at,
		encode(m.statement_hash, 'hex') AS statement
		FROM neighbour_notices m JOIN neighbours n ON n.id = m.neighbour_id ORDER BY m.id DESC LIMIT 200`); err != nil {
		return Inbox{}, pgtx.Unavailable(fmt.Errorf("neighbour notices: %w", err))
	}
	return in, nil
}

func (s *Service) fillIncoming(ctx context.Context, q sqlx.QueryerContext, rs []Incoming) error {
	now := s.now()
	for i := range rs {
		rs[i].Open = rs[i].Approve == nil && now.Before(rs[i].ClosesAt)
	}
	return accounts.FillNames(ctx, q, rs, func(r *Incoming) (int64, *string) {
		if r.VotedByID == nil {
			return 0, &r.VotedBy
		}
		return *r.VotedByID, &r.VotedBy
	})
}

func getIncoming(ctx context.Context, q sqlx.QueryerContext, id int64, lock string) (Incoming, int64, error) {
	var r struct {
		Incoming
		NeighbourID int64 `db:"neighbour_id"`
	}
	err := sqlx.GetContext(ctx, q, &r, `SELECT `+incomingColumns+`, r.neighbour_id FROM incoming_requests r JOIN neighbours n ON n.id = r.neighbour_id
		WHERE r.id = $1 `+lock, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Incoming{}, 0, levee.Errorf(levee.ENOTFOUND, "no incoming request %d", id)
	} else if err != nil {
		return Incoming{}, 0, pgtx.Unavailable(err)
	}
	return r.Incoming, r.NeighbourID, nil
}

// AnswerIncoming records this city's answer to a neighbour's proposal: the
// node signs the vote and delivers it to the proposing node. Who may
// answer is the charter's voter_roles. Errors: EFORBIDDEN, ENOTFOUND,
// ECONFLICT (answered, or its window closed).
func (s *Service) AnswerIncoming(ctx context.Context, who *accounts.Principal, id int64, approve bool) (Incoming, error) {
	if s.opts.Node == nil {
		return Incoming{}, levee.Errorf(levee.ECONFLICT, "this node has no identity in the network")
	}
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		c, err := getCharter(ctx, tx, "")
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(c.VoterRoles, who.Has) {
			return levee.Errorf(levee.EFORBIDDEN, "on this node the neighbours' requests are answered by: %v (the charter's voter_roles)", c.VoterRoles)
		}
		r, nb, err := getIncoming(ctx, tx, id, "FOR UPDATE OF r")
		if err != nil {
			return err
		}
		if r.Approve != nil {
			return levee.Errorf(levee.ECONFLICT, "this city has already answered request %d (%s)", id, map[bool]string{true: "approved", false: "rejected"}[*r.Approve])
		}
		if !s.now().Before(r.ClosesAt) {
			return levee.Errorf(levee.ECONFLICT, "request %d closed at %s", id, r.ClosesAt.Format(time.RFC3339))
		}
		to, err := s.PeerByID(ctx, tx, nb)
		if err != nil {
			return err
		}
		st, err := s.opts.Node.Publish(ctx, tx, StatementVote, VoteStatement{Proposal: r.Statement, Approve: approve}, []federation.Peer{to})
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE incoming_requests SET approve = $2, voted_by = $3, voted_at = $4, vote_hash = $5 WHERE id = $1`,
			id, approve, who.AccountID, s.now(), st.Hash())
		if err != nil {
			return err
		}
		return accounts.WriteAudit(ctx, tx, who.AccountID, "quorum.answer", map[string]any{"request": id, "neighbour": r.Neighbour,
			"proposal": r.RemoteID, "approve": approve, "statement": fmt.Sprintf("%x", st.Hash())})
	})
	if err != nil {
		return Incoming{}, fmt.Errorf("answer request %d: %w", id, err)
	}
	r, _, err := getIncoming(ctx, s.db, id, "")
	if err != nil {
		return Incoming{}, err
	}
	rs := []Incoming{r}
	return rs[0], s.fillIncoming(ctx, s.db, rs)
}

// PeerByID returns neighbour id as a peer.
func (s *Service) PeerByID(ctx context.Context, q sqlx.QueryerContext, id int64) (federation.Peer, error) {
	var r neighbourRow
	if err := sqlx.GetContext(ctx, q, &r, `SELECT id, name, url, public_key, suspended_at FROM neighbours WHERE id = $1`, id); err != nil {
		return federation.Peer{}, pgtx.Unavailable(err)
	}
	return r.peer(), nil
}

// tellVoters asks the people who answer for this city to answer a
// neighbour's request.
func (s *Service) tellVoters(ctx context.Context, tx *sqlx.Tx, id int64, city string, p ProposalStatement, closes time.Time) error {
	c, err := getCharter(ctx, tx, "")
	if err != nil {
		return err
	}
	who, err := accounts.WithAnyRole(ctx, tx, c.VoterRoles)
	if err != nil {
		return err
	}
	return outbox.AddTo(ctx, tx, who, outbox.Notice{
		Kind: "quorum_request",
		Message: fmt.Sprintf("%s asks this city's vote on its proposal %d (%s): %s. %s Answer by %s on the neighbours' page.",
			city, p.ID, p.Kind, p.Summary, sentence(p.Reason), when(closes)),
		Link: "/quorum/incoming", Deadline: &closes, At: s.now(),
	})
}
