package contracting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/input"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/pgtx"
)

// Markets is what contracting needs from the market engine.
type Markets interface {
	CreateMarket(ctx context.Context, n engine.NewMarket) (engine.Market, error)
	Snapshot(ctx context.Context, marketID int64) (*engine.Snapshot, error)
	Trades(ctx context.Context, marketID, beforeSeq int64, limit int) ([]market.Trade, error)
	VoidDecision(ctx context.Context, marketID int64) error
	Resolve(ctx context.Context, marketID int64, outcome int) error
	ExtendClose(ctx context.Context, marketID int64, until time.Time) error
	InvalidateCash(account int64)
}

// Options configure a Service.
type Options struct {
	Now    func() time.Time // the clock; time.Now when nil
	Logger *slog.Logger
}

// Service stores tenders, bids, awards, contracts and milestones, and moves
// their money through the ledger and the market engine.
type Service struct {
	db      *sqlx.DB
	markets Markets
	now     func() time.Time
	logger  *slog.Logger

	// serial serialises every state change (close, award, milestones,
	// edits) across every instance, so the steps that run in the engine's
	// own transactions cannot race.
	serial pgtx.Serial
}

// New returns a Service on db using markets for decision markets.
func New(db *sqlx.DB, markets Markets, opts Options) *Service {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Service{db: db, markets: markets, logger: opts.Logger, serial: pgtx.Serial{Key: pgtx.SerialContracting}}
	s.now = func() time.Time { return now().UTC().Truncate(time.Microsecond) }
	if s.logger == nil {
		s.logger = slog.Default()
	}
	return s
}

const tenderColumns = `id, budget_line_id, title, scope, district_ids, budget_cap, opens_at, closes_at, decision_at,
	min_confidence, twap_window_us, dispute_window_us, liquidity, acceptance_criteria, status, method, method_rationale, created_by, created_at`

// CreateTender opens a tender against a budget line. Errors: EINVALID (a
// field; budget_cap above the line's balance), ENOTFOUND (budget line).
func (s *Service) CreateTender(ctx context.Context, n NewTender) (TenderView, error) {
	now := s.now()
	if err := n.Validate(now); err != nil {
		return TenderView{}, err
	}
	var id int64
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		line, err := budgets.Line(ctx, tx, n.BudgetLine)
		if levee.ErrorCode(err) == levee.ENOTFOUND {
			return levee.Invalid("budget_line", "no budget line %d", n.BudgetLine)
		} else if err != nil {
			return fmt.Errorf("load budget line: %w", err)
		}
		bal := line.Balance
		if n.BudgetCap > bal {
			return levee.Invalid("budget_cap", "budget_cap %s is more than the budget line's balance of %s", n.BudgetCap, bal)
		}
		ids, err := accounts.DistrictsNamed(ctx, tx, n.Districts)
		if err != nil {
			return err
		}
		if len(ids) != len(n.Districts) {
			return levee.Invalid("districts", "unknown or repeated district in %v", n.Districts)
		}
		err = tx.GetContext(ctx, &id, `INSERT INTO tenders (budget_line_id, title, scope, district_ids, budget_cap, opens_at, closes_at,
			decision_at, min_confidence, twap_window_us, dispute_window_us, liquidity, acceptance_criteria, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
			n.BudgetLine, n.Title, n.Scope, pq.Array(ids), n.BudgetCap, n.OpensAt, n.ClosesAt, n.DecisionAt, n.MinConfidence,
			n.TWAPWindow.Microseconds(), n.DisputeWindow.Microseconds(), n.Liquidity, n.AcceptanceCriteria, n.CreatedBy)
		if err != nil {
			return fmt.Errorf("insert tender: %w", err)
		}
		for i, m := range n.Milestones {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tender_milestones (tender_id, n, title, share) VALUES ($1, $2, $3, $4)`,
				id, i+1, m.Title, m.Share); err != nil {
				return fmt.Errorf("insert milestone: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return TenderView{}, fmt.Errorf("create tender: %w", err)
	}
	return s.Tender(ctx, nil, id)
}

func getTender(ctx context.Context, q sqlx.QueryerContext, id int64, lock string) (Tender, error) {
	var t Tender
	err := sqlx.GetContext(ctx, q, &t, `SELECT `+tenderColumns+` FROM tenders WHERE id = $1 `+lock, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Tender{}, levee.Errorf(levee.ENOTFOUND, "no tender %d", id)
	} else if err != nil {
		return Tender{}, pgtx.Unavailable(fmt.Errorf("load tender %d: %w", id, err))
	}
	return t, nil
}

func milestonesOf(ctx context.Context, q sqlx.QueryerContext, tenderID int64) ([]Milestone, error) {
	ms := []Milestone{}
	if err := sqlx.SelectContext(ctx, q, &ms, `SELECT n, title, share FROM tender_milestones WHERE tender_id = $1 ORDER BY n`, tenderID); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("tender milestones: %w", err))
	}
	return ms, nil
}

