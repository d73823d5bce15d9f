package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/budgets"
)

// Budgets is what the web layer needs from the participatory budgets
// service (quadratic funding rounds and budget lines).
type Budgets interface {
	OpenRound(ctx context.Context, n budgets.NewRound) (budgets.Round, error)
	Rounds(ctx context.Context, before int64, limit int) ([]budgets.Round, error)
	Round(ctx context.Context, id int64) (budgets.RoundDetail, error)
	Propose(ctx context.Context, who *accounts.Principal, roundID int64, n budgets.NewProject) (budgets.Project, error)
	SetEligibility(ctx context.Context, actor, projectID int64, eligible bool, reason string) (budgets.Project, error)
	Contribute(ctx context.Context, who *accounts.Principal, projectID int64, amount levee.Micros, key string) (budgets.ContributionRecord, error)
	Finalize(ctx context.Context, actor, roundID int64) (budgets.RoundDetail, error)
	Explain(ctx context.Context, account, roundID int64) (budgets.ExplainView, error)
	BudgetLines(ctx context.Context) ([]budgets.BudgetLine, error)
}

func (s *Server) createRound(c *echo.Context) error {
	var req struct {
		Title            string `json:"title"`
		Pool             string `json:"pool"`
		CapShare         string `json:"cap_share"`
		EligibilityRules string `json:"eligibility_rules"`
		OpensAt          string `json:"opens_at"`
		ClosesAt         string `json:"closes_at"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	pool, err := parseAmount("pool", req.Pool, true)
	if err != nil {
		return err
	}
	capShare, err := parseAmount("cap_share", req.CapShare, false)
	if err != nil {
		return err
	}
	n := budgets.NewRound{Title: req.Title, Pool: pool, CapShare: capShare, EligibilityRules: req.EligibilityRules, CreatedBy: principal(c).AccountID}
	if req.OpensAt != "" {
		if n.OpensAt, err = time.Parse(time.RFC3339, req.OpensAt); err != nil {
			return levee.Invalid("opens_at", "opens_at must be an RFC 3339 time such as 2027-03-01T00:00:00Z")
		}
	}
	if req.ClosesAt == "" {
		return levee.Invalid("closes_at", "closes_at is required (RFC 3339, e.g. 2027-03-01T00:00:00Z)")
	}
	if n.ClosesAt, err = time.Parse(time.RFC3339, req.ClosesAt); err != nil {
		return levee.Invalid("closes_at", "closes_at must be an RFC 3339 time such as 2027-03-01T00:00:00Z")
	}
	r, err := s.deps.Budgets.OpenRound(c.Request().Context(), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

// listRounds is GET /api/v1/qf/rounds?before=&limit=: a page of rounds,
// newest first; the next page is before= the last id.
func (s *Server) listRounds(c *echo.Context) error {
	before, limit, err := queryPage(c, budgets.MaxRoundPage)
	if err != nil {
		return err
	}
	rs, err := s.deps.Budgets.Rounds(c.Request().Context(), before, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"rounds": rs})
}

func (s *Server) getRound(c *echo.Context) error {
	id, err := pathID(c, "id", "round")
	if err != nil {
		return err
	}
	d, err := s.deps.Budgets.Round(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) proposeProject(c *echo.Context) error {
	id, err := pathID(c, "id", "round")
	if err != nil {
		return err
	}
	var req struct {
		Title         string `json:"title"`
		Description   string `json:"description"`
		District      string `json:"district"`
		EstimatedCost string `json:"estimated_cost"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	cost, err := parseAmount("estimated_cost", req.EstimatedCost, true)
	if err != nil {
		return err
	}
	p, err := s.deps.Budgets.Propose(c.Request().Context(), principal(c), id,
		budgets.NewProject{Title: req.Title, Description: req.Description, District: req.District, EstimatedCost: cost})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

func (s *Server) setEligibility(c *echo.Context) error {
	id, err := pathID(c, "id", "project")
	if err != nil {
		return err
	}
	var req struct {
		Eligible *bool  `json:"eligible"`
		Reason   string `json:"reason"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Eligible == nil {
		return levee.Invalid("eligible", "eligible is required (true or false)")
	}
	p, err := s.deps.Budgets.SetEligibility(c.Request().Context(), principal(c).AccountID, id, *req.Eligible, req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) contribute(c *echo.Context) error {
	id, err := pathID(c, "id", "project")
	if err != nil {
		return err
	}
	var req struct {
		Amount string `json:"amount"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	amount, err := parseAmount("amount", req.Amount, true)
	if err != nil {
		return err
	}
	r, err := s.deps.Budgets.Contribute(c.Request().Context(), principal(c), id, amount, c.Request().Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

func (s *Server) finalizeRound(c *echo.Context) error {
	id, err := pathID(c, "id", "round")
	if err != nil {
		return err
	}
	d, err := s.deps.Budgets.Finalize(c.Request().Context(), principal(c).AccountID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// explainMatch shows the signed-in contributor what they added to each
// project's raw match.
func (s *Server) explainMatch(c *echo.Context) error {
	id, err := pathID(c, "id", "round")
	if err != nil {
		return err
	}
	v, err := s.deps.Budgets.Explain(c.Request().Context(), principal(c).AccountID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) listBudgetLines(c *echo.Context) error {
	ls, err := s.deps.Budgets.BudgetLines(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"budget_lines": ls})
}
