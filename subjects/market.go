package subjects

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/pgtx"
	"levee/settlement"
)

// MarketEngine is what the market owner needs of the engine to settle a
// market.
type MarketEngine interface {
	SettleWith(ctx context.Context, marketID int64, outcome int, within func(ctx context.Context, tx *sqlx.Tx) error) error
}

// Markets makes markets subjects of cases ("market:<id>"): a treasurer
// proposes a closed market's outcome, settlement keeps the proposal and its
// dispute, and the engine applies the verdict.
type Markets struct {
	db      *sqlx.DB
	settle  *settlement.Service
	markets MarketEngine
}

// NewMarkets returns the owner of market subjects.
func NewMarkets(db *sqlx.DB, s *settlement.Service, m MarketEngine) *Markets {
	return &Markets{db: db, settle: s, markets: m}
}

// Market names a market as the subject of proposals and cases.
func Market(marketID int64) string { return KindMarket + ":" + levee.FormatID(marketID) }

// Propose proposes the outcome of a closed market (one of its outcomes, or
// "void") with evidence. A treasurer proposes; decision markets are
// resolved by their contracts instead. Errors: EINVALID, EFORBIDDEN,
// ENOTFOUND, ECONFLICT (not closed, a decision market, or proposed already).
func (o *Markets) Propose(ctx context.Context, who *accounts.Principal, marketID int64, verdict, evidence string) (settlement.Proposal, error) {
	if !who.Has(accounts.RoleTreasurer) {
		return settlement.Proposal{}, levee.Errorf(levee.EFORBIDDEN, "only treasurers propose market outcomes")
	}
	if err := settlement.CheckEvidence(evidence); err != nil {
		return settlement.Proposal{}, err
	}
	var p settlement.Proposal
	err := pgtx.Run(ctx, o.db, func(tx *sqlx.Tx) error {
		f, err := engine.MarketFacts(ctx, tx, marketID)
		if err != nil {
			return err
		}
		if f.FundedBy != ledger.Treasury {
			return levee.Errorf(levee.ECONFLICT, "market %d is a decision market: its contract resolves it", marketID)
		}
		if st := f.Market.EffectiveStatus(o.settle.Now()); st != market.StatusClosed {
			return levee.Errorf(levee.ECONFLICT, "market %d is %s; propose an outcome once it has closed", marketID, st)
		}
		if verdict != settlement.VerdictVoid && !slices.Contains([]string(f.Market.Outcomes), verdict) {
			return levee.Invalid("verdict", "verdict must be one of the market's outcomes %q or %q", []string(f.Market.Outcomes), settlement.VerdictVoid)
		}
		p, err = o.settle.AddProposal(ctx, tx, settlement.NewProposal{Kind: KindMarket, Subject: Market(marketID), Verdict: verdict, Evidence: evidence, ProposedBy: who.AccountID})
		if errors.Is(err, settlement.ErrProposed) {
			return levee.Errorf(levee.ECONFLICT, "market %d already has an outcome proposed", marketID)
		}
		if err != nil {
			return err
		}
		return accounts.WriteAudit(ctx, tx, who.AccountID, "market.propose", map[string]any{"market": marketID, "verdict": verdict})
	})
	if err != nil {
		return settlement.Proposal{}, fmt.Errorf("propose market %d: %w", marketID, err)
	}
	return p, nil
}

func parseID(field, ref string) (int64, error) {
	id, err := strconv.ParseInt(ref, 10, 64)
	if err != nil || id <= 0 {
		return 0, levee.Invalid(field, "%s must be a positive integer", field)
	}
	return id, nil
}

// Facts describes a market for its case: its outcomes (and void) are the
// verdicts, its holders may not sit on the jury, and the proposed outcome
// stands if no jury can be formed.
func (o *Markets) Facts(ctx context.Context, q sqlx.QueryerContext, ref string) (settlement.Facts, error) {
	id, err := parseID("subject", ref)
	if err != nil {
		return settlement.Facts{}, err
	}
	f, err := engine.MarketFacts(ctx, q, id)
	if err != nil {
		return settlement.Facts{}, err
	}
	facts := settlement.Facts{
		Kind:     KindMarket,
		Question: f.Market.Question,
		Verdicts: append(slices.Clone([]string(f.Market.Outcomes)), settlement.VerdictVoid),
		Excluded: f.Holders,
		Markets:  []int64{id},
		Parties:  map[int64]string{},
	}
	if f.Market.DistrictID != nil {
		facts.Districts = []int64{*f.Market.DistrictID}
	}
	p, ok, err := settlement.OpenProposal(ctx, q, Market(id))
	if err != nil {
		return settlement.Facts{}, err
	}
	if ok {
		facts.Default = p.Verdict
		facts.Parties[p.ProposedBy] = "proposer"
	} else {
		facts.Default = settlement.VerdictVoid
	}
	return facts, nil
}

// Hold disputes a market's pending proposal within its window. A resident
// of the market's district (any resident for a city-wide market), a trader
// in it, or the proposer may dispute.
func (o *Markets) Hold(ctx context.Context, tx *sqlx.Tx, who *accounts.Principal, ref string) (string, error) {
	id, err := parseID("subject", ref)
	if err != nil {
		return "", err
	}
	p, ok, err := settlement.LockOpenProposal(ctx, tx, Market(id))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", levee.Errorf(levee.ECONFLICT, "market %d has no proposed outcome to dispute", id)
	}
	if p.Status != "pending" || !o.settle.Now().Before(p.DisputeUntil) {
		return "", levee.Errorf(levee.ECONFLICT, "the proposal for market %d can no longer be disputed", id)
	}
	f, err := engine.MarketFacts(ctx, tx, id)
	if err != nil {
		return "", err
	}
	may := slices.Contains(f.Holders, who.AccountID) || who.AccountID == p.ProposedBy ||
		who.Has(accounts.RoleResident) && (f.Market.DistrictID == nil || *f.Market.DistrictID == who.DistrictID)
	if !may {
		return "", levee.Errorf(levee.EFORBIDDEN, "only residents of the market's district, its traders and the proposer can dispute")
	}
	if err := settlement.MarkDisputed(ctx, tx, p.ID); err != nil {
		return "", err
	}
	return p.Verdict, nil
}

// Settle resolves the market on the verdict's outcome, or voids it.
func (o *Markets) Settle(ctx context.Context, ref, verdict string, mark func(ctx context.Context, tx *sqlx.Tx) error) error {
	id, err := parseID("subject", ref)
	if err != nil {
		return err
	}
	f, err := engine.MarketFacts(ctx, o.db, id)
	if err != nil {
		return err
	}
	outcome := slices.Index([]string(f.Market.Outcomes), verdict)
	if verdict == settlement.VerdictVoid {
		outcome = -1
	} else if outcome < 0 {
		return fmt.Errorf("market %d has no outcome %q", id, verdict)
	}
	return o.markets.SettleWith(ctx, id, outcome, mark)
}