// complete fills a tender's districts (from names, by id) and effective
// text.
func (s *Service) complete(t *Tender, as []Amendment, names map[int64]string) {
	t.Districts = []string{}
	for _, id := range slices.Sorted(slices.Values(t.DistrictIDs)) {
		if n, ok := names[id]; ok {
			t.Districts = append(t.Districts, n)
		}
	}
	for _, a := range as {
		for f, v := range a.Changes {
			switch f {
			case "title":
				t.Title = v
			case "scope":
				t.Scope = v
			case "acceptance_criteria":
				t.AcceptanceCriteria = v
			}
		}
	}
	t.fill(s.now())
}

// Tender returns a tender with the bids viewer may see (nil: anonymous).
// Errors: ENOTFOUND.
func (s *Service) Tender(ctx context.Context, viewer *accounts.Principal, id int64) (TenderView, error) {
	t, err := getTender(ctx, s.db, id, "")
	if err != nil {
		return TenderView{}, err
	}
	v := TenderView{Tender: t, Amendments: []Amendment{}}
	if err := s.db.SelectContext(ctx, &v.Amendments, `SELECT id, changes, reason, created_by, created_at
		FROM tender_amendments WHERE tender_id = $1 ORDER BY id`, id); err != nil {
		return TenderView{}, pgtx.Unavailable(fmt.Errorf("amendments: %w", err))
	}
	names, err := accounts.DistrictNames(ctx, s.db)
	if err != nil {
		return TenderView{}, err
	}
	s.complete(&v.Tender, v.Amendments, names)
	if v.Milestones, err = milestonesOf(ctx, s.db, id); err != nil {
		return TenderView{}, err
	}
	if v.Bids, err = s.Bids(ctx, viewer, id); err != nil {
		return TenderView{}, err
	}
	var award struct {
		Record   []byte `db:"record"`
		Contract *int64 `db:"contract"`
	}
	err = s.db.GetContext(ctx, &award, `SELECT a.record, c.id AS contract FROM tender_awards a
		LEFT JOIN contracts c ON c.tender_id = a.tender_id WHERE a.tender_id = $1`, id)
	if err == nil {
		raw := json.RawMessage(award.Record)
		v.Award, v.Contract = &raw, award.Contract
	} else if !errors.Is(err, sql.ErrNoRows) {
		return TenderView{}, pgtx.Unavailable(fmt.Errorf("award: %w", err))
	}
	return v, nil
}

// MaxTenderPage is the most tenders one page of the list holds.
const MaxTenderPage = 200

