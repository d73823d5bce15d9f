package settlement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/input"
	"levee/ledger"
	"levee/pgtx"
)

// Case is a contested question and where its jury stands.
type Case struct {
	ID            int64          `json:"id,string" db:"id"`
	Subject       string         `json:"subject" db:"subject"`
	Kind          string         `json:"kind" db:"kind"`
	Question      string         `json:"question" db:"question"`
	Verdicts      pq.StringArray `json:"verdicts" db:"verdicts"`
	DistrictIDs   pq.Int64Array  `json:"district_ids" db:"district_ids"`
	Proposed      *string        `json:"proposed,omitempty" db:"proposed"`
	Default       string         `json:"default_verdict" db:"default_verdict"`
	OpenedBy      *int64         `json:"-" db:"opened_by"` // a person: never published (docs/privacy.md)
	Reason        string         `json:"reason" db:"reason"`
	Bond          levee.Micros   `json:"bond" db:"bond"`
	JurySize      int            `json:"jury_size" db:"jury_size"`
	Supermajority levee.Micros   `json:"supermajority" db:"supermajority"`
	MinReveals    int            `json:"min_reveals" db:"min_reveals"`
	JurorFee      levee.Micros   `json:"juror_fee" db:"juror_fee"`
	AppealBond    levee.Micros   `json:"appeal_bond" db:"appeal_bond"`
	MaxAppeals    int            `json:"max_appeals" db:"max_appeals"`
	Stratify      bool           `json:"stratify" db:"stratify"`
	OutsideShare  levee.Micros   `json:"outside_share" db:"outside_share"`
	CommitUS      int64          `json:"-" db:"commit_us"`
	RevealUS      int64          `json:"-" db:"reveal_us"`
	AppealUS      int64          `json:"-" db:"appeal_us"`
	Status        string         `json:"status" db:"status"`
	Round         int            `json:"round" db:"round"`
	Appeals       int            `json:"appeals" db:"appeals"`
	Verdict       *string        `json:"verdict,omitempty" db:"verdict"`
	EvidenceUntil time.Time      `json:"evidence_until" db:"evidence_until"`
	AppealUntil   *time.Time     `json:"appeal_until,omitempty" db:"appeal_until"`
	OpenedAt      time.Time      `json:"opened_at" db:"opened_at"`
	FinalAt       *time.Time     `json:"final_at,omitempty" db:"final_at"`
	SettledAt     *time.Time     `json:"settled_at,omitempty" db:"settled_at"`
}

const caseColumns = `id, subject, kind, question, verdicts, district_ids, proposed, default_verdict, opened_by, reason, bond,
	jury_size, supermajority, min_reveals, juror_fee, appeal_bond, max_appeals, stratify, outside_share, commit_us, reveal_us, appeal_us,
	status, round, appeals, verdict, evidence_until, appeal_until, opened_at, final_at, settled_at`

func getCase(ctx context.Context, q sqlx.QueryerContext, id int64, lock string) (Case, error) {
	var c Case
	err := sqlx.GetContext(ctx, q, &c, `SELECT `+caseColumns+` FROM cases WHERE id = $1 `+lock, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Case{}, levee.Errorf(levee.ENOTFOUND, "no case %d", id)
	} else if err != nil {
		return Case{}, pgtx.Unavailable(fmt.Errorf("load case %d: %w", id, err))
	}
	return c, nil
}

func (c *Case) commitPeriod() time.Duration { return time.Duration(c.CommitUS) * time.Microsecond }
func (c *Case) revealPeriod() time.Duration { return time.Duration(c.RevealUS) * time.Microsecond }
func (c *Case) appealWindow() time.Duration { return time.Duration(c.AppealUS) * time.Microsecond }

