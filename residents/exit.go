package residents

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/pgtx"
	"levee/settlement"
)

// What to do with positions in open markets when leaving.
const (
	SellPositions = "sell" // sell them at the market now
	KeepPositions = "keep" // keep them until their markets resolve
)

// Sale is one position sold (or, in a preview, to be sold) at the market.
type Sale struct {
	MarketID    int64        `json:"market_id,string"`
	Question    string       `json:"question"`
	Outcome     int          `json:"outcome"`
	OutcomeName string       `json:"outcome_name"`
	Shares      levee.Micros `json:"shares"`
	Proceeds    levee.Micros `json:"proceeds"`
}

// Kept is a position that stays until its market settles, and why.
type Kept struct {
	engine.Position
	Why string `json:"why"`
}

// ExitPlan is what leaving does (a preview) or did.
type ExitPlan struct {
	Preview   bool   `json:"preview"`
	Pseudonym string `json:"pseudonym"`
	// ExitAccount is the ledger account the treasury owes the person from:
	// exit:<pseudonym>, paid out by a treasurer's recorded act.
	ExitAccount string `json:"exit_account"`
	Positions   string `json:"positions"`
	Sales       []Sale `json:"sales"`
	Kept        []Kept `json:"kept"`
	// Cash is the cash before leaving; Proceeds what the sales bring (a
	// preview quotes them on the market's state now); Moved what went to
	// ExitAccount (in a preview: what would, if prices do not move).
	Cash     levee.Micros `json:"cash"`
	Proceeds levee.Micros `json:"proceeds"`
	Moved    levee.Micros `json:"moved"`
	// JurySeats are the cases where the person sits: serve them (commit and
	// reveal stay open to a leaving juror) or they count as a no-show, not
	// paid and replaced, as for anyone.
	JurySeats []settlement.CaseSummary `json:"jury_seats"`
	Notes     []string                 `json:"notes"`
}

