package web

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/outbox"
	"levee/settlement"
	"levee/subjects"
)

// The jury pages: a resident's jury duty, the public list of cases and each
// case with its draw, evidence, rounds and, for a seated juror, the ballot.
// They read through the Cases service with the signed-in principal, as the
// JSON API does, so votes stay hidden until their round's tally and
// evidence until a verdict; jury.js sends every action to the API. The
// ballot's salt is made and kept in the juror's browser: the server only
// ever sees the commitment until the reveal.

// errNoCases answers the jury pages on a node without settlement.
var errNoCases = levee.Errorf(levee.ENOTFOUND, "juries are not running on this node")

// caseLookup is what the pages need from settlement beyond the API's Cases:
// the newest case of a subject, to link a disputed market or milestone to
// it, and the rules, to state the bond before anyone disputes.
// *settlement.Service has both.
type caseLookup interface {
	CaseFor(ctx context.Context, subject string) (settlement.Case, error)
	Rules(kind string) settlement.Rules
}

// caseFor returns the newest case about subject, or nil if there is none
// (or this node cannot look it up: the page then simply has no link).
func (s *Server) caseFor(ctx context.Context, subject string) (*settlement.Case, error) {
	l, ok := s.deps.Cases.(caseLookup)
	if !ok {
		return nil, nil
	}
	k, err := l.CaseFor(ctx, subject)
	if levee.ErrorCode(err) == levee.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &k, nil
}

// disputeBond is the bond a dispute of kind takes.
func (s *Server) disputeBond(kind string) levee.Micros {
	if l, ok := s.deps.Cases.(caseLookup); ok {
		return l.Rules(kind).Bond
	}
	return settlement.DefaultRules()[kind].Bond
}

// subjectLink is where a case's subject lives in the pages.
type subjectLink struct {
	Href, Label string
}

// linkOf finds the page of a subject: "market:12" is a market page,
// "milestone:3/1" a milestone on its contract page; acts have no page yet.
func linkOf(subject string) subjectLink {
	kind, ref, _ := strings.Cut(subject, ":")
	switch kind {
	case "market":
		return subjectLink{Href: "/markets/" + ref, Label: "Market " + ref}
	case "milestone":
		if contract, n, ok := strings.Cut(ref, "/"); ok {
			return subjectLink{Href: "/contracts/" + contract + "#milestone-" + n, Label: "Milestone " + n + " of contract " + contract}
		}
	}
	return subjectLink{Label: subject}
}

// caseStatusLabels say each case status in words.
var caseStatusLabels = map[string]string{
	settlement.StatusEvidence:   "Evidence",
	settlement.StatusCommit:     "Voting: commit",
	settlement.StatusReveal:     "Voting: reveal",
	settlement.StatusAppealable: "Verdict, open to appeal",
	settlement.StatusFinal:      "Final",
	settlement.StatusSettled:    "Settled",
}

// caseRow is a case in a list, with its status in words.
type caseRow struct {
	settlement.CaseSummary
	StatusLabel string
}

func caseRows(cs []settlement.CaseSummary) []caseRow {
	out := make([]caseRow, len(cs))
	for i, c := range cs {
		out[i] = caseRow{CaseSummary: c, StatusLabel: caseStatusLabels[c.Status]}
	}
	return out
}

// juryPage is the data of /jury.
type juryPage struct {
	Cases         []caseRow
	Notifications []outbox.Notification
	OptedOut      bool
	Resident      bool       // only residents are drawn, so only they may opt out
	Mail          *emailForm // nil: the node offers no email
}

// pageJury is a resident's jury duty: the cases where they sit or are a
// party, what to do next in each, their notifications and the opt-out.
func (s *Server) pageJury(c *echo.Context) error {
	if ok, err := s.requireSignIn(c); !ok {
		return err
	}
	if s.deps.Cases == nil {
		return s.renderError(c, errNoCases)
	}
	ctx := c.Request().Context()
	who := principal(c)
	d := &juryPage{Resident: who.Has(accounts.RoleResident)}
	mine, err := s.deps.Cases.MyCases(ctx, who.AccountID)
	if err != nil {
		return s.renderError(c, err)
	}
	d.Cases = caseRows(mine)
	if d.Notifications, err = s.deps.Cases.Notifications(ctx, who.AccountID, 20); err != nil {
		return s.renderError(c, err)
	}
	if d.OptedOut, err = s.deps.Cases.OptedOut(ctx, who.AccountID); err != nil {
		return s.renderError(c, err)
	}
	if d.Mail, err = s.emailFormFor(ctx, who.AccountID); err != nil {
		return s.renderError(c, err)
	}
	p := newPage(c, "Jury duty", "jury")
	p.Scripts = []string{"jury.js"}
	p.Data = d
	return s.render(c, http.StatusOK, "jury", p)
}

// casesPage is the data of /cases.
type casesPage struct {
	Status   string
	Statuses []caseStatus // the filter's options
	Cases    []caseRow
}

type caseStatus struct{ Value, Label string }

// pageCases lists cases, newest first, optionally of one status.
func (s *Server) pageCases(c *echo.Context) error {
	if s.deps.Cases == nil {
		return s.renderError(c, errNoCases)
	}
	d := &casesPage{Status: c.QueryParam("status")}
	if !caseStatuses[d.Status] {
		return s.renderError(c, levee.Invalid("status", "status must be one of evidence, commit, reveal, appealable, final, settled"))
	}
	for _, st := range []string{settlement.StatusEvidence, settlement.StatusCommit, settlement.StatusReveal,
		settlement.StatusAppealable, settlement.StatusFinal, settlement.StatusSettled} {
		d.Statuses = append(d.Statuses, caseStatus{st, caseStatusLabels[st]})
	}
	before, err := listCursor(c)
	if err != nil {
		return s.renderError(c, err)
	}
	cs, err := s.deps.Cases.Cases(c.Request().Context(), d.Status, before, listPageSize+1)
	if err != nil {
		return s.renderError(c, err)
	}
	p := newPage(c, "Cases", "jury")
	d.Cases = caseRows(listPage(p, c, before, cs, func(k *settlement.CaseSummary) int64 { return k.ID }))
	p.Data = d
	return s.render(c, http.StatusOK, "cases", p)
}

