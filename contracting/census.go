package contracting

import (
	"context"
	"fmt"

	"levee"
	"levee/budgets"
	"levee/pgtx"
)

// CensusFigures summarises tenders and contracts for the public census:
// tenders by status, the awarded contracts and what their escrow still holds.
func (s *Service) CensusFigures(ctx context.Context) (budgets.ContractingFigure, error) {
	f := budgets.ContractingFigure{Source: "/api/v1/tenders", TendersByStatus: map[string]int{}, Contracts: []budgets.ContractSummary{}}
	var byStatus []struct {
		Status string `db:"status"`
		N      int    `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &byStatus, `SELECT status, count(*) AS n FROM tenders GROUP BY status`); err != nil {
		return f, pgtx.Unavailable(fmt.Errorf("census tenders: %w", err))
	}
	for _, r := range byStatus {
		f.TendersByStatus[r.Status] = r.N
	}
	if err := s.db.SelectContext(ctx, &f.Contracts, `
		SELECT c.id, t.title, a.name AS contractor, c.price, c.status, coalesce(l.balance, 0) AS in_escrow,
			'/api/v1/contracts/' || c.id AS source
		FROM contracts c JOIN tenders t ON t.id = c.tender_id JOIN accounts a ON a.id = c.contractor_id
		LEFT JOIN ledger_accounts l ON l.key = 'escrow:' || c.id
		ORDER BY c.id`); err != nil {
		return f, pgtx.Unavailable(fmt.Errorf("census contracts: %w", err))
	}
	for _, c := range f.Contracts {
		f.InEscrow += c.InEscrow
	}
	var contractors []int64
	if err := s.db.SelectContext(ctx, &contractors, `SELECT DISTINCT contractor_id FROM contracts ORDER BY contractor_id`); err != nil {
		return f, pgtx.Unavailable(fmt.Errorf("census contractors: %w", err))
	}
	f.TrackRecords = []budgets.TrackSummary{}
	for _, id := range contractors {
		tr, err := s.TrackRecord(ctx, id)
		if err != nil {
			return f, err
		}
		f.TrackRecords = append(f.TrackRecords, budgets.TrackSummary{Contractor: tr.Name, Contracts: tr.Contracts, Completed: tr.Completed,
			Failed: tr.Failed, OnTimeRate: tr.OnTimeRate, AverageLatenessDays: tr.AverageLatenessDays, Brier: tr.Brier,
			Source: "/api/v1/contractors/" + levee.FormatID(id) + "/track-record"})
	}
	return f, nil
}
