package contracting

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

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
	return outbox.AddAll(ctx, tx, `SELECT $1::bigint AS account_id UNION SELECT member_id FROM organisation_members WHERE organisation_id = $1`,
		[]any{c.ContractorID}, outbox.Notice{Kind: "payment", Message: msg, Link: "/contracts/" + itoa(c.ID), At: s.now()})
}
