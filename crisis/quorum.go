package crisis

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/federation"
	"levee/input"
	"levee/pgtx"
)

// Proposal kinds the neighbours' quorum decides.
const (
	KindReallocation = "reallocation" // move unspent budget between lines
	KindCharter      = "charter"      // change the charter
	KindRenew        = "renew"        // extend an emergency by the renewal step
	KindEnd          = "end"          // end an emergency early
	KindDeclare      = "declare"      // declare an emergency within the cooldown
	KindIssue        = "issue"        // create new money in the treasury (after founding, only this way)
)

// Proposal is a decision awaiting the neighbours' quorum.
type Proposal struct {
	ID            int64      `json:"id,string" db:"id"`
	Kind          string     `json:"kind" db:"kind"`
	Payload       jsonRaw    `json:"payload" db:"payload"`
	Reason        string     `json:"reason" db:"reason"`
	ProposedBy    int64      `json:"proposed_by,string" db:"proposed_by"`
	CreatedAt     time.Time  `json:"created_at" db:"created_at"`
	ClosesAt      time.Time  `json:"closes_at" db:"closes_at"`
	Status        string     `json:"status" db:"status"`
	DecidedAt     *time.Time `json:"decided_at,omitempty" db:"decided_at"`
	ApprovedByAct *int64     `json:"approved_by_act,omitempty,string" db:"approved_by_act"`
	// Statement is the hash of the signed statement that put the proposal
	// to the neighbour nodes; their votes name it.
	Statement string `json:"statement,omitempty" db:"statement"`
	// ProposedByNeighbour names the neighbour node that proposed it (an
	// end to this city's emergency); ProposedBy is then 0.
	ProposedByNeighbour *string `json:"proposed_by_neighbour,omitempty" db:"proposed_by_neighbour"`
	// Votes lists every neighbour: its vote, or none yet ("awaiting quorum").
	Votes    []VoteView `json:"votes" db:"-"`
	Quorum   int        `json:"quorum" db:"-"`
	Approved int        `json:"approved" db:"-"`
	Rejected int        `json:"rejected" db:"-"`

	active int // neighbours not suspended
}

// VoteView is one neighbour's vote on a proposal. For a neighbour node:
// its signed vote, or Status "has not answered" with the delivery of the
// proposal to it (attempts, last attempt and error), so that "awaiting
// quorum" says why.
type VoteView struct {
	Neighbour    string               `json:"neighbour" db:"neighbour"`
	DelegateName string               `json:"delegate,omitempty" db:"-"`
	DelegateID   *int64               `json:"-" db:"delegate_id"`
	Approve      *bool                `json:"approve" db:"approve"` // null: has not voted
	At           *time.Time           `json:"at,omitempty" db:"at"`
	Status       string               `json:"status" db:"-"` // approved, rejected, has not answered
	Fingerprint  string               `json:"fingerprint,omitempty" db:"-"`
	Suspended    bool                 `json:"suspended" db:"suspended"`
	Vote         *federation.Wire     `json:"vote,omitempty" db:"-"`
	Delivery     *federation.Delivery `json:"delivery,omitempty" db:"-"`

	PublicKey []byte `json:"-" db:"public_key"`
	VoteHash  []byte `json:"-" db:"vote_hash"`
}

// Issue is the payload of an issue proposal.
type Issue struct {
	Amount levee.Micros `json:"amount"`
	Memo   string       `json:"memo"`
}

// Reallocation is the payload of a reallocation proposal or act.
type Reallocation struct {
	FromLine int64        `json:"from_line,string"`
	ToLine   int64        `json:"to_line,string"`
	Amount   levee.Micros `json:"amount"`
}

// EmergencyRef is the payload of renew and end proposals.
type EmergencyRef struct {
	Emergency int64 `json:"emergency,string"`
}

const proposalColumns = `id, kind, payload, reason, coalesce(proposed_by, 0) AS proposed_by, created_at, closes_at, status, decided_at, approved_by_act,
	coalesce(encode(statement_hash, 'hex'), '') AS statement,
	(SELECT name FROM neighbours WHERE id = proposed_by_neighbour) AS proposed_by_neighbour`

