package crisis

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/input"
	"levee/pgtx"
)

// A neighbour lost for good must not freeze the city: once it is suspended
// for its silence, the remaining neighbours' quorum can replace it by a
// charter decision, or the residents by a petition reaching the charter's
// petition_threshold.

// NeighbourPetition is residents' petition to replace a suspended neighbour.
type NeighbourPetition struct {
	ID          int64      `json:"id,string" db:"id"`
	Replaces    string     `json:"replaces" db:"replaces"`
	Name        string     `json:"name" db:"name"`
	URL         string     `json:"url" db:"url"`
	PublicKey   string     `json:"public_key" db:"public_key"`
	Reason      string     `json:"reason" db:"reason"`
	OpenedAt    time.Time  `json:"opened_at" db:"opened_at"`
	ExecutedAt  *time.Time `json:"executed_at,omitempty" db:"executed_at"`
	Signatures  int        `json:"signatures" db:"signatures"`
	Threshold   int        `json:"threshold" db:"-"`
	NeighbourID int64      `json:"neighbour,string" db:"neighbour_id"`
}

const petitionColumns = `p.id, n.name AS replaces, p.name, p.url, encode(p.public_key, 'hex') AS public_key, p.reason, p.opened_at, p.executed_at,
	(SELECT count(*) FROM neighbour_petition_signatures s WHERE s.petition_id = p.id) AS signatures, p.neighbour_id`

// NeighbourPetitions lists the petitions to replace neighbours, newest first.
func (s *Service) NeighbourPetitions(ctx context.Context) ([]NeighbourPetition, error) {
	c, err := getCharter(ctx, s.db, "")
	if err != nil {
		return nil, err
	}
	ps := []NeighbourPetition{}
	if err := s.db.SelectContext(ctx, &ps, `SELECT `+petitionColumns+` FROM neighbour_petitions p JOIN neighbours n ON n.id = p.neighbour_id ORDER BY p.id DESC LIMIT 200`); err != nil {
		return nil, pgtx.Unavailable(err)
	}
	for i := range ps {
		ps[i].Threshold = c.PetitionThreshold
	}
	return ps, nil
}

func getPetition(ctx context.Context, q sqlx.QueryerContext, id int64, lock string) (NeighbourPetition, error) {
	var p NeighbourPetition
	err := sqlx.GetContext(ctx, q, &p, `SELECT `+petitionColumns+` FROM neighbour_petitions p JOIN neighbours n ON n.id = p.neighbour_id WHERE p.id = $1 `+lock, id)
	if errors.Is(err, sql.ErrNoRows) {
		return p, levee.Errorf(levee.ENOTFOUND, "no neighbour petition %d", id)
	}
	return p, pgtx.Unavailable(err)
}

