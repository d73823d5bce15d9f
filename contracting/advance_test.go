package contracting_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"levee"
	"levee/contracting"
	"levee/ledger"
	"levee/market"
	"levee/outbox"
)

// notices returns an account's notifications of kind, newest first.
func (w *world) notices(t *testing.T, account int64, kind string) []outbox.Notification {
	t.Helper()
	ns, err := outbox.List(context.Background(), w.db, account, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []outbox.Notification
	for _, n := range ns {
		if n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

// TestAdvanceAndNotices runs a contract with nobody reading it: the
// background Advance pays a claim past its dispute window and settles the
// contract at its completion date, and everyone whose money or work moved
// is told (award won or lost, refunds of the voided markets, reminders of
// milestones due, once each, and the payment).
func TestAdvanceAndNotices(t *testing.T) {
	w := MustWorld(t)
	ctx := context.Background()
	tv := w.tender(t)
	w.bid(t, tv, 0, "100")
	w.bid(t, tv, 1, "90")
	w.clock.Add(time.Hour)
	if _, err := w.svc.CloseBids(ctx, w.treasurer.AccountID, tv.ID); err != nil {
		t.Fatal(err)
	}
	bs, _ := w.svc.Bids(ctx, nil, tv.ID)
	w.clock.Add(8 * time.Hour)
	for _, o := range []struct {
		who, bid, outcome int
	}{{0, 0, 0}, {1, 1, 1}} {
		if _, err := w.eng.Submit(ctx, w.residents[o.who].AccountID, *bs[o.bid].MarketID,
			market.Order{Outcome: o.outcome, Side: market.Buy, Amount: levee.Units(5)}, ""); err != nil {
			t.Fatal(err)
		}
	}
	w.clock.Add(2 * time.Hour)
	tvA, err := w.svc.Award(ctx, w.treasurer.AccountID, tv.ID)
	if err != nil || tvA.Contract == nil {
		t.Fatalf("award: %+v %v", tvA, err)
	}
	cid := *tvA.Contract
	won, lost := w.notices(t, w.orgs[0].AccountID, "award_won"), w.notices(t, w.orgs[1].AccountID, "award_lost")
	if len(won) != 1 || won[0].Deadline == nil || !won[0].Deadline.Equal(bs[0].MilestoneDates[0]) || !strings.Contains(won[0].Message, "your bid of 100.000000 won") {
		t.Fatalf("the winner's notice: %+v", won)
	}
	if len(lost) != 1 || !strings.Contains(lost[0].Message, "went to another bid") {
		t.Fatalf("the loser's notice: %+v", lost)
	}
	if got := w.notices(t, w.orgs[2].AccountID, "award_lost"); len(got) != 0 {
		t.Fatalf("an organisation that did not bid was told: %+v", got)
	}
	refund := w.notices(t, w.residents[1].AccountID, "payment")
	if len(refund) != 1 || !strings.Contains(refund[0].Message, "was voided: 5.000000 is returned to your account") {
		t.Fatalf("the refund's notice: %+v", refund)
	}

	// Nothing is due for a month: no reminder.
	if err := w.svc.Advance(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.notices(t, w.orgs[0].AccountID, "milestone_due"); len(got) != 0 {
		t.Fatalf("reminded a month ahead: %+v", got)
	}
	// Two days before: both milestones (due an hour apart) are reminded,
	// once each, however often Advance runs.
	w.clock.Add(bs[0].MilestoneDates[0].Sub(w.clock.Now()) - 47*time.Hour)
	for range 3 {
		if err := w.svc.Advance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	due := w.notices(t, w.orgs[0].AccountID, "milestone_due")
	if len(due) != 2 || due[0].Deadline == nil || !strings.Contains(due[1].Message+due[0].Message, "milestone 1 (a) is due") {
		t.Fatalf("reminders: %+v", due)
	}

	// A claim past its dispute window is paid by Advance alone.
	if _, err := w.svc.Claim(ctx, w.orgs[0], cid, 1, "done"); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(25 * time.Hour)
	if err := w.svc.Advance(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.balance(t, ledger.Cash(w.orgs[0].AccountID)); got != levee.Units(25) {
		t.Fatalf("contractor cash after Advance: %s", got)
	}
	if paid := w.notices(t, w.orgs[0].AccountID, "payment"); len(paid) != 1 || !strings.Contains(paid[0].Message, "25.000000 is paid") {
		t.Fatalf("the payment's notice: %+v", paid)
	}
	// Milestone 2 is never claimed: past the completion date Advance fails
	// the contract and resolves its market "no", and resident 0, who bought
	// "yes", is told of nothing paid (a notice goes only with money).
	w.clock.Add(48 * time.Hour)
	if err := w.svc.Advance(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := w.svc.Contract(ctx, cid)
	if err != nil || c.Status != contracting.ContractFailed {
		t.Fatalf("contract %+v %v", c, err)
	}
	if got := w.notices(t, w.residents[0].AccountID, "payment"); len(got) != 0 {
		t.Fatalf("a loser was told of a payment: %+v", got)
	}
	if got := w.notices(t, w.orgs[0].AccountID, "milestone_due"); len(got) != 2 {
		t.Fatalf("reminded again: %+v", got)
	}
}