// Propose puts a decision to the neighbours. Reallocations are proposed by
// treasurers; charter changes by treasurers, stewards and admins; renewals
// and early ends by stewards and treasurers (and by neighbour nodes, see
// endrequest.go); a declaration within
// the cooldown by a steward. Errors: EINVALID, EFORBIDDEN, ENOTFOUND, ECONFLICT.
func (s *Service) Propose(ctx context.Context, who *accounts.Principal, kind string, payload json.RawMessage, reason string) (Proposal, error) {
	if err := input.Length("reason", reason, 1, 5000); err != nil {
		return Proposal{}, err
	}
	may := map[string][]string{
		KindReallocation: {accounts.RoleTreasurer},
		KindCharter:      {accounts.RoleTreasurer, accounts.RoleSteward, accounts.RoleAdmin},
		KindRenew:        {accounts.RoleSteward, accounts.RoleTreasurer},
		KindEnd:          {accounts.RoleSteward, accounts.RoleTreasurer},
		KindDeclare:      {accounts.RoleSteward},
		KindIssue:        {accounts.RoleTreasurer},
	}
	roles, ok := may[kind]
	if !ok {
		return Proposal{}, levee.Invalid("kind", "kind must be reallocation, charter, renew, end, declare or issue")
	}
	allowed := false
	for _, r := range roles {
		allowed = allowed || who.Has(r)
	}
	if !allowed {
		return Proposal{}, levee.Errorf(levee.EFORBIDDEN, "a %s proposal is made by: %v", kind, roles)
	}
	if err := s.Advance(ctx); err != nil {
		return Proposal{}, err
	}
	var id int64
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		c, err := getCharter(ctx, tx, "")
		if err != nil {
			return err
		}
		if err := s.checkPayload(ctx, tx, kind, payload, who); err != nil {
			return err
		}
		now := s.now()
		if err := tx.GetContext(ctx, &id, `INSERT INTO quorum_proposals (kind, payload, reason, proposed_by, created_at, closes_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, kind, []byte(payload), reason, who.AccountID, now, now.Add(us(c.VoteWindowUS))); err != nil {
			return err
		}
		p, err := getProposal(ctx, tx, id, "")
		if err != nil {
			return err
		}
		return s.publishProposal(ctx, tx, p)
	})
	if err != nil {
		return Proposal{}, fmt.Errorf("propose %s: %w", kind, err)
	}
	return s.Proposal(ctx, id)
}

// checkPayload decodes and validates a proposal's payload.
func (s *Service) checkPayload(ctx context.Context, tx *sqlx.Tx, kind string, payload json.RawMessage, who *accounts.Principal) error {
	switch kind {
	case KindReallocation:
		var r Reallocation
		if err := strictJSON(payload, &r); err != nil {
			return err
		}
		if r.Amount <= 0 {
			return levee.Invalid("payload.amount", "amount must be positive")
		}
		if r.FromLine == r.ToLine {
			return levee.Invalid("payload.to_line", "the lines must differ")
		}
		for _, id := range []int64{r.FromLine, r.ToLine} {
			if _, err := budgets.Line(ctx, tx, id); err != nil {
				return err
			}
		}
	case KindCharter:
		var ch CharterChange
		if err := strictJSON(payload, &ch); err != nil {
			return err
		}
	case KindRenew, KindEnd:
		var e EmergencyRef
		if err := strictJSON(payload, &e); err != nil {
			return err
		}
		em, err := getEmergency(ctx, tx, e.Emergency, "")
		if err != nil {
			return err
		}
		if em.EndedAt != nil {
			return levee.Errorf(levee.ECONFLICT, "emergency %d has ended", e.Emergency)
		}
	case KindDeclare:
		var d Declaration
		if err := strictJSON(payload, &d); err != nil {
			return err
		}
		if _, err := s.checkDeclaration(ctx, tx, who.AccountID, &d); err != nil {
			return err
		}
	case KindIssue:
		var is Issue
		if err := strictJSON(payload, &is); err != nil {
			return err
		}
		if is.Amount <= 0 {
			return levee.Invalid("payload.amount", "amount must be positive")
		}
		if err := input.Length("payload.memo", is.Memo, 1, 500); err != nil {
			return err
		}
	}
	return nil
}

// strictJSON decodes a proposal's payload; its refusals name the field as
// "payload.<name>" and say what the kind expects there.
func strictJSON(b json.RawMessage, v any) error {
	return input.DecodeNested("payload", b, v)
}

func getProposal(ctx context.Context, q sqlx.QueryerContext, id int64, lock string) (Proposal, error) {
	var p Proposal
	err := sqlx.GetContext(ctx, q, &p, `SELECT `+proposalColumns+` FROM quorum_proposals WHERE id = $1 `+lock, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Proposal{}, levee.Errorf(levee.ENOTFOUND, "no proposal %d", id)
	} else if err != nil {
		return Proposal{}, pgtx.Unavailable(fmt.Errorf("proposal %d: %w", id, err))
	}
	return p, nil
}

// Proposal returns a proposal with every neighbour's vote or its absence.
func (s *Service) Proposal(ctx context.Context, id int64) (Proposal, error) {
	if err := s.Advance(ctx); err != nil {
		return Proposal{}, err
	}
	p, err := getProposal(ctx, s.db, id, "")
	if err != nil {
		return Proposal{}, err
	}
	return p, s.fillVotes(ctx, s.db, &p)
}

// proposalVote is a neighbour's vote on one of the proposals fillVotes fills.
type proposalVote struct {
	ProposalID int64 `db:"proposal_id"`
	VoteView
}

// fillVotes fills in each proposal's votes (one per neighbour, with its
// delegate's name, its signed vote and the delivery of the proposal to it)
// and its tally, in six queries whatever the number of proposals: the list
// of proposals asked eight per proposal before.
func (s *Service) fillVotes(ctx context.Context, q sqlx.QueryerContext, ps ...*Proposal) error {
	if len(ps) == 0 {
		return nil
	}
	c, err := getCharter(ctx, q, "")
	if err != nil {
		return err
	}
	ids := make([]int64, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	var rows []proposalVote
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT p.id AS proposal_id, n.name AS neighbour, n.delegate_id, v.approve, v.at,
		n.suspended_at IS NOT NULL AS suspended, n.public_key, v.statement_hash AS vote_hash
		FROM unnest($1::bigint[]) AS p (id) CROSS JOIN neighbours n
		LEFT JOIN quorum_votes v ON v.neighbour_id = n.id AND v.proposal_id = p.id ORDER BY p.id, n.id`, pq.Array(ids)); err != nil {
		return pgtx.Unavailable(fmt.Errorf("proposals' votes: %w", err))
	}
	if err := accounts.FillNames(ctx, q, rows, func(r *proposalVote) (int64, *string) {
		if r.DelegateID == nil {
			return 0, &r.DelegateName
		}
		return *r.DelegateID, &r.DelegateName
	}); err != nil {
		return fmt.Errorf("proposals' votes: %w", err)
	}
	var hashes []struct {
		ID   int64  `db:"id"`
		Hash []byte `db:"statement_hash"`
	}
	if err := sqlx.SelectContext(ctx, q, &hashes, `SELECT id, statement_hash FROM quorum_proposals WHERE id = ANY($1) AND statement_hash IS NOT NULL`, pq.Array(ids)); err != nil {
		return pgtx.Unavailable(fmt.Errorf("proposals' statements: %w", err))
	}
	proposalHash := map[int64][]byte{}
	var announced, voteHashes [][]byte
	for _, h := range hashes {
		proposalHash[h.ID] = h.Hash
		announced = append(announced, h.Hash)
	}
	for _, r := range rows {
		if r.VoteHash != nil {
			voteHashes = append(voteHashes, r.VoteHash)
		}
	}
	deliveries := map[string]map[string]federation.Delivery{}
	if len(announced) > 0 {
		if deliveries, err = federation.Deliveries(ctx, q, announced); err != nil {
			return err
		}
	}
	votes := map[string]federation.Statement{}
	if len(voteHashes) > 0 {
		if votes, err = federation.GetStatements(ctx, q, voteHashes); err != nil {
			return err
		}
	}
	byID := map[int64]*Proposal{}
	for _, p := range ps {
		p.Votes, p.Approved, p.Rejected, p.active = []VoteView{}, 0, 0, 0
		byID[p.ID] = p
	}
	for _, r := range rows {
		p := byID[r.ProposalID]
		v := r.VoteView
		if !v.Suspended {
			p.active++
		}
		switch {
		case v.Approve != nil && *v.Approve:
			p.Approved++
			v.Status = "approved"
		case v.Approve != nil:
			p.Rejected++
			v.Status = "rejected"
		default:
			v.Status = "has not answered"
		}
		if v.PublicKey != nil {
			v.Fingerprint = federation.Fingerprint(v.PublicKey)
			if d, ok := deliveries[string(proposalHash[p.ID])][string(v.PublicKey)]; ok && v.Approve == nil {
				v.Delivery = &d
			}
		}
		if v.VoteHash != nil {
			st, ok := votes[string(v.VoteHash)]
			if !ok {
				return levee.Errorf(levee.ENOTFOUND, "no statement %x", v.VoteHash)
			}
			w := st.Wire()
			v.Vote = &w
		}
		p.Votes = append(p.Votes, v)
	}
	for _, p := range ps {
		p.Quorum = EffectiveQuorum(c.Quorum, p.active)
	}
	return nil
}

