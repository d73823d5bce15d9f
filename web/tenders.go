package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/contracting"
)

// Contracting is what the web layer needs from the contracting service
// (tenders, sealed bids, awards, contracts and milestones).
type Contracting interface {
	CreateTender(ctx context.Context, n contracting.NewTender) (contracting.TenderView, error)
	Tenders(ctx context.Context, before int64, limit int) ([]contracting.Tender, error)
	Tender(ctx context.Context, viewer *accounts.Principal, id int64) (contracting.TenderView, error)
	EditTender(ctx context.Context, actor, id int64, e contracting.TenderEdit) (contracting.TenderView, error)
	Bids(ctx context.Context, viewer *accounts.Principal, tenderID int64) ([]contracting.Bid, error)
	Bid(ctx context.Context, viewer *accounts.Principal, id int64) (contracting.Bid, error)
	SubmitBid(ctx context.Context, who *accounts.Principal, tenderID int64, n contracting.NewBid) (contracting.Bid, error)
	ReviseBid(ctx context.Context, who *accounts.Principal, bidID int64, n contracting.NewBid) (contracting.Bid, error)
	WithdrawBid(ctx context.Context, who *accounts.Principal, bidID int64) (contracting.Bid, error)
	CloseBids(ctx context.Context, actor, tenderID int64) (contracting.TenderView, error)
	Award(ctx context.Context, actor, tenderID int64) (contracting.TenderView, error)
	Contract(ctx context.Context, id int64) (contracting.Contract, error)
	Claim(ctx context.Context, who *accounts.Principal, contractID int64, n int, evidence string) (contracting.Contract, error)
	OCDSReleasePackage(ctx context.Context, tenderID int64, uri string) (contracting.ReleasePackage, error)
	OCDSRecordPackage(ctx context.Context, tenderID int64, uri string) (contracting.RecordPackage, error)
	TrackRecord(ctx context.Context, contractor int64) (contracting.TrackRecord, error)
}

