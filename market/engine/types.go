// Package engine runs Levee's markets: one goroutine owns each market's state
// and drains its command queue in batches, a journal writer group-commits
// the trades of many markets in one PostgreSQL transaction, and every order is
// acknowledged only after its transaction commits. See docs/engine.md.
package engine

import (
	"database/sql/driver"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"levee"
	"levee/ledger"
	"levee/market"
)

// Market is a market's definition and its committed state.
type Market struct {
	ID        int64          `db:"id"`
	Question  string         `db:"question"`
	Outcomes  pq.StringArray `db:"outcomes"`
	Liquidity levee.Micros   `db:"liquidity"`
	Subsidy   levee.Micros   `db:"subsidy"`
	Q         microsArray    `db:"q"`
	Seq       int64          `db:"seq"`
	Volume    levee.Micros   `db:"volume"`
	Status    string         `db:"status"`
	// Conditional markets (every decision market) keep the money traders
	// put in bound to the market until it settles (docs/lmsr.md, "Voids").
	Conditional     bool      `db:"conditional"`
	ResolvedOutcome *int      `db:"resolved_outcome"`
	DistrictID      *int64    `db:"district_id"`
	District        *string   `db:"district"`
	ClosesAt        time.Time `db:"closes_at"`
	CreatedAt       time.Time `db:"created_at"`
	// Epoch is the market's lease epoch (docs/cluster.md): every journal
	// commit and lifecycle transaction checks it, so only the book that
	// loaded it may write. One instance alone never changes it.
	Epoch int64 `db:"epoch"`
}

// EffectiveStatus is the market's status as seen at now
// (market.EffectiveStatus).
func (m *Market) EffectiveStatus(now time.Time) string {
	return market.EffectiveStatus(m.Status, m.ClosesAt, now)
}

// NewMarket is what a treasurer supplies to open a market.
type NewMarket struct {
	Question             string
	Outcomes             []string
	Liquidity            levee.Micros
	InitialProbabilities []levee.Micros // optional; uniform when empty
	ClosesAt             time.Time
	District             string // optional district name
	CreatedBy            int64
	// FundedBy is the ledger account that pays the subsidy and receives
	// what is left of the collateral when the market settles (or covers a
	// void's shortfall). Empty means "treasury".
	FundedBy string
	// Conditional binds the money traders put in to the market until it
	// settles: sales credit a balance inside the market, and a void gives
	// each trader back exactly what they put in. Decision markets are.
	Conditional bool
}

// Validate checks the fields that the pure maths does not.
func (n *NewMarket) Validate(now time.Time) error {
	n.Question = strings.TrimSpace(n.Question)
	if n.Question == "" || len(n.Question) > 500 {
		return levee.Invalid("question", "question must be 1 to 500 characters")
	}
	seen := map[string]bool{}
	for i, o := range n.Outcomes {
		o = strings.TrimSpace(o)
		if o == "" || len(o) > 100 {
			return levee.Invalid("outcomes", "outcome %d must be 1 to 100 characters", i)
		}
		if ClashesWithVoid(o) {
			return levee.Invalid("outcomes", "outcome %d may not be named %q: \"void\" is the verdict that cancels a market", i, o)
		}
		if seen[o] {
			return levee.Invalid("outcomes", "outcome %q is listed twice", o)
		}
		seen[o] = true
		n.Outcomes[i] = o
	}
	if len(n.InitialProbabilities) != 0 && len(n.InitialProbabilities) != len(n.Outcomes) {
		return levee.Invalid("initial_probabilities", "give one probability per outcome")
	}
	if !n.ClosesAt.After(now) {
		return levee.Invalid("closes_at", "closes_at must be in the future")
	}
	if n.FundedBy == "" {
		n.FundedBy = ledger.Treasury
	}
	return nil
}

// Result is an acknowledged order: committed, durable.
type Result struct {
	MarketID int64          `json:"market_id,string"`
	Seq      int64          `json:"seq"`
	Outcome  int            `json:"outcome"`
	Side     market.Side    `json:"side"`
	Shares   levee.Micros   `json:"shares"`
	Cost     levee.Micros   `json:"cost"`
	Proceeds levee.Micros   `json:"proceeds"`
	Prices   []levee.Micros `json:"prices"`
	At       time.Time      `json:"at"`
}

// TradeID names a trade: market id and per-market sequence number.
func (r Result) TradeID() string { return fmt.Sprintf("%d-%d", r.MarketID, r.Seq) }

// microsArray is a NUMERIC[] column (market.Prices, written as a parameter).
type microsArray market.Prices

// Value writes a PostgreSQL array literal.
func (a microsArray) Value() (driver.Value, error) { return market.Prices(a).String(), nil }

// Scan reads a NUMERIC[] column.
func (a *microsArray) Scan(src any) error { return (*market.Prices)(a).Scan(src) }
