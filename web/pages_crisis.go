package web

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v5"

	"levee/accounts"
	"levee/budgets"
	"levee/crisis"
)

// The crisis pages: the emergency (its acts live, the steward's panel, the
// residents' petition), the neighbours' quorum, and a steward's public
// record. The banner on every page comes from render (page.Emergency) and
// emergency.js keeps it current.

// emergencyPage is the data of /emergency.
type emergencyPage struct {
	Current     *crisis.Emergency
	Past        []crisis.Emergency
	Charter     crisis.Charter
	Lines       []budgets.BudgetLine
	Contractors []accounts.Named
	Proposals   []crisis.Proposal // open reallocations the steward may approve
	// CanDeclare: a charter steward with no emergency active. CanAct: the
	// declaring steward while it lasts. CanPetition: a resident.
	CanDeclare, CanAct, CanPetition bool
}

func (s *Server) pageEmergency(c *echo.Context) error {
	ctx := c.Request().Context()
	p := newPage(c, "Emergency", "emergency")
	d := &emergencyPage{}
	var err error
	if d.Current, err = s.deps.Crisis.Current(ctx); err != nil {
		return s.renderError(c, err)
	}
	all, err := s.deps.Crisis.Emergencies(ctx, 0, crisis.MaxEmergencyPage)
	if err != nil {
		return s.renderError(c, err)
	}
	for _, e := range all {
		if !e.Active {
			d.Past = append(d.Past, e)
		}
	}
	if d.Charter, err = s.deps.Crisis.Charter(ctx); err != nil {
		return s.renderError(c, err)
	}
	who := p.User
	isCharterSteward := who.Has(accounts.RoleSteward) &&
		(len(d.Charter.Stewards) == 0 || slices.ContainsFunc(d.Charter.Stewards, func(n accounts.Named) bool { return n.ID == who.AccountID }))
	d.CanDeclare = isCharterSteward && d.Current == nil
	d.CanAct = d.Current != nil && who != nil && d.Current.StewardID == who.AccountID
	d.CanPetition = d.Current != nil && who.Has(accounts.RoleResident)
	if d.CanAct {
		if s.deps.Budgets != nil {
			if d.Lines, err = s.deps.Budgets.BudgetLines(ctx); err != nil {
				return s.renderError(c, err)
			}
		}
		if d.Contractors, err = s.deps.Accounts.Contractors(ctx); err != nil {
			return s.renderError(c, err)
		}
		ps, err := s.deps.Crisis.Proposals(ctx, "open", 0, crisis.MaxProposalPage)
		if err != nil {
			return s.renderError(c, err)
		}
		for _, pr := range ps {
			if pr.Kind == crisis.KindReallocation {
				d.Proposals = append(d.Proposals, pr)
			}
		}
	}
	p.Data = d
	return s.render(c, http.StatusOK, "emergency", p)
}

// quorumPage is the data of /quorum.
type quorumPage struct {
	Charter    crisis.Charter
	Proposals  []crisis.Proposal
	Lines      []budgets.BudgetLine
	CanPropose bool // treasurers propose reallocations here
}

func (s *Server) pageQuorum(c *echo.Context) error {
	ctx := c.Request().Context()
	p := newPage(c, "Neighbours' quorum", "quorum")
	d := &quorumPage{CanPropose: p.User.Has(accounts.RoleTreasurer)}
	var err error
	if d.Charter, err = s.deps.Crisis.Charter(ctx); err != nil {
		return s.renderError(c, err)
	}
	before, err := listCursor(c)
	if err != nil {
		return s.renderError(c, err)
	}
	ps, err := s.deps.Crisis.Proposals(ctx, "", before, listPageSize+1)
	if err != nil {
		return s.renderError(c, err)
	}
	d.Proposals = listPage(p, c, before, ps, func(p *crisis.Proposal) int64 { return p.ID })
	if d.CanPropose && s.deps.Budgets != nil {
		if d.Lines, err = s.deps.Budgets.BudgetLines(ctx); err != nil {
			return s.renderError(c, err)
		}
	}
	p.Data = d
	return s.render(c, http.StatusOK, "quorum", p)
}

func (s *Server) pageSteward(c *echo.Context) error {
	id, err := pathID(c, "id", "steward")
	if err != nil {
		return s.renderError(c, err)
	}
	r, err := s.deps.Crisis.Record(c.Request().Context(), id)
	if err != nil {
		return s.renderError(c, err)
	}
	p := newPage(c, "Steward "+r.Steward.Name, "emergency")
	p.Data = &r
	return s.render(c, http.StatusOK, "steward", p)
}

// incomingPage is the page of the neighbours' requests for the people who
// answer for this city.
type incomingPage struct {
	Inbox   crisis.Inbox
	CanVote bool
}

func (s *Server) pageIncoming(c *echo.Context) error {
	p := newPage(c, "Neighbours' requests", "quorum")
	in, err := s.deps.Crisis.Inbox(c.Request().Context())
	if err != nil {
		return s.renderError(c, err)
	}
	d := &incomingPage{Inbox: in}
	for _, r := range in.Voters {
		d.CanVote = d.CanVote || p.User.Has(r)
	}
	p.Data = d
	return s.render(c, http.StatusOK, "incoming", p)
}
