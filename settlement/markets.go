package settlement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/market/engine"
	"levee/pgtx"
)

// Markets is what settlement needs of the market engine to settle markets.
type Markets interface {
	SettleWith(ctx context.Context, marketID int64, outcome int, within func(ctx context.Context, tx *sqlx.Tx) error) error
}

// Proposal is an outcome proposed for a closed market. It becomes final
// after its dispute window unless someone disputes it.
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

// MarketSubject names a market as the subject of proposals and cases.
func MarketSubject(marketID int64) string { return "market:" + levee.FormatID(marketID) }

// Propose proposes the outcome of a closed market (one of its outcomes, or
// "void") with evidence. A treasurer proposes; decision markets are
// resolved by their contracts instead. Errors: EINVALID, EFORBIDDEN,
// ENOTFOUND, ECONFLICT (not closed, a decision market, or proposed already).
func (s *Service) Propose(ctx context.Context, who *accounts.Principal, marketID int64, verdict, evidence string) (Proposal, error) {
	if !who.Has(accounts.RoleTreasurer) {
		return Proposal{}, levee.Errorf(levee.EFORBIDDEN, "only treasurers propose market outcomes")
	}
	if err := checkText("evidence", evidence, 1, 20000); err != nil {
		return Proposal{}, err
	}
	var p Proposal
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		f, err := engine.MarketFacts(ctx, tx, marketID)
		if err != nil {
			return err
		}
		if f.FundedBy != "treasury" {
			return levee.Errorf(levee.ECONFLICT, "market %d is a decision market: its contract resolves it", marketID)
		}
		now := s.now()
		if st := f.Market.EffectiveStatus(now); st != engine.StatusClosed {
			return levee.Errorf(levee.ECONFLICT, "market %d is %s; propose an outcome once it has closed", marketID, st)
		}
		if verdict != VerdictVoid && !slices.Contains([]string(f.Market.Outcomes), verdict) {
			return levee.Invalid("verdict", "verdict must be one of the market's outcomes %q or %q", []string(f.Market.Outcomes), VerdictVoid)
		}
		err = tx.GetContext(ctx, &p, `INSERT INTO proposals (subject, verdict, evidence, proposed_by, proposed_at, dispute_until)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+proposalColumns,
			MarketSubject(marketID), verdict, evidence, who.AccountID, now, now.Add(s.opts.Rules["market"].DisputeWindow))
		if pgtx.IsUniqueViolation(err, "") {
			return levee.Errorf(levee.ECONFLICT, "market %d already has an outcome proposed", marketID)
		}
		if err != nil {
			return err
		}
		return accounts.WriteAudit(ctx, tx, who.AccountID, "market.propose", map[string]any{"market": marketID, "verdict": verdict})
	})
	if err != nil {
		return Proposal{}, fmt.Errorf("propose market %d: %w", marketID, err)
	}
	return p, nil
}

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
	s.mu.Lock()
	defer s.mu.Unlock()
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

// marketOwner makes markets subjects of cases: proposals live here, in
// settlement; the engine applies the verdict.
type marketOwner struct {
	s       *Service
	markets Markets
}

// MarketOwner returns the Owner of "market:<id>" subjects.
func (s *Service) MarketOwner(m Markets) Owner { return &marketOwner{s: s, markets: m} }

func parseID(field, ref string) (int64, error) {
	id, err := strconv.ParseInt(ref, 10, 64)
	if err != nil || id <= 0 {
		return 0, levee.Invalid(field, "%s must be a positive integer", field)
	}
	return id, nil
}

func (o *marketOwner) Facts(ctx context.Context, q sqlx.QueryerContext, ref string) (Facts, error) {
	id, err := parseID("subject", ref)
	if err != nil {
		return Facts{}, err
	}
	f, err := engine.MarketFacts(ctx, q, id)
	if err != nil {
		return Facts{}, err
	}
	facts := Facts{
		Kind:     "market",
		Question: f.Market.Question,
		Verdicts: append(slices.Clone([]string(f.Market.Outcomes)), VerdictVoid),
		Excluded: f.Holders,
		Markets:  []int64{id},
		Parties:  map[int64]string{},
	}
	if f.Market.DistrictID != nil {
		facts.Districts = []int64{*f.Market.DistrictID}
	}
	var p Proposal
	err = sqlx.GetContext(ctx, q, &p, `SELECT `+proposalColumns+` FROM proposals WHERE subject = $1 AND status <> 'settled'`, MarketSubject(id))
	if err == nil {
		facts.Default = p.Verdict
		facts.Parties[p.ProposedBy] = "proposer"
	} else if errors.Is(err, sql.ErrNoRows) {
		facts.Default = VerdictVoid
	} else {
		return Facts{}, pgtx.Unavailable(err)
	}
	return facts, nil
}

// Hold disputes a market's pending proposal within its window. A resident
// of the market's district (any resident for a city-wide market), a trader
// in it, or the proposer may dispute.
func (o *marketOwner) Hold(ctx context.Context, tx *sqlx.Tx, who *accounts.Principal, ref string) (string, error) {
	id, err := parseID("subject", ref)
	if err != nil {
		return "", err
	}
	var p Proposal
	err = tx.GetContext(ctx, &p, `SELECT `+proposalColumns+` FROM proposals WHERE subject = $1 AND status <> 'settled' FOR UPDATE`, MarketSubject(id))
	if errors.Is(err, sql.ErrNoRows) {
		return "", levee.Errorf(levee.ECONFLICT, "market %d has no proposed outcome to dispute", id)
	} else if err != nil {
		return "", pgtx.Unavailable(err)
	}
	if p.Status != "pending" || !o.s.now().Before(p.DisputeUntil) {
		return "", levee.Errorf(levee.ECONFLICT, "the proposal for market %d can no longer be disputed", id)
	}
	f, err := engine.MarketFacts(ctx, tx, id)
	if err != nil {
		return "", err
	}
	may := slices.Contains(f.Holders, who.AccountID) || who.AccountID == p.ProposedBy ||
		who.Has(accounts.RoleResident) && (f.Market.DistrictID == nil || *f.Market.DistrictID == who.DistrictID)
	if !may {
		return "", levee.Errorf(levee.EFORBIDDEN, "only residents of the market's district, its traders and the proposer can dispute")
	}
	// The case id is set once the case exists (same transaction).
	if _, err := tx.ExecContext(ctx, `UPDATE proposals SET status = 'disputed' WHERE id = $1`, p.ID); err != nil {
		return "", err
	}
	return p.Verdict, nil
}

func (o *marketOwner) Settle(ctx context.Context, ref, verdict string, mark func(ctx context.Context, tx *sqlx.Tx) error) error {
	id, err := parseID("subject", ref)
	if err != nil {
		return err
	}
	f, err := engine.MarketFacts(ctx, o.s.db, id)
	if err != nil {
		return err
	}
	outcome := slices.Index([]string(f.Market.Outcomes), verdict)
	if verdict == VerdictVoid {
		outcome = -1
	} else if outcome < 0 {
		return fmt.Errorf("market %d has no outcome %q", id, verdict)
	}
	return o.markets.SettleWith(ctx, id, outcome, mark)
}
