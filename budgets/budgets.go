// Package budgets runs participatory budgets by quadratic funding: a
// treasurer opens a round with a matching pool from the treasury, residents
// propose projects and contribute cash to the eligible ones during the
// window, and finalising the round pays each project its contributions plus
// its match into a budget line that later tenders draw on. See
// docs/budgets.md.
//
// Lock order: docs/locks.md (qf_rounds, then qf_projects, the ledger last).
package budgets

import (
	"strings"
	"time"
	"unicode/utf8"

	"levee"
	"levee/ledger"
)

// Round statuses. A round is "open" until it is finalised; whether it takes
// contributions depends on its window (see Round.Phase).
const (
	StatusOpen  = "open"
	StatusFinal = "final"
)

// Round is a quadratic funding round.
type Round struct {
	ID               int64         `json:"id,string" db:"id"`
	Title            string        `json:"title" db:"title"`
	Pool             levee.Micros  `json:"pool" db:"pool"`
	CapShare         *levee.Micros `json:"cap_share,omitempty" db:"cap_share"`
	EligibilityRules string        `json:"eligibility_rules" db:"eligibility_rules"`
	OpensAt          time.Time     `json:"opens_at" db:"opens_at"`
	ClosesAt         time.Time     `json:"closes_at" db:"closes_at"`
	Status           string        `json:"status" db:"status"`
	Returned         *levee.Micros `json:"returned,omitempty" db:"returned"`
	CreatedBy        int64         `json:"created_by,string" db:"created_by"`
	CreatedAt        time.Time     `json:"created_at" db:"created_at"`
	FinalizedAt      *time.Time    `json:"finalized_at,omitempty" db:"finalized_at"`
	PoolAccount      string        `json:"pool_account" db:"-"`
	EscrowAccount    string        `json:"escrow_account" db:"-"`
	// Phase is "upcoming", "contributing", "closed" (awaiting finalisation)
	// or "final", as of the time the round was read.
	Phase string `json:"phase" db:"-"`
}

func (r *Round) fill(now time.Time) {
	r.PoolAccount, r.EscrowAccount = ledger.RoundPool(r.ID), ledger.RoundEscrow(r.ID)
	switch {
	case r.Status == StatusFinal:
		r.Phase = "final"
	case now.Before(r.OpensAt):
		r.Phase = "upcoming"
	case now.Before(r.ClosesAt):
		r.Phase = "contributing"
	default:
		r.Phase = "closed"
	}
}

// Project is a resident's proposal in a round. Eligible is nil until a
// treasurer decides.
type Project struct {
	ID                int64        `json:"id,string" db:"id"`
	RoundID           int64        `json:"round,string" db:"round_id"`
	Title             string       `json:"title" db:"title"`
	Description       string       `json:"description" db:"description"`
	District          string       `json:"district" db:"-"`
	DistrictID        int64        `json:"-" db:"district_id"`
	EstimatedCost     levee.Micros `json:"estimated_cost" db:"estimated_cost"`
	ProposedBy        int64        `json:"proposed_by,string" db:"proposed_by"`
	Eligible          *bool        `json:"eligible" db:"eligible"`
	EligibilityReason string       `json:"eligibility_reason" db:"eligibility_reason"`
	Contributors      int          `json:"contributors" db:"contributors"`
	Contributed       levee.Micros `json:"contributed" db:"contributed"`
	CreatedAt         time.Time    `json:"created_at" db:"created_at"`
}

// Contribution record as stored.
type ContributionRecord struct {
	ID        int64        `json:"id,string" db:"id"`
	ProjectID int64        `json:"project,string" db:"project_id"`
	RoundID   int64        `json:"round,string" db:"round_id"`
	AccountID int64        `json:"account,string" db:"account_id"`
	Amount    levee.Micros `json:"amount" db:"amount"`
	LedgerSeq int64        `json:"ledger_seq" db:"ledger_seq"`
	At        time.Time    `json:"at" db:"at"`
}

