package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"levee"
	"levee/market"
	"levee/market/engine"
)

// MustConditional opens a conditional market, as contracting opens a
// decision market.
func (f *fixture) MustConditional(b levee.Micros, outcomes ...string) engine.Market {
	f.t.Helper()
	m, err := f.e.CreateMarket(context.Background(), engine.NewMarket{Question: "If bid 1 wins, will the sea wall hold?", Outcomes: outcomes,
		Liquidity: b, ClosesAt: time.Now().Add(time.Hour), Conditional: true})
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *fixture) mustSubmit(account, marketID int64, o market.Order) engine.Result {
	f.t.Helper()
	r, err := f.e.Submit(context.Background(), account, marketID, o, "")
	if err != nil {
		f.t.Fatalf("order %+v by %d: %v", o, account, err)
	}
	return r
}

// The attack of issue 13: two colluding residents run round trips in which
// one sells after the other bought, so one is up by about b·ln 2 a cycle
// and the other down the same, and then a void refunds the loser. The pair
// must end exactly where it started, on either kind of market.
func TestVoidOfCollidingRoundTripsPaysNothing(t *testing.T) {
	for _, conditional := range []bool{false, true} {
		t.Run(fmt.Sprintf("conditional=%t", conditional), func(t *testing.T) {
			ctx := context.Background()
			f := MustFixture(t)
			a, b := f.MustAccount("a", levee.Units(10_000)), f.MustAccount("b", levee.Units(10_000))
			treasury := f.balance("treasury")
			var m engine.Market
			if conditional {
				m = f.MustConditional(levee.Units(10), "yes", "no")
			} else {
				m = f.MustMarket(levee.Units(10), "yes", "no")
			}
			all := market.Order{Outcome: 0, Side: market.Sell, All: true}
			for range 20 {
				f.mustSubmit(a, m.ID, buy(0, "100"))
				f.mustSubmit(b, m.ID, buy(0, "100"))
				f.mustSubmit(a, m.ID, all)
				f.mustSubmit(b, m.ID, all)
			}
			if conditional {
				// Proceeds stayed inside the market: nobody's cash went up.
				if f.cash(a) > levee.Units(10_000) || f.cash(b) > levee.Units(10_000) {
					t.Fatalf("cash left a conditional market before its settlement: a %s b %s", f.cash(a), f.cash(b))
				}
			} else if f.cash(a) <= levee.Units(10_000) {
				t.Fatalf("the round trips should have moved money from b to a: a %s", f.cash(a))
			}
			var err error
			if conditional {
				err = f.e.VoidDecision(ctx, m.ID)
			} else {
				err = f.e.Void(ctx, m.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := f.cash(a) + f.cash(b); got != levee.Units(20_000) {
				t.Fatalf("the pair holds %s after the void, want exactly 20000.000000 (a %s, b %s)", got, f.cash(a), f.cash(b))
			}
			if got := f.balance("treasury"); got != treasury {
				t.Fatalf("treasury %s after the void, want %s", got, treasury)
			}
			f.MustVerify()
		})
	}
}

// A trader who took a profit out and spent it cannot give it back: the
// refunds of those who lost shrink pro rata, and the funder still gets its
// subsidy back.
func TestVoidShortfallShrinksRefundsNotTheFunder(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	a, b := f.MustAccount("a", levee.Units(100)), f.MustAccount("b", levee.Units(1000))
	treasury := f.balance("treasury")
	m := f.MustMarket(levee.Units(10), "yes", "no")
	other := f.MustMarket(levee.Units(10), "yes", "no")
	f.mustSubmit(a, m.ID, buy(0, "50"))
	f.mustSubmit(b, m.ID, buy(0, "100"))
	f.mustSubmit(a, m.ID, market.Order{Outcome: 0, Side: market.Sell, All: true})
	// a spends everything in another market.
	f.mustSubmit(a, other.ID, market.Order{Outcome: 1, Side: market.Buy, Amount: f.cash(a)})
	if f.cash(a) != 0 {
		t.Fatalf("a kept %s", f.cash(a))
	}
	bBefore := f.cash(b)
	if err := f.e.Void(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if f.cash(a) != 0 {
		t.Fatalf("a has %s", f.cash(a))
	}
	refund := f.cash(b) - bBefore
	if refund <= 0 || f.cash(b) >= levee.Units(1000) {
		t.Fatalf("b's refund %s should shrink below what b lost", refund)
	}
	// The funder got its subsidy back: the treasury is down only by the
	// other market's subsidy.
	if got, want := f.balance("treasury"), treasury-other.Subsidy; got != want {
		t.Fatalf("treasury %s, want %s", got, want)
	}
	f.MustVerify()
}

func TestConditionalMoneyStaysInTheMarketUntilItResolves(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	a := f.MustAccount("a", levee.Units(100))
	m := f.MustConditional(levee.Units(10), "yes", "no")
	held := fmt.Sprintf("market:%d:held", m.ID)
	r1 := f.mustSubmit(a, m.ID, buy(0, "20"))
	r2 := f.mustSubmit(a, m.ID, sell(0, "20"))
	if f.cash(a) != levee.Units(100)-r1.Cost {
		t.Fatalf("a sale paid cash out of a conditional market: %s", f.cash(a))
	}
	if f.balance(held) != r2.Proceeds {
		t.Fatalf("held %s, want the proceeds %s", f.balance(held), r2.Proceeds)
	}
	// The next buy spends the balance in the market first.
	r3 := f.mustSubmit(a, m.ID, buy(1, "5"))
	if r3.Cost > r2.Proceeds {
		t.Fatal("test wants a buy the held balance covers")
	}
	if f.cash(a) != levee.Units(100)-r1.Cost || f.balance(held) != r2.Proceeds-r3.Cost {
		t.Fatalf("cash %s held %s", f.cash(a), f.balance(held))
	}
	// Quotes and positions see the held balance.
	ps, err := f.e.Positions(ctx, a)
	if err != nil || len(ps) == 0 || !ps[0].Conditional || ps[0].PutIn != r1.Cost || ps[0].Held != r2.Proceeds-r3.Cost {
		t.Fatalf("positions %+v %v", ps, err)
	}
	// Spending more than cash + held is refused.
	if _, err := f.e.Submit(ctx, a, m.ID, market.Order{Outcome: 1, Side: market.Buy, Amount: f.cash(a) + f.balance(held) + 1}, ""); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("overspend: %v", err)
	}
	// On resolution the held balance is released to cash with the winnings.
	f.restart() // and the stakes survive a restart
	if err := f.e.Resolve(ctx, m.ID, 1); err != nil {
		t.Fatal(err)
	}
	if got, want := f.cash(a), levee.Units(100)-r1.Cost+(r2.Proceeds-r3.Cost)+levee.Units(5); got != want {
		t.Fatalf("cash after resolution %s, want %s", got, want)
	}
	if f.balance(held) != 0 || f.balance(fmt.Sprintf("market:%d:collateral", m.ID)) != 0 {
		t.Fatal("market accounts not emptied")
	}
	f.MustVerify()
}

func TestDecisionMarketsAreVoidedOnlyByTheirAward(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	d := f.MustConditional(levee.Units(10), "yes", "no")
	o := f.MustMarket(levee.Units(10), "yes", "no")
	if err := f.e.Void(ctx, d.ID); levee.ErrorCode(err) != levee.EFORBIDDEN {
		t.Fatalf("void of a decision market: %v", err)
	}
	if err := f.e.CloseMarket(ctx, d.ID); levee.ErrorCode(err) != levee.EFORBIDDEN {
		t.Fatalf("close of a decision market: %v", err)
	}
	if err := f.e.SettleWith(ctx, d.ID, -1, nil); levee.ErrorCode(err) != levee.EFORBIDDEN {
		t.Fatalf("a verdict voiding a decision market: %v", err)
	}
	if err := f.e.VoidDecision(ctx, o.ID); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("VoidDecision of an ordinary market: %v", err)
	}
	if err := f.e.VoidDecision(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
}

func TestOutcomeMayNotBeCalledVoid(t *testing.T) {
	f := MustFixture(t)
	for _, name := range []string{"void", "Void", " VOID ", "v.o.i.d", "ｖｏｉｄ", "vo-id"} {
		_, err := f.e.CreateMarket(context.Background(), engine.NewMarket{Question: "q?", Outcomes: []string{"yes", name},
			Liquidity: levee.Units(10), ClosesAt: time.Now().Add(time.Hour)})
		if levee.ErrorCode(err) != levee.EINVALID {
			t.Errorf("outcome %q: %v", name, err)
		}
	}
	for _, name := range []string{"avoid", "voided", "no"} {
		if engine.ClashesWithVoid(name) {
			t.Errorf("%q should be allowed", name)
		}
	}
}

// Random trading by many traders, colluding round trips among them, on
// ordinary and conditional markets, ending in a resolution or a void: the
// traders together never end with more than they started with plus the
// subsidy, a void leaves every trader exactly where they started (they
// all still hold their cash here), the funder never pays more than the
// subsidy, and the ledger balances.
func TestSettlementNeverPaysMoreThanWentIn(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	f := MustFixture(t)
	ctx := context.Background()
	const start = 5_000
	traders := f.MustAccounts(6, levee.Units(start))
	for round := range 8 {
		conditional, void := round%2 == 1, round/2%2 == 1
		var m engine.Market
		liquidity := levee.Units(int64(5 + r.IntN(50)))
		if conditional {
			m = f.MustConditional(liquidity, "a", "b", "c")
		} else {
			m = f.MustMarket(liquidity, "a", "b", "c")
		}
		before := map[int64]levee.Micros{}
		var total levee.Micros
		for _, a := range traders {
			before[a] = f.cash(a)
			total += before[a]
		}
		treasury := f.balance("treasury") + m.Subsidy
		for range 150 {
			a := traders[r.IntN(len(traders))]
			o := market.Order{Outcome: r.IntN(3)}
			switch r.IntN(6) {
			case 0:
				o.Side, o.Shares = market.Buy, levee.Micros(1+r.Int64N(int64(levee.Units(60))))
			case 1:
				o.Side, o.Amount = market.Buy, levee.Micros(1+r.Int64N(int64(levee.Units(40))))
			case 2:
				o.Side, o.Shares, o.LimitPrice = market.Buy, levee.Units(200), levee.Micros(r.Int64N(levee.Scale))
			case 3:
				o.Side, o.All = market.Sell, true
			case 4:
				o.Side, o.Shares = market.Sell, levee.Micros(1+r.Int64N(int64(levee.Units(30))))
			case 5: // a colluding round trip between two traders
				b := traders[r.IntN(len(traders))]
				f.e.Submit(ctx, a, m.ID, buy(o.Outcome, "80"), "")
				f.e.Submit(ctx, b, m.ID, buy(o.Outcome, "80"), "")
				f.e.Submit(ctx, a, m.ID, market.Order{Outcome: o.Outcome, Side: market.Sell, All: true}, "")
				f.e.Submit(ctx, b, m.ID, market.Order{Outcome: o.Outcome, Side: market.Sell, All: true}, "")
				continue
			}
			f.e.Submit(ctx, a, m.ID, o, "") // refusals (no shares, no cash, limits) are part of the flow
		}
		var err error
		switch {
		case void && conditional:
			err = f.e.VoidDecision(ctx, m.ID)
		case void:
			err = f.e.Void(ctx, m.ID)
		default:
			err = f.e.Resolve(ctx, m.ID, r.IntN(3))
		}
		if err != nil {
			t.Fatalf("round %d: settle: %v", round, err)
		}
		var after levee.Micros
		for _, a := range traders {
			after += f.cash(a)
			if void && f.cash(a) != before[a] {
				t.Fatalf("round %d (conditional %t): trader %d has %s after the void, had %s", round, conditional, a, f.cash(a), before[a])
			}
		}
		if after > total+m.Subsidy {
			t.Fatalf("round %d: traders hold %s, more than %s + subsidy %s", round, after, total, m.Subsidy)
		}
		got := f.balance("treasury")
		if got < treasury-m.Subsidy {
			t.Fatalf("round %d: the funder paid more than the subsidy: %s < %s", round, got, treasury-m.Subsidy)
		}
		if void && got != treasury {
			t.Fatalf("round %d: the funder did not get its subsidy back after a void: %s != %s", round, got, treasury)
		}
		if f.balance(fmt.Sprintf("market:%d:collateral", m.ID)) != 0 {
			t.Fatalf("round %d: collateral not emptied", round)
		}
	}
	f.MustVerify()
}

type barMap map[int64]map[int64]string

func (b barMap) BarredTraders(_ context.Context, marketID int64) (map[int64]string, error) {
	return b[marketID], nil
}

// A juror seated on a case about a market is barred from it at once (Bar,
// before the seating commits), stays barred across a restart (the source
// says so), and may trade again once the source lifts it (RefreshBars).
func TestBarredTradersAreRefused(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	juror, other := f.MustAccount("juror", levee.Units(100)), f.MustAccount("other", levee.Units(100))
	m := f.MustMarket(levee.Units(10), "yes", "no")
	src := barMap{}
	f.e.SetBarSource(src)
	f.mustSubmit(juror, m.ID, buy(0, "1"))
	f.e.Bar(m.ID, []int64{juror}, "you sit on the jury of case 1")
	if _, err := f.e.Submit(ctx, juror, m.ID, buy(1, "1"), ""); levee.ErrorCode(err) != levee.EFORBIDDEN {
		t.Fatalf("barred juror's order: %v", err)
	}
	f.mustSubmit(other, m.ID, buy(1, "1"))
	src[m.ID] = map[int64]string{juror: "you sit on the jury of case 1"}
	f.restart()
	f.e.SetBarSource(src)
	if _, err := f.e.Submit(ctx, juror, m.ID, sell(0, "1"), ""); levee.ErrorCode(err) != levee.EFORBIDDEN {
		t.Fatalf("barred juror's order after a restart: %v", err)
	}
	delete(src, m.ID)
	if err := f.e.RefreshBars(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	f.mustSubmit(juror, m.ID, sell(0, "1"))
}

// An extended close reloads the book in the middle of a round of orders;
// the orders after it in the same round must still find their traders'
// positions (they once indexed a forgotten position and panicked).
func TestOrdersRacingExtendClose(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	m := f.MustMarket(levee.Units(50), "yes", "no")
	traders := f.MustAccounts(8, levee.Units(1000))
	var wg sync.WaitGroup
	for _, a := range traders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				o := buy(i%2, "1")
				if i%3 == 2 {
					o = sell(i%2, "1")
				}
				f.e.Submit(ctx, a, m.ID, o, "") // some sells find nothing to sell: fine
			}
		}()
	}
	for i := range 40 {
		if err := f.e.ExtendClose(ctx, m.ID, time.Now().Add(time.Duration(2+i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	f.MustVerify()
}