// MaxProposalPage is the most proposals one page of the list holds.
const MaxProposalPage = 200

// Proposals lists up to limit proposals with ids below before (0: from the
// newest), newest first; status "" lists all, otherwise only that status's,
// so the next page of a filtered list is before= the last id of this one.
func (s *Service) Proposals(ctx context.Context, status string, before int64, limit int) ([]Proposal, error) {
	if err := s.Advance(ctx); err != nil {
		return nil, err
	}
	ps := []Proposal{}
	// before is cast to bigint: compared with 0 alone the parameter would
	// be typed integer, and an id past int4 would be a database error.
	if err := s.db.SelectContext(ctx, &ps, `SELECT `+proposalColumns+` FROM quorum_proposals
		WHERE ($1 = '' OR status = $1) AND ($2::bigint = 0 OR id < $2::bigint) ORDER BY id DESC LIMIT $3`,
		status, before, min(max(limit, 1), MaxProposalPage)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list proposals: %w", err))
	}
	all := make([]*Proposal, len(ps))
	for i := range ps {
		all[i] = &ps[i]
	}
	if err := s.fillVotes(ctx, s.db, all...); err != nil {
		return nil, err
	}
	return ps, nil
}

// EffectiveQuorum is the charter's quorum counted over the neighbours that
// are not suspended: never more than they are, never below 1.
func EffectiveQuorum(quorum, active int) int { return max(min(quorum, active), 1) }

