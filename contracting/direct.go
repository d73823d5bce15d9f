package contracting

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/input"
	"levee/ledger"
	"levee/pgtx"
)

// ContractReferred is the status of a direct award a review jury referred:
// its unspent escrow went back to the treasury.
const ContractReferred = "referred"

// DirectAward is work awarded without bids or a decision market (OCDS
// procurementMethod "limited"), as emergency powers allow. It becomes a
// tender of method "limited", awarded at once, so that its contract,
// milestones, escrow, disputes and OCDS releases work like any other.
type DirectAward struct {
	BudgetLineID       int64
	Contractor         int64 // a contractor organisation
	Title              string
	Scope              string
	AcceptanceCriteria string
	Price              levee.Micros
	CompletionAt       time.Time
	Milestones         []DirectMilestone
	Rationale          string // why no open tender: the emergency
	DisputeWindow      time.Duration
	DecidedBy          int64
}

// DirectMilestone is one milestone of a direct award.
type DirectMilestone struct {
	Title string       `json:"title"`
	Share levee.Micros `json:"share"`
	DueAt time.Time    `json:"due_at"`
}

// Validate checks d field by field.
func (d *DirectAward) Validate(now time.Time) error {
	if err := input.Length("title", d.Title, 1, 200); err != nil {
		return err
	}
	if err := input.Length("scope", d.Scope, 0, 20000); err != nil {
		return err
	}
	if d.Price <= 0 {
		return levee.Invalid("price", "price must be positive")
	}
	if !d.CompletionAt.After(now) {
		return levee.Invalid("completion_at", "completion must be in the future")
	}
	if len(d.Milestones) == 0 || len(d.Milestones) > maxMilestones {
		return levee.Invalid("milestones", "a direct award needs 1 to %d milestones", maxMilestones)
	}
	var sum levee.Micros
	for i, m := range d.Milestones {
		if err := input.Length(fmt.Sprintf("milestones[%d].title", i), m.Title, 1, 200); err != nil {
			return err
		}
		if m.Share <= 0 {
			return levee.Invalid(fmt.Sprintf("milestones[%d].share", i), "each share must be positive")
		}
		if m.DueAt.After(d.CompletionAt) || !m.DueAt.After(now) {
			return levee.Invalid(fmt.Sprintf("milestones[%d].due_at", i), "a milestone is due after now and by the completion date")
		}
		sum += m.Share
	}
	if sum != levee.Scale {
		return levee.Invalid("milestones", "milestone shares must add up to 1 (they add up to %s)", sum)
	}
	if d.DisputeWindow <= 0 {
		d.DisputeWindow = DefaultDisputeWindow
	}
	return nil
}

