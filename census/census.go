// Package census builds the public census of the city (GET /api/v1/census):
// residents, the treasury and its flows, budget lines, funding rounds,
// markets and their forecast accuracy, tenders and contracts, and the
// ledger's verification. It only reads, through small interfaces of the
// packages it reports on, so none of them imports it or each other for it.
package census

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/ledger"
	"levee/market/engine"
)

// Accounts is what the census needs of accounts.
type Accounts interface {
	ResidentsByDistrict(ctx context.Context) ([]accounts.DistrictResidents, error)
	Names(ctx context.Context, ids []int64) (map[int64]string, error)
	Admissions(ctx context.Context) (int64, error)
}

// Ledger is what the census needs of the ledger.
type Ledger interface {
	Balance(ctx context.Context, key string) (levee.Micros, error)
	Balances(ctx context.Context, keys []string) (map[string]levee.Micros, error)
	Flows(ctx context.Context, account string) ([]ledger.Flow, error)
	// Verified is the ledger's cached verification, extended with the
	// entries since: the census is public, so no call of it reads the
	// whole ledger.
	Verified(ctx context.Context) (ledger.Verified, error)
}

// Budgets is what the census needs of budgets.
type Budgets interface {
	BudgetLines(ctx context.Context) ([]budgets.BudgetLine, error)
	Rounds(ctx context.Context, before int64, limit int) ([]budgets.Round, error)
}

// Markets is what the census needs of the market engine.
type Markets interface {
	Stats(ctx context.Context) (engine.Stats, error)
	Resolved(ctx context.Context) ([]engine.Market, error)
}

// Sources are the packages the census reports on. Markets and Contracting
// may be nil on a node that does not run them: their figures are then
// listed as not yet available.
type Sources struct {
	Accounts    Accounts
	Ledger      Ledger
	Budgets     Budgets
	Markets     Markets
	Contracting Contracting
}

// Service assembles the census.
type Service struct {
	src Sources
	now func() time.Time
}

// New returns a Service reading src; now is the clock (time.Now when nil).
func New(src Sources, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{src: src, now: func() time.Time { return now().Truncate(time.Microsecond) }}
}

// Census is the public summary of the city. Every figure names, in Source,
// the API path of the records it is computed from.
type Census struct {
	GeneratedAt     time.Time          `json:"generated_at"`
	Residents       ResidentsFigure    `json:"residents"`
	Treasury        TreasuryFigure     `json:"treasury"`
	BudgetLines     LinesFigure        `json:"budget_lines"`
	Markets         *MarketsFigure     `json:"markets,omitempty"`
	Forecasts       *ForecastFigure    `json:"forecast_accuracy,omitempty"`
	Rounds          RoundsFigure       `json:"qf_rounds"`
	Contracting     *ContractingFigure `json:"contracting,omitempty"`
	Ledger          LedgerFigure       `json:"ledger_verification"`
	NotYetAvailable []NotYetFigure     `json:"not_yet_available"`
}

// ResidentsFigure counts residents per district.
type ResidentsFigure struct {
	Source    string                       `json:"source"`
	Total     int64                        `json:"total"`
	Districts []accounts.DistrictResidents `json:"districts"`
	// Admissions counts every account the admin opened, each one in the
	// public audit log (GET /api/v1/audit): admission stays with the
	// founder, in public.
	Admissions       int64  `json:"admissions"`
	AdmissionsSource string `json:"admissions_source"`
}

// TreasuryFigure is the treasury's balance and its flows by day and kind.
type TreasuryFigure struct {
	Source  string        `json:"source"`
	Balance levee.Micros  `json:"balance"`
	Flows   []ledger.Flow `json:"flows"`
}

// LinesFigure lists the budget lines with their balances.
type LinesFigure struct {
	Source string               `json:"source"`
	Total  levee.Micros         `json:"total_balance"`
	Lines  []budgets.BudgetLine `json:"lines"`
}

// MarketsFigure is market activity.
type MarketsFigure struct {
	Source string `json:"source"`
	engine.Stats
}

