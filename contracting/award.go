package contracting

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/pgtx"
)

// AwardRecord is the published decision of a tender: its rule, inputs and
// result.
type AwardRecord struct {
	Tender        int64         `json:"tender,string"`
	Rule          string        `json:"rule"`
	WindowFrom    time.Time     `json:"twap_from"`
	WindowTo      time.Time     `json:"twap_to"`
	MinConfidence levee.Micros  `json:"min_confidence"`
	Bids          []ScoredBid   `json:"bids"`
	Result        string        `json:"result"` // awarded or unsuccessful
	Winner        *int64        `json:"winner,string,omitempty"`
	Contract      *int64        `json:"contract,string,omitempty"`
	Price         *levee.Micros `json:"price,omitempty"`
	DecidedAt     time.Time     `json:"decided_at"`
}

// yesOutcome and noOutcome index a decision market's outcomes.
const (
	yesOutcome = 0
	noOutcome  = 1
)

// CloseBids ends bidding: each active bid gets a decision market funded from
// the tender's budget line, closing at the decision date. A tender without
// bids becomes unsuccessful. Errors: ENOTFOUND, ECONFLICT (before closes_at,
// already closed, the line cannot fund a subsidy).
func (s *Service) CloseBids(ctx context.Context, actor, tenderID int64) (TenderView, error) {
	unlock, lerr := s.serial.Lock(ctx, s.db)
	if lerr != nil {
		return TenderView{}, lerr
	}
	defer unlock()
	t, err := getTender(ctx, s.db, tenderID, "")
	if err != nil {
		return TenderView{}, err
	}
	now := s.now()
	if t.Status != StatusOpen {
		return TenderView{}, levee.Errorf(levee.ECONFLICT, "tender %d's bids are already closed", tenderID)
	}
	if now.Before(t.ClosesAt) {
		return TenderView{}, levee.Errorf(levee.ECONFLICT, "tender %d takes bids until %s", tenderID, t.ClosesAt.UTC().Format(time.RFC3339))
	}
	if !now.Before(t.DecisionAt) {
		return TenderView{}, levee.Errorf(levee.ECONFLICT, "tender %d's decision date has passed; its bids can no longer be forecast", tenderID)
	}
	bids, err := activeBids(ctx, s.db, tenderID)
	if err != nil {
		return TenderView{}, err
	}
	districts, err := accounts.NamesOfDistricts(ctx, s.db, t.DistrictIDs)
	if err != nil {
		return TenderView{}, err
	}
	title := t.Title
	if len([]rune(title)) > 200 {
		title = string([]rune(title)[:200])
	}
	for _, b := range bids {
		if b.MarketID != nil {
			continue // opened by an earlier, interrupted close
		}
		m, err := s.markets.CreateMarket(ctx, engine.NewMarket{
			Question: fmt.Sprintf("If bid %d (%s, %s) on tender %d %q is awarded, will the work be accepted by its promised date %s?",
				b.ID, b.Organisation, b.Price, t.ID, title, b.CompletionAt.UTC().Format(time.RFC3339)),
			Outcomes:  []string{"yes", "no"},
			Liquidity: t.Liquidity,
			ClosesAt:  t.DecisionAt,
			District:  districts[0],
			CreatedBy: actor,
			FundedBy:  ledger.BudgetLine(t.BudgetLineID),
			// Losing bids' markets are voided at award: the money traders
			// put in stays bound to the market so that a void is an exact
			// unwind (docs/lmsr.md, "Voids").
			Conditional: true,
		})
		if err != nil {
			return TenderView{}, fmt.Errorf("close tender %d: market for bid %d: %w", tenderID, b.ID, err)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE bids SET market_id = $2 WHERE id = $1`, b.ID, m.ID); err != nil {
			return TenderView{}, pgtx.Unavailable(fmt.Errorf("close tender %d: %w", tenderID, err))
		}
	}
	err = pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		if len(bids) > 0 {
			_, err := tx.ExecContext(ctx, `UPDATE tenders SET status = 'closed' WHERE id = $1 AND status = 'open'`, tenderID)
			return err
		}
		rec := AwardRecord{Tender: tenderID, Rule: Rule, WindowFrom: t.TWAPFrom(), WindowTo: t.DecisionAt, MinConfidence: t.MinConfidence,
			Bids: []ScoredBid{}, Result: StatusUnsuccessful, DecidedAt: now}
		return s.recordAward(ctx, tx, tenderID, actor, rec, StatusUnsuccessful)
	})
	if err != nil {
		return TenderView{}, fmt.Errorf("close tender %d: %w", tenderID, err)
	}
	return s.Tender(ctx, nil, tenderID)
}

func (s *Service) recordAward(ctx context.Context, tx *sqlx.Tx, tenderID, actor int64, rec AwardRecord, status string) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tender_awards (tender_id, record, decided_by, decided_at) VALUES ($1, $2, $3, $4)`,
		tenderID, string(b), actor, rec.DecidedAt); err != nil {
		return fmt.Errorf("record award: %w", err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE tenders SET status = $2 WHERE id = $1`, tenderID, status)
	return err
}

// pricePath reads a decision market's yes-price after each trade up to to.
func (s *Service) pricePath(ctx context.Context, marketID int64, to time.Time) ([]PricePoint, error) {
	var path []PricePoint
	var before int64
	for {
		ts, err := s.markets.Trades(ctx, marketID, before, 1000)
		if err != nil {
			return nil, err
		}
		for _, tr := range ts {
			if !tr.At.After(to) && len(tr.Prices) > yesOutcome {
				path = append(path, PricePoint{At: tr.At, Yes: tr.Prices[yesOutcome]})
			}
			before = tr.Seq
		}
		if len(ts) < 1000 || before <= 1 {
			return path, nil
		}
	}
}

// Score computes the published inputs of the award from the markets.
func (s *Service) Score(ctx context.Context, t *Tender, bids []Bid) ([]ScoredBid, error) {
	out := make([]ScoredBid, 0, len(bids))
	for _, b := range bids {
		if b.MarketID == nil {
			return nil, fmt.Errorf("bid %d has no decision market", b.ID)
		}
		snap, err := s.markets.Snapshot(ctx, *b.MarketID)
		if err != nil {
			return nil, err
		}
		st, err := initialYes(snap.Market.Liquidity)
		if err != nil {
			return nil, err
		}
		path, err := s.pricePath(ctx, *b.MarketID, t.DecisionAt)
		if err != nil {
			return nil, err
		}
		out = append(out, ScoredBid{Bid: b.ID, Organisation: b.OrganisationID, Market: *b.MarketID, Price: b.Price,
			TWAP: TWAP(st, path, t.TWAPFrom(), t.DecisionAt)})
	}
	return out, nil
}

// Award decides a tender once its decision date has passed: scores every
// bid, voids the decision markets of the bids that did not win (refunds to
// traders, collateral back to the budget line), and records the award, the
// contract and the escrow of the price in one transaction. Errors:
// ENOTFOUND, ECONFLICT (bids not closed, before the decision date, already
// decided, the line lacks the price).
func (s *Service) Award(ctx context.Context, actor, tenderID int64) (TenderView, error) {
	unlock, lerr := s.serial.Lock(ctx, s.db)
	if lerr != nil {
		return TenderView{}, lerr
	}
	defer unlock()
	t, err := getTender(ctx, s.db, tenderID, "")
	if err != nil {
		return TenderView{}, err
	}
	now := s.now()
	switch {
	case t.Status == StatusOpen:
		return TenderView{}, levee.Errorf(levee.ECONFLICT, "close tender %d's bids first", tenderID)
	case t.Status != StatusClosed:
		return TenderView{}, levee.Errorf(levee.ECONFLICT, "tender %d is already %s", tenderID, t.Status)
	case now.Before(t.DecisionAt):
		return TenderView{}, levee.Errorf(levee.ECONFLICT, "tender %d can be awarded from %s", tenderID, t.DecisionAt.UTC().Format(time.RFC3339))
	}
	bids, err := activeBids(ctx, s.db, tenderID)
	if err != nil {
		return TenderView{}, err
	}
	scored, err := s.Score(ctx, &t, bids)
	if err != nil {
		return TenderView{}, fmt.Errorf("award tender %d: %w", tenderID, err)
	}
	win := Decide(scored, t.MinConfidence)
	// The winning market goes on trading until the promised completion date:
	// it now asks whether the awarded work will be accepted in time.
	if win >= 0 {
		if err := s.markets.ExtendClose(ctx, *bids[win].MarketID, bids[win].CompletionAt); err != nil && levee.ErrorCode(err) != levee.EINVALID {
			return TenderView{}, fmt.Errorf("award tender %d: keep the winning market open: %w", tenderID, err)
		}
	}
	// The losing branches are voided first, each in the engine's own
	// transaction; a retry after a failure finds them void and goes on.
	for i, b := range scored {
		if i == win {
			continue
		}
		if err := s.voidMarket(ctx, b.Market); err != nil {
			return TenderView{}, fmt.Errorf("award tender %d: void market %d: %w", tenderID, b.Market, err)
		}
	}
	rec := AwardRecord{Tender: tenderID, Rule: Rule, WindowFrom: t.TWAPFrom(), WindowTo: t.DecisionAt, MinConfidence: t.MinConfidence,
		Bids: scored, Result: StatusUnsuccessful, DecidedAt: now}
	err = pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, err := getTender(ctx, tx, tenderID, "FOR UPDATE"); err != nil {
			return err
		}
		if win < 0 {
			if err := s.recordAward(ctx, tx, tenderID, actor, rec, StatusUnsuccessful); err != nil {
				return err
			}
			return s.tellAward(ctx, tx, &t, bids, win, 0)
		}
		b := bids[win]
		rec.Result, rec.Winner, rec.Price = StatusAwarded, &b.ID, &b.Price
		cid, err := s.openContract(ctx, tx, &t, b, actor, &rec)
		if err != nil {
			return err
		}
		return s.tellAward(ctx, tx, &t, bids, win, cid)
	})
	if err != nil {
		return TenderView{}, fmt.Errorf("award tender %d: %w", tenderID, err)
	}
	return s.Tender(ctx, nil, tenderID)
}

// voidMarket voids a decision market, accepting one already void.
func (s *Service) voidMarket(ctx context.Context, id int64) error {
	err := s.markets.VoidDecision(ctx, id)
	if levee.ErrorCode(err) == levee.ECONFLICT {
		if snap, serr := s.markets.Snapshot(ctx, id); serr == nil && snap.Market.Status == market.StatusVoid {
			return nil
		}
	}
	return err
}

// openContract writes the contract of an awarded bid (b.MarketID nil for a
// direct award), its milestones with the price split by share, the award
// record, and moves the price from the budget line into escrow.
func (s *Service) openContract(ctx context.Context, tx *sqlx.Tx, t *Tender, b Bid, actor int64, rec *AwardRecord) (int64, error) {
	now := s.now()
	var cid int64
	if err := tx.GetContext(ctx, &cid, `INSERT INTO contracts (tender_id, bid_id, contractor_id, price, market_id, completion_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, t.ID, b.ID, b.OrganisationID, b.Price, b.MarketID, b.CompletionAt, now); err != nil {
		return 0, fmt.Errorf("insert contract: %w", err)
	}
	rec.Contract = &cid
	ms, err := milestonesOf(ctx, tx, t.ID)
	if err != nil {
		return 0, err
	}
	shares := make([]levee.Micros, len(ms))
	for i, m := range ms {
		shares[i] = m.Share
	}
	amounts := splitPrice(b.Price, shares)
	for i, m := range ms {
		if _, err := tx.ExecContext(ctx, `INSERT INTO contract_milestones (contract_id, n, title, share, amount, due_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, cid, m.N, m.Title, m.Share, amounts[i], b.MilestoneDates[i]); err != nil {
			return 0, fmt.Errorf("insert contract milestone: %w", err)
		}
	}
	if err := s.recordAward(ctx, tx, t.ID, actor, *rec, StatusAwarded); err != nil {
		return 0, err
	}
	if err := ledger.OpenAccount(ctx, tx, ledger.Escrow(cid), "escrow", false); err != nil {
		return 0, err
	}
	_, err = ledger.Post(ctx, tx, ledger.Transfer{Kind: "contract_escrow", Ref: "contract/" + levee.FormatID(cid), At: now,
		Postings: []ledger.Posting{{Account: ledger.BudgetLine(t.BudgetLineID), Amount: -b.Price}, {Account: ledger.Escrow(cid), Amount: b.Price}}})
	if levee.ErrorCode(err) == levee.ECONFLICT {
		return 0, levee.Errorf(levee.ECONFLICT, "budget line %d cannot cover the award price of %s", t.BudgetLineID, b.Price)
	}
	return cid, err
}