// Tenders lists up to limit tenders with ids below before (0: from the
// newest), newest first, without bids, in three queries however many.
func (s *Service) Tenders(ctx context.Context, before int64, limit int) ([]Tender, error) {
	ts := []Tender{}
	if err := s.db.SelectContext(ctx, &ts, `SELECT `+tenderColumns+` FROM tenders WHERE ($1::bigint = 0 OR id < $1::bigint) ORDER BY id DESC LIMIT $2`,
		before, min(max(limit, 1), MaxTenderPage)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list tenders: %w", err))
	}
	if len(ts) == 0 {
		return ts, nil
	}
	ids := make([]int64, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	var as []struct {
		Amendment
		Tender int64 `db:"tender_id"`
	}
	if err := s.db.SelectContext(ctx, &as, `SELECT id, tender_id, changes, reason, created_by, created_at FROM tender_amendments
		WHERE tender_id = ANY($1) ORDER BY id`, pq.Array(ids)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("amendments: %w", err))
	}
	byTender := map[int64][]Amendment{}
	for _, a := range as {
		byTender[a.Tender] = append(byTender[a.Tender], a.Amendment)
	}
	names, err := accounts.DistrictNames(ctx, s.db)
	if err != nil {
		return nil, err
	}
	for i := range ts {
		s.complete(&ts[i], byTender[ts[i].ID], names)
	}
	return ts, nil
}

