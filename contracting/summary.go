package contracting

import (
	"context"
	"fmt"

	"levee"
	"levee/pgtx"
)

// TendersByStatus counts tenders by status.
func (s *Service) TendersByStatus(ctx context.Context) (map[string]int, error) {
	var rows []struct {
		Status string `db:"status"`
		N      int    `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT status, count(*) AS n FROM tenders GROUP BY status`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("tenders by status: %w", err))
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}

// ContractLine is one awarded contract in a list.
type ContractLine struct {
	ID         int64        `db:"id"`
	Tender     string       `db:"title"`
	Contractor int64        `db:"contractor_id"`
	Price      levee.Micros `db:"price"`
	Status     string       `db:"status"`
}

// ContractLines lists every awarded contract, oldest first.
func (s *Service) ContractLines(ctx context.Context) ([]ContractLine, error) {
	out := []ContractLine{}
	if err := s.db.SelectContext(ctx, &out, `SELECT c.id, t.title, c.contractor_id, c.price, c.status
		FROM contracts c JOIN tenders t ON t.id = c.tender_id ORDER BY c.id`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("contract lines: %w", err))
	}
	return out, nil
}

// ContractorIDs lists the contractors that hold or held a contract.
func (s *Service) ContractorIDs(ctx context.Context) ([]int64, error) {
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, `SELECT DISTINCT contractor_id FROM contracts ORDER BY contractor_id`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("contractors: %w", err))
	}
	return ids, nil
}
