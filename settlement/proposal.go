package settlement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/input"
	"levee/pgtx"
)

// Proposal is an outcome proposed for a subject (today, a closed market's;
// subjects.Markets proposes them). It becomes final after its dispute window
// unless someone disputes it.
type Proposal struct {
	ID           int64     `json:"id,string" db:"id"`
	Subject      string    `json:"subject" db:"subject"`
	Verdict      string    `json:"verdict" db:"verdict"`
	Evidence     string    `json:"evidence" db:"evidence"`
	ProposedBy   int64     `json:"proposed_by,string" db:"proposed_by"`
	ProposedAt   time.Time `json:"proposed_at" db:"proposed_at"`
	DisputeUntil time.Time `json:"dispute_until" db:"dispute_until"`
	Status       string    `json:"status" db:"status"`
	CaseID       *int64    `json:"case,omitempty,string" db:"case_id"`
}

const proposalColumns = `id, subject, verdict, evidence, proposed_by, proposed_at, dispute_until, status, case_id`

// ProposalFor returns the live or last proposal about a subject.
// Errors: ENOTFOUND.
func (s *Service) ProposalFor(ctx context.Context, subject string) (Proposal, error) {
	if err := s.advanceProposals(ctx); err != nil {
		return Proposal{}, err
	}
	var p Proposal
	err := s.db.GetContext(ctx, &p, `SELECT `+proposalColumns+` FROM proposals WHERE subject = $1 ORDER BY id DESC LIMIT 1`, subject)
	if errors.Is(err, sql.ErrNoRows) {
		return Proposal{}, levee.Errorf(levee.ENOTFOUND, "nothing has been proposed for %s", subject)
	} else if err != nil {
		return Proposal{}, pgtx.Unavailable(fmt.Errorf("proposal for %s: %w", subject, err))
	}
	return p, nil
}

// advanceProposals settles the undisputed proposals whose window passed.
func (s *Service) advanceProposals(ctx context.Context) error {
	unlock, lerr := s.serial.Lock(ctx, s.db)
	if lerr != nil {
		return lerr
	}
	defer unlock()
	var due []Proposal
	if err := s.db.SelectContext(ctx, &due, `SELECT `+proposalColumns+` FROM proposals WHERE status = 'pending' AND dispute_until <= $1 ORDER BY id`, s.now()); err != nil {
		return pgtx.Unavailable(fmt.Errorf("due proposals: %w", err))
	}
	var errs []error
	for _, p := range due {
		owner, _, ref, err := s.owner(p.Subject)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = owner.Settle(ctx, ref, p.Verdict, func(ctx context.Context, tx *sqlx.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE proposals SET status = 'settled' WHERE id = $1 AND status = 'pending'`, p.ID)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return errSettled // disputed or settled meanwhile
			}
			return nil
		})
		if err != nil && !errors.Is(err, errSettled) {
			errs = append(errs, fmt.Errorf("settle proposal %d: %w", p.ID, err))
		}
	}
	return errors.Join(errs...)
}

// ErrProposed is returned by AddProposal for a subject that already has a
// proposal; the subject's owner says so in its own words.
var ErrProposed = errors.New("already proposed")

// Now is settlement's clock, truncated as the database stores times, for
// owners that check a subject's deadlines against the same clock as
// settlement does.
func (s *Service) Now() time.Time { return s.now() }

// NewProposal is a proposal to add; Kind names the rules whose dispute
// window applies.
type NewProposal struct {
	Kind       string
	Subject    string
	Verdict    string
	Evidence   string
	ProposedBy int64
}

// CheckEvidence checks a proposal's evidence before anything else is
// looked at. Errors: EINVALID.
func CheckEvidence(evidence string) error { return input.Length("evidence", evidence, 1, 20000) }

// AddProposal records a proposal inside the owner's transaction tx, open to
// dispute for its kind's window from now. The owner has checked the
// evidence (CheckEvidence), the verdict and who may propose.
// Errors: ErrProposed.
func (s *Service) AddProposal(ctx context.Context, tx *sqlx.Tx, n NewProposal) (Proposal, error) {
	now := s.now()
	var p Proposal
	err := tx.GetContext(ctx, &p, `INSERT INTO proposals (subject, verdict, evidence, proposed_by, proposed_at, dispute_until)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+proposalColumns,
		n.Subject, n.Verdict, n.Evidence, n.ProposedBy, now, now.Add(s.opts.Rules[n.Kind].DisputeWindow))
	if pgtx.IsUniqueViolation(err, "") {
		return Proposal{}, ErrProposed
	}
	return p, err
}

const openProposal = `SELECT ` + proposalColumns + ` FROM proposals WHERE subject = $1 AND status <> 'settled'`

// OpenProposal returns the proposal about subject that is not settled yet,
// and false if there is none.
func OpenProposal(ctx context.Context, q sqlx.QueryerContext, subject string) (Proposal, bool, error) {
	return getProposal(ctx, q, openProposal, subject)
}

// LockOpenProposal is OpenProposal that locks the proposal's row until tx
// ends, for an owner about to dispute it (MarkDisputed).
func LockOpenProposal(ctx context.Context, tx *sqlx.Tx, subject string) (Proposal, bool, error) {
	return getProposal(ctx, tx, openProposal+` FOR UPDATE`, subject)
}

func getProposal(ctx context.Context, q sqlx.QueryerContext, query, subject string) (Proposal, bool, error) {
	var p Proposal
	err := sqlx.GetContext(ctx, q, &p, query, subject)
	if errors.Is(err, sql.ErrNoRows) {
		return Proposal{}, false, nil
	} else if err != nil {
		return Proposal{}, false, pgtx.Unavailable(err)
	}
	return p, true, nil
}

// MarkDisputed marks proposal id disputed inside the case's opening
// transaction (Owner.Hold); the case id is set once the case exists.
func MarkDisputed(ctx context.Context, tx *sqlx.Tx, id int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE proposals SET status = 'disputed' WHERE id = $1`, id)
	return err
}
