// Package contracting runs public works tenders: a treasurer tenders work
// against a funded budget line, contractor organisations submit sealed bids,
// each bid gets a decision market ("if this bid is awarded, will the work be
// accepted by its promised date?") subsidised from the budget line, and the
// award goes to the lowest price per unit of forecast confidence. The award
// price moves into escrow and is released milestone by milestone. See
// docs/contracting.md.
//
// Lock order: docs/locks.md (the Service mutex, then tenders, contracts, the
// ledger last; the market engine is never called with our transaction open).
package contracting

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"levee"
	"levee/input"
	"levee/ledger"
	"levee/pgtx"
)

// Tender statuses. An open tender's phase depends on its window.
const (
	StatusOpen         = "open"
	StatusClosed       = "closed" // bids closed, decision markets trading
	StatusAwarded      = "awarded"
	StatusUnsuccessful = "unsuccessful"
)

// Bid statuses.
const (
	BidActive    = "active"
	BidWithdrawn = "withdrawn"
)

// Contract statuses.
const (
	ContractActive    = "active"
	ContractCompleted = "completed"
	ContractFailed    = "failed"
)

// Milestone statuses.
const (
	MilestonePending  = "pending"
	MilestoneClaimed  = "claimed"
	MilestoneDisputed = "disputed"
	MilestoneAccepted = "accepted"
	MilestoneRejected = "rejected"
)

// Defaults for optional tender fields.
const (
	DefaultLiquidity     levee.Micros  = 10 * levee.Scale
	DefaultDisputeWindow time.Duration = 72 * time.Hour
	maxMilestones                      = 50
)

// Milestone is one part of a tender's work with its share of the price.
type Milestone struct {
	N     int          `json:"n" db:"n"`
	Title string       `json:"title" db:"title"`
	Share levee.Micros `json:"share" db:"share"`
}

// Amendment is a change to a tender's text asked for after its bid window
// opened; the tender row keeps the original text.
type Amendment struct {
	ID        int64     `json:"id,string" db:"id"`
	Changes   jsonMap   `json:"changes" db:"changes"`
	Reason    string    `json:"reason" db:"reason"`
	CreatedBy int64     `json:"created_by,string" db:"created_by"`
	CreatedAt time.Time `json:"created_at" db:"created_at"`
}

// Tender is a call for bids. Title, Scope and AcceptanceCriteria are the
// effective text: the original with any amendments applied in order.
type Tender struct {
	ID                 int64         `json:"id,string" db:"id"`
	BudgetLineID       int64         `json:"budget_line,string" db:"budget_line_id"`
	BudgetLineAccount  string        `json:"budget_line_account" db:"-"`
	Title              string        `json:"title" db:"title"`
	Scope              string        `json:"scope" db:"scope"`
	DistrictIDs        pq.Int64Array `json:"-" db:"district_ids"`
	Districts          []string      `json:"districts" db:"-"`
	BudgetCap          levee.Micros  `json:"budget_cap" db:"budget_cap"`
	OpensAt            time.Time     `json:"opens_at" db:"opens_at"`
	ClosesAt           time.Time     `json:"closes_at" db:"closes_at"`
	DecisionAt         time.Time     `json:"decision_at" db:"decision_at"`
	MinConfidence      levee.Micros  `json:"min_confidence" db:"min_confidence"`
	TWAPWindowUS       int64         `json:"-" db:"twap_window_us"`
	TWAPWindow         string        `json:"twap_window" db:"-"`
	DisputeWindowUS    int64         `json:"-" db:"dispute_window_us"`
	DisputeWindow      string        `json:"dispute_window" db:"-"`
	Liquidity          levee.Micros  `json:"liquidity" db:"liquidity"`
	AcceptanceCriteria string        `json:"acceptance_criteria" db:"acceptance_criteria"`
	Status             string        `json:"status" db:"status"`
	// Method is "open" (sealed bids and decision markets) or "limited" (a
	// direct award under emergency powers, its rationale given).
	Method          string    `json:"method" db:"method"`
	MethodRationale string    `json:"method_rationale,omitempty" db:"method_rationale"`
	CreatedBy       int64     `json:"created_by,string" db:"created_by"`
	CreatedAt       time.Time `json:"created_at" db:"created_at"`
	// Phase is upcoming, bidding, bids_closed (waiting for close-bids),
	// forecasting (markets trading), deciding (waiting for the award),
	// awarded or unsuccessful, as of the time of reading.
	Phase string `json:"phase" db:"-"`
}