// EditTender changes a tender: in place before its window opens, as a
// recorded amendment of its text while bidding, not at all afterwards.
// Errors: ENOTFOUND, EINVALID, ECONFLICT.
func (s *Service) EditTender(ctx context.Context, actor, id int64, e TenderEdit) (TenderView, error) {
	unlock, lerr := s.serial.Lock(ctx, s.db)
	if lerr != nil {
		return TenderView{}, lerr
	}
	defer unlock()
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		t, err := getTender(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		now := s.now()
		texts := map[string]*string{"title": e.Title, "scope": e.Scope, "acceptance_criteria": e.AcceptanceCriteria}
		limits := map[string][2]int{"title": {1, 200}, "scope": {0, 20000}, "acceptance_criteria": {0, 20000}}
		changes := jsonMap{}
		for f, v := range texts {
			if v != nil {
				if err := input.Length(f, *v, limits[f][0], limits[f][1]); err != nil {
					return err
				}
				changes[f] = *v
			}
		}
		if e.BudgetCap != nil && *e.BudgetCap <= 0 {
			return levee.Invalid("budget_cap", "budget_cap must be positive")
		}
		if e.MinConfidence != nil && (*e.MinConfidence < 0 || *e.MinConfidence > levee.Scale) {
			return levee.Invalid("min_confidence", "min_confidence must be from 0 to 1")
		}
		switch {
		case t.Status != StatusOpen || !now.Before(t.ClosesAt):
			return levee.Errorf(levee.ECONFLICT, "tender %d can no longer be changed: its bid window has closed", id)
		case now.Before(t.OpensAt):
			if e.BudgetCap != nil {
				var bal levee.Micros
				if bal, err = ledger.Balance(ctx, tx, ledger.BudgetLine(t.BudgetLineID)); err != nil {
					return err
				}
				if *e.BudgetCap > bal {
					return levee.Invalid("budget_cap", "budget_cap is more than the budget line's balance of %s", bal)
				}
			}
			_, err := tx.ExecContext(ctx, `UPDATE tenders SET title = coalesce($2, title), scope = coalesce($3, scope),
				acceptance_criteria = coalesce($4, acceptance_criteria), budget_cap = coalesce($5, budget_cap),
				min_confidence = coalesce($6, min_confidence) WHERE id = $1`,
				id, e.Title, e.Scope, e.AcceptanceCriteria, e.BudgetCap, e.MinConfidence)
			return err
		}
		if e.BudgetCap != nil || e.MinConfidence != nil {
			return levee.Errorf(levee.ECONFLICT, "budget_cap and min_confidence cannot change once bidding has opened")
		}
		if len(changes) == 0 {
			return levee.Invalid("body", "nothing to amend")
		}
		if err := input.Length("reason", e.Reason, 1, 2000); err != nil {
			return levee.Invalid("reason", "an amendment after the bid window opened needs a reason")
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO tender_amendments (tender_id, changes, reason, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5)`, id, changes, e.Reason, actor, now)
		return err
	})
	if err != nil {
		return TenderView{}, fmt.Errorf("edit tender %d: %w", id, err)
	}
	return s.Tender(ctx, nil, id)
}

const bidColumns = `b.id, b.tender_id, b.organisation_id, b.submitted_by, b.price, b.completion_at,
	b.milestone_dates, b.method_statement, b.status, b.market_id, b.created_at, b.updated_at`

// nameBids fills in the names of the bids' organisations.
func nameBids(ctx context.Context, q sqlx.QueryerContext, bs []Bid) error {
	return accounts.FillNames(ctx, q, bs, func(b *Bid) (int64, *string) { return b.OrganisationID, &b.Organisation })
}

// visibleBids is the sealing rule, in SQL: a bid is visible to its own
// organisation ($2) and the organisation's members (who act for the
// organisations $4) at any time, and to everyone else only once the
// tender's window has closed (withdrawn bids never).
const visibleBids = `(b.organisation_id = $2 OR b.organisation_id = ANY($4)
	OR (t.closes_at <= $3 AND b.status = 'active'))`

// Bids lists the bids of a tender that viewer may see: before the window
// closes only viewer's own organisations' bids, afterwards every active bid.
// Errors: ENOTFOUND.
func (s *Service) Bids(ctx context.Context, viewer *accounts.Principal, tenderID int64) ([]Bid, error) {
	var who int64
	if viewer != nil {
		who = viewer.AccountID
	}
	orgs, err := accounts.OrganisationIDs(ctx, s.db, who)
	if err != nil {
		return nil, fmt.Errorf("list bids: %w", err)
	}
	bs := []Bid{}
	err = s.db.SelectContext(ctx, &bs, `SELECT `+bidColumns+` FROM bids b JOIN tenders t ON t.id = b.tender_id
		WHERE b.tender_id = $1 AND `+visibleBids+` ORDER BY b.id`, tenderID, who, s.now(), pq.Array(orgs))
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list bids: %w", err))
	}
	if err := nameBids(ctx, s.db, bs); err != nil {
		return nil, fmt.Errorf("list bids: %w", err)
	}
	return bs, nil
}

// Bid returns one bid if viewer may see it. A sealed bid of someone else is
// ENOTFOUND, exactly like a bid that does not exist.
func (s *Service) Bid(ctx context.Context, viewer *accounts.Principal, id int64) (Bid, error) {
	var who int64
	if viewer != nil {
		who = viewer.AccountID
	}
	orgs, err := accounts.OrganisationIDs(ctx, s.db, who)
	if err != nil {
		return Bid{}, fmt.Errorf("load bid %d: %w", id, err)
	}
	var b Bid
	err = s.db.GetContext(ctx, &b, `SELECT `+bidColumns+` FROM bids b JOIN tenders t ON t.id = b.tender_id
		WHERE b.id = $1 AND `+visibleBids, id, who, s.now(), pq.Array(orgs))
	if errors.Is(err, sql.ErrNoRows) {
		return Bid{}, levee.Errorf(levee.ENOTFOUND, "no bid %d", id)
	} else if err != nil {
		return Bid{}, pgtx.Unavailable(fmt.Errorf("load bid %d: %w", id, err))
	}
	named := []Bid{b}
	if err := nameBids(ctx, s.db, named); err != nil {
		return Bid{}, fmt.Errorf("load bid %d: %w", id, err)
	}
	b = named[0]
	return b, nil
}

// actsFor checks that who may act for organisation org: org itself (an
// organisation with the contractor role) or a person who is its member.
func actsFor(ctx context.Context, q sqlx.QueryerContext, who *accounts.Principal, org int64) error {
	if who == nil {
		return levee.Errorf(levee.EUNAUTHORIZED, "sign in first")
	}
	ok, err := accounts.IsContractor(ctx, q, org)
	if err == nil && ok {
		ok, err = accounts.ActsFor(ctx, q, who.AccountID, org)
	}
	if err != nil {
		return fmt.Errorf("check membership: %w", err)
	}
	if !ok {
		return levee.Errorf(levee.EFORBIDDEN, "you cannot act for organisation %d: it is not a contractor organisation you belong to", org)
	}
	return nil
}

// SubmitBid records a sealed bid for an organisation. Errors: EINVALID,
// ENOTFOUND (tender), EFORBIDDEN (not acting for a contractor organisation),
// ECONFLICT (outside the window; the organisation already has a bid).
func (s *Service) SubmitBid(ctx context.Context, who *accounts.Principal, tenderID int64, n NewBid) (Bid, error) {
	unlock, lerr := s.serial.Lock(ctx, s.db)
	if lerr != nil {
		return Bid{}, lerr
	}
	defer unlock()
	var id int64
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		t, err := getTender(ctx, tx, tenderID, "FOR SHARE")
		if err != nil {
			return err
		}
		ms, err := milestonesOf(ctx, tx, tenderID)
		if err != nil {
			return err
		}
		if err := n.validate(&t, len(ms), s.now()); err != nil {
			return err
		}
		if err := actsFor(ctx, tx, who, n.Organisation); err != nil {
			return err
		}
		if err := inWindow(&t, s.now()); err != nil {
			return err
		}
		var exists bool
		if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM bids WHERE tender_id = $1 AND organisation_id = $2 AND status = 'active')`,
			tenderID, n.Organisation); err != nil {
			return err
		}
		if exists {
			return levee.Errorf(levee.ECONFLICT, "organisation %d already has a bid on tender %d; revise it instead", n.Organisation, tenderID)
		}
		now := s.now()
		return tx.GetContext(ctx, &id, `INSERT INTO bids (tender_id, organisation_id, submitted_by, price, completion_at, milestone_dates,
			method_statement, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id`,
			tenderID, n.Organisation, who.AccountID, n.Price, n.CompletionAt, timeList(n.MilestoneDates), n.MethodStatement, now)
	})
	if err != nil {
		return Bid{}, fmt.Errorf("bid on tender %d: %w", tenderID, err)
	}
	return s.Bid(ctx, who, id)
}

