package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/ledger"
	"levee/market"
	"levee/outbox"
	"levee/pgtx"
)

// maxPostings bounds the postings of one settlement entry; a market with
// more holders settles in several entries of the same transaction.
const maxPostings = 1000

// CloseMarket stops trading before the closing time. A decision market
// (conditional) closes only at its decision date: its forecast is what the
// award is computed from. Errors: ENOTFOUND, EFORBIDDEN (a decision
// market), ECONFLICT.
func (e *Engine) CloseMarket(ctx context.Context, marketID int64) error {
	_, err := e.send(ctx, marketID, &command{kind: cmdClose})
	return err
}

// ExtendClose keeps an open market trading until a later time: a decision
// market whose bid won goes on asking whether the awarded work will be
// accepted by its promised date. Errors: ENOTFOUND, EINVALID (until),
// ECONFLICT (closed by hand, resolved or void).
func (e *Engine) ExtendClose(ctx context.Context, marketID int64, until time.Time) error {
	_, err := e.send(ctx, marketID, &command{kind: cmdExtend, until: until.UTC().Truncate(time.Microsecond)})
	return err
}

// Resolve settles a market on a winning outcome: each winning share is paid
// 1.000000 from the collateral, and what is left returns to the market's
// funder (the treasury by default).
// Errors: ENOTFOUND, EINVALID (outcome), ECONFLICT (already settled).
func (e *Engine) Resolve(ctx context.Context, marketID int64, outcome int) error {
	_, err := e.send(ctx, marketID, &command{kind: cmdResolve, outcome: outcome})
	return err
}

// Void cancels an ordinary market by unwinding it (docs/lmsr.md, "Voids"):
// each trader gets back what they put in and did not take out, a trader
// who took a profit out gives it back from their cash, and the funder gets
// its subsidy back. A decision market (conditional) is voided only by its
// tender's award (VoidDecision).
// Errors: ENOTFOUND, EFORBIDDEN (a decision market), ECONFLICT (already settled).
func (e *Engine) Void(ctx context.Context, marketID int64) error {
	_, err := e.send(ctx, marketID, &command{kind: cmdVoid})
	return err
}

// VoidDecision voids a decision market whose bid lost the award: each
// trader gets back exactly the cash they put in, and the funder (the
// tender's budget line) its subsidy. Errors: ENOTFOUND, ECONFLICT (not a
// decision market, or already settled).
func (e *Engine) VoidDecision(ctx context.Context, marketID int64) error {
	_, err := e.send(ctx, marketID, &command{kind: cmdVoid, decision: true})
	return err
}

// SettleWith resolves a market on outcome, or voids it when outcome is -1,
// and runs within inside the same transaction, first: if within fails,
// nothing is settled. A jury's verdict uses it so that the market's
// settlement and the record that the verdict was applied commit together.
// Errors: as Resolve and Void, and within's.
func (e *Engine) SettleWith(ctx context.Context, marketID int64, outcome int, within func(ctx context.Context, tx *sqlx.Tx) error) error {
	c := &command{kind: cmdResolve, outcome: outcome, within: within}
	if outcome == -1 {
		c.kind = cmdVoid
	}
	_, err := e.send(ctx, marketID, c)
	return err
}

