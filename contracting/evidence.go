package contracting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/files"
	"levee/pgtx"
)

// MaxEvidenceBytes bounds one evidence file.
const MaxEvidenceBytes = files.MaxBytes

// EvidenceFile describes an uploaded file without its bytes.
type EvidenceFile struct {
	files.Stored
	ContractID int64 `json:"contract,string" db:"contract_id"`
	Milestone  int   `json:"milestone" db:"milestone"`
}

func (f *EvidenceFile) fill() { f.Stored.Fill("/api/v1/evidence/") }

// AttachEvidence stores a file for a milestone of a contract. Only the
// contractor (or a member acting for it) may attach, and only before the
// milestone is accepted. Errors: EINVALID/ETOOLARGE (file), EUNAUTHORIZED,
// EFORBIDDEN, ENOTFOUND, ECONFLICT.
func (s *Service) AttachEvidence(ctx context.Context, who *accounts.Principal, contractID int64, n int, name string, data []byte) (EvidenceFile, error) {
	up, err := files.New(name, data)
	if err != nil {
		return EvidenceFile{}, err
	}
	var f EvidenceFile
	_, err = s.milestoneAction(ctx, contractID, n, func(tx *sqlx.Tx, c *Contract, t *Tender, m *ContractMilestone) error {
		if err := actsFor(ctx, tx, who, c.ContractorID); err != nil {
			return levee.Errorf(levee.EFORBIDDEN, "only the contractor can attach evidence to its milestones")
		}
		if m.Status == MilestoneAccepted {
			return levee.Errorf(levee.ECONFLICT, "milestone %d is already accepted", m.N)
		}
		return tx.GetContext(ctx, &f, `
			INSERT INTO contract_evidence (contract_id, milestone, name, content_type, size, sha256, data, uploaded_by, uploaded_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			RETURNING id, contract_id, milestone, name, content_type, size, sha256, uploaded_at`,
			c.ID, m.N, up.Name, up.ContentType, up.Size(), up.SHA256, up.Data, who.AccountID, s.now())
	})
	if err != nil {
		return EvidenceFile{}, err
	}
	f.fill()
	return f, nil
}

// Evidence lists the files attached to a milestone, oldest first.
func (s *Service) Evidence(ctx context.Context, contractID int64, n int) ([]EvidenceFile, error) {
	fs := []EvidenceFile{}
	err := s.db.SelectContext(ctx, &fs, `SELECT id, contract_id, milestone, name, content_type, size, sha256, uploaded_at
		FROM contract_evidence WHERE contract_id = $1 AND milestone = $2 ORDER BY id`, contractID, n)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list evidence: %w", err))
	}
	for i := range fs {
		fs[i].fill()
	}
	return fs, nil
}

// EvidenceContent returns one file and its bytes. Errors: ENOTFOUND.
func (s *Service) EvidenceContent(ctx context.Context, id int64) (EvidenceFile, []byte, error) {
	var row struct {
		EvidenceFile
		Data []byte `db:"data"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT id, contract_id, milestone, name, content_type, size, sha256, uploaded_at, data
		FROM contract_evidence WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return EvidenceFile{}, nil, levee.Errorf(levee.ENOTFOUND, "no evidence file %d", id)
	} else if err != nil {
		return EvidenceFile{}, nil, pgtx.Unavailable(fmt.Errorf("read evidence: %w", err))
	}
	row.EvidenceFile.fill()
	return row.EvidenceFile, row.Data, nil
}
