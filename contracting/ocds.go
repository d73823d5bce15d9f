package contracting

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"levee"
	"levee/ledger"
)

// OCDS export constants. See docs/contracting.md, "OCDS export".
const (
	// OCIDPrefix starts every ocid; the tender id follows. A publisher
	// registered with the Open Contracting Partnership would use its own
	// prefix (ocds-xxxxxx-); this one is stable and documented.
	OCIDPrefix = "ocds-levee-"
	// OCDSCurrency is the currency code of every amount: "XXX", the ISO 4217
	// code for "no currency", because Levee credits are not a legal tender.
	OCDSCurrency = "XXX"
	// OCDSVersion is the OCDS schema version of the packages.
	OCDSVersion = "1.1"
	// OCDSPublisher names the publisher of the packages.
	OCDSPublisher = "Levee"
	// OCDSBuyerID and OCDSBuyerName identify the city (this node): the buyer,
	// procuring entity and payer of every tender.
	OCDSBuyerID   = "levee-city"
	OCDSBuyerName = "Levee city treasury"
	// BidsExtension is the OCDS bids extension the packages use.
	BidsExtension = "https://raw.githubusercontent.com/open-contracting-extensions/ocds_bid_extension/v1.1.5/extension.json"
)

// OCID is a tender's Open Contracting ID.
func OCID(tenderID int64) string { return OCIDPrefix + levee.FormatID(tenderID) }

// OCDSValue is an amount with its currency.
type OCDSValue struct {
	Amount   json.Number `json:"amount"`
	Currency string      `json:"currency"`
}

func ocdsValue(m levee.Micros) *OCDSValue {
	return &OCDSValue{Amount: json.Number(m.String()), Currency: OCDSCurrency}
}

// OCDSPeriod is a span of time.
type OCDSPeriod struct {
	StartDate *time.Time `json:"startDate,omitempty"`
	EndDate   *time.Time `json:"endDate,omitempty"`
}

// OCDSOrgRef refers to a party.
type OCDSOrgRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// OCDSParty is an organisation taking part in the process.
type OCDSParty struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// OCDSItem is a line of work.
type OCDSItem struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Quantity    int    `json:"quantity"`
}

// OCDSMilestone is a milestone of a tender or contract.
type OCDSMilestone struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	Type        string     `json:"type"`
	Description string     `json:"description,omitempty"`
	DueDate     *time.Time `json:"dueDate,omitempty"`
	DateMet     *time.Time `json:"dateMet,omitempty"`
	Status      string     `json:"status,omitempty"`
}

// OCDSAmendment is a change of the tender's text while bidding.
type OCDSAmendment struct {
	ID          string    `json:"id"`
	Date        time.Time `json:"date"`
	Rationale   string    `json:"rationale"`
	Description string    `json:"description"`
}

// OCDSTender is the tender section of a release.
type OCDSTender struct {
	ID                string      `json:"id"`
	Title             string      `json:"title,omitempty"`
	Description       string      `json:"description,omitempty"`
	Status            string      `json:"status,omitempty"`
	ProcuringEntity   *OCDSOrgRef `json:"procuringEntity,omitempty"`
	Items             []OCDSItem  `json:"items,omitempty"`
	Value             *OCDSValue  `json:"value,omitempty"`
	ProcurementMethod string      `json:"procurementMethod,omitempty"`
	// ProcurementMethodRationale says why a direct award was not tendered.
	ProcurementMethodRationale string          `json:"procurementMethodRationale,omitempty"`
	MainProcurementCategory    string          `json:"mainProcurementCategory,omitempty"`
	AwardCriteria              string          `json:"awardCriteria,omitempty"`
	AwardCriteriaDetails       string          `json:"awardCriteriaDetails,omitempty"`
	EligibilityCriteria        string          `json:"eligibilityCriteria,omitempty"`
	TenderPeriod               *OCDSPeriod     `json:"tenderPeriod,omitempty"`
	AwardPeriod                *OCDSPeriod     `json:"awardPeriod,omitempty"`
	NumberOfTenderers          *int            `json:"numberOfTenderers,omitempty"`
	Tenderers                  []OCDSOrgRef    `json:"tenderers,omitempty"`
	Milestones                 []OCDSMilestone `json:"milestones,omitempty"`
	Amendments                 []OCDSAmendment `json:"amendments,omitempty"`
}

