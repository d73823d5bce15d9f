package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/contracting"
	"levee/settlement"
	"levee/subjects"
)

// The tender and contract pages. They read through the Contracting service
// with the signed-in principal, exactly as the JSON API does, so a sealed bid
// reaches only its own organisation's members; tenders.js sends every change
// to the API.

// errNoContracting answers the tender pages on a node without the service.
var errNoContracting = levee.Errorf(levee.ENOTFOUND, "tenders are not running on this node")

// tendersPage is the data of the tender list.
type tendersPage struct {
	Tenders   []contracting.Tender
	Lines     []budgets.BudgetLine
	Districts []accounts.District
	// Defaults for the treasurer's datetime-local inputs.
	ClosesAt, DecisionAt string
}

// pageTenders lists tenders; a treasurer also gets the form to open one,
// which tenders.js sends to POST /api/v1/tenders.
func (s *Server) pageTenders(c *echo.Context) error {
	if s.deps.Contracting == nil {
		return s.renderError(c, errNoContracting)
	}
	ctx := c.Request().Context()
	before, err := listCursor(c)
	if err != nil {
		return s.renderError(c, err)
	}
	ts, err := s.deps.Contracting.Tenders(ctx, before, listPageSize+1)
	if err != nil {
		return s.renderError(c, err)
	}
	p := newPage(c, "Tenders", "tenders")
	ts = listPage(p, c, before, ts, func(t *contracting.Tender) int64 { return t.ID })
	p.Scripts = []string{"tenders.js"}
	d := &tendersPage{Tenders: ts}
	if p.IsTreasurer() {
		if s.deps.Budgets != nil {
			if d.Lines, err = s.deps.Budgets.BudgetLines(ctx); err != nil {
				return s.renderError(c, err)
			}
		}
		if d.Districts, err = s.deps.Accounts.Districts(ctx); err != nil {
			return s.renderError(c, err)
		}
		closes := time.Now().AddDate(0, 0, 14).Truncate(24 * time.Hour).Add(12 * time.Hour)
		d.ClosesAt = closes.Format("2006-01-02T15:04")
		d.DecisionAt = closes.AddDate(0, 0, 7).Format("2006-01-02T15:04")
	}
	p.Data = d
	return s.render(c, http.StatusOK, "tenders", p)
}

// tenderPage is the data of one tender's page.
type tenderPage struct {
	Tender contracting.TenderView
	// Sealed is true while the bid window has not closed: Bids then holds
	// only the caller's own organisations' bids (the store's rule).
	Sealed bool
	Bids   []bidRow
	Award  *awardView
	// Org is the organisation the bid form acts for, 0 if unknown.
	Org int64
	// What the caller may do here.
	CanBid, CanClose, CanAward bool
}

// bidRow is one bid as the tender page shows it, with its decision market.
type bidRow struct {
	contracting.Bid
	Market *marketView // nil before close
	Yes    levee.Micros
	Mine   bool
	Record *contracting.TrackRecord // the bidder's track record
}

// awardView is the published award record with the bids' names.
type awardView struct {
	contracting.AwardRecord
	Rows []awardRow
}

type awardRow struct {
	contracting.ScoredBid
	Name   string
	Winner bool
}

// pageTender shows a tender: its terms, the bids the caller may see (its own
// before close, all after), the forms the caller may use, and the award.
func (s *Server) pageTender(c *echo.Context) error {
	if s.deps.Contracting == nil {
		return s.renderError(c, errNoContracting)
	}
	ctx := c.Request().Context()
	id, err := pathID(c, "id", "tender")
	if err != nil {
		return s.renderError(c, err)
	}
	who := principal(c)
	tv, err := s.deps.Contracting.Tender(ctx, who, id)
	if err != nil {
		return s.renderError(c, err)
	}
	p := newPage(c, tv.Title, "tenders")
	p.Scripts = []string{"tenders.js"}
	d := &tenderPage{Tender: tv, Sealed: tv.Phase == "upcoming" || tv.Phase == "bidding"}
	names := map[int64]string{}
	now := time.Now()
	for _, b := range tv.Bids {
		row := bidRow{Bid: b}
		names[b.ID] = b.Organisation
		if tr, err := s.deps.Contracting.TrackRecord(ctx, b.OrganisationID); err == nil {
			row.Record = &tr
		}
		if who != nil && (b.OrganisationID == who.AccountID || b.SubmittedBy == who.AccountID) {
			row.Mine = true
		}
		if b.MarketID != nil {
			snap, err := s.deps.Markets.Snapshot(ctx, *b.MarketID)
			if err != nil {
				return s.renderError(c, err)
			}
			v := viewOf(&snap.Market, snap.Prices, now)
			row.Market = &v
			if len(v.Prices) > 0 {
				row.Yes = v.Prices[0]
			}
		}
		if d.Sealed {
			// Before close every bid the store returns is the caller's
			// organisation's own.
			row.Mine = true
			if b.Status == contracting.BidActive {
				d.Org = b.OrganisationID
			}
		}
		d.Bids = append(d.Bids, row)
	}
	if d.Org == 0 && who != nil && who.Kind == "organisation" && who.Has(accounts.RoleContractor) {
		d.Org = who.AccountID
	}
	if d.Org == 0 && who != nil && who.Kind == accounts.KindPerson {
		// A member of exactly one organisation bids for it.
		if orgs, err := s.deps.Accounts.OrganisationsOf(c.Request().Context(), who.AccountID); err == nil && len(orgs) == 1 {
			d.Org = orgs[0].ID
		}
	}
	if tv.Award != nil {
		var rec contracting.AwardRecord
		if err := json.Unmarshal(*tv.Award, &rec); err != nil {
			return s.renderError(c, fmt.Errorf("tender %d award record: %w", id, err))
		}
		av := &awardView{AwardRecord: rec}
		for _, sb := range rec.Bids {
			av.Rows = append(av.Rows, awardRow{ScoredBid: sb, Name: names[sb.Bid], Winner: rec.Winner != nil && *rec.Winner == sb.Bid})
		}
		d.Award = av
	}
	hasActive := false
	for _, b := range d.Bids {
		if b.Status == contracting.BidActive {
			hasActive = true
		}
	}
	d.CanBid = who != nil && tv.Phase == "bidding" && !hasActive && (who.Has(accounts.RoleContractor) || len(d.Bids) > 0)
	d.CanClose = p.IsTreasurer() && tv.Phase == "bids_closed"
	d.CanAward = p.IsTreasurer() && tv.Phase == "deciding"
	p.Data = d
	return s.render(c, http.StatusOK, "tender", p)
}