// PetitionToReplace opens residents' petition to replace neighbour id,
// which must be suspended, by the node spec n; the opener signs it first.
// Errors: EINVALID, EFORBIDDEN (not a resident), ENOTFOUND, ECONFLICT (the
// neighbour is not suspended).
func (s *Service) PetitionToReplace(ctx context.Context, who *accounts.Principal, neighbour int64, n NeighbourSpec, reason string) (NeighbourPetition, error) {
	if !who.Has(accounts.RoleResident) {
		return NeighbourPetition{}, levee.Errorf(levee.EFORBIDDEN, "residents petition to replace a neighbour")
	}
	if err := input.Length("reason", reason, 1, 5000); err != nil {
		return NeighbourPetition{}, err
	}
	if err := input.Length("name", n.Name, 1, 100); err != nil {
		return NeighbourPetition{}, err
	}
	key, err := checkNodeSpec(0, n)
	if err != nil {
		return NeighbourPetition{}, levee.Invalid(map[string]string{"neighbours[0].url": "url", "neighbours[0].public_key": "public_key"}[levee.ErrorField(err)], "%s", levee.ErrorMessage(err))
	}
	if err := s.suspendSilent(ctx); err != nil {
		return NeighbourPetition{}, err
	}
	var id int64
	err = pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		var suspended sql.NullTime
		if err := tx.GetContext(ctx, &suspended, `SELECT suspended_at FROM neighbours WHERE id = $1 FOR UPDATE`, neighbour); errors.Is(err, sql.ErrNoRows) {
			return levee.Errorf(levee.ENOTFOUND, "no neighbour %d", neighbour)
		} else if err != nil {
			return err
		}
		if !suspended.Valid {
			return levee.Errorf(levee.ECONFLICT, "neighbour %d is not suspended: only a neighbour silent for the charter's neighbour_silence may be replaced by petition", neighbour)
		}
		if err := tx.GetContext(ctx, &id, `INSERT INTO neighbour_petitions (neighbour_id, name, url, public_key, reason, opened_by, opened_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, neighbour, n.Name, n.URL, key, reason, who.AccountID, s.now()); err != nil {
			return err
		}
		return s.signPetition(ctx, tx, id, who.AccountID)
	})
	if err != nil {
		return NeighbourPetition{}, fmt.Errorf("petition to replace neighbour %d: %w", neighbour, err)
	}
	return s.neighbourPetition(ctx, id)
}

// SignNeighbourPetition adds a resident's signature; the one that reaches
// the threshold replaces the neighbour, if it is still suspended.
// Errors: EFORBIDDEN, ENOTFOUND, ECONFLICT (signed, or executed).
func (s *Service) SignNeighbourPetition(ctx context.Context, who *accounts.Principal, id int64) (NeighbourPetition, error) {
	if !who.Has(accounts.RoleResident) {
		return NeighbourPetition{}, levee.Errorf(levee.EFORBIDDEN, "residents petition to replace a neighbour")
	}
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error { return s.signPetition(ctx, tx, id, who.AccountID) })
	if err != nil {
		return NeighbourPetition{}, fmt.Errorf("sign neighbour petition %d: %w", id, err)
	}
	return s.neighbourPetition(ctx, id)
}

func (s *Service) neighbourPetition(ctx context.Context, id int64) (NeighbourPetition, error) {
	p, err := getPetition(ctx, s.db, id, "")
	if err != nil {
		return p, err
	}
	c, err := getCharter(ctx, s.db, "")
	p.Threshold = c.PetitionThreshold
	return p, err
}

// signPetition counts a signature under the charter's lock, so that of two
// last signatures arriving together the second sees the first.
func (s *Service) signPetition(ctx context.Context, tx *sqlx.Tx, id, account int64) error {
	c, err := getCharter(ctx, tx, "FOR UPDATE")
	if err != nil {
		return err
	}
	p, err := getPetition(ctx, tx, id, "FOR UPDATE OF p")
	if err != nil {
		return err
	}
	if p.ExecutedAt != nil {
		return levee.Errorf(levee.ECONFLICT, "petition %d was carried at %s", id, p.ExecutedAt.UTC().Format(time.RFC3339))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO neighbour_petition_signatures (petition_id, account_id, at) VALUES ($1, $2, $3)`, id, account, s.now()); pgtx.IsUniqueViolation(err, "") {
		return levee.Errorf(levee.ECONFLICT, "you have signed petition %d", id)
	} else if err != nil {
		return err
	}
	if p.Signatures+1 < c.PetitionThreshold {
		return nil
	}
	var suspended bool
	if err := tx.GetContext(ctx, &suspended, `SELECT suspended_at IS NOT NULL FROM neighbours WHERE id = $1 FOR UPDATE`, p.NeighbourID); err != nil {
		return err
	}
	if !suspended {
		return levee.Errorf(levee.ECONFLICT, "%s has spoken again and is no longer suspended; the petition cannot replace it", p.Replaces)
	}
	key, _ := checkNodeSpec(0, NeighbourSpec{Name: p.Name, URL: p.URL, PublicKey: p.PublicKey})
	if _, err := tx.ExecContext(ctx, `UPDATE neighbours SET name = $2, url = $3, public_key = $4, delegate_id = NULL, suspended_at = NULL,
		last_heard_at = NULL, added_at = $5 WHERE id = $1`, p.NeighbourID, p.Name, p.URL, key, s.now()); pgtx.IsUniqueViolation(err, "") {
		return levee.Errorf(levee.ECONFLICT, "another neighbour already has the name or key the petition names")
	} else if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE neighbour_petitions SET executed_at = $2 WHERE id = $1`, id, s.now()); err != nil {
		return err
	}
	b, _ := json.Marshal(map[string]any{"petition": fmt.Sprint(id), "replaced": p.Replaces, "neighbours": []NeighbourSpec{{Name: p.Name, URL: p.URL, PublicKey: p.PublicKey}}})
	if _, err := tx.ExecContext(ctx, `UPDATE charter SET version = version + 1, updated_at = $1`, s.now()); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO charter_changes (version, changes, proposal_id, at) VALUES ($1, $2, NULL, $3)`, c.Version+1, b, s.now())
	return err
}