// lifecycle runs a status change in the market's goroutine, after its
// pending trades are durable, in a transaction of its own.
func (b *book) lifecycle(c *command) error {
	if c.kind == cmdExtend {
		return b.extend(c)
	}
	if market.Final(b.m.Status) {
		return levee.Errorf(levee.ECONFLICT, "the market is already %s", b.m.Status)
	}
	if b.m.Conditional && !c.decision && (c.kind == cmdClose || c.kind == cmdVoid) {
		return levee.Errorf(levee.EFORBIDDEN, "market %d is a decision market: it closes at its decision date and only its tender's award voids it", b.id)
	}
	if c.decision && !b.m.Conditional {
		return levee.Errorf(levee.ECONFLICT, "market %d is not a decision market", b.id)
	}
	status := map[cmdKind]string{cmdClose: market.StatusClosed, cmdResolve: market.StatusResolved, cmdVoid: market.StatusVoid}[c.kind]
	if err := market.Transition(b.m.Status, status); err != nil {
		return err
	}
	if c.kind == cmdResolve && (c.outcome < 0 || c.outcome >= len(b.m.Outcomes)) {
		return levee.Invalid("outcome", "outcome must be from 0 to %d", len(b.m.Outcomes)-1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*b.e.opts.DBTimeout)
	defer cancel()
	var paid []int64
	err := pgtx.Run(ctx, b.e.db, func(tx *sqlx.Tx) error {
		paid = nil
		if c.within != nil {
			if err := c.within(ctx, tx); err != nil {
				return err
			}
		}
		if err := fence(ctx, tx, b.id, b.epoch); err != nil {
			return err
		}
		var err error
		switch c.kind {
		case cmdResolve:
			paid, err = b.settle(ctx, tx, resolvePayouts(c.outcome), "market_resolution", fmt.Sprintf("resolved %q", b.m.Outcomes[c.outcome]))
		case cmdVoid:
			paid, err = b.settle(ctx, tx, voidRefunds, "market_void", "was voided")
		}
		if err != nil {
			return err
		}
		var outcome *int
		if c.kind == cmdResolve {
			outcome = &c.outcome
		}
		return setStatus(ctx, tx, b.id, status, outcome)
	})
	if errors.Is(err, errFenced) {
		b.fenced.Store(true)
		b.e.cluster.fenced.Add(1)
		return errMoved
	}
	if err != nil {
		b.broken = true
		return err
	}
	for _, a := range paid {
		b.e.wallets.Invalidate(a)
	}
	b.e.cashMoved(paid...)
	if err := b.reload(); err != nil {
		return nil // committed; the next command reloads
	}
	if pub := b.e.opts.Publisher; pub != nil {
		s := b.snap.Load()
		pub.Publish(Event{Type: EventStatus, MarketID: b.id, Seq: s.Market.Seq, Status: status, Prices: s.Prices, Shares: s.Market.Q, At: b.e.opts.Clock().UTC()})
	}
	return nil
}

// extend moves the closing time of an open market later.
func (b *book) extend(c *command) error {
	if err := market.Transition(b.m.Status, market.StatusOpen); err != nil {
		return err
	}
	if !c.until.After(c.at) {
		return levee.Invalid("until", "the new closing time must be in the future")
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.e.opts.DBTimeout)
	defer cancel()
	if err := setClosesAt(ctx, b.e.db, b.id, b.epoch, c.until); err != nil {
		if errors.Is(err, errFenced) {
			b.fenced.Store(true)
			return errMoved
		}
		b.broken = true
		return pgtx.Unavailable(fmt.Errorf("extend market %d: %w", b.id, err))
	}
	if err := b.reload(); err != nil {
		return nil // committed; the next command reloads
	}
	if pub := b.e.opts.Publisher; pub != nil {
		s := b.snap.Load()
		pub.Publish(Event{Type: EventStatus, MarketID: b.id, Seq: s.Market.Seq, Status: market.StatusOpen, Prices: s.Prices, Shares: s.Market.Q, At: b.e.opts.Clock().UTC()})
	}
	return nil
}

// payout is how a market's money leaves it when it settles: what each
// trader receives, what each trader gives back (a void's clawback), and
// what returns to the funder. Every movement is exact and the collateral
// is emptied.
type payout struct {
	credits map[int64]levee.Micros // to traders' cash
	debits  map[int64]levee.Micros // from traders' cash, into the collateral first
	held    levee.Micros           // the traders' balances inside a conditional market, moved into the collateral first
	rest    levee.Micros           // to the funder, last
}

// payoutRule computes a market's payout from its committed rows. It runs
// in the settlement's transaction.
type payoutRule func(ctx context.Context, tx *sqlx.Tx, m *Market) (payout, error)

// traderMoney is what a market knows of each trader's money in it.
type traderMoney struct {
	Account int64        `db:"account_id"`
	Shares  levee.Micros `db:"shares"` // of the winning outcome (resolve only)
	Net     levee.Micros `db:"net"`    // paid - received over every outcome
	Held    levee.Micros `db:"held"`   // balance inside a conditional market
}

// resolvePayouts pays 1.000000 per winning share and releases each
// trader's balance inside a conditional market to their cash; the rest of
// the collateral returns to the funder.
func resolvePayouts(outcome int) payoutRule {
	return func(ctx context.Context, tx *sqlx.Tx, m *Market) (payout, error) {
		rows, err := tradersMoney(ctx, tx, m.ID, outcome)
		if err != nil {
			return payout{}, err
		}
		p := payout{credits: map[int64]levee.Micros{}}
		for _, r := range rows {
			p.held += r.Held
			if c := r.Shares + r.Held; c > 0 {
				p.credits[r.Account] = c
			}
		}
		return p, nil
	}
}

// voidRefunds unwinds a market as if it never happened (docs/lmsr.md,
// "Voids"). Each trader's claim is what they put in and did not take
// out: their net cost plus their balance inside the market. In a
// conditional market that is exactly the cash they put in, never
// negative. In an ordinary market a trader who sold at a profit has a
// negative claim and gives the profit back from their cash; if they no
// longer hold it, the refunds of those with positive claims shrink pro
// rata (rounded down). The funder gets its subsidy back and never pays.
func voidRefunds(ctx context.Context, tx *sqlx.Tx, m *Market) (payout, error) {
	rows, err := tradersMoney(ctx, tx, m.ID, -1)
	if err != nil {
		return payout{}, err
	}
	p := payout{credits: map[int64]levee.Micros{}, debits: map[int64]levee.Micros{}}
	var owed []string
	for _, r := range rows {
		p.held += r.Held
		if claim := r.Net + r.Held; claim < 0 {
			owed = append(owed, ledger.Cash(r.Account))
		}
	}
	keys := append([]string{ledger.Collateral(m.ID)}, owed...)
	balances, err := ledger.LockBalances(ctx, tx, keys)
	if err != nil {
		return payout{}, fmt.Errorf("void market %d: %w", m.ID, err)
	}
	var claims levee.Micros // sum of positive claims
	collected := levee.Micros(0)
	for _, r := range rows {
		claim := r.Net + r.Held
		switch {
		case claim > 0:
			claims += claim
		case claim < 0:
			if take := min(-claim, max(balances[ledger.Cash(r.Account)], 0)); take > 0 {
				p.debits[r.Account] = take
				collected += take
			}
		}
	}
	// What the market holds for the traders once the subsidy is set aside.
	pool := balances[ledger.Collateral(m.ID)] + p.held + collected - m.Subsidy
	if pool < 0 {
		return payout{}, fmt.Errorf("void market %d: the collateral (%s) does not cover the subsidy (%s) and the clawbacks (%s)",
			m.ID, balances[ledger.Collateral(m.ID)], m.Subsidy, collected)
	}
	for _, r := range rows {
		claim := r.Net + r.Held
		if claim <= 0 {
			continue
		}
		refund := claim
		if pool < claims {
			refund = levee.Micros(new(big.Int).Div(new(big.Int).Mul(big.NewInt(int64(claim)), big.NewInt(int64(pool))), big.NewInt(int64(claims))).Int64())
		}
		if refund > 0 {
			p.credits[r.Account] = refund
		}
	}
	return p, nil
}

// settle moves a market's money out as rule says, in one or more entries
// of tx: first the clawbacks and the held balances into the collateral,
// then the traders' credits from it, and last what is left to the market's
// funder (markets.funded_by). A payout that would take more than the
// market holds is a bug, and an error: neither the funder nor the treasury
// ever covers a shortfall. It returns the traders whose cash moved.
func (b *book) settle(ctx context.Context, tx *sqlx.Tx, rule payoutRule, kind, what string) ([]int64, error) {
	p, err := rule(ctx, tx, &b.m)
	if err != nil {
		return nil, fmt.Errorf("settle market %d: %w", b.id, err)
	}
	collateral := ledger.Collateral(b.id)
	funder, err := fundedBy(ctx, tx, b.id)
	if err != nil {
		return nil, fmt.Errorf("settle market %d: funder: %w", b.id, err)
	}
	held, err := ledger.Balance(ctx, tx, collateral)
	if err != nil {
		return nil, fmt.Errorf("settle market %d: %w", b.id, err)
	}
	var in, out levee.Micros
	for _, amt := range p.debits {
		in += amt
	}
	for _, amt := range p.credits {
		out += amt
	}
	p.rest = held + p.held + in - out
	if p.rest < 0 {
		return nil, fmt.Errorf("settle market %d: pays %s but holds %s: %w", b.id, out, held+p.held+in,
			levee.Errorf(levee.EINTERNAL, "the market's settlement does not balance"))
	}
	ref := "market:" + levee.FormatID(b.id)
	var ts []ledger.Transfer
	// Into the collateral: clawbacks and held balances.
	var ins []ledger.Posting
	if p.held != 0 {
		ins = append(ins, ledger.Posting{Account: ledger.Held(b.id), Amount: -p.held})
	}
	for _, a := range slices.Sorted(maps.Keys(p.debits)) {
		ins = append(ins, ledger.Posting{Account: ledger.Cash(a), Amount: -p.debits[a]})
	}
	ts = appendChunked(ts, kind, ref, ins, collateral)
	// Out of it: the traders' credits.
	var outs []ledger.Posting
	for _, a := range slices.Sorted(maps.Keys(p.credits)) {
		outs = append(outs, ledger.Posting{Account: ledger.Cash(a), Amount: p.credits[a]})
	}
	ts = appendChunked(ts, kind, ref, outs, collateral)
	// And the rest to the funder.
	if p.rest != 0 {
		ts = append(ts, ledger.Transfer{Kind: kind, Ref: ref, Postings: []ledger.Posting{{Account: collateral, Amount: -p.rest}, {Account: funder, Amount: p.rest}}})
	}
	if len(ts) > 0 {
		if _, err := ledger.PostBatch(ctx, tx, ts); err != nil {
			return nil, fmt.Errorf("settle market %d: %w", b.id, err)
		}
	}
	if b.m.Conditional {
		if err := clearHeld(ctx, tx, b.id); err != nil {
			return nil, fmt.Errorf("settle market %d: stakes: %w", b.id, err)
		}
	}
	if err := b.tellSettled(ctx, tx, p, what, kind == "market_void"); err != nil {
		return nil, fmt.Errorf("settle market %d: %w", b.id, err)
	}
	touched := slices.Sorted(maps.Keys(p.credits))
	for _, a := range slices.Sorted(maps.Keys(p.debits)) {
		if _, ok := p.credits[a]; !ok {
			touched = append(touched, a)
		}
	}
	return touched, nil
}

// tellSettled tells each trader whose cash the settlement moves what it
// paid them (or took back, in a void), in the settlement's transaction.
func (b *book) tellSettled(ctx context.Context, tx *sqlx.Tx, p payout, what string, void bool) error {
	head := fmt.Sprintf("Market %d (%q) %s", b.id, b.m.Question, what)
	var rs []outbox.Addressed
	for _, a := range slices.Sorted(maps.Keys(p.credits)) {
		msg := fmt.Sprintf("%s: %s is paid to your account.", head, p.credits[a])
		if void {
			msg = fmt.Sprintf("%s: %s is returned to your account (what you put in, less what you took out).", head, p.credits[a])
		}
		rs = append(rs, outbox.Addressed{Account: a, Message: msg})
	}
	for _, a := range slices.Sorted(maps.Keys(p.debits)) {
		rs = append(rs, outbox.Addressed{Account: a, Message: fmt.Sprintf("%s: the %s you took out of it beyond what you put in went back from your account, as a void unwinds every trade.", head, p.debits[a])})
	}
	return outbox.AddEach(ctx, tx, rs, outbox.Notice{Kind: "payment", Link: "/markets/" + levee.FormatID(b.id), At: b.e.opts.Clock().UTC()})
}

// appendChunked appends entries moving ps against the account other (each
// entry balanced by one posting to other), at most maxPostings each.
func appendChunked(ts []ledger.Transfer, kind, ref string, ps []ledger.Posting, other string) []ledger.Transfer {
	for start := 0; start < len(ps); start += maxPostings {
		chunk := slices.Clone(ps[start:min(start+maxPostings, len(ps))])
		var sum levee.Micros
		for _, p := range chunk {
			sum += p.Amount
		}
		if sum != 0 {
			chunk = append(chunk, ledger.Posting{Account: other, Amount: -sum})
		}
		if len(chunk) >= 2 {
			ts = append(ts, ledger.Transfer{Kind: kind, Ref: ref, Postings: chunk})
		}
	}
	return ts
}
