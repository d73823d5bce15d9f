package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/input"
	"levee/market"
	"levee/market/engine"
)

// Markets is what the web layer needs from the market engine.
type Markets interface {
	CreateMarket(ctx context.Context, n engine.NewMarket) (engine.Market, error)
	List(ctx context.Context, f engine.Filter) ([]engine.Market, error)
	Snapshot(ctx context.Context, marketID int64) (*engine.Snapshot, error)
	Quote(ctx context.Context, account, marketID int64, o market.Order) (market.Fill, *engine.Snapshot, error)
	Submit(ctx context.Context, account, marketID int64, o market.Order, key string) (engine.Result, error)
	Trades(ctx context.Context, marketID, beforeSeq int64, limit int) ([]market.Trade, error)
	History(ctx context.Context, marketID int64, from, to time.Time, points int) ([]engine.Point, error)
	Positions(ctx context.Context, account int64) ([]engine.Position, error)
	CloseMarket(ctx context.Context, marketID int64) error
	Resolve(ctx context.Context, marketID int64, outcome int) error
	Void(ctx context.Context, marketID int64) error
}

// marketView is a market as the API shows it.
type marketView struct {
	ID        string         `json:"id"`
	Question  string         `json:"question"`
	Outcomes  []string       `json:"outcomes"`
	Liquidity levee.Micros   `json:"liquidity"`
	Subsidy   levee.Micros   `json:"subsidy"`
	Prices    []levee.Micros `json:"prices"`
	Shares    []levee.Micros `json:"shares"`
	Status    string         `json:"status"`
	// Conditional: a decision market, where the money traders put in stays
	// in the market until the decision (docs/lmsr.md, "Voids").
	Conditional     bool         `json:"conditional"`
	ResolvedOutcome *int         `json:"resolved_outcome,omitempty"`
	Seq             int64        `json:"seq"`
	Volume          levee.Micros `json:"volume"`
	District        string       `json:"district,omitempty"`
	ClosesAt        time.Time    `json:"closes_at"`
	CreatedAt       time.Time    `json:"created_at"`
}

func viewOf(m *engine.Market, prices []levee.Micros, now time.Time) marketView {
	v := marketView{ID: levee.FormatID(m.ID), Question: m.Question, Outcomes: m.Outcomes, Liquidity: m.Liquidity, Subsidy: m.Subsidy,
		Prices: prices, Shares: m.Q, Status: m.EffectiveStatus(now), Conditional: m.Conditional, ResolvedOutcome: m.ResolvedOutcome, Seq: m.Seq,
		Volume: m.Volume, ClosesAt: m.ClosesAt, CreatedAt: m.CreatedAt}
	if m.District != nil {
		v.District = *m.District
	}
	return v
}

type createMarketRequest struct {
	Question             string   `json:"question"`
	Outcomes             []string `json:"outcomes"`
	Liquidity            string   `json:"liquidity"`
	InitialProbabilities []string `json:"initial_probabilities"`
	ClosesAt             string   `json:"closes_at"`
	District             string   `json:"district"`
}