func inWindow(t *Tender, now time.Time) error {
	if t.Status != StatusOpen || !now.Before(t.ClosesAt) {
		return levee.Errorf(levee.ECONFLICT, "tender %d closed for bids at %s", t.ID, t.ClosesAt.UTC().Format(time.RFC3339))
	}
	if now.Before(t.OpensAt) {
		return levee.Errorf(levee.ECONFLICT, "tender %d takes bids from %s", t.ID, t.OpensAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// ownBid loads a bid for its organisation's update, checking who acts for it.
// Someone else's bid is ENOTFOUND, as it is sealed.
func (s *Service) ownBid(ctx context.Context, tx *sqlx.Tx, who *accounts.Principal, bidID int64) (Bid, Tender, error) {
	var b Bid
	err := tx.GetContext(ctx, &b, `SELECT `+bidColumns+` FROM bids b WHERE b.id = $1 FOR UPDATE`, bidID)
	if errors.Is(err, sql.ErrNoRows) {
		return Bid{}, Tender{}, levee.Errorf(levee.ENOTFOUND, "no bid %d", bidID)
	} else if err != nil {
		return Bid{}, Tender{}, fmt.Errorf("load bid: %w", err)
	}
	if err := actsFor(ctx, tx, who, b.OrganisationID); err != nil {
		return Bid{}, Tender{}, levee.Errorf(levee.ENOTFOUND, "no bid %d", bidID)
	}
	named := []Bid{b}
	if err := nameBids(ctx, tx, named); err != nil {
		return Bid{}, Tender{}, fmt.Errorf("load bid: %w", err)
	}
	b = named[0]
	t, err := getTender(ctx, tx, b.TenderID, "FOR SHARE")
	if err != nil {
		return Bid{}, Tender{}, err
	}
	if b.Status != BidActive {
		return Bid{}, Tender{}, levee.Errorf(levee.ECONFLICT, "bid %d was withdrawn", bidID)
	}
	return b, t, inWindow(&t, s.now())
}

// ReviseBid replaces a bid's contents while the window is open; the
// organisation cannot change. Errors: as SubmitBid.
func (s *Service) ReviseBid(ctx context.Context, who *accounts.Principal, bidID int64, n NewBid) (Bid, error) {
	unlock, lerr := s.serial.Lock(ctx, s.db)
	if lerr != nil {
		return Bid{}, lerr
	}
	defer unlock()
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		b, t, err := s.ownBid(ctx, tx, who, bidID)
		if err != nil {
			return err
		}
		if n.Organisation == 0 {
			n.Organisation = b.OrganisationID
		}
		if n.Organisation != b.OrganisationID {
			return levee.Invalid("organisation", "a bid cannot move to another organisation")
		}
		ms, err := milestonesOf(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		if err := n.validate(&t, len(ms), s.now()); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE bids SET price = $2, completion_at = $3, milestone_dates = $4, method_statement = $5,
			submitted_by = $6, updated_at = $7 WHERE id = $1`,
			bidID, n.Price, n.CompletionAt, timeList(n.MilestoneDates), n.MethodStatement, who.AccountID, s.now())
		return err
	})
	if err != nil {
		return Bid{}, fmt.Errorf("revise bid %d: %w", bidID, err)
	}
	return s.Bid(ctx, who, bidID)
}

// WithdrawBid withdraws a bid while the window is open. Errors: ENOTFOUND,
// EFORBIDDEN, ECONFLICT.
func (s *Service) WithdrawBid(ctx context.Context, who *accounts.Principal, bidID int64) (Bid, error) {
	unlock, lerr := s.serial.Lock(ctx, s.db)
	if lerr != nil {
		return Bid{}, lerr
	}
	defer unlock()
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, _, err := s.ownBid(ctx, tx, who, bidID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE bids SET status = 'withdrawn', updated_at = $2 WHERE id = $1`, bidID, s.now())
		return err
	})
	if err != nil {
		return Bid{}, fmt.Errorf("withdraw bid %d: %w", bidID, err)
	}
	return s.Bid(ctx, who, bidID)
}

// activeBids lists a tender's active bids, unsealed: for the service's own
// decisions, never for display before the window closes.
func activeBids(ctx context.Context, q sqlx.QueryerContext, tenderID int64) ([]Bid, error) {
	bs := []Bid{}
	err := sqlx.SelectContext(ctx, q, &bs, `SELECT `+bidColumns+` FROM bids b
		WHERE b.tender_id = $1 AND b.status = 'active' ORDER BY b.id`, tenderID)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("active bids: %w", err))
	}
	if err := nameBids(ctx, q, bs); err != nil {
		return nil, fmt.Errorf("active bids: %w", err)
	}
	return bs, nil
}

// SubmittedBid is a bid as its submitter's data export lists it.
type SubmittedBid struct {
	ID           int64        `json:"id,string" db:"id"`
	TenderID     int64        `json:"tender,string" db:"tender_id"`
	OrgID        int64        `json:"-" db:"organisation_id"`
	Organisation string       `json:"organisation" db:"-"`
	Price        levee.Micros `json:"price" db:"price"`
	Status       string       `json:"status" db:"status"`
	At           time.Time    `json:"at" db:"created_at"`
}

// BidsSubmittedBy returns the bids person account submitted for an
// organisation, oldest first.
func (s *Service) BidsSubmittedBy(ctx context.Context, account int64) ([]SubmittedBid, error) {
	bs := []SubmittedBid{}
	if err := s.db.SelectContext(ctx, &bs, `SELECT b.id, b.tender_id, b.price, b.status, b.created_at, b.organisation_id
		FROM bids b WHERE b.submitted_by = $1 ORDER BY b.id`, account); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("bids of %d: %w", account, err))
	}
	return bs, accounts.FillNames(ctx, s.db, bs, func(b *SubmittedBid) (int64, *string) { return b.OrgID, &b.Organisation })
}