// Round is one jury's sitting on a case.
type Round struct {
	CaseID      int64         `json:"-" db:"case_id"`
	Round       int           `json:"round" db:"round"`
	DrawN       int           `json:"draw" db:"draw_n"`
	Why         string        `json:"why" db:"why"`
	Seats       int           `json:"seats" db:"seats"`
	CommitUntil time.Time     `json:"commit_until" db:"commit_until"`
	RevealUntil time.Time     `json:"reveal_until" db:"reveal_until"`
	Verdict     *string       `json:"verdict,omitempty" db:"verdict"`
	Tally       *jsonTally    `json:"tally,omitempty" db:"tally"`
	AppealedBy  *int64        `json:"-" db:"appealed_by"` // a party's bond, their pseudonym's posting: never published
	AppealBond  *levee.Micros `json:"appeal_bond,omitempty" db:"appeal_bond"`
}

func getRounds(ctx context.Context, q sqlx.QueryerContext, caseID int64) ([]Round, error) {
	var rs []Round
	err := sqlx.SelectContext(ctx, q, &rs, `SELECT case_id, round, draw_n, why, seats, commit_until, reveal_until, verdict, tally,
		appealed_by, appeal_bond FROM case_rounds WHERE case_id = $1 ORDER BY round`, caseID)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("case %d rounds: %w", caseID, err))
	}
	return rs, nil
}