func (s *Server) createMarket(c *echo.Context) error {
	var req createMarketRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	b, err := parseAmount("liquidity", req.Liquidity, true)
	if err != nil {
		return err
	}
	var probs []levee.Micros
	for _, p := range req.InitialProbabilities {
		v, err := parseAmount("initial_probabilities", p, true)
		if err != nil {
			return err
		}
		probs = append(probs, v)
	}
	if req.ClosesAt == "" {
		return levee.Invalid("closes_at", "closes_at is required (RFC 3339, e.g. 2027-03-01T00:00:00Z)")
	}
	closes, err := time.Parse(time.RFC3339, req.ClosesAt)
	if err != nil {
		return levee.Invalid("closes_at", "closes_at must be an RFC 3339 time such as 2027-03-01T00:00:00Z")
	}
	m, err := s.deps.Markets.CreateMarket(c.Request().Context(), engine.NewMarket{
		Question: req.Question, Outcomes: req.Outcomes, Liquidity: b, InitialProbabilities: probs,
		ClosesAt: closes, District: req.District, CreatedBy: principal(c).AccountID,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, viewOf(&m, engine.Prices(&m), time.Now()))
}

var marketStatuses = map[string]bool{"": true, "open": true, "closed": true, "resolved": true, "void": true}

func (s *Server) listMarkets(c *echo.Context) error {
	status := c.QueryParam("status")
	if !marketStatuses[status] {
		return levee.Invalid("status", "status must be open, closed, resolved or void")
	}
	before, limit, err := queryPage(c, 200)
	if err != nil {
		return err
	}
	ms, err := s.deps.Markets.List(c.Request().Context(), engine.Filter{Status: status, District: c.QueryParam("district"), AfterID: before, Limit: limit})
	if err != nil {
		return err
	}
	now := time.Now()
	views := make([]marketView, len(ms))
	for i := range ms {
		views[i] = viewOf(&ms[i], engine.Prices(&ms[i]), now)
	}
	return c.JSON(http.StatusOK, map[string]any{"markets": views})
}

// marketFromPath returns the committed state of the market named in the path.
func (s *Server) marketFromPath(c *echo.Context) (*engine.Snapshot, error) {
	id, err := pathID(c, "id", "market")
	if err != nil {
		return nil, err
	}
	return s.deps.Markets.Snapshot(c.Request().Context(), id)
}

func (s *Server) getMarket(c *echo.Context) error {
	snap, err := s.marketFromPath(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(&snap.Market, snap.Prices, time.Now()))
}

// orderFields is an order as sent in a body or a query string.
type orderFields struct {
	Outcome     *int   `json:"outcome"`
	Side        string `json:"side"`
	Shares      string `json:"shares"`
	Amount      string `json:"amount"`
	All         bool   `json:"all"`
	LimitPrice  string `json:"limit_price"`
	MaxCost     string `json:"max_cost"`
	MinProceeds string `json:"min_proceeds"`
}

func (f orderFields) order() (market.Order, error) {
	var o market.Order
	if f.Outcome == nil {
		return o, levee.Invalid("outcome", "outcome is required (the index of the outcome, from 0)")
	}
	o.Outcome = *f.Outcome
	switch f.Side {
	case "buy":
		o.Side = market.Buy
	case "sell":
		o.Side = market.Sell
	default:
		return o, levee.Invalid("side", "side must be buy or sell")
	}
	var err error
	for _, p := range []struct {
		field string
		s     string
		dst   *levee.Micros
	}{
		{"shares", f.Shares, &o.Shares}, {"amount", f.Amount, &o.Amount}, {"limit_price", f.LimitPrice, &o.LimitPrice},
		{"max_cost", f.MaxCost, &o.MaxCost}, {"min_proceeds", f.MinProceeds, &o.MinProceeds},
	} {
		if *p.dst, err = parseAmount(p.field, p.s, false); err != nil {
			return o, err
		}
	}
	o.All = f.All
	return o, nil
}

func (s *Server) quote(c *echo.Context) error {
	id, err := pathID(c, "id", "market")
	if err != nil {
		return err
	}
	f, o, err := quoteQuery(c)
	if err != nil {
		return err
	}
	var account int64
	if p := principal(c); p != nil {
		account = p.AccountID
	}
	fill, snap, err := s.deps.Markets.Quote(c.Request().Context(), account, id, o)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"outcome": fill.Outcome, "side": f.Side, "shares": fill.Shares,
		"cost": fill.Cost, "proceeds": fill.Proceeds, "prices": fill.PricesAfter, "seq": snap.Market.Seq})
}

// quoteQuery reads an order from the query string of a quote.
func quoteQuery(c *echo.Context) (orderFields, market.Order, error) {
	f := orderFields{Side: c.QueryParam("side"), Shares: c.QueryParam("shares"), Amount: c.QueryParam("amount"),
		LimitPrice: c.QueryParam("limit_price"), MaxCost: c.QueryParam("max_cost"), MinProceeds: c.QueryParam("min_proceeds")}
	if v := c.QueryParam("outcome"); v != "" {
		n, ok := input.Whole(v, 0, input.MaxSmallint) // trades.outcome is a smallint
		if !ok {
			return f, market.Order{}, levee.Invalid("outcome", "outcome: a whole number from 0 to %d", input.MaxSmallint)
		}
		o := int(n)
		f.Outcome = &o
	}
	switch c.QueryParam("all") {
	case "", "false":
	case "true":
		f.All = true
	default:
		return f, market.Order{}, levee.Invalid("all", "all must be true or false")
	}
	o, err := f.order()
	return f, o, err
}