// OCDSForecast is Levee's extension of a bid: its decision market's
// forecast. Before the award YesPrice is the market's current yes-price;
// from the award on TWAP, Score and Qualifies are the published award inputs.
type OCDSForecast struct {
	Market    string       `json:"market"`
	YesPrice  *json.Number `json:"yesPrice,omitempty"`
	TWAP      *json.Number `json:"twap,omitempty"`
	Score     *json.Number `json:"score,omitempty"`
	Qualifies *bool        `json:"qualifies,omitempty"`
}

// OCDSBid is one bid in the bids extension's details.
type OCDSBid struct {
	ID        string        `json:"id"`
	Date      time.Time     `json:"date"`
	Status    string        `json:"status"`
	Tenderers []OCDSOrgRef  `json:"tenderers"`
	Value     *OCDSValue    `json:"value"`
	Forecast  *OCDSForecast `json:"forecast,omitempty"`
}

// OCDSBids is the bids extension's top-level object.
type OCDSBids struct {
	Details []OCDSBid `json:"details"`
}

// OCDSAward is the award of a tender.
type OCDSAward struct {
	ID          string       `json:"id"`
	Title       string       `json:"title,omitempty"`
	Description string       `json:"description,omitempty"`
	Status      string       `json:"status,omitempty"`
	Date        *time.Time   `json:"date,omitempty"`
	Value       *OCDSValue   `json:"value,omitempty"`
	Suppliers   []OCDSOrgRef `json:"suppliers,omitempty"`
	RelatedBids []string     `json:"relatedBids,omitempty"`
}

// OCDSTransaction is one payment out of escrow.
type OCDSTransaction struct {
	ID    string     `json:"id"`
	Date  time.Time  `json:"date"`
	Value *OCDSValue `json:"value"`
	Payer OCDSOrgRef `json:"payer"`
	Payee OCDSOrgRef `json:"payee"`
}

// OCDSImplementation is what happened under a contract.
type OCDSImplementation struct {
	Milestones   []OCDSMilestone   `json:"milestones,omitempty"`
	Transactions []OCDSTransaction `json:"transactions,omitempty"`
}

// OCDSContract is the contract of an awarded tender.
type OCDSContract struct {
	ID             string              `json:"id"`
	AwardID        string              `json:"awardID"`
	Status         string              `json:"status,omitempty"`
	Description    string              `json:"description,omitempty"` // "completed" or "failed" once terminated
	Period         *OCDSPeriod         `json:"period,omitempty"`
	Value          *OCDSValue          `json:"value,omitempty"`
	DateSigned     *time.Time          `json:"dateSigned,omitempty"`
	Implementation *OCDSImplementation `json:"implementation,omitempty"`
	RelatedBids    []string            `json:"relatedBids,omitempty"`
}

// OCDSRelease is one OCDS release (or a compiled release).
type OCDSRelease struct {
	OCID           string         `json:"ocid"`
	ID             string         `json:"id"`
	Date           time.Time      `json:"date"`
	Tag            []string       `json:"tag"`
	InitiationType string         `json:"initiationType"`
	Language       string         `json:"language,omitempty"`
	Parties        []OCDSParty    `json:"parties,omitempty"`
	Buyer          *OCDSOrgRef    `json:"buyer,omitempty"`
	Tender         *OCDSTender    `json:"tender,omitempty"`
	Bids           *OCDSBids      `json:"bids,omitempty"`
	Awards         []OCDSAward    `json:"awards,omitempty"`
	Contracts      []OCDSContract `json:"contracts,omitempty"`
}