// CalibrationBin compares the stated probability with the observed
// frequency for the outcomes priced within [From, To).
type CalibrationBin struct {
	From         string  `json:"from"`
	To           string  `json:"to"`
	Outcomes     int     `json:"outcomes"`
	MeanStated   float64 `json:"mean_stated"`
	ObservedFreq float64 `json:"observed_frequency"`
}

// ForecastFigure is the forecast accuracy of resolved markets: the mean
// Brier score of their final prices and a calibration table.
type ForecastFigure struct {
	Source      string           `json:"source"`
	Markets     int              `json:"resolved_markets"`
	Brier       *float64         `json:"brier_score"`
	Calibration []CalibrationBin `json:"calibration"`
	Method      string           `json:"method"`
}

// RoundsFigure summarises the quadratic funding rounds.
type RoundsFigure struct {
	Source   string          `json:"source"`
	Rounds   int             `json:"rounds"`
	ByPhase  map[string]int  `json:"by_phase"`
	Pools    levee.Micros    `json:"pools"`
	Returned levee.Micros    `json:"returned"`
	List     []budgets.Round `json:"list"`
}

// LedgerFigure is the ledger's verification as /api/v1/ledger/verify serves
// it: cached, extended with new entries, fully rescanned in the background.
type LedgerFigure struct {
	Source     string        `json:"source"`
	VerifiedAt time.Time     `json:"verified_at"`
	Report     ledger.Report `json:"report"`
}

// NotYetFigure names a figure the census will carry once its records exist.
type NotYetFigure struct {
	Figure string `json:"figure"`
	Reason string `json:"reason"`
}

// Census assembles the public census.
func (s *Service) Census(ctx context.Context) (Census, error) {
	c := Census{GeneratedAt: s.now().UTC(), NotYetAvailable: []NotYetFigure{}}
	if s.src.Contracting != nil {
		f, err := s.contractingFigure(ctx)
		if err != nil {
			return Census{}, err
		}
		c.Contracting = &f
	} else {
		c.NotYetAvailable = append(c.NotYetAvailable,
			NotYetFigure{Figure: "tenders", Reason: "contracting is not running on this node"},
			NotYetFigure{Figure: "contracts", Reason: "contracting is not running on this node"},
			NotYetFigure{Figure: "contractor_track_records", Reason: "contracting is not running on this node"})
	}
	districts, err := s.src.Accounts.ResidentsByDistrict(ctx)
	if err != nil {
		return Census{}, fmt.Errorf("census residents: %w", err)
	}
	c.Residents = ResidentsFigure{Source: "/api/v1/districts", Districts: districts, AdmissionsSource: "/api/v1/audit"}
	if c.Residents.Admissions, err = s.src.Accounts.Admissions(ctx); err != nil {
		return Census{}, fmt.Errorf("census admissions: %w", err)
	}
	for _, d := range c.Residents.Districts {
		c.Residents.Total += d.Residents
	}

	c.Treasury = TreasuryFigure{Source: "/api/v1/ledger/entries"}
	bal, err := s.src.Ledger.Balance(ctx, ledger.Treasury)
	if err != nil && levee.ErrorCode(err) != levee.ENOTFOUND {
		return Census{}, err
	}
	c.Treasury.Balance = bal
	if c.Treasury.Flows, err = s.src.Ledger.Flows(ctx, ledger.Treasury); err != nil {
		return Census{}, fmt.Errorf("census treasury flows: %w", err)
	}

	lines, err := s.src.Budgets.BudgetLines(ctx)
	if err != nil {
		return Census{}, err
	}
	c.BudgetLines = LinesFigure{Source: "/api/v1/budget-lines", Lines: lines}
	for _, l := range lines {
		c.BudgetLines.Total += l.Balance
	}

	if s.src.Markets != nil {
		st, err := s.src.Markets.Stats(ctx)
		if err != nil {
			return Census{}, err
		}
		c.Markets = &MarketsFigure{Source: "/api/v1/markets", Stats: st}
		ms, err := s.src.Markets.Resolved(ctx)
		if err != nil {
			return Census{}, err
		}
		f := Forecasts(ms)
		c.Forecasts = &f
	} else {
		c.NotYetAvailable = append(c.NotYetAvailable, NotYetFigure{Figure: "markets", Reason: "the market engine is not running on this node"})
	}

	rounds, err := allRounds(ctx, s.src.Budgets)
	if err != nil {
		return Census{}, err
	}
	c.Rounds = RoundsFigure{Source: "/api/v1/qf/rounds", Rounds: len(rounds), ByPhase: map[string]int{}, List: rounds}
	for _, r := range rounds {
		c.Rounds.ByPhase[r.Phase]++
		c.Rounds.Pools += r.Pool
		if r.Returned != nil {
			c.Rounds.Returned += *r.Returned
		}
	}

	v, err := s.src.Ledger.Verified(ctx)
	if err != nil {
		return Census{}, err
	}
	c.Ledger = LedgerFigure{Source: "/api/v1/ledger/verify", VerifiedAt: v.VerifiedAt.UTC(), Report: v.Report}
	return c, nil
}

