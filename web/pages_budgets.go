package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/budgets"
)

// The quadratic funding pages. They read through the Budgets service (the
// same calls the JSON API makes); budgets.js sends every change to the API.

// errNoBudgets answers the budget pages on a node without the service.
var errNoBudgets = levee.Errorf(levee.ENOTFOUND, "participatory budgets are not running on this node")

// roundsPage is the data of the rounds list.
type roundsPage struct {
	Rounds   []budgets.Round
	ClosesAt string // default for the treasurer's datetime-local input
}

// pageRounds lists the quadratic funding rounds; a treasurer also gets the
// form to open one, which budgets.js sends to POST /api/v1/qf/rounds.
func (s *Server) pageRounds(c *echo.Context) error {
	if s.deps.Budgets == nil {
		return s.renderError(c, errNoBudgets)
	}
	before, err := listCursor(c)
	if err != nil {
		return s.renderError(c, err)
	}
	rs, err := s.deps.Budgets.Rounds(c.Request().Context(), before, listPageSize+1)
	if err != nil {
		return s.renderError(c, err)
	}
	closes := time.Now().AddDate(0, 0, 14).Truncate(24 * time.Hour).Add(12 * time.Hour)
	p := newPage(c, "Budgets", "rounds")
	rs = listPage(p, c, before, rs, func(r *budgets.Round) int64 { return r.ID })
	p.Scripts = []string{"budgets.js"}
	p.Data = &roundsPage{Rounds: rs, ClosesAt: closes.Format("2006-01-02T15:04")}
	return s.render(c, http.StatusOK, "rounds", p)
}

// roundPage is the data of one round's page.
type roundPage struct {
	Round     budgets.RoundDetail
	Cap       levee.Micros // the per-project cap, 0 for none
	Projects  []projectRow
	Results   []resultRow
	Districts []accounts.District
	// Mine is what the signed-in caller contributed, per project; Explain
	// is set once the round is final.
	Explain []explainRow
	// What the caller may do here.
	CanPropose, CanContribute, CanDecide, CanFinalize bool
}

// projectRow is one project as the round page shows it.
type projectRow struct {
	budgets.Project
	Mine levee.Micros // the caller's contributions so far
}

// Eligibility is "eligible", "ineligible" or "pending" (not decided yet).
func (p *projectRow) Eligibility() string {
	switch {
	case p.Eligible == nil:
		return "pending"
	case *p.Eligible:
		return "eligible"
	}
	return "ineligible"
}

type resultRow struct {
	budgets.Result
	District string
}

// Funded is what the project's budget line received.
func (r *resultRow) Funded() levee.Micros { return r.Contributed + r.Match }

type explainRow struct {
	budgets.Explain
	Title string
	Match levee.Micros // the project's match
}

// pageRound shows one round: rules, projects, the forms the caller may use,
// and once final the results and the caller's "explain my match".
func (s *Server) pageRound(c *echo.Context) error {
	if s.deps.Budgets == nil {
		return s.renderError(c, errNoBudgets)
	}
	ctx := c.Request().Context()
	id, err := pathID(c, "id", "round")
	if err != nil {
		return s.renderError(c, err)
	}
	r, err := s.deps.Budgets.Round(ctx, id)
	if err != nil {
		return s.renderError(c, err)
	}
	p := newPage(c, r.Title, "rounds")
	p.Scripts = []string{"budgets.js"}
	d := &roundPage{Round: r}
	if r.CapShare != nil {
		d.Cap = budgets.CapOf(r.Pool, *r.CapShare)
	}
	mine := map[int64]budgets.Explain{}
	if pr := principal(c); pr != nil {
		ex, err := s.deps.Budgets.Explain(ctx, pr.AccountID, id)
		if err != nil {
			return s.renderError(c, err)
		}
		for _, e := range ex.Projects {
			mine[e.Project] = e
		}
	}
	titles := map[int64]string{}
	districts := map[int64]string{}
	for _, pj := range r.Projects {
		d.Projects = append(d.Projects, projectRow{Project: pj, Mine: mine[pj.ID].Contributed})
		titles[pj.ID], districts[pj.ID] = pj.Title, pj.District
	}
	matches := map[int64]levee.Micros{}
	for _, res := range r.Results {
		d.Results = append(d.Results, resultRow{Result: res, District: districts[res.ProjectID]})
		matches[res.ProjectID] = res.Match
	}
	if r.Phase == "final" {
		for _, pj := range r.Projects {
			if e, ok := mine[pj.ID]; ok {
				d.Explain = append(d.Explain, explainRow{Explain: e, Title: titles[pj.ID], Match: matches[pj.ID]})
			}
		}
	}
	open := r.Phase == "upcoming" || r.Phase == "contributing"
	d.CanPropose = p.IsResident() && open
	d.CanContribute = p.IsResident() && r.Phase == "contributing"
	d.CanDecide = p.IsTreasurer() && r.Phase != "final"
	d.CanFinalize = p.IsTreasurer() && r.Phase == "closed"
	if d.CanPropose {
		if d.Districts, err = s.deps.Accounts.Districts(ctx); err != nil {
			return s.renderError(c, err)
		}
	}
	p.Data = d
	return s.render(c, http.StatusOK, "round", p)
}