// casePage is the data of one case's page.
type casePage struct {
	settlement.CaseView
	StatusLabel string
	Link        subjectLink
	Draw        settlement.DrawReport
	// Party says the caller is a party: they may add evidence and appeal.
	Party                        bool
	CanSubmitEvidence, CanAppeal bool
	// Ballot is set for a juror seated in the current round.
	Ballot *ballot
	// PoolNotes tell a signed-in person, by draw, whether their pseudonym
	// was in its pool: the check docs/juries.md promises every resident.
	PoolNotes map[int]string
}

// ballot is what the seated juror's part of the page shows.
type ballot struct {
	settlement.Seat
	// Step is what the juror can do now: commit (evidence and commit
	// periods; a commitment may be replaced), reveal, revealed (waiting for
	// the tally), missed (no commitment in time), or done (tallied).
	Step string
}

// pageCase shows one case as the caller may see it.
func (s *Server) pageCase(c *echo.Context) error {
	if s.deps.Cases == nil {
		return s.renderError(c, errNoCases)
	}
	ctx := c.Request().Context()
	id, err := pathID(c, "id", "case")
	if err != nil {
		return s.renderError(c, err)
	}
	who := principal(c)
	v, err := s.deps.Cases.Case(ctx, who, id)
	if err != nil {
		return s.renderError(c, err)
	}
	d := &casePage{CaseView: v, StatusLabel: caseStatusLabels[v.Status], Link: linkOf(v.Subject)}
	if d.Draw, err = s.deps.Cases.Draw(ctx, id); err != nil {
		return s.renderError(c, err)
	}
	if who != nil {
		d.Party = slices.ContainsFunc(v.Parties, func(p settlement.Party) bool { return p.Account == who.AccountID })
		if a, err := s.deps.Accounts.Get(ctx, who.AccountID); err == nil && a.Pseudonym != "" {
			d.PoolNotes = map[int]string{}
			for _, dr := range d.Draw.Draws {
				in := "is not"
				if slices.Contains(dr.Pool, a.Pseudonym) {
					in = "is"
				}
				d.PoolNotes[dr.N] = "Your pseudonym " + a.Pseudonym + " " + in + " in this pool."
			}
		}
	}
	// The service checks again; these only decide which forms to show.
	appealRound := false
	for _, r := range v.Rounds {
		if r.Round.Round == v.Round {
			appealRound = r.Why == "appeal"
		}
	}
	d.CanSubmitEvidence = d.Party && (v.Status == settlement.StatusEvidence || v.Status == settlement.StatusCommit && appealRound)
	d.CanAppeal = d.Party && v.Status == settlement.StatusAppealable && v.Appeals < v.MaxAppeals
	if v.Seat != nil {
		b := &ballot{Seat: *v.Seat}
		switch {
		case v.Status == settlement.StatusEvidence || v.Status == settlement.StatusCommit:
			b.Step = "commit"
		case v.Status == settlement.StatusReveal && b.Revealed:
			b.Step = "revealed"
		case v.Status == settlement.StatusReveal && b.Committed:
			b.Step = "reveal"
		case v.Status == settlement.StatusReveal:
			b.Step = "missed"
		default:
			b.Step = "done"
		}
		d.Ballot = b
	}
	title := "Case " + levee.FormatID(id)
	p := newPage(c, title, "jury")
	p.Scripts = []string{"jury.js"}
	p.Data = d
	return s.render(c, http.StatusOK, "case", p)
}

// proposalPanel is the market page's part about a closed market's outcome:
// the proposal, its case, and the forms the caller may use.
type proposalPanel struct {
	Proposal   *settlement.Proposal
	Case       *settlement.Case
	Bond       levee.Micros
	Verdicts   []string // for the treasurer's propose form
	CanPropose bool
	CanDispute bool
}

// proposalPanel reads what the market page shows about market id's outcome.
// trader says the caller holds a position in it. Whether the caller may
// dispute mirrors the service's rule (a resident of the market's district,
// a trader or the proposer), which checks again.
func (s *Server) proposalPanel(ctx context.Context, who *accounts.Principal, id int64, m marketView, districtID *int64, trader bool, now time.Time) (*proposalPanel, error) {
	if s.deps.Cases == nil || m.Status == "open" {
		return nil, nil
	}
	subject := subjects.Market(id)
	pp := &proposalPanel{Bond: s.disputeBond("market"), Verdicts: append(slices.Clone(m.Outcomes), settlement.VerdictVoid)}
	p, err := s.deps.Cases.ProposalFor(ctx, subject)
	switch {
	case err == nil:
		pp.Proposal = &p
	case levee.ErrorCode(err) != levee.ENOTFOUND:
		return nil, err
	}
	if pp.Case, err = s.caseFor(ctx, subject); err != nil {
		return nil, err
	}
	if pp.Proposal == nil {
		pp.CanPropose = m.Status == "closed" && who.Has(accounts.RoleTreasurer)
	} else if pp.Proposal.Status == "pending" && now.Before(pp.Proposal.DisputeUntil) && who != nil {
		pp.CanDispute = trader || who.AccountID == pp.Proposal.ProposedBy ||
			who.Has(accounts.RoleResident) && (districtID == nil || *districtID == who.DistrictID)
	}
	return pp, nil
}