// tally counts p's votes inside tx after one more arrived: the vote that
// reaches the quorum executes the proposal; once the quorum cannot be
// reached by the neighbours not suspended it is rejected.
func (s *Service) tally(ctx context.Context, tx *sqlx.Tx, c Charter, p *Proposal) error {
	if err := s.fillVotes(ctx, tx, p); err != nil {
		return err
	}
	switch {
	case p.Approved >= p.Quorum:
		if err := s.execute(ctx, tx, p, nil); err != nil {
			return err
		}
		return s.decideProposal(ctx, tx, p.ID, "executed", nil)
	case p.active-p.Rejected < p.Quorum:
		return s.decideProposal(ctx, tx, p.ID, "rejected", nil)
	}
	return nil
}

func (s *Service) decideProposal(ctx context.Context, tx *sqlx.Tx, id int64, status string, act *int64) error {
	var p struct {
		By   int64  `db:"proposed_by"`
		Kind string `db:"kind"`
	}
	if err := tx.GetContext(ctx, &p, `UPDATE quorum_proposals SET status = $2, decided_at = $3, approved_by_act = $4 WHERE id = $1
		RETURNING coalesce(proposed_by, 0) AS proposed_by, kind`, id, status, s.now(), act); err != nil {
		return err
	}
	if s.opts.Node != nil { // every quorum decision is witnessed by the neighbours
		if err := s.opts.Node.PublishHead(ctx, tx); err != nil {
			return err
		}
	}
	return s.tellProposer(ctx, tx, id, p.By, p.Kind, status)
}