func (t *Tender) fill(now time.Time) {
	t.BudgetLineAccount = ledger.BudgetLine(t.BudgetLineID)
	t.TWAPWindow = (time.Duration(t.TWAPWindowUS) * time.Microsecond).String()
	t.DisputeWindow = (time.Duration(t.DisputeWindowUS) * time.Microsecond).String()
	switch {
	case t.Status == StatusAwarded || t.Status == StatusUnsuccessful:
		t.Phase = t.Status
	case t.Status == StatusClosed && now.Before(t.DecisionAt):
		t.Phase = "forecasting"
	case t.Status == StatusClosed:
		t.Phase = "deciding"
	case now.Before(t.OpensAt):
		t.Phase = "upcoming"
	case now.Before(t.ClosesAt):
		t.Phase = "bidding"
	default:
		t.Phase = "bids_closed"
	}
}

// TWAPFrom is when the TWAP window starts.
func (t *Tender) TWAPFrom() time.Time {
	return t.DecisionAt.Add(-time.Duration(t.TWAPWindowUS) * time.Microsecond)
}

// TenderView is a tender with what the caller may see of it.
type TenderView struct {
	Tender
	Milestones []Milestone      `json:"milestones"`
	Amendments []Amendment      `json:"amendments"`
	Bids       []Bid            `json:"bids"` // only the caller's own until the window closes
	Award      *json.RawMessage `json:"award,omitempty"`
	Contract   *int64           `json:"contract,string,omitempty"`
}

// Bid is a contractor's offer. Until the tender's window closes only the
// bidding organisation and its members can read it.
type Bid struct {
	ID              int64        `json:"id,string" db:"id"`
	TenderID        int64        `json:"tender,string" db:"tender_id"`
	OrganisationID  int64        `json:"organisation,string" db:"organisation_id"`
	Organisation    string       `json:"organisation_name" db:"organisation"`
	SubmittedBy     int64        `json:"submitted_by,string" db:"submitted_by"`
	Price           levee.Micros `json:"price" db:"price"`
	CompletionAt    time.Time    `json:"completion_at" db:"completion_at"`
	MilestoneDates  timeList     `json:"milestone_dates" db:"milestone_dates"`
	MethodStatement string       `json:"method_statement" db:"method_statement"`
	Status          string       `json:"status" db:"status"`
	MarketID        *int64       `json:"market,string,omitempty" db:"market_id"`
	CreatedAt       time.Time    `json:"created_at" db:"created_at"`
	UpdatedAt       time.Time    `json:"updated_at" db:"updated_at"`
}

// NewMilestone is one milestone of a new tender.
type NewMilestone struct {
	Title string
	Share levee.Micros
}

// NewTender is what a treasurer supplies to open a tender.
type NewTender struct {
	BudgetLine         int64
	Title              string
	Scope              string
	Districts          []string // district names
	BudgetCap          levee.Micros
	OpensAt            time.Time // zero means now
	ClosesAt           time.Time
	DecisionAt         time.Time
	MinConfidence      levee.Micros
	TWAPWindow         time.Duration
	DisputeWindow      time.Duration // zero means DefaultDisputeWindow
	Liquidity          levee.Micros  // zero means DefaultLiquidity
	AcceptanceCriteria string
	Milestones         []NewMilestone
	CreatedBy          int64
}