// Dispute challenges subject's proposed verdict and opens its case: the
// bond moves from who's cash into the case's fee pool, the subject is held,
// and the first jury is drawn, all in one transaction.
// Errors: EINVALID, EUNAUTHORIZED, EFORBIDDEN, ENOTFOUND, ECONFLICT (not
// disputable now, or the bond is more than who's cash).
func (s *Service) Dispute(ctx context.Context, who *accounts.Principal, subject, reason string) (Case, error) {
	if who == nil {
		return Case{}, levee.Errorf(levee.EUNAUTHORIZED, "sign in first")
	}
	if err := input.Length("reason", reason, 1, 5000); err != nil {
		return Case{}, err
	}
	owner, kind, ref, err := s.owner(subject)
	if err != nil {
		return Case{}, err
	}
	var id int64
	err = pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		proposed, err := owner.Hold(ctx, tx, who, ref)
		if err != nil {
			return err
		}
		facts, err := owner.Facts(ctx, tx, ref)
		if err != nil {
			return err
		}
		if facts.Parties == nil {
			facts.Parties = map[int64]string{}
		}
		facts.Parties[who.AccountID] = "disputer"
		if id, err = s.open(ctx, tx, subject, kind, facts, &proposed, who.AccountID, reason); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE proposals SET case_id = $1 WHERE subject = $2 AND status = 'disputed' AND case_id IS NULL`, id, subject)
		return err
	})
	if err != nil {
		return Case{}, fmt.Errorf("dispute %s: %w", subject, err)
	}
	s.invalidate(who.AccountID)
	s.opts.Logger.Info("case opened", "case", id, "subject", subject, "by", who.AccountID)
	return s.getCase(ctx, id)
}

// OpenReview opens a case that no one disputed: a review Levee owes (an
// emergency act after its emergency ends). No bond; the treasury pays the
// jurors. Errors: EINVALID, ENOTFOUND, ECONFLICT (a case is open already).
func (s *Service) OpenReview(ctx context.Context, subject, reason string) (Case, error) {
	owner, kind, ref, err := s.owner(subject)
	if err != nil {
		return Case{}, err
	}
	var id int64
	err = pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		facts, err := owner.Facts(ctx, tx, ref)
		if err != nil {
			return err
		}
		id, err = s.open(ctx, tx, subject, kind, facts, nil, 0, reason)
		return err
	})
	if err != nil {
		return Case{}, fmt.Errorf("review %s: %w", subject, err)
	}
	s.opts.Logger.Info("review opened", "case", id, "subject", subject)
	return s.getCase(ctx, id)
}

// open writes a case and draws its first jury inside tx.
func (s *Service) open(ctx context.Context, tx *sqlx.Tx, subject, kind string, f Facts, proposed *string, disputer int64, reason string) (int64, error) {
	r, ok := s.opts.Rules[kind]
	if !ok {
		return 0, fmt.Errorf("no rules for cases of kind %s", kind)
	}
	if !slices.Contains(f.Verdicts, f.Default) {
		return 0, fmt.Errorf("default verdict %q of %s is not one of its verdicts", f.Default, subject)
	}
	if f.Districts == nil {
		f.Districts = []int64{} // every district; the column is NOT NULL
	}
	now := s.now()
	var bond levee.Micros
	var openedBy *int64
	if disputer != 0 {
		bond, openedBy = r.Bond, &disputer
	}
	var id int64
	err := tx.GetContext(ctx, &id, `INSERT INTO cases (subject, kind, question, verdicts, district_ids, proposed, default_verdict, opened_by, reason, bond,
		jury_size, supermajority, min_reveals, juror_fee, appeal_bond, max_appeals, stratify, outside_share, commit_us, reveal_us, appeal_us,
		status, evidence_until, opened_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, 'evidence', $22, $23) RETURNING id`,
		subject, kind, f.Question, pq.StringArray(f.Verdicts), pq.Int64Array(f.Districts), proposed, f.Default, openedBy, reason, bond,
		r.JurySize, r.Supermajority, r.MinReveals, r.JurorFee, r.AppealBond, r.MaxAppeals, r.Stratify, r.OutsideShare,
		r.CommitPeriod.Microseconds(), r.RevealPeriod.Microseconds(), r.AppealWindow.Microseconds(), now.Add(r.EvidencePeriod), now)
	if pgtx.IsUniqueViolation(err, "") {
		return 0, levee.Errorf(levee.ECONFLICT, "%s already has an open case", subject)
	} else if err != nil {
		return 0, fmt.Errorf("insert case: %w", err)
	}
	for _, k := range []string{ledger.CaseFees(id), ledger.CaseSeats(id), ledger.CaseBonds(id)} {
		if err := ledger.OpenAccount(ctx, tx, k, "case", false); err != nil {
			return 0, err
		}
	}
	if bond > 0 {
		_, err := ledger.Post(ctx, tx, ledger.Transfer{Kind: "dispute_bond", Ref: caseRef(id), At: now,
			Postings: []ledger.Posting{{Account: ledger.Cash(disputer), Amount: -bond}, {Account: ledger.CaseFees(id), Amount: bond}}})
		if levee.ErrorCode(err) == levee.ECONFLICT {
			return 0, levee.Errorf(levee.ECONFLICT, "a dispute needs a bond of %s and your cash is less", bond)
		} else if err != nil {
			return 0, err
		}
	}
	if err := tieMarkets(ctx, tx, id, f.Markets); err != nil {
		return 0, err
	}
	// Parties never sit on their case's jury (the pool leaves them out),
	// and from now until the case is settled they may not trade in its
	// markets either.
	parties := make([]int64, 0, len(f.Parties))
	for acct, role := range f.Parties {
		parties = append(parties, acct)
		if _, err := tx.ExecContext(ctx, `INSERT INTO case_parties (case_id, account_id, role) VALUES ($1, $2, $3)`, id, acct, role); err != nil {
			return 0, fmt.Errorf("case parties: %w", err)
		}
	}
	if err := s.bar(ctx, tx, id, parties, false); err != nil {
		return 0, err
	}
	c, err := getCase(ctx, tx, id, "")
	if err != nil {
		return 0, err
	}
	// Jurors sit from the start so that they read the evidence as it comes;
	// they commit once the evidence period ends.
	if err := s.seatRound(ctx, tx, &c, 0, "first", c.JurySize, c.EvidenceUntil, f.Excluded); errors.Is(err, errNoJury) {
		return 0, levee.Errorf(levee.ECONFLICT, "no residents are eligible to sit on a jury for %s", subject)
	} else if err != nil {
		return 0, err
	}
	for acct := range f.Parties {
		if err := notify(ctx, tx, acct, id, "case_opened", fmt.Sprintf("Case %d is open: %s. Evidence until %s.", id, f.Question, c.EvidenceUntil.Format(time.RFC3339)), &c.EvidenceUntil, now); err != nil {
			return 0, err
		}
	}
	return id, nil
}
