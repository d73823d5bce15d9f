package crisis

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/federation"
	"levee/input"
	"levee/pgtx"
)

// StatementEndRequest is a neighbour node's proposal to end this city's
// emergency: the neighbours may stop an emergency they were told of, from
// their own node.
const StatementEndRequest = "end_request"

// EndRequest is the payload of an end request.
type EndRequest struct {
	City      string `json:"city"`
	Emergency int64  `json:"emergency"`
	Reason    string `json:"reason"`
}

// ProposeEnd has this city propose to its neighbour that the neighbour's
// emergency end: the node signs the request and delivers it. Who may is
// the charter's voter_roles. Errors: EINVALID, EFORBIDDEN, ENOTFOUND.
func (s *Service) ProposeEnd(ctx context.Context, who *accounts.Principal, neighbour string, emergency int64, reason string) error {
	if s.opts.Node == nil {
		return levee.Errorf(levee.ECONFLICT, "this node has no identity in the network")
	}
	if err := input.Length("reason", reason, 1, 5000); err != nil {
		return err
	}
	if emergency <= 0 {
		return levee.Invalid("emergency", "emergency must be the id of the neighbour's emergency")
	}
	return pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		c, err := getCharter(ctx, tx, "")
		if err != nil {
			return err
		}
		if !hasAny(who, c.VoterRoles) {
			return levee.Errorf(levee.EFORBIDDEN, "on this node the neighbours are answered by: %v (the charter's voter_roles)", c.VoterRoles)
		}
		var r neighbourRow
		if err := tx.GetContext(ctx, &r, `SELECT id, name, url, public_key, suspended_at FROM neighbours WHERE name = $1 AND public_key IS NOT NULL`, neighbour); err != nil {
			return levee.Errorf(levee.ENOTFOUND, "no neighbour node named %q", neighbour)
		}
		st, err := s.opts.Node.Publish(ctx, tx, StatementEndRequest, EndRequest{City: s.opts.Node.Name(), Emergency: emergency, Reason: reason}, []federation.Peer{r.peer()})
		if err != nil {
			return err
		}
		return accounts.WriteAudit(ctx, tx, who.AccountID, "quorum.propose_end", map[string]any{"neighbour": neighbour, "emergency": emergency,
			"statement": fmt.Sprintf("%x", st.Hash())})
	})
}

func hasAny(who *accounts.Principal, roles []string) bool {
	for _, r := range roles {
		if who.Has(r) {
			return true
		}
	}
	return false
}

// receiveEndRequest makes a neighbour's request into a quorum proposal of
// kind end, with the requesting neighbour's approval counted (its request
// is its vote), and puts it to the other neighbours.
func (s *Service) receiveEndRequest(ctx context.Context, tx *sqlx.Tx, from federation.Peer, st federation.Statement) (*federation.Statement, error) {
	var r EndRequest
	if err := json.Unmarshal(st.Payload, &r); err != nil || r.Emergency <= 0 || r.Reason == "" {
		return nil, levee.Invalid("payload", "an end request is {\"city\",\"emergency\",\"reason\"}")
	}
	c, err := getCharter(ctx, tx, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	em, err := getEmergency(ctx, tx, r.Emergency, "")
	if levee.ErrorCode(err) == levee.ENOTFOUND {
		return nil, levee.Errorf(levee.EFORBIDDEN, "this city has no emergency %d", r.Emergency)
	} else if err != nil {
		return nil, err
	}
	if em.EndedAt != nil {
		return nil, levee.Errorf(levee.EFORBIDDEN, "emergency %d has ended", r.Emergency)
	}
	payload, _ := json.Marshal(EmergencyRef{Emergency: r.Emergency})
	now := s.now()
	var id int64
	if err := tx.GetContext(ctx, &id, `INSERT INTO quorum_proposals (kind, payload, reason, proposed_by_neighbour, created_at, closes_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, KindEnd, payload, from.Name+" asks: "+r.Reason, from.ID, now, now.Add(us(c.VoteWindowUS))); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO quorum_votes (proposal_id, neighbour_id, approve, at, statement_hash) VALUES ($1, $2, true, $3, $4)`,
		id, from.ID, st.At, st.Hash()); err != nil {
		return nil, err
	}
	p, err := getProposal(ctx, tx, id, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	others, err := s.Peers(ctx, tx)
	if err != nil {
		return nil, err
	}
	to := []federation.Peer{}
	for _, o := range others {
		if o.ID != from.ID {
			to = append(to, o)
		}
	}
	ps, err := s.opts.Node.Publish(ctx, tx, StatementProposal, ProposalStatement{City: s.opts.Node.Name(), ID: p.ID, Kind: p.Kind,
		Payload: payload, Summary: summary(p.Kind, payload), Reason: p.Reason, ClosesAt: p.ClosesAt.UnixMicro()}, to)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE quorum_proposals SET statement_hash = $2 WHERE id = $1`, id, ps.Hash()); err != nil {
		return nil, err
	}
	return nil, s.tally(ctx, tx, c, &p)
}