// OCDSPublisherInfo names a package's publisher.
type OCDSPublisherInfo struct {
	Name string `json:"name"`
}

// ReleasePackage is an OCDS release package.
type ReleasePackage struct {
	URI           string            `json:"uri"`
	Version       string            `json:"version"`
	Extensions    []string          `json:"extensions"`
	PublishedDate time.Time         `json:"publishedDate"`
	Publisher     OCDSPublisherInfo `json:"publisher"`
	Releases      []OCDSRelease     `json:"releases"`
}

// OCDSRecord is the record of one contracting process: every release and
// the compiled current state.
type OCDSRecord struct {
	OCID            string        `json:"ocid"`
	Releases        []OCDSRelease `json:"releases"`
	CompiledRelease OCDSRelease   `json:"compiledRelease"`
}

// RecordPackage is an OCDS record package.
type RecordPackage struct {
	URI           string            `json:"uri"`
	Version       string            `json:"version"`
	Extensions    []string          `json:"extensions"`
	PublishedDate time.Time         `json:"publishedDate"`
	Publisher     OCDSPublisherInfo `json:"publisher"`
	Records       []OCDSRecord      `json:"records"`
}

var ocdsBuyer = OCDSOrgRef{ID: OCDSBuyerID, Name: OCDSBuyerName}

func orgPartyID(org int64) string { return "levee-org-" + levee.FormatID(org) }

func ptime(t time.Time) *time.Time { t = t.UTC(); return &t }

func pnum(m levee.Micros) *json.Number { n := json.Number(m.String()); return &n }

// ocdsTenderStatus maps a tender's phase to the OCDS tenderStatus codelist.
func ocdsTenderStatus(phase string) string {
	switch phase {
	case "upcoming":
		return "planned"
	case StatusAwarded:
		return "complete"
	case StatusUnsuccessful:
		return "unsuccessful"
	}
	return "active" // bidding, and evaluation until the award
}