// Validate checks n field by field against now and fills in defaults.
func (n *NewTender) Validate(now time.Time) error {
	n.Title = strings.TrimSpace(n.Title)
	if n.BudgetLine <= 0 {
		return levee.Invalid("budget_line", "budget_line is required")
	}
	if err := input.Length("title", n.Title, 1, 200); err != nil {
		return err
	}
	if err := input.Length("scope", n.Scope, 0, 20000); err != nil {
		return err
	}
	if err := input.Length("acceptance_criteria", n.AcceptanceCriteria, 0, 20000); err != nil {
		return err
	}
	if len(n.Districts) == 0 || len(n.Districts) > 100 {
		return levee.Invalid("districts", "name 1 to 100 districts")
	}
	if n.BudgetCap <= 0 {
		return levee.Invalid("budget_cap", "budget_cap must be positive")
	}
	if n.OpensAt.IsZero() {
		n.OpensAt = now
	}
	switch {
	case n.ClosesAt.IsZero():
		return levee.Invalid("closes_at", "closes_at is required")
	case !n.ClosesAt.After(now):
		return levee.Invalid("closes_at", "closes_at must be in the future")
	case !n.ClosesAt.After(n.OpensAt):
		return levee.Invalid("closes_at", "closes_at must be after opens_at")
	case n.DecisionAt.IsZero():
		return levee.Invalid("decision_at", "decision_at is required")
	case !n.DecisionAt.After(n.ClosesAt):
		return levee.Invalid("decision_at", "decision_at must be after closes_at")
	}
	if n.MinConfidence < 0 || n.MinConfidence > levee.Scale {
		return levee.Invalid("min_confidence", "min_confidence must be a probability from 0 to 1, like \"0.6\"")
	}
	if n.TWAPWindow < time.Microsecond {
		return levee.Invalid("twap_window", "twap_window must be a positive duration, like \"72h\"")
	}
	if n.TWAPWindow > n.DecisionAt.Sub(n.ClosesAt) {
		return levee.Invalid("twap_window", "twap_window must fit between closes_at and decision_at, while the decision markets trade")
	}
	if n.DisputeWindow == 0 {
		n.DisputeWindow = DefaultDisputeWindow
	}
	if n.DisputeWindow < time.Microsecond {
		return levee.Invalid("dispute_window", "dispute_window must be a positive duration")
	}
	if n.Liquidity == 0 {
		n.Liquidity = DefaultLiquidity
	}
	if n.Liquidity < 0 {
		return levee.Invalid("liquidity", "liquidity must be positive")
	}
	if len(n.Milestones) == 0 || len(n.Milestones) > maxMilestones {
		return levee.Invalid("milestones", "give 1 to %d milestones", maxMilestones)
	}
	var sum levee.Micros
	for i := range n.Milestones {
		m := &n.Milestones[i]
		m.Title = strings.TrimSpace(m.Title)
		if err := input.Length(fmt.Sprintf("milestones[%d].title", i), m.Title, 1, 200); err != nil {
			return err
		}
		if m.Share <= 0 || m.Share > levee.Scale {
			return levee.Invalid(fmt.Sprintf("milestones[%d].share", i), "a milestone's share must be above 0 and at most 1")
		}
		sum += m.Share
	}
	if sum != levee.Scale {
		return levee.Invalid("milestones", "milestone shares must sum to exactly 1.000000, not %s", sum)
	}
	return nil
}

// TenderEdit changes a tender. Before the bid window opens every given field
// is overwritten; after it opens only the text fields can change, each
// change recorded as an amendment with a reason.
type TenderEdit struct {
	Title              *string
	Scope              *string
	AcceptanceCriteria *string
	BudgetCap          *levee.Micros
	MinConfidence      *levee.Micros
	Reason             string
}

// NewBid is what a contractor supplies.
type NewBid struct {
	Organisation    int64
	Price           levee.Micros
	CompletionAt    time.Time
	MilestoneDates  []time.Time
	MethodStatement string
}

func (n *NewBid) validate(t *Tender, milestones int, now time.Time) error {
	if n.Organisation <= 0 {
		return levee.Invalid("organisation", "organisation is required: the id of the organisation you bid for")
	}
	if n.Price <= 0 {
		return levee.Invalid("price", "price must be positive")
	}
	if n.Price > t.BudgetCap {
		return levee.Invalid("price", "price must be at most the tender's budget cap of %s", t.BudgetCap)
	}
	if !n.CompletionAt.After(t.DecisionAt) {
		return levee.Invalid("completion_at", "completion_at must be after the decision date %s", t.DecisionAt.UTC().Format(time.RFC3339))
	}
	if len(n.MilestoneDates) != milestones {
		return levee.Invalid("milestone_dates", "give one date per milestone (%d)", milestones)
	}
	for i, d := range n.MilestoneDates {
		if d.After(n.CompletionAt) || (i > 0 && d.Before(n.MilestoneDates[i-1])) || !d.After(t.DecisionAt) {
			return levee.Invalid("milestone_dates", "milestone dates must be in order, after the decision date and by completion_at")
		}
	}
	return input.Length("method_statement", n.MethodStatement, 0, 50000)
}

// timeList is a JSONB list of times.
type timeList []time.Time

func (l timeList) Value() (driver.Value, error) { return pgtx.JSONValue([]time.Time(l)) }
func (l *timeList) Scan(src any) error          { return pgtx.ScanJSON(src, (*[]time.Time)(l)) }

// jsonMap is a JSONB object of strings.
type jsonMap map[string]string

func (m jsonMap) Value() (driver.Value, error) { return pgtx.JSONValue(map[string]string(m)) }
func (m *jsonMap) Scan(src any) error          { return pgtx.ScanJSON(src, (*map[string]string)(m)) }
