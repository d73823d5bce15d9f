package census

import (
	"context"
	"fmt"

	"levee"
	"levee/contracting"
	"levee/ledger"
)

// Contracting is what the census needs of contracting.
type Contracting interface {
	TendersByStatus(ctx context.Context) (map[string]int, error)
	ContractLines(ctx context.Context) ([]contracting.ContractLine, error)
	ContractorIDs(ctx context.Context) ([]int64, error)
	TrackRecord(ctx context.Context, contractor int64) (contracting.TrackRecord, error)
}

// ContractingFigure counts tenders by status and lists awarded contracts
// with what their escrow still holds.
type ContractingFigure struct {
	Source          string            `json:"source"`
	TendersByStatus map[string]int    `json:"tenders_by_status"`
	Contracts       []ContractSummary `json:"contracts"`
	InEscrow        levee.Micros      `json:"committed_in_escrow"`
	TrackRecords    []TrackSummary    `json:"contractor_track_records"`
}

// TrackSummary is one contractor's record in the census.
type TrackSummary struct {
	Contractor          string        `json:"contractor"`
	Contracts           int           `json:"contracts"`
	Completed           int           `json:"completed"`
	Failed              int           `json:"failed"`
	OnTimeRate          *levee.Micros `json:"on_time_rate"`
	AverageLatenessDays *levee.Micros `json:"average_lateness_days"`
	Brier               *levee.Micros `json:"brier_score"`
	Source              string        `json:"source"`
}

// ContractSummary is one awarded contract in the census.
type ContractSummary struct {
	ID         int64        `json:"id,string"`
	Tender     string       `json:"tender"`
	Contractor string       `json:"contractor"`
	Price      levee.Micros `json:"price"`
	Status     string       `json:"status"`
	InEscrow   levee.Micros `json:"in_escrow"`
	Source     string       `json:"source"`
}

// contractingFigure summarises tenders and contracts: tenders by status,
// the awarded contracts and what their escrow still holds, and each
// contractor's track record.
func (s *Service) contractingFigure(ctx context.Context) (ContractingFigure, error) {
	f := ContractingFigure{Source: "/api/v1/tenders", Contracts: []ContractSummary{}, TrackRecords: []TrackSummary{}}
	var err error
	if f.TendersByStatus, err = s.src.Contracting.TendersByStatus(ctx); err != nil {
		return f, fmt.Errorf("census tenders: %w", err)
	}
	lines, err := s.src.Contracting.ContractLines(ctx)
	if err != nil {
		return f, fmt.Errorf("census contracts: %w", err)
	}
	ids, keys := make([]int64, len(lines)), make([]string, len(lines))
	for i, c := range lines {
		ids[i], keys[i] = c.Contractor, ledger.Escrow(c.ID)
	}
	names, err := s.src.Accounts.Names(ctx, ids)
	if err != nil {
		return f, fmt.Errorf("census contracts: %w", err)
	}
	escrow, err := s.src.Ledger.Balances(ctx, keys)
	if err != nil {
		return f, fmt.Errorf("census contracts: %w", err)
	}
	for _, c := range lines {
		in := escrow[ledger.Escrow(c.ID)]
		f.Contracts = append(f.Contracts, ContractSummary{ID: c.ID, Tender: c.Tender, Contractor: names[c.Contractor], Price: c.Price,
			Status: c.Status, InEscrow: in, Source: "/api/v1/contracts/" + levee.FormatID(c.ID)})
		f.InEscrow += in
	}
	contractors, err := s.src.Contracting.ContractorIDs(ctx)
	if err != nil {
		return f, fmt.Errorf("census contractors: %w", err)
	}
	for _, id := range contractors {
		tr, err := s.src.Contracting.TrackRecord(ctx, id)
		if err != nil {
			return f, err
		}
		f.TrackRecords = append(f.TrackRecords, TrackSummary{Contractor: tr.Name, Contracts: tr.Contracts, Completed: tr.Completed,
			Failed: tr.Failed, OnTimeRate: tr.OnTimeRate, AverageLatenessDays: tr.AverageLatenessDays, Brier: tr.Brier,
			Source: "/api/v1/contractors/" + levee.FormatID(id) + "/track-record"})
	}
	return f, nil
}
