package crisis

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/accounts"
	"levee/outbox"
)

// The notifications of crisis: the quorum's answer goes to the proposer
// (the request itself goes to the neighbour nodes, signed); an emergency's
// declaration, acts, renewal and end go to everyone it concerns here (the
// residents of its districts, the stewards) and, signed, to every
// neighbour node. Each is written
// in the transaction that does what it reports.

// concerned lists who an emergency in districts concerns (empty: every
// district): the residents of its districts and the stewards.
func concerned(ctx context.Context, tx *sqlx.Tx, districts []int64) ([]int64, error) {
	who, err := accounts.ResidentsOf(ctx, tx, districts)
	if err != nil {
		return nil, err
	}
	var ours []int64
	if err := tx.SelectContext(ctx, &ours, `SELECT unnest(steward_ids) FROM charter`); err != nil {
		return nil, err
	}
	return append(who, ours...), nil
}

func when(t time.Time) string { return t.UTC().Format("Mon 2 Jan 2006 15:04 UTC") }

// tellProposer gives the quorum's answer on proposal id to whoever made it.
func (s *Service) tellProposer(ctx context.Context, tx *sqlx.Tx, id int64, proposer int64, kind, status string) error {
	if proposer == 0 { // a neighbour node proposed it: its answer is public on the proposal
		return nil
	}
	what := map[string]string{
		"executed": "was approved by the neighbours' quorum and carried out",
		"rejected": "was rejected by the neighbours' quorum",
		"expired":  "expired without a quorum; propose it again if it is still needed",
	}[status]
	if what == "" {
		what = "is " + status
	}
	return outbox.Add(ctx, tx, proposer, outbox.Notice{
		Kind: "quorum_decided", Message: fmt.Sprintf("Your proposal %d (%s) %s.", id, kind, what), Link: "/quorum", At: s.now(),
	})
}

// tellEmergency writes msg for everyone emergency id concerns.
func (s *Service) tellEmergency(ctx context.Context, tx *sqlx.Tx, id int64, kind, msg string, deadline *time.Time) error {
	e, err := getEmergency(ctx, tx, id, "")
	if err != nil {
		return err
	}
	who, err := concerned(ctx, tx, e.DistrictIDs)
	if err != nil {
		return err
	}
	if err := s.announce(ctx, tx, id, kind, msg); err != nil { // and to every neighbour node, signed
		return err
	}
	return outbox.AddTo(ctx, tx, who, outbox.Notice{
		Kind: kind, Message: msg, Link: "/emergency", Deadline: deadline, At: s.now(),
	})
}

// tellDeclared announces a new emergency.
func (s *Service) tellDeclared(ctx context.Context, tx *sqlx.Tx, id int64) error {
	e, err := getEmergency(ctx, tx, id, "")
	if err != nil {
		return err
	}
	ends := e.EndsAt
	return s.tellEmergency(ctx, tx, id, "emergency_declared", fmt.Sprintf(
		"Emergency %d is declared by steward %s: %s The steward may act alone, spending up to %s, until %s unless it is renewed or ended. "+
			"Every act goes to a jury for review afterwards; residents who think it unjustified can petition to end it on the emergency page.",
		id, e.StewardName, sentence(e.Reason), e.Cap, when(ends)), &ends)
}

// tellAct reports an act under emergency id.
func (s *Service) tellAct(ctx context.Context, tx *sqlx.Tx, id int64, a *Act) error {
	what := map[string]string{"reallocate": "moved money between budget lines", "direct_award": "awarded a contract directly",
		"approve_proposal": "approved a quorum proposal"}[a.Kind]
	if what == "" {
		what = a.Kind
	}
	return s.tellEmergency(ctx, tx, id, "emergency_act", fmt.Sprintf(
		"Emergency %d: the steward %s (act %d, %s). Reason: %s A jury reviews every act once the emergency ends.",
		id, what, a.ID, a.Amount, sentence(a.Reason)), nil)
}

// sentence ends s with a full stop if it has no closing punctuation.
func sentence(s string) string {
	if s == "" {
		return s
	}
	switch s[len(s)-1] {
	case '.', '!', '?':
		return s
	}
	return s + "."
}

// tellEnded reports the end of emergency id.
func (s *Service) tellEnded(ctx context.Context, tx *sqlx.Tx, id int64, how string) error {
	return s.tellEmergency(ctx, tx, id, "emergency_ended", fmt.Sprintf(
		"Emergency %d has ended (%s). Its acts now go to juries for review.", id, how), nil)
}