// allRounds reads every round a page at a time, newest first: the census
// counts and sums all of them, not the first page the API answers with.
func allRounds(ctx context.Context, b Budgets) ([]budgets.Round, error) {
	all := []budgets.Round{} // "list": [] when there are none, as before
	for before := int64(0); ; {
		page, err := b.Rounds(ctx, before, budgets.MaxRoundPage)
		if err != nil {
			return nil, fmt.Errorf("census rounds: %w", err)
		}
		all = append(all, page...)
		if len(page) < budgets.MaxRoundPage {
			return all, nil
		}
		// A page that does not end below its cursor would repeat for ever.
		last := page[len(page)-1].ID
		if before != 0 && last >= before {
			return nil, fmt.Errorf("census rounds: the page before %d ends at %d", before, last)
		}
		before = last
	}
}

// Forecasts scores resolved markets by their final prices: the mean Brier
// score Σ_k (p_k − o_k)² over outcomes k (0 perfect, 2 worst; 0.5 for a
// 50/50 two-outcome market), and calibration in ten bins of stated
// probability over all outcomes of all resolved markets.
func Forecasts(ms []engine.Market) ForecastFigure {
	f := ForecastFigure{Source: "/api/v1/markets?status=resolved", Calibration: make([]CalibrationBin, 10),
		Method: "final prices (the last trade's state) of each resolved market; Brier = mean over markets of the sum over outcomes of (price - outcome)^2"}
	type acc struct {
		n        int
		stated   int64 // Σ price, micro-units
		occurred int
	}
	bins := make([]acc, 10)
	// Brier in micro-units squared: Σ (p - o)², exact in integers.
	brier := new(big.Int)
	for i := range ms {
		m := &ms[i]
		if m.ResolvedOutcome == nil {
			continue
		}
		prices := engine.Prices(m)
		if prices == nil {
			continue
		}
		f.Markets++
		for k, p := range prices {
			o := int64(0)
			if k == *m.ResolvedOutcome {
				o = levee.Scale
			}
			d := big.NewInt(int64(p) - o)
			brier.Add(brier, d.Mul(d, d))
			b := int(int64(p) * 10 / levee.Scale)
			if b > 9 {
				b = 9
			}
			if b < 0 {
				b = 0
			}
			bins[b].n++
			bins[b].stated += int64(p)
			if o != 0 {
				bins[b].occurred++
			}
		}
	}
	if f.Markets > 0 {
		v, _ := new(big.Rat).SetFrac(brier, big.NewInt(int64(f.Markets)*levee.Scale*levee.Scale)).Float64()
		f.Brier = &v
	}
	for i := range bins {
		bin := CalibrationBin{From: fmt.Sprintf("0.%d", i), To: fmt.Sprintf("0.%d", i+1), Outcomes: bins[i].n}
		if i == 9 {
			bin.To = "1.0"
		}
		if bins[i].n > 0 {
			bin.MeanStated = float64(bins[i].stated) / float64(bins[i].n) / levee.Scale
			bin.ObservedFreq = float64(bins[i].occurred) / float64(bins[i].n)
		}
		f.Calibration[i] = bin
	}
	return f
}