// pageBid answers a bid's address: the bid's tender page for those who may
// see the bid, and the not-found page, exactly like a missing bid, for
// anyone else while it is sealed.
func (s *Server) pageBid(c *echo.Context) error {
	if s.deps.Contracting == nil {
		return s.renderError(c, errNoContracting)
	}
	id, err := pathID(c, "id", "bid")
	if err != nil {
		return s.renderError(c, err)
	}
	b, err := s.deps.Contracting.Bid(c.Request().Context(), principal(c), id)
	if err != nil {
		return s.renderError(c, err)
	}
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/tenders/%d#bid-%d", b.TenderID, b.ID))
}

// contractPage is the data of one contract's page.
type contractPage struct {
	Contract   contracting.Contract
	Tender     contracting.TenderView
	Contractor string
	Paid       levee.Micros // released to the contractor so far
	// Cases are the juries' cases about disputed milestones, by milestone.
	Cases map[int]*settlement.Case
	// Bond is what a dispute takes from the disputer's cash.
	Bond levee.Micros
	// What the caller may do here (the service checks again).
	CanClaim, CanDispute bool
}

// pageContract shows a contract's milestones, the payments released, the
// claim and dispute forms the caller may use, and each disputed milestone's
// case: a jury, not a treasurer, decides a disputed claim.
func (s *Server) pageContract(c *echo.Context) error {
	if s.deps.Contracting == nil {
		return s.renderError(c, errNoContracting)
	}
	ctx := c.Request().Context()
	id, err := pathID(c, "id", "contract")
	if err != nil {
		return s.renderError(c, err)
	}
	k, err := s.deps.Contracting.Contract(ctx, id)
	if err != nil {
		return s.renderError(c, err)
	}
	who := principal(c)
	tv, err := s.deps.Contracting.Tender(ctx, who, k.TenderID)
	if err != nil {
		return s.renderError(c, err)
	}
	d := &contractPage{Contract: k, Tender: tv, Contractor: fmt.Sprintf("organisation %d", k.ContractorID)}
	if a, err := s.deps.Accounts.Get(ctx, k.ContractorID); err == nil {
		d.Contractor = a.Name
	}
	d.Cases, d.Bond = map[int]*settlement.Case{}, s.disputeBond("milestone")
	for _, m := range k.Milestones {
		if m.Status == contracting.MilestoneAccepted {
			d.Paid += m.Amount
		}
		if m.DisputedAt != nil && s.deps.Cases != nil {
			kase, err := s.caseFor(ctx, subjects.Milestone(k.ID, m.N))
			if err != nil {
				return s.renderError(c, err)
			}
			d.Cases[m.N] = kase
		}
	}
	p := newPage(c, "Contract for "+tv.Title, "tenders")
	p.Scripts = []string{"tenders.js"}
	active := k.Status == contracting.ContractActive
	// Membership is not listed, so who acts for whom is read from the bids:
	// the winning bid's submitter is on the contractor's side, another bid's
	// is a rival. The service checks again on every action.
	contractor, rival := who != nil && who.AccountID == k.ContractorID, false
	for _, b := range tv.Bids {
		if who == nil || (b.OrganisationID != who.AccountID && b.SubmittedBy != who.AccountID) {
			continue
		}
		if b.ID == k.BidID {
			contractor = true
		} else {
			rival = true
		}
	}
	d.CanClaim = active && who != nil && (contractor || who.Has(accounts.RoleContractor) && !rival)
	d.CanDispute = active && who != nil && !contractor && s.deps.Cases != nil
	p.Data = d
	return s.render(c, http.StatusOK, "contract", p)
}