// AwardDirect writes a direct award inside tx (the caller's, which also
// records why it was allowed) and moves its price from the budget line into
// escrow. Errors: EINVALID, ENOTFOUND (budget line), ECONFLICT (the line
// cannot cover the price).
func (s *Service) AwardDirect(ctx context.Context, tx *sqlx.Tx, d DirectAward) (contractID int64, err error) {
	now := s.now()
	if err := d.Validate(now); err != nil {
		return 0, err
	}
	org, err := accounts.IsContractor(ctx, tx, d.Contractor)
	if err != nil {
		return 0, err
	}
	if !org {
		return 0, levee.Invalid("contractor", "contractor must be a contractor organisation")
	}
	line, err := budgets.Line(ctx, tx, d.BudgetLineID)
	if err != nil {
		return 0, err
	}
	district := line.DistrictID
	// The tender's window is a microsecond wide: nothing is ever open to
	// bids, and the one bid is the award.
	t := Tender{BudgetLineID: d.BudgetLineID, Title: d.Title, Scope: d.Scope, DistrictIDs: []int64{district}, BudgetCap: d.Price,
		OpensAt: now, ClosesAt: now.Add(time.Microsecond), DecisionAt: now.Add(2 * time.Microsecond), TWAPWindowUS: 1,
		DisputeWindowUS: d.DisputeWindow.Microseconds(), Liquidity: 1, AcceptanceCriteria: d.AcceptanceCriteria,
		Method: "limited", MethodRationale: d.Rationale, CreatedBy: d.DecidedBy}
	if err := tx.GetContext(ctx, &t.ID, `INSERT INTO tenders (budget_line_id, title, scope, district_ids, budget_cap, opens_at, closes_at, decision_at,
		min_confidence, twap_window_us, dispute_window_us, liquidity, acceptance_criteria, status, method, method_rationale, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12, 'awarded', 'limited', $13, $14, $6) RETURNING id`,
		t.BudgetLineID, t.Title, t.Scope, t.DistrictIDs, t.BudgetCap, t.OpensAt, t.ClosesAt, t.DecisionAt, t.TWAPWindowUS,
		t.DisputeWindowUS, t.Liquidity, t.AcceptanceCriteria, t.MethodRationale, t.CreatedBy); err != nil {
		return 0, fmt.Errorf("insert direct award tender: %w", err)
	}
	b := Bid{TenderID: t.ID, OrganisationID: d.Contractor, Price: d.Price, CompletionAt: d.CompletionAt}
	for i, m := range d.Milestones {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tender_milestones (tender_id, n, title, share) VALUES ($1, $2, $3, $4)`, t.ID, i+1, m.Title, m.Share); err != nil {
			return 0, fmt.Errorf("insert direct award milestone: %w", err)
		}
		b.MilestoneDates = append(b.MilestoneDates, m.DueAt)
	}
	if err := tx.GetContext(ctx, &b.ID, `INSERT INTO bids (tender_id, organisation_id, submitted_by, price, completion_at, milestone_dates, method_statement, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id`, t.ID, d.Contractor, d.DecidedBy, d.Price, d.CompletionAt, b.MilestoneDates,
		"Direct award: "+d.Rationale, now); err != nil {
		return 0, fmt.Errorf("insert direct award bid: %w", err)
	}
	rec := AwardRecord{Tender: t.ID, Rule: "direct award (limited procurement): " + d.Rationale, Bids: []ScoredBid{},
		Result: StatusAwarded, Winner: &b.ID, Price: &b.Price, DecidedAt: now, WindowFrom: now, WindowTo: now}
	cid, err := s.openContract(ctx, tx, &t, b, d.DecidedBy, &rec)
	if err != nil {
		return 0, err
	}
	return cid, s.tellAward(ctx, tx, &t, []Bid{b}, 0, cid)
}

// ReferDirectAward ends a direct award a review jury referred, inside tx:
// the escrow not yet paid returns to the treasury and the contract is
// marked referred. Errors: ENOTFOUND, ECONFLICT (not a direct award).
func (s *Service) ReferDirectAward(ctx context.Context, tx *sqlx.Tx, contractID int64) (returned levee.Micros, err error) {
	c, err := getContract(ctx, tx, contractID, "FOR UPDATE")
	if err != nil {
		return 0, err
	}
	if c.MarketID != nil {
		return 0, levee.Errorf(levee.ECONFLICT, "contract %d was tendered openly, not directly awarded", contractID)
	}
	if c.Status != ContractActive {
		return 0, nil // completed, failed or referred: nothing is left unspent
	}
	if _, err := tx.ExecContext(ctx, `UPDATE contracts SET status = 'referred', settled_at = $2 WHERE id = $1`, contractID, s.now()); err != nil {
		return 0, err
	}
	left, err := ledger.Balance(ctx, tx, ledger.Escrow(contractID))
	if err != nil || left == 0 {
		return 0, err
	}
	_, err = ledger.Post(ctx, tx, ledger.Transfer{Kind: "escrow_referred", Ref: "contract/" + levee.FormatID(contractID), At: s.now(),
		Postings: []ledger.Posting{{Account: ledger.Escrow(contractID), Amount: -left}, {Account: ledger.Treasury, Amount: left}}})
	return left, err
}

// Encumbered is what open tenders on a budget line may still take from it:
// the caps of tenders not yet awarded or abandoned.
func Encumbered(ctx context.Context, q sqlx.QueryerContext, lineID int64) (levee.Micros, error) {
	var e levee.Micros
	err := sqlx.GetContext(ctx, q, &e, `SELECT coalesce(sum(budget_cap), 0) FROM tenders WHERE budget_line_id = $1 AND status IN ('open', 'closed')`, lineID)
	if err != nil {
		return 0, pgtx.Unavailable(fmt.Errorf("encumbered on line %d: %w", lineID, err))
	}
	return e, nil
}