func parseTime(field, s string, required bool) (time.Time, error) {
	if s == "" {
		if required {
			return time.Time{}, levee.Invalid(field, "%s is required (RFC 3339, e.g. 2027-03-01T00:00:00Z)", field)
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, levee.Invalid(field, "%s must be an RFC 3339 time such as 2027-03-01T00:00:00Z", field)
	}
	return t, nil
}

func parseDuration(field, s string, required bool) (time.Duration, error) {
	if s == "" {
		if required {
			return 0, levee.Invalid(field, "%s is required (a duration such as \"72h\")", field)
		}
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, levee.Invalid(field, "%s must be a positive duration such as \"72h\" or \"90m\"", field)
	}
	return d, nil
}

func (s *Server) createTender(c *echo.Context) error {
	var req struct {
		BudgetLine         string   `json:"budget_line"`
		Title              string   `json:"title"`
		Scope              string   `json:"scope"`
		Districts          []string `json:"districts"`
		BudgetCap          string   `json:"budget_cap"`
		OpensAt            string   `json:"opens_at"`
		ClosesAt           string   `json:"closes_at"`
		DecisionAt         string   `json:"decision_at"`
		MinConfidence      string   `json:"min_confidence"`
		TWAPWindow         string   `json:"twap_window"`
		DisputeWindow      string   `json:"dispute_window"`
		Liquidity          string   `json:"liquidity"`
		AcceptanceCriteria string   `json:"acceptance_criteria"`
		Milestones         []struct {
			Title string `json:"title"`
			Share string `json:"share"`
		} `json:"milestones"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	n := contracting.NewTender{Title: req.Title, Scope: req.Scope, Districts: req.Districts, AcceptanceCriteria: req.AcceptanceCriteria,
		CreatedBy: principal(c).AccountID}
	var err error
	if n.BudgetLine, err = parseID("budget_line", req.BudgetLine); err != nil {
		return levee.Invalid("budget_line", "budget_line must be a budget line id")
	}
	if n.BudgetCap, err = parseAmount("budget_cap", req.BudgetCap, true); err != nil {
		return err
	}
	if n.MinConfidence, err = parseAmount("min_confidence", req.MinConfidence, true); err != nil {
		return err
	}
	if n.Liquidity, err = parseAmount("liquidity", req.Liquidity, false); err != nil {
		return err
	}
	if n.OpensAt, err = parseTime("opens_at", req.OpensAt, false); err != nil {
		return err
	}
	if n.ClosesAt, err = parseTime("closes_at", req.ClosesAt, true); err != nil {
		return err
	}
	if n.DecisionAt, err = parseTime("decision_at", req.DecisionAt, true); err != nil {
		return err
	}
	if n.TWAPWindow, err = parseDuration("twap_window", req.TWAPWindow, true); err != nil {
		return err
	}
	if n.DisputeWindow, err = parseDuration("dispute_window", req.DisputeWindow, false); err != nil {
		return err
	}
	for _, m := range req.Milestones {
		share, err := parseAmount("milestones.share", m.Share, true)
		if err != nil {
			return err
		}
		n.Milestones = append(n.Milestones, contracting.NewMilestone{Title: m.Title, Share: share})
	}
	t, err := s.deps.Contracting.CreateTender(c.Request().Context(), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, t)
}

// listTenders is GET /api/v1/tenders?before=&limit=: a page of tenders,
// newest first; the next page is before= the last id.
func (s *Server) listTenders(c *echo.Context) error {
	before, limit, err := queryPage(c, contracting.MaxTenderPage)
	if err != nil {
		return err
	}
	ts, err := s.deps.Contracting.Tenders(c.Request().Context(), before, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"tenders": ts})
}

func (s *Server) getTender(c *echo.Context) error {
	id, err := pathID(c, "id", "tender")
	if err != nil {
		return err
	}
	t, err := s.deps.Contracting.Tender(c.Request().Context(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (s *Server) editTender(c *echo.Context) error {
	id, err := pathID(c, "id", "tender")
	if err != nil {
		return err
	}
	var req struct {
		Title              *string `json:"title"`
		Scope              *string `json:"scope"`
		AcceptanceCriteria *string `json:"acceptance_criteria"`
		BudgetCap          *string `json:"budget_cap"`
		MinConfidence      *string `json:"min_confidence"`
		Reason             string  `json:"reason"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	e := contracting.TenderEdit{Title: req.Title, Scope: req.Scope, AcceptanceCriteria: req.AcceptanceCriteria, Reason: req.Reason}
	if req.BudgetCap != nil {
		v, err := parseAmount("budget_cap", *req.BudgetCap, true)
		if err != nil {
			return err
		}
		e.BudgetCap = &v
	}
	if req.MinConfidence != nil {
		v, err := parseAmount("min_confidence", *req.MinConfidence, true)
		if err != nil {
			return err
		}
		e.MinConfidence = &v
	}
	t, err := s.deps.Contracting.EditTender(c.Request().Context(), principal(c).AccountID, id, e)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

type bidFields struct {
	Organisation    string   `json:"organisation"`
	Price           string   `json:"price"`
	CompletionAt    string   `json:"completion_at"`
	MilestoneDates  []string `json:"milestone_dates"`
	MethodStatement string   `json:"method_statement"`
}

func (f bidFields) bid(orgRequired bool) (contracting.NewBid, error) {
	n := contracting.NewBid{MethodStatement: f.MethodStatement}
	var err error
	if f.Organisation != "" || orgRequired {
		if n.Organisation, err = parseID("organisation", f.Organisation); err != nil {
			return n, levee.Invalid("organisation", "organisation must be the id of the organisation you bid for")
		}
	}
	if n.Price, err = parseAmount("price", f.Price, true); err != nil {
		return n, err
	}
	if n.CompletionAt, err = parseTime("completion_at", f.CompletionAt, true); err != nil {
		return n, err
	}
	for _, d := range f.MilestoneDates {
		t, err := parseTime("milestone_dates", d, true)
		if err != nil {
			return n, err
		}
		n.MilestoneDates = append(n.MilestoneDates, t)
	}
	return n, nil
}

func (s *Server) submitBid(c *echo.Context) error {
	id, err := pathID(c, "id", "tender")
	if err != nil {
		return err
	}
	var req bidFields
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	n, err := req.bid(true)
	if err != nil {
		return err
	}
	b, err := s.deps.Contracting.SubmitBid(c.Request().Context(), principal(c), id, n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, b)
}

func (s *Server) listBids(c *echo.Context) error {
	id, err := pathID(c, "id", "tender")
	if err != nil {
		return err
	}
	bs, err := s.deps.Contracting.Bids(c.Request().Context(), principal(c), id)
	if err != nil {
		return err
	}
	// Each bid comes with its bidder's public track record.
	out := make([]bidWithRecord, len(bs))
	for i, b := range bs {
		out[i].Bid = b
		if tr, err := s.deps.Contracting.TrackRecord(c.Request().Context(), b.OrganisationID); err == nil {
			out[i].TrackRecord = &tr
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"bids": out})
}

func (s *Server) getBid(c *echo.Context) error {
	id, err := pathID(c, "id", "bid")
	if err != nil {
		return err
	}
	b, err := s.deps.Contracting.Bid(c.Request().Context(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

func (s *Server) reviseBid(c *echo.Context) error {
	id, err := pathID(c, "id", "bid")
	if err != nil {
		return err
	}
	var req bidFields
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	n, err := req.bid(false)
	if err != nil {
		return err
	}
	b, err := s.deps.Contracting.ReviseBid(c.Request().Context(), principal(c), id, n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

func (s *Server) withdrawBid(c *echo.Context) error {
	id, err := pathID(c, "id", "bid")
	if err != nil {
		return err
	}
	b, err := s.deps.Contracting.WithdrawBid(c.Request().Context(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

func (s *Server) closeBids(c *echo.Context) error {
	id, err := pathID(c, "id", "tender")
	if err != nil {
		return err
	}
	t, err := s.deps.Contracting.CloseBids(c.Request().Context(), principal(c).AccountID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (s *Server) awardTender(c *echo.Context) error {
	id, err := pathID(c, "id", "tender")
	if err != nil {
		return err
	}
	t, err := s.deps.Contracting.Award(c.Request().Context(), principal(c).AccountID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

// bidWithRecord is a bid as listed: the bid and its bidder's track record.
type bidWithRecord struct {
	contracting.Bid
	TrackRecord *contracting.TrackRecord `json:"track_record,omitempty"`
}