// Exit takes who out of the city, or with preview only says what it would
// do. In order: their orders are refused from now on, in every market
// (engine.Leave); with positions "sell" their positions in open markets are
// sold at the market (a decision market's stay: its money is held in it
// until it settles); all their cash moves to exit:<pseudonym>, which the
// treasury owes them; and the account closes for new activity. Calling it
// again sweeps whatever has arrived since. Money that arrives later (a kept
// position's payout, a bond returned) is swept when a treasurer pays out.
// Errors: EINVALID (positions), EFORBIDDEN for an organisation, whose money
// stays with it.
func (s *Service) Exit(ctx context.Context, who *accounts.Principal, positions string, preview bool) (ExitPlan, error) {
	if positions != SellPositions && positions != KeepPositions {
		return ExitPlan{}, levee.Invalid("positions", `positions must be "sell" or "keep"`)
	}
	if who.Kind != accounts.KindPerson {
		return ExitPlan{}, levee.Errorf(levee.EFORBIDDEN, "an organisation cannot leave this way: its money is public and stays with it")
	}
	id := who.AccountID
	a, err := s.opts.Accounts.Get(ctx, id)
	if err != nil {
		return ExitPlan{}, err
	}
	plan := ExitPlan{Preview: preview, Pseudonym: a.Pseudonym, ExitAccount: ledger.KindExit + ":" + a.Pseudonym, Positions: positions,
		Sales: []Sale{}, Kept: []Kept{}, Cash: a.Cash, JurySeats: []settlement.CaseSummary{},
		Notes: []string{"The money of organisations you act for stays with them; your memberships end."}}
	if a.Pseudonym == "" {
		return ExitPlan{}, levee.Errorf(levee.ECONFLICT, "this account has no ledger pseudonym to leave with")
	}
	if !preview {
		if _, err := s.opts.Accounts.BeginExit(ctx, id, s.opts.Clock()); err != nil {
			return ExitPlan{}, err
		}
		s.opts.Markets.Leave(id)
		// Orders placed before are durable or refused once none is in
		// flight: only then are the positions read here all there is.
		if err := s.opts.Markets.WaitOrders(ctx, id); err != nil {
			return ExitPlan{}, err
		}
	}
	ps, err := s.opts.Markets.Positions(ctx, id)
	if err != nil {
		return ExitPlan{}, err
	}
	for _, p := range ps {
		switch {
		case p.Shares <= 0:
			continue
		case p.Status != market.StatusOpen:
			plan.Kept = append(plan.Kept, Kept{p, "the market is " + p.Status + ": the position pays out when it settles"})
			continue
		case p.Conditional:
			plan.Kept = append(plan.Kept, Kept{p, "a decision market's money stays in it until it settles"})
			continue
		case positions == KeepPositions:
			plan.Kept = append(plan.Kept, Kept{p, "kept until the market resolves, as you chose"})
			continue
		}
		sale := Sale{MarketID: p.MarketID, Question: p.Question, Outcome: p.Outcome, OutcomeName: p.OutcomeName, Shares: p.Shares}
		if preview {
			f, _, err := s.opts.Markets.Quote(ctx, id, p.MarketID, market.Order{Outcome: p.Outcome, Side: market.Sell, Shares: p.Shares})
			if err != nil {
				plan.Kept = append(plan.Kept, Kept{p, "cannot be sold now: " + levee.ErrorMessage(err)})
				continue
			}
			sale.Proceeds = f.Proceeds
		} else {
			key := fmt.Sprintf("exit/%d/%d", p.MarketID, p.Outcome)
			r, err := s.opts.Markets.SellForExit(ctx, id, p.MarketID, p.Outcome, key)
			if err != nil {
				if levee.ErrorCode(err) == levee.EUNAVAILABLE || levee.ErrorCode(err) == levee.EINTERNAL {
					return ExitPlan{}, fmt.Errorf("exit of %d: sell in market %d: %w", id, p.MarketID, err)
				}
				plan.Kept = append(plan.Kept, Kept{p, "could not be sold: " + levee.ErrorMessage(err)})
				continue
			}
			sale.Shares, sale.Proceeds = r.Shares, r.Proceeds
		}
		plan.Sales = append(plan.Sales, sale)
		plan.Proceeds += sale.Proceeds
	}
	if s.opts.Cases != nil {
		cs, err := s.opts.Cases.MyCases(ctx, id)
		if err != nil {
			return ExitPlan{}, err
		}
		for _, c := range cs {
			if c.Role == "juror" && (c.Status == settlement.StatusEvidence || c.Status == settlement.StatusCommit || c.Status == settlement.StatusReveal) {
				plan.JurySeats = append(plan.JurySeats, c)
			}
		}
		if len(plan.JurySeats) > 0 {
			plan.Notes = append(plan.Notes, "You still sit on a jury: commit and reveal your vote in time, or the seat counts as a no-show (not paid, replaced).")
		}
	}
	if preview {
		plan.Moved = plan.Cash + plan.Proceeds
		return plan, nil
	}
	if plan.Moved, err = s.sweep(ctx, id); err != nil {
		return ExitPlan{}, err
	}
	if err := s.opts.Accounts.FinishExit(ctx, id, s.opts.Clock()); err != nil {
		return ExitPlan{}, err
	}
	s.opts.Logger.Info("resident left the city", slog.String("pseudonym", plan.Pseudonym), slog.Int("sales", len(plan.Sales)))
	return plan, nil
}