// execute carries out an approved proposal inside tx.
func (s *Service) execute(ctx context.Context, tx *sqlx.Tx, p *Proposal, act *int64) error {
	ref := "quorum/" + levee.FormatID(p.ID)
	switch p.Kind {
	case KindReallocation:
		var r Reallocation
		if err := json.Unmarshal(p.Payload, &r); err != nil {
			return err
		}
		_, err := budgets.Move(ctx, tx, r.FromLine, r.ToLine, r.Amount, "budget_reallocation", ref)
		return err
	case KindCharter:
		var ch CharterChange
		if err := json.Unmarshal(p.Payload, &ch); err != nil {
			return err
		}
		return s.applyCharter(ctx, tx, ch, &p.ID)
	case KindRenew:
		var e EmergencyRef
		if err := json.Unmarshal(p.Payload, &e); err != nil {
			return err
		}
		return s.renew(ctx, tx, e.Emergency)
	case KindEnd:
		var e EmergencyRef
		if err := json.Unmarshal(p.Payload, &e); err != nil {
			return err
		}
		return s.end(ctx, tx, e.Emergency, "quorum")
	case KindDeclare:
		var d Declaration
		if err := json.Unmarshal(p.Payload, &d); err != nil {
			return err
		}
		_, err := s.declare(ctx, tx, p.ProposedBy, d, true)
		return err
	case KindIssue:
		var is Issue
		if err := json.Unmarshal(p.Payload, &is); err != nil {
			return err
		}
		_, err := accounts.IssueInTx(ctx, tx, 0, is.Amount, is.Memo, ref)
		return err
	}
	return fmt.Errorf("unknown proposal kind %q", p.Kind)
}

// expire closes quorum proposals whose window passed and ends the
// emergency whose time ran out.
func (s *Service) expire(ctx context.Context) error {
	now := s.now()
	// Most calls find nothing due; only then is a transaction worth it.
	var due bool
	if err := s.db.GetContext(ctx, &due, `SELECT EXISTS (SELECT 1 FROM quorum_proposals WHERE status = 'open' AND closes_at <= $1)
		OR EXISTS (SELECT 1 FROM emergencies WHERE ended_at IS NULL AND ends_at <= $1)`, now); err != nil {
		return pgtx.Unavailable(fmt.Errorf("expire: %w", err))
	}
	if !due {
		return nil
	}
	return pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		var ps []struct {
			ID   int64  `db:"id"`
			By   int64  `db:"proposed_by"`
			Kind string `db:"kind"`
		}
		if err := tx.SelectContext(ctx, &ps, `UPDATE quorum_proposals SET status = 'expired', decided_at = closes_at WHERE status = 'open' AND closes_at <= $1
			RETURNING id, coalesce(proposed_by, 0) AS proposed_by, kind`, now); err != nil {
			return fmt.Errorf("expire proposals: %w", err)
		}
		for _, p := range ps {
			if err := s.tellProposer(ctx, tx, p.ID, p.By, p.Kind, "expired"); err != nil {
				return err
			}
		}
		var es []int64
		if err := tx.SelectContext(ctx, &es, `UPDATE emergencies SET ended_at = ends_at, end_reason = 'expired' WHERE ended_at IS NULL AND ends_at <= $1
			RETURNING id`, now); err != nil {
			return fmt.Errorf("expire emergencies: %w", err)
		}
		for _, id := range es {
			if err := s.tellEnded(ctx, tx, id, "its time ran out"); err != nil {
				return err
			}
		}
		return nil
	})
}