// ocdsReleases builds a tender's releases (oldest first) and its compiled
// release. Bids come only from the sealed read (Tender with an anonymous
// viewer), and only once the bid window has closed.
func (s *Service) ocdsReleases(ctx context.Context, tenderID int64) ([]OCDSRelease, OCDSRelease, error) {
	tv, err := s.Tender(ctx, nil, tenderID)
	if err != nil {
		return nil, OCDSRelease{}, err
	}
	now := s.now()
	ocid := OCID(tenderID)
	rel := func(id string, at time.Time, tag ...string) OCDSRelease {
		return OCDSRelease{OCID: ocid, ID: ocid + "-" + id, Date: at.UTC(), Tag: tag, InitiationType: "tender", Language: "en"}
	}
	buyerParty := OCDSParty{ID: OCDSBuyerID, Name: OCDSBuyerName, Roles: []string{"buyer", "procuringEntity", "payer"}}

	tender := OCDSTender{ID: levee.FormatID(tv.ID), Title: tv.Title, Description: tv.Scope, Status: ocdsTenderStatus(tv.Phase),
		ProcuringEntity: &ocdsBuyer, Items: []OCDSItem{{ID: "1", Description: tv.Title, Quantity: 1}},
		Value: ocdsValue(tv.BudgetCap), ProcurementMethod: "open", MainProcurementCategory: "works",
		AwardCriteria: "ratedCriteria", AwardCriteriaDetails: Rule, EligibilityCriteria: tv.AcceptanceCriteria,
		TenderPeriod: &OCDSPeriod{StartDate: ptime(tv.OpensAt), EndDate: ptime(tv.ClosesAt)},
		AwardPeriod:  &OCDSPeriod{StartDate: ptime(tv.DecisionAt)}}
	if tv.Method == "limited" {
		// A direct award under emergency powers: no competition, no
		// forecast, the emergency as its rationale.
		tender.ProcurementMethod, tender.ProcurementMethodRationale = "limited", tv.MethodRationale
		tender.AwardCriteria, tender.AwardCriteriaDetails = "", ""
	}
	for _, m := range tv.Milestones {
		tender.Milestones = append(tender.Milestones, OCDSMilestone{ID: levee.FormatID(int64(m.N)), Title: m.Title, Type: "delivery",
			Description: "share " + m.Share.String() + " of the price", Status: "scheduled"})
	}
	first := rel("tender", tv.CreatedAt, "tender")
	first.Parties, first.Buyer = []OCDSParty{buyerParty}, &ocdsBuyer
	ft := tender
	ft.Status, ft.Amendments = "active", nil
	if tv.CreatedAt.Before(tv.OpensAt) {
		ft.Status = "planned"
	}
	first.Tender = &ft
	releases := []OCDSRelease{first}
	for _, a := range tv.Amendments {
		desc, _ := json.Marshal(a.Changes)
		oa := OCDSAmendment{ID: levee.FormatID(a.ID), Date: a.CreatedAt.UTC(), Rationale: a.Reason, Description: "changed: " + string(desc)}
		tender.Amendments = append(tender.Amendments, oa)
		r := rel("amendment-"+levee.FormatID(a.ID), a.CreatedAt, "tenderAmendment")
		r.Tender = &OCDSTender{ID: tender.ID, Amendments: []OCDSAmendment{oa}}
		releases = append(releases, r)
	}
	compiled := rel("compiled", tv.CreatedAt, "compiled")
	compiled.Parties, compiled.Buyer, compiled.Tender = []OCDSParty{buyerParty}, &ocdsBuyer, &tender

	// Sealed: nothing about bids before the window closes. tv.Bids comes
	// from the sealed SQL read as an anonymous viewer, which agrees.
	if now.Before(tv.ClosesAt) {
		return sortReleases(releases), finishCompiled(compiled, releases), nil
	}
	var rec *AwardRecord
	if tv.Award != nil {
		rec = &AwardRecord{}
		if err := json.Unmarshal(*tv.Award, rec); err != nil {
			return nil, OCDSRelease{}, fmt.Errorf("ocds tender %d: award record: %w", tenderID, err)
		}
	}
	scored := map[int64]ScoredBid{}
	if rec != nil {
		for _, sb := range rec.Bids {
			scored[sb.Bid] = sb
		}
	}
	names := map[int64]string{}
	bids := &OCDSBids{Details: []OCDSBid{}}
	parties := []OCDSParty{buyerParty}
	var tenderers []OCDSOrgRef
	for _, b := range tv.Bids {
		ref := OCDSOrgRef{ID: orgPartyID(b.OrganisationID), Name: b.Organisation}
		names[b.OrganisationID] = b.Organisation
		tenderers = append(tenderers, ref)
		ob := OCDSBid{ID: levee.FormatID(b.ID), Date: b.UpdatedAt.UTC(), Status: "valid", Tenderers: []OCDSOrgRef{ref}, Value: ocdsValue(b.Price)}
		if b.MarketID != nil {
			f := &OCDSForecast{Market: levee.FormatID(*b.MarketID)}
			if sb, ok := scored[b.ID]; ok {
				q := sb.Qualifies
				f.TWAP, f.Qualifies = pnum(sb.TWAP), &q
				if sb.Score != nil {
					f.Score = pnum(*sb.Score)
				}
			} else if snap, err := s.markets.Snapshot(ctx, *b.MarketID); err == nil && len(snap.Prices) > yesOutcome {
				f.YesPrice = pnum(snap.Prices[yesOutcome])
			} else if err != nil {
				return nil, OCDSRelease{}, fmt.Errorf("ocds tender %d: market %d: %w", tenderID, *b.MarketID, err)
			}
			ob.Forecast = f
		}
		bids.Details = append(bids.Details, ob)
	}
	n := len(tenderers)
	tender.NumberOfTenderers, tender.Tenderers = &n, tenderers
	closed := rel("bids", tv.ClosesAt, "tenderUpdate")
	closed.Tender = &OCDSTender{ID: tender.ID, Status: "active", NumberOfTenderers: &n, Tenderers: tenderers}
	closed.Bids = bids // with the forecasts as of this export
	partyByOrg := map[int64]int{}
	for _, b := range tv.Bids {
		partyByOrg[b.OrganisationID] = len(parties)
		parties = append(parties, OCDSParty{ID: orgPartyID(b.OrganisationID), Name: b.Organisation, Roles: []string{"tenderer"}})
	}
	closed.Parties = parties
	releases = append(releases, closed)
	compiled.Bids = bids

	if rec != nil {
		ar := rel("award", rec.DecidedAt, "tenderUpdate")
		ar.Tender = &OCDSTender{ID: tender.ID, Status: ocdsTenderStatus(rec.Result)}
		ar.Bids = bids
		if rec.Result == StatusAwarded && rec.Winner != nil && rec.Contract != nil {
			c, err := s.Contract(ctx, *rec.Contract)
			if err != nil {
				return nil, OCDSRelease{}, fmt.Errorf("ocds tender %d: %w", tenderID, err)
			}
			supplier := OCDSOrgRef{ID: orgPartyID(c.ContractorID), Name: names[c.ContractorID]}
			if i, ok := partyByOrg[c.ContractorID]; ok {
				parties[i].Roles = append(parties[i].Roles, "supplier", "payee")
			}
			award := OCDSAward{ID: "award-" + levee.FormatID(tenderID), Title: "Award of tender " + levee.FormatID(tenderID), Status: "active",
				Date: ptime(rec.DecidedAt), Value: ocdsValue(c.Price), Suppliers: []OCDSOrgRef{supplier},
				RelatedBids: []string{levee.FormatID(*rec.Winner)}}
			ar.Tag = []string{"award", "contract"}
			ar.Parties, ar.Awards = parties, []OCDSAward{award}
			oc, payments, err := s.ocdsContract(ctx, &c, award.ID, supplier)
			if err != nil {
				return nil, OCDSRelease{}, fmt.Errorf("ocds tender %d: %w", tenderID, err)
			}
			signed := oc
			signed.Status, signed.Description, signed.Implementation = "active", "", nil
			ar.Contracts = []OCDSContract{signed}
			releases = append(releases, ar)
			for _, p := range payments {
				r := rel("payment-"+p.tx.ID, p.tx.Date, "implementation")
				r.Contracts = []OCDSContract{{ID: oc.ID, AwardID: oc.AwardID,
					Implementation: &OCDSImplementation{Milestones: []OCDSMilestone{p.milestone}, Transactions: []OCDSTransaction{p.tx}}}}
				releases = append(releases, r)
			}
			if c.SettledAt != nil {
				r := rel("settled", *c.SettledAt, "contractTermination")
				r.Contracts = []OCDSContract{{ID: oc.ID, AwardID: oc.AwardID, Status: oc.Status, Description: oc.Description}}
				releases = append(releases, r)
			}
			compiled.Awards, compiled.Contracts = []OCDSAward{award}, []OCDSContract{oc}
		} else {
			releases = append(releases, ar)
		}
	}
	compiled.Parties = parties
	return sortReleases(releases), finishCompiled(compiled, releases), nil
}

