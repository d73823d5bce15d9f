package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/market"
	"levee/market/engine"
)

// outcomeView is one outcome of a market as the pages show it.
type outcomeView struct {
	Index   int
	Name    string
	Price   levee.Micros
	Leading bool
	Winner  bool
}

func outcomesOf(v marketView) []outcomeView {
	out := make([]outcomeView, len(v.Outcomes))
	lead := -1
	for i, name := range v.Outcomes {
		out[i] = outcomeView{Index: i, Name: name}
		if i < len(v.Prices) {
			out[i].Price = v.Prices[i]
			if lead < 0 || v.Prices[i] > v.Prices[lead] {
				lead = i
			}
		}
		if v.ResolvedOutcome != nil && *v.ResolvedOutcome == i {
			out[i].Winner = true
		}
	}
	if lead >= 0 {
		out[lead].Leading = true
	}
	return out
}

// marketsPage is the data of the markets list.
type marketsPage struct {
	Status    string
	District  string
	Districts []accounts.District
	Markets   []marketRow
}

type marketRow struct {
	View    marketView
	Leading *outcomeView
}

// pageMarkets lists markets, filtered by status and district, newest
// first, a page at a time (?before=).
func (s *Server) pageMarkets(c *echo.Context) error {
	ctx := c.Request().Context()
	p := newPage(c, "Markets", "markets")
	d := &marketsPage{Status: c.QueryParam("status"), District: c.QueryParam("district")}
	p.Data = d
	var err error
	if d.Districts, err = s.deps.Accounts.Districts(ctx); err != nil {
		return s.renderError(c, err)
	}
	if !marketStatuses[d.Status] {
		return s.renderError(c, levee.Invalid("status", "status must be open, closed, resolved or void"))
	}
	before, err := listCursor(c)
	if err != nil {
		return s.renderError(c, err)
	}
	ms, err := s.deps.Markets.List(ctx, engine.Filter{Status: d.Status, District: d.District, AfterID: before, Limit: listPageSize + 1})
	if err != nil {
		return s.renderError(c, err)
	}
	ms = listPage(p, c, before, ms, func(m *engine.Market) int64 { return m.ID })
	now := time.Now()
	for i := range ms {
		row := marketRow{View: viewOf(&ms[i], engine.Prices(&ms[i]), now)}
		for _, o := range outcomesOf(row.View) {
			if o.Leading {
				row.Leading = &o
			}
		}
		d.Markets = append(d.Markets, row)
	}
	return s.render(c, http.StatusOK, "markets", p)
}

// marketPage is the data of one market's page.
type marketPage struct {
	View      marketView
	Outcomes  []outcomeView
	Trades    []tradeRow
	History   []historyRow
	Positions []engine.Position
	Cash      *levee.Micros
	// Stake is the caller's money in a decision market (put in, held
	// inside), from their first position in it.
	Stake  *engine.Position
	Winner string
	// Outcome is the proposal and dispute panel of a market past its close.
	Outcome *proposalPanel
}

type tradeRow struct {
	market.Trade
	OutcomeName string
}

type historyRow struct {
	engine.Point
}

// pageMarket shows one market: prices, chart, order ticket, trades and the
// caller's position.
func (s *Server) pageMarket(c *echo.Context) error {
	ctx := c.Request().Context()
	id, err := pathID(c, "id", "market")
	if err != nil {
		return s.renderError(c, err)
	}
	snap, err := s.deps.Markets.Snapshot(ctx, id)
	if err != nil {
		return s.renderError(c, err)
	}
	now := time.Now()
	v := viewOf(&snap.Market, snap.Prices, now)
	d := &marketPage{View: v, Outcomes: outcomesOf(v)}
	for _, o := range d.Outcomes {
		if o.Winner {
			d.Winner = o.Name
		}
	}
	name := func(i int) string {
		if i >= 0 && i < len(v.Outcomes) {
			return v.Outcomes[i]
		}
		return "?"
	}
	trades, err := s.deps.Markets.Trades(ctx, id, 0, 10)
	if err != nil {
		return s.renderError(c, err)
	}
	for _, t := range trades {
		d.Trades = append(d.Trades, tradeRow{Trade: t, OutcomeName: name(t.Outcome)})
	}
	// The table under the chart lists the latest points, newest first; the
	// chart itself fetches the whole series.
	points, err := s.deps.Markets.History(ctx, id, snap.Market.CreatedAt, historyEnd(snap.Market.CreatedAt), 200)
	if err != nil {
		return s.renderError(c, err)
	}
	for i := len(points) - 1; i >= 0 && len(d.History) < 12; i-- {
		d.History = append(d.History, historyRow{points[i]})
	}
	if pr := principal(c); pr != nil {
		ps, err := s.deps.Markets.Positions(ctx, pr.AccountID)
		if err != nil {
			return s.renderError(c, err)
		}
		for _, p := range ps {
			if p.MarketID == id {
				d.Positions = append(d.Positions, p)
			}
		}
		if len(d.Positions) > 0 {
			d.Stake = &d.Positions[0]
		}
		a, err := s.deps.Accounts.Get(ctx, pr.AccountID)
		if err != nil {
			return s.renderError(c, err)
		}
		d.Cash = &a.Cash
	}
	if d.Outcome, err = s.proposalPanel(ctx, principal(c), id, v, snap.Market.DistrictID, len(d.Positions) > 0, now); err != nil {
		return s.renderError(c, err)
	}
	p := newPage(c, v.Question, "markets")
	p.Scripts = []string{"market.js"}
	p.WantChart = true
	p.Data = d
	return s.render(c, http.StatusOK, "market", p)
}

// newMarketPage is the data of the treasurer's market form.
type newMarketPage struct {
	Districts []accounts.District
	ClosesAt  string // default for the datetime-local input
}

// pageNewMarket is the treasurer's form to open a market; the page's script
// sends it to POST /api/v1/markets.
func (s *Server) pageNewMarket(c *echo.Context) error {
	if ok, err := s.requireSignIn(c); !ok {
		return err
	}
	if !principal(c).Has(accounts.RoleTreasurer) {
		return s.renderError(c, levee.Errorf(levee.EFORBIDDEN, "only a treasurer can open a market"))
	}
	ds, err := s.deps.Accounts.Districts(c.Request().Context())
	if err != nil {
		return s.renderError(c, err)
	}
	closes := time.Now().AddDate(0, 1, 0).Truncate(24 * time.Hour).Add(12 * time.Hour)
	p := newPage(c, "Open a market", "new")
	p.Data = &newMarketPage{Districts: ds, ClosesAt: closes.Format("2006-01-02T15:04")}
	return s.render(c, http.StatusOK, "newmarket", p)
}