// Result is the published breakdown of one project's match once a round is
// final. Big integers are decimal strings: SumSqrt counts √micro-units,
// RawMatch micro-units formatted with six decimals.
type Result struct {
	ProjectID    int64        `json:"project,string" db:"project_id"`
	Title        string       `json:"title" db:"title"`
	Contributors int          `json:"contributors" db:"contributors"`
	Contributed  levee.Micros `json:"contributed" db:"contributed"`
	SumSqrt      string       `json:"sum_sqrt" db:"sum_sqrt"`
	RawMatch     string       `json:"raw_match" db:"raw_match"`
	Match        levee.Micros `json:"match" db:"match"`
	Capped       bool         `json:"capped" db:"capped"`
	BudgetLine   *int64       `json:"budget_line,string,omitempty" db:"budget_line_id"`
}

// RoundDetail is a round with its projects and, once final, its results.
type RoundDetail struct {
	Round
	Projects []Project `json:"projects"`
	Results  []Result  `json:"results,omitempty"`
}

// BudgetLine is money set aside for one funded project. Tenders (the
// contracting issue) draw on it through its ledger account.
type BudgetLine struct {
	ID         int64        `json:"id,string" db:"id"`
	ProjectID  int64        `json:"project,string" db:"project_id"`
	RoundID    int64        `json:"round,string" db:"round_id"`
	District   string       `json:"district" db:"-"`
	DistrictID int64        `json:"district_id,string" db:"district_id"`
	Title      string       `json:"title" db:"title"`
	Funded     levee.Micros `json:"funded" db:"funded"`
	LedgerKey  string       `json:"ledger_key" db:"ledger_key"`
	Balance    levee.Micros `json:"balance" db:"balance"`
	CreatedAt  time.Time    `json:"created_at" db:"created_at"`
}

// NewRound is what a treasurer supplies to open a round. CapShare is the
// per-project cap as a share of the pool (0 < share ≤ 1), 0 for none.
type NewRound struct {
	Title            string
	Pool             levee.Micros
	CapShare         levee.Micros
	EligibilityRules string
	OpensAt          time.Time // zero means now
	ClosesAt         time.Time
	CreatedBy        int64
}

// Validate checks n field by field against now.
func (n *NewRound) Validate(now time.Time) error {
	n.Title = strings.TrimSpace(n.Title)
	if n.Title == "" || utf8.RuneCountInString(n.Title) > 200 {
		return levee.Invalid("title", "title must be 1 to 200 characters")
	}
	if n.Pool <= 0 {
		return levee.Invalid("pool", "pool must be positive")
	}
	if n.CapShare < 0 || n.CapShare > levee.Scale {
		return levee.Invalid("cap_share", "cap_share must be a share of the pool between 0 and 1, like \"0.25\"")
	}
	if n.CapShare > 0 && CapOf(n.Pool, n.CapShare) == 0 {
		return levee.Invalid("cap_share", "cap_share leaves a cap of zero")
	}
	if utf8.RuneCountInString(n.EligibilityRules) > 10000 {
		return levee.Invalid("eligibility_rules", "eligibility_rules must be at most 10000 characters")
	}
	if n.OpensAt.IsZero() {
		n.OpensAt = now
	}
	if n.ClosesAt.IsZero() {
		return levee.Invalid("closes_at", "closes_at is required")
	}
	if !n.ClosesAt.After(now) {
		return levee.Invalid("closes_at", "closes_at must be in the future")
	}
	if !n.ClosesAt.After(n.OpensAt) {
		return levee.Invalid("closes_at", "closes_at must be after opens_at")
	}
	return nil
}

// NewProject is what a resident supplies to propose a project.
type NewProject struct {
	Title         string
	Description   string
	District      string // district name
	EstimatedCost levee.Micros
}

// Validate checks n field by field.
func (n *NewProject) Validate() error {
	n.Title = strings.TrimSpace(n.Title)
	if n.Title == "" || utf8.RuneCountInString(n.Title) > 200 {
		return levee.Invalid("title", "title must be 1 to 200 characters")
	}
	if utf8.RuneCountInString(n.Description) > 10000 {
		return levee.Invalid("description", "description must be at most 10000 characters")
	}
	if n.District == "" {
		return levee.Invalid("district", "district is required")
	}
	if n.EstimatedCost <= 0 {
		return levee.Invalid("estimated_cost", "estimated_cost must be positive")
	}
	return nil
}
