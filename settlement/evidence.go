package settlement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/files"
	"levee/input"
	"levee/pgtx"
)

// SubmitEvidence adds a party's evidence to a case: text, and optionally
// one file (checked by package files). Parties submit during the evidence
// period, and during an appeal round until its commit period ends.
// Errors: EINVALID, ETOOLARGE, EFORBIDDEN, ENOTFOUND, ECONFLICT.
func (s *Service) SubmitEvidence(ctx context.Context, who *accounts.Principal, id int64, body, fileName string, data []byte) (CaseView, error) {
	if err := input.Length("body", body, 1, 20000); err != nil {
		return CaseView{}, err
	}
	var name, ct *string
	var hash []byte
	if data != nil || fileName != "" {
		up, err := files.New(fileName, data)
		if err != nil {
			return CaseView{}, err
		}
		name, ct, hash = &up.Name, &up.ContentType, up.SHA256
	}
	_, err := s.act(ctx, id, func(tx *sqlx.Tx, c *Case) error {
		var party bool
		if err := tx.GetContext(ctx, &party, `SELECT EXISTS (SELECT 1 FROM case_parties WHERE case_id = $1 AND account_id = $2)`, c.ID, who.AccountID); err != nil {
			return err
		}
		if !party {
			return levee.Errorf(levee.EFORBIDDEN, "only the parties to case %d can submit evidence", c.ID)
		}
		var why string
		if err := tx.GetContext(ctx, &why, `SELECT why FROM case_rounds WHERE case_id = $1 AND round = $2`, c.ID, c.Round); err != nil {
			return err
		}
		if c.Status != StatusEvidence && !(c.Status == StatusCommit && why == "appeal") {
			return levee.Errorf(levee.ECONFLICT, "case %d takes no more evidence (it is in its %s period)", c.ID, c.Status)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO case_evidence (case_id, submitted_by, body, file_name, content_type, content, sha256, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, c.ID, who.AccountID, body, name, ct, data, hash, s.now())
		if err != nil {
			return err
		}
		return notifyAll(ctx, tx, `SELECT account_id FROM jurors WHERE case_id = $1 AND round = $2`, []any{c.ID, c.Round}, c.ID,
			"evidence", fmt.Sprintf("Case %d: new evidence from a party.", c.ID), nil, s.now())
	})
	if err != nil {
		return CaseView{}, err
	}
	return s.Case(ctx, who, id)
}

// EvidenceFile returns an evidence file's name, type and bytes if who may
// see the case's evidence (its parties and jurors, everyone once there is a
// verdict). Errors: ENOTFOUND (also for a caller who may not see it).
func (s *Service) EvidenceFile(ctx context.Context, who *accounts.Principal, caseID, evidenceID int64) (name, contentType string, data []byte, err error) {
	var me int64
	if who != nil {
		me = who.AccountID
	}
	var row struct {
		Name    string `db:"file_name"`
		Type    string `db:"content_type"`
		Content []byte `db:"content"`
	}
	err = s.db.GetContext(ctx, &row, `SELECT e.file_name, e.content_type, e.content FROM case_evidence e JOIN cases c ON c.id = e.case_id
		WHERE e.case_id = $1 AND e.id = $2 AND e.file_name IS NOT NULL
		  AND (c.verdict IS NOT NULL OR $4
		       OR EXISTS (SELECT 1 FROM case_parties p WHERE p.case_id = c.id AND p.account_id = $3)
		       OR EXISTS (SELECT 1 FROM jurors j WHERE j.case_id = c.id AND j.account_id = $3))`,
		caseID, evidenceID, me, who.Has(accounts.RoleAdmin))
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil, levee.Errorf(levee.ENOTFOUND, "no evidence file %d in case %d", evidenceID, caseID)
	} else if err != nil {
		return "", "", nil, pgtx.Unavailable(fmt.Errorf("evidence file: %w", err))
	}
	return row.Name, row.Type, row.Content, nil
}