// payment is one escrow release and the milestone it paid.
type payment struct {
	tx        OCDSTransaction
	milestone OCDSMilestone
}

// ocdsContract maps a contract, with one transaction per escrow release (the
// milestone_payment ledger entries, dated by the ledger).
func (s *Service) ocdsContract(ctx context.Context, c *Contract, awardID string, supplier OCDSOrgRef) (OCDSContract, []payment, error) {
	oc := OCDSContract{ID: levee.FormatID(c.ID), AwardID: awardID, Status: "active", Value: ocdsValue(c.Price),
		Period:      &OCDSPeriod{StartDate: ptime(c.CreatedAt), EndDate: ptime(c.CompletionAt)},
		DateSigned:  ptime(c.CreatedAt),
		RelatedBids: []string{levee.FormatID(c.BidID)}, Implementation: &OCDSImplementation{}}
	if c.Status != ContractActive {
		oc.Status, oc.Description = "terminated", c.Status
	}
	var seqs []int64
	for _, m := range c.Milestones {
		if m.PaidSeq != nil {
			seqs = append(seqs, *m.PaidSeq)
		}
	}
	at := map[int64]time.Time{}
	if len(seqs) > 0 {
		var err error
		if at, err = ledger.EntryTimes(ctx, s.db, seqs); err != nil {
			return OCDSContract{}, nil, fmt.Errorf("payment entries: %w", err)
		}
	}
	var pays []payment
	for _, m := range c.Milestones {
		om := OCDSMilestone{ID: levee.FormatID(int64(m.N)), Title: m.Title, Type: "delivery", DueDate: ptime(m.DueAt), Status: "scheduled"}
		switch {
		case m.Status == MilestoneAccepted && m.PaidSeq != nil:
			om.Status, om.DateMet = "met", ptime(at[*m.PaidSeq])
			pays = append(pays, payment{tx: OCDSTransaction{ID: "ledger-" + levee.FormatID(*m.PaidSeq), Date: at[*m.PaidSeq].UTC(), Value: ocdsValue(m.Amount),
				Payer: ocdsBuyer, Payee: supplier}, milestone: om})
		case m.Status == MilestoneAccepted:
			om.Status, om.DateMet = "met", m.AcceptedAt
		case c.Status == ContractFailed:
			om.Status = "notMet"
		}
		oc.Implementation.Milestones = append(oc.Implementation.Milestones, om)
	}
	for _, p := range pays {
		oc.Implementation.Transactions = append(oc.Implementation.Transactions, p.tx)
	}
	return oc, pays, nil
}

