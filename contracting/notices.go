package contracting

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/outbox"
)

// tellPaid tells a contractor (the organisation and the people who act for
// it) that milestone m of contract c is accepted and, if it carries money,
// paid; written in the transaction that pays.
func (s *Service) tellPaid(ctx context.Context, tx *sqlx.Tx, c *Contract, m *ContractMilestone) error {
	msg := fmt.Sprintf("Contract %d: milestone %d (%s) is accepted.", c.ID, m.N, m.Title)
	if m.Amount > 0 {
		msg = fmt.Sprintf("Contract %d: milestone %d (%s) is accepted and %s is paid from escrow to your account.", c.ID, m.N, m.Title, m.Amount)
	}
	members, err := accounts.Members(ctx, tx, c.ContractorID)
	if err != nil {
		return err
	}
	return outbox.AddTo(ctx, tx, append([]int64{c.ContractorID}, members...), outbox.Notice{Kind: "payment", Message: msg, Link: "/contracts/" + levee.FormatID(c.ID), At: s.now()})
}

// tellAward tells every bidder of tender t (each organisation and the
// people who act for it) how the award went for them: the winner its
// contract and the milestones' due dates, the others that their bid did not
// win and why, with the award's computation a click away. win is the
// winning bid's index in bids, -1 when none won; cid its contract.
func (s *Service) tellAward(ctx context.Context, tx *sqlx.Tx, t *Tender, bids []Bid, win int, cid int64) error {
	now := s.now()
	for i, b := range bids {
		members, err := accounts.Members(ctx, tx, b.OrganisationID)
		if err != nil {
			return err
		}
		who := append([]int64{b.OrganisationID}, members...)
		n := outbox.Notice{Kind: "award_lost", Link: "/tenders/" + levee.FormatID(t.ID), At: now}
		switch {
		case i == win:
			var due strings.Builder
			for k, d := range b.MilestoneDates {
				if k > 0 {
					due.WriteString("; ")
				}
				fmt.Fprintf(&due, "milestone %d by %s", k+1, d.UTC().Format("2 Jan 2006"))
			}
			first := b.MilestoneDates[0]
			n.Kind, n.Link, n.Deadline = "award_won", "/contracts/"+levee.FormatID(cid), &first
			how := fmt.Sprintf("your bid of %s won", b.Price)
			if b.MarketID == nil {
				how = fmt.Sprintf("the work is awarded to you directly at %s, under emergency powers", b.Price)
			}
			n.Message = fmt.Sprintf("Tender %d (%s): %s. Contract %d is open and its price is held in escrow. Due: %s; claim each milestone on the contract page when it is done.",
				t.ID, t.Title, how, cid, due.String())
		case win < 0:
			n.Message = fmt.Sprintf("Tender %d (%s) was not awarded: no bid reached the confidence the tender asked for. Your bid's decision market was voided and its traders refunded.", t.ID, t.Title)
		default:
			n.Message = fmt.Sprintf("Tender %d (%s) went to another bid, which had the best price per chance of success. Your bid's decision market was voided and its traders refunded.", t.ID, t.Title)
		}
		if err := outbox.AddTo(ctx, tx, who, n); err != nil {
			return err
		}
	}
	return nil
}