// sweep moves all of person id's cash to exit:<id> and returns how much.
// The cash is read under the ledger's locks, so an order that commits
// after it finds nothing to spend, and anything credited after it is
// swept by the next sweep.
func (s *Service) sweep(ctx context.Context, id int64) (levee.Micros, error) {
	var moved levee.Micros
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		moved = 0
		key, err := ledger.OpenExit(ctx, tx, id)
		if err != nil {
			return err
		}
		bal, err := ledger.LockBalances(ctx, tx, []string{ledger.Cash(id), key})
		if err != nil {
			return err
		}
		if moved = bal[ledger.Cash(id)]; moved <= 0 {
			return nil
		}
		_, err = ledger.Post(ctx, tx, ledger.Transfer{Kind: "exit", Ref: "exit", At: s.opts.Clock(), Postings: []ledger.Posting{
			{Account: ledger.Cash(id), Amount: -moved}, {Account: key, Amount: moved}}})
		return err
	})
	s.opts.Markets.InvalidateCash(id)
	if err != nil {
		return 0, fmt.Errorf("exit of %d: move cash: %w", id, err)
	}
	return moved, nil
}

// Payout is a treasurer's recorded act paying out what the treasury owed a
// person who left.
type Payout struct {
	Pseudonym string       `json:"pseudonym"`
	Amount    levee.Micros `json:"amount"`
	Reference string       `json:"reference"`
	LedgerSeq int64        `json:"ledger_seq"`
}

// Owed lists what the treasury owes people who left, by pseudonym.
func (s *Service) Owed(ctx context.Context) ([]ledger.Owed, error) {
	return s.opts.Ledger.ExitsOwed(ctx)
}

// PayOut records that treasurer paid out everything owed to the person
// whose pseudonym is p (reference says how: a bank transfer's reference):
// one ledger entry takes it from exit:<p>, and from cash:<p> whatever
// arrived there since they left, out of the city (to the issuance account,
// where money leaves circulation), and the audit log records the act with
// the pseudonym, never a name. Errors: ENOTFOUND (no such exit), ECONFLICT
// (nothing is owed), EINVALID (reference).
func (s *Service) PayOut(ctx context.Context, treasurer *accounts.Principal, p, reference string) (Payout, error) {
	if reference == "" || len(reference) > 200 {
		return Payout{}, levee.Invalid("reference", "say how it was paid (1 to 200 characters), for the record")
	}
	owed, err := s.opts.Ledger.ExitsOwed(ctx)
	if err != nil {
		return Payout{}, err
	}
	var id int64
	for _, o := range owed {
		if o.Pseudonym == p {
			id = o.ID()
		}
	}
	if id == 0 {
		return Payout{}, levee.Errorf(levee.ENOTFOUND, "nobody who left has the pseudonym %q", p)
	}
	out := Payout{Pseudonym: p, Reference: reference}
	err = pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		bal, err := ledger.LockBalances(ctx, tx, []string{ledger.Cash(id), ledger.Exit(id)})
		if err != nil {
			return err
		}
		cash, held := max(bal[ledger.Cash(id)], 0), bal[ledger.Exit(id)]
		out.Amount = cash + held
		if out.Amount <= 0 {
			return levee.Errorf(levee.ECONFLICT, "nothing is owed to %s", p)
		}
		var ps []ledger.Posting
		if cash > 0 {
			ps = append(ps, ledger.Posting{Account: ledger.Cash(id), Amount: -cash})
		}
		if held > 0 {
			ps = append(ps, ledger.Posting{Account: ledger.Exit(id), Amount: -held})
		}
		ps = append(ps, ledger.Posting{Account: ledger.Issuance, Amount: out.Amount})
		// The record first and the money last: the ledger's head lock is
		// held from the post until the transaction ends.
		if err := accounts.WriteAudit(ctx, tx, treasurer.AccountID, "exit.payout", map[string]any{
			"pseudonym": p, "amount": out.Amount.String(), "reference": reference}); err != nil {
			return err
		}
		e, err := ledger.Post(ctx, tx, ledger.Transfer{Kind: "exit_payout", Ref: "exit", At: s.opts.Clock(), Postings: ps})
		out.LedgerSeq = e.Seq
		return err
	})
	s.opts.Markets.InvalidateCash(id)
	if err != nil {
		return Payout{}, fmt.Errorf("pay out %s: %w", p, err)
	}
	return out, nil
}