func sortReleases(rs []OCDSRelease) []OCDSRelease {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Date.Before(rs[j].Date) })
	return rs
}

// finishCompiled dates the compiled release by the newest release.
func finishCompiled(c OCDSRelease, rs []OCDSRelease) OCDSRelease {
	for _, r := range rs {
		if r.Date.After(c.Date) {
			c.Date = r.Date
		}
	}
	return c
}

// OCDSReleasePackage exports a tender as an OCDS 1.1 release package whose
// uri is uri. Bids appear only once the bid window has closed. Errors:
// ENOTFOUND.
func (s *Service) OCDSReleasePackage(ctx context.Context, tenderID int64, uri string) (ReleasePackage, error) {
	rs, compiled, err := s.ocdsReleases(ctx, tenderID)
	if err != nil {
		return ReleasePackage{}, err
	}
	return ReleasePackage{URI: uri, Version: OCDSVersion, Extensions: []string{BidsExtension}, PublishedDate: compiled.Date,
		Publisher: OCDSPublisherInfo{Name: OCDSPublisher}, Releases: rs}, nil
}

// OCDSRecordPackage exports a tender as an OCDS 1.1 record package: every
// release embedded, and the compiled release. Errors: ENOTFOUND.
func (s *Service) OCDSRecordPackage(ctx context.Context, tenderID int64, uri string) (RecordPackage, error) {
	rs, compiled, err := s.ocdsReleases(ctx, tenderID)
	if err != nil {
		return RecordPackage{}, err
	}
	return RecordPackage{URI: uri, Version: OCDSVersion, Extensions: []string{BidsExtension}, PublishedDate: compiled.Date,
		Publisher: OCDSPublisherInfo{Name: OCDSPublisher},
		Records:   []OCDSRecord{{OCID: OCID(tenderID), Releases: rs, CompiledRelease: compiled}}}, nil
}