func (s *Server) placeOrder(c *echo.Context) error {
	id, err := pathID(c, "id", "market")
	if err != nil {
		return err
	}
	var f orderFields
	if err := decodeOrder(c, &f); err != nil {
		return err
	}
	o, err := f.order()
	if err != nil {
		return err
	}
	key := c.Request().Header.Get("Idempotency-Key")
	r, err := s.deps.Markets.Submit(c.Request().Context(), principal(c).AccountID, id, o, key)
	if err != nil {
		return err
	}
	// Set here from a shared value: Blob's Header().Set makes a slice.
	c.Response().Header()["Content-Type"] = headerJSON[:1:1]
	return c.Blob(http.StatusCreated, echo.MIMEApplicationJSON, appendOrderResult(make([]byte, 0, 256), r))
}

// appendOrderResult writes an order's answer as JSON, with the keys in the
// order encoding/json gave the map this replaced. Written by hand because
// it is the hottest answer of the API: reflection over a map of interfaces
// (boxing, sorting keys, MarshalJSON per amount) was a tenth of the server's
// CPU per order (issue 18). TestOrderResultJSON holds it to encoding/json's
// output.
func appendOrderResult(b []byte, r engine.Result) []byte {
	b = append(b, '{')
	if r.Side == market.Buy {
		b = append(b, `"cost":"`...)
		b = append(r.Cost.AppendTo(b), `",`...)
	}
	b = append(b, `"market":"`...)
	b = strconv.AppendInt(b, r.MarketID, 10)
	b = append(b, `","outcome":`...)
	b = strconv.AppendInt(b, int64(r.Outcome), 10)
	b = append(b, `,"prices":[`...)
	for i, p := range r.Prices {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(p.AppendTo(b), '"')
	}
	b = append(b, ']')
	if r.Side != market.Buy {
		b = append(b, `,"proceeds":"`...)
		b = append(r.Proceeds.AppendTo(b), '"')
	}
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, r.Seq, 10)
	b = append(b, `,"shares":"`...)
	b = append(r.Shares.AppendTo(b), `","side":"`...)
	b = append(b, r.Side.String()...)
	b = append(b, `","trade_id":"`...)
	b = strconv.AppendInt(b, r.MarketID, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, r.Seq, 10)
	return append(b, "\"}\n"...)
}

func (s *Server) marketTrades(c *echo.Context) error {
	snap, err := s.marketFromPath(c)
	if err != nil {
		return err
	}
	before, limit, err := queryPage(c, 500)
	if err != nil {
		return err
	}
	ts, err := s.deps.Markets.Trades(c.Request().Context(), snap.Market.ID, before, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"trades": ts})
}

// historyEnd is the default end of a market's price history: now, or just
// after its creation when the engine's clock runs ahead of ours (a test
// moving time forward).
func historyEnd(created time.Time) time.Time {
	if now := time.Now(); now.After(created) {
		return now
	}
	return created.Add(time.Second)
}

func (s *Server) marketHistory(c *echo.Context) error {
	snap, err := s.marketFromPath(c)
	if err != nil {
		return err
	}
	id := snap.Market.ID
	from, to := snap.Market.CreatedAt, historyEnd(snap.Market.CreatedAt)
	if v := c.QueryParam("from"); v != "" {
		if from, err = time.Parse(time.RFC3339, v); err != nil {
			return levee.Invalid("from", "from must be an RFC 3339 time")
		}
	}
	if v := c.QueryParam("to"); v != "" {
		if to, err = time.Parse(time.RFC3339, v); err != nil {
			return levee.Invalid("to", "to must be an RFC 3339 time")
		}
	}
	points, err := queryInt(c, "points", 200, 2, 2000)
	if err != nil {
		return err
	}
	ps, err := s.deps.Markets.History(c.Request().Context(), id, from, to, int(points))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"market": levee.FormatID(id), "from": from, "to": to, "points": ps})
}

func (s *Server) myPositions(c *echo.Context) error {
	ps, err := s.deps.Markets.Positions(c.Request().Context(), principal(c).AccountID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"positions": ps})
}

func (s *Server) closeMarket(c *echo.Context) error {
	id, err := pathID(c, "id", "market")
	if err != nil {
		return err
	}
	if err := s.deps.Markets.CloseMarket(c.Request().Context(), id); err != nil {
		return err
	}
	return s.getMarket(c)
}

func (s *Server) voidMarket(c *echo.Context) error {
	id, err := pathID(c, "id", "market")
	if err != nil {
		return err
	}
	if err := s.deps.Markets.Void(c.Request().Context(), id); err != nil {
		return err
	}
	return s.getMarket(c)
}
