package crisis

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/input"
	"levee/pgtx"
)

// Charter is the node's constitution for crisis mode.
type Charter struct {
	Version           int           `json:"version" db:"version"`
	DistrictIDs       pq.Int64Array `json:"-" db:"district_ids"`
	StewardIDs        pq.Int64Array `json:"-" db:"steward_ids"`
	Quorum            int           `json:"quorum" db:"quorum"`
	VoteWindowUS      int64         `json:"-" db:"vote_window_us"`
	MaxEmergencyUS    int64         `json:"-" db:"max_emergency_us"`
	RenewalStepUS     int64         `json:"-" db:"renewal_step_us"`
	RenewalCapUS      int64         `json:"-" db:"renewal_cap_us"`
	SpendingCap       levee.Micros  `json:"spending_cap" db:"spending_cap"`
	PetitionThreshold int           `json:"petition_threshold" db:"petition_threshold"`
	CooldownUS        int64         `json:"-" db:"cooldown_us"`
	UpdatedAt         time.Time     `json:"updated_at" db:"updated_at"`

	Districts    []accounts.Named `json:"districts" db:"-"` // empty: every district
	Stewards     []accounts.Named `json:"stewards" db:"-"`  // empty: every steward
	Neighbours   []Neighbour      `json:"neighbours" db:"-"`
	VoteWindow   string           `json:"vote_window" db:"-"`
	MaxEmergency string           `json:"max_emergency" db:"-"`
	RenewalStep  string           `json:"renewal_step" db:"-"`
	RenewalCap   string           `json:"renewal_cap" db:"-"`
	Cooldown     string           `json:"cooldown" db:"-"`
	Changes      []Change         `json:"changes" db:"-"`
}

// Neighbour is a neighbouring node and the delegate who votes for it.
type Neighbour struct {
	ID           int64  `json:"id,string" db:"id"`
	Name         string `json:"name" db:"name"`
	DelegateID   int64  `json:"delegate,string" db:"delegate_id"`
	DelegateName string `json:"delegate_name" db:"-"`
}

// Change is one recorded change of the charter.
type Change struct {
	Version    int       `json:"version" db:"version"`
	Changes    jsonRaw   `json:"changes" db:"changes"`
	ProposalID *int64    `json:"proposal,omitempty,string" db:"proposal_id"`
	At         time.Time `json:"at" db:"at"`
}

type jsonRaw json.RawMessage

func (j jsonRaw) MarshalJSON() ([]byte, error) { return json.RawMessage(j).MarshalJSON() }
func (j jsonRaw) Value() (driver.Value, error) { return []byte(j), nil }
func (j *jsonRaw) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		*j = append((*j)[:0], v...)
	case string:
		*j = jsonRaw(v)
	default:
		return fmt.Errorf("cannot scan %T as JSON", src)
	}
	return nil
}

func us(n int64) time.Duration { return time.Duration(n) * time.Microsecond }

// durationText writes a duration in days when it is whole days.
func durationText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// parseDuration reads "72h", "90m" or "7d".
func parseDuration(field, s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int64
		days, err = strconv.ParseInt(n, 10, 32)
		d = time.Duration(days) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, levee.Invalid(field, "%s must be a positive duration such as 72h or 7d", field)
	}
	return d, nil
}

func getCharter(ctx context.Context, q sqlx.QueryerContext, lock string) (Charter, error) {
	var c Charter
	if err := sqlx.GetContext(ctx, q, &c, `SELECT version, district_ids, steward_ids, quorum, vote_window_us, max_emergency_us, renewal_step_us,
		renewal_cap_us, spending_cap, petition_threshold, cooldown_us, updated_at FROM charter `+lock); err != nil {
		return Charter{}, pgtx.Unavailable(fmt.Errorf("charter: %w", err))
	}
	c.VoteWindow, c.MaxEmergency = durationText(us(c.VoteWindowUS)), durationText(us(c.MaxEmergencyUS))
	c.RenewalStep, c.RenewalCap, c.Cooldown = durationText(us(c.RenewalStepUS)), durationText(us(c.RenewalCapUS)), durationText(us(c.CooldownUS))
	return c, nil
}

// Charter returns the charter with its neighbours and the record of its
// changes.
func (s *Service) Charter(ctx context.Context) (Charter, error) {
	c, err := getCharter(ctx, s.db, "")
	if err != nil {
		return Charter{}, err
	}
	c.Districts, c.Stewards, c.Neighbours, c.Changes = []accounts.Named{}, []accounts.Named{}, []Neighbour{}, []Change{}
	if c.Districts, err = accounts.NamedDistricts(ctx, s.db, c.DistrictIDs); err != nil {
		return Charter{}, err
	}
	if c.Stewards, err = accounts.NamedAccounts(ctx, s.db, c.StewardIDs); err != nil {
		return Charter{}, err
	}
	if c.Neighbours, err = neighbours(ctx, s.db); err != nil {
		return Charter{}, err
	}
	if err := s.db.SelectContext(ctx, &c.Changes, `SELECT version, changes, proposal_id, at FROM charter_changes ORDER BY id`); err != nil {
		return Charter{}, pgtx.Unavailable(err)
	}
	return c, nil
}

func neighbours(ctx context.Context, q sqlx.QueryerContext) ([]Neighbour, error) {
	ns := []Neighbour{}
	err := sqlx.SelectContext(ctx, q, &ns, `SELECT n.id, n.name, n.delegate_id FROM neighbours n ORDER BY n.id`)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("neighbours: %w", err))
	}
	if err := accounts.FillNames(ctx, q, ns, func(n *Neighbour) (int64, *string) { return n.DelegateID, &n.DelegateName }); err != nil {
		return nil, fmt.Errorf("neighbours: %w", err)
	}
	return ns, nil
}

// CharterChange is a change to the charter: the founding charter an admin
// sets once, or a quorum proposal of kind "charter". Unset fields keep
// their value. Names are district and account names.
type CharterChange struct {
	Districts         *[]string        `json:"districts,omitempty"`
	Stewards          *[]string        `json:"stewards,omitempty"`
	Neighbours        *[]NeighbourSpec `json:"neighbours,omitempty"` // added, or their delegate changed
	Quorum            *int             `json:"quorum,omitempty"`
	VoteWindow        *string          `json:"vote_window,omitempty"`
	MaxEmergency      *string          `json:"max_emergency,omitempty"`
	RenewalStep       *string          `json:"renewal_step,omitempty"`
	RenewalCap        *string          `json:"renewal_cap,omitempty"`
	SpendingCap       *levee.Micros    `json:"spending_cap,omitempty"`
	PetitionThreshold *int             `json:"petition_threshold,omitempty"`
	Cooldown          *string          `json:"cooldown,omitempty"`
}

// NeighbourSpec names a neighbour node and its delegate's account.
type NeighbourSpec struct {
	Name     string `json:"name"`
	Delegate string `json:"delegate"`
}

// Found sets the founding charter. An admin may do it once; every later
// change goes through the quorum. Errors: EINVALID, ECONFLICT (founded).
func (s *Service) Found(ctx context.Context, actor int64, ch CharterChange) (Charter, error) {
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, err := getCharter(ctx, tx, "FOR UPDATE"); err != nil {
			return err
		}
		var founded bool
		if err := tx.GetContext(ctx, &founded, `SELECT EXISTS (SELECT 1 FROM charter_changes)`); err != nil {
			return err
		}
		if founded {
			return levee.Errorf(levee.ECONFLICT, "the charter is founded; change it by a quorum proposal of kind \"charter\"")
		}
		if err := s.applyCharter(ctx, tx, ch, nil); err != nil {
			return err
		}
		return accounts.WriteAudit(ctx, tx, actor, "charter.found", map[string]any{"changes": ch})
	})
	if err != nil {
		return Charter{}, fmt.Errorf("found charter: %w", err)
	}
	return s.Charter(ctx)
}

// applyCharter validates and applies a change inside tx and records it.
func (s *Service) applyCharter(ctx context.Context, tx *sqlx.Tx, ch CharterChange, proposal *int64) error {
	c, err := getCharter(ctx, tx, "FOR UPDATE")
	if err != nil {
		return err
	}
	ids := func(field, table, role string, names []string) ([]int64, error) {
		out := []int64{}
		for _, n := range names {
			var id []int64
			q := `SELECT id FROM ` + table + ` WHERE name = $1`
			if role != "" {
				q += ` AND '` + role + `' = ANY (roles)`
			}
			if err := tx.SelectContext(ctx, &id, q, n); err != nil {
				return nil, err
			}
			if len(id) == 0 {
				return nil, levee.Invalid(field, "%q is not a known %s", n, strings.TrimSuffix(table, "s")+map[bool]string{true: " with the " + role + " role", false: ""}[role != ""])
			}
			out = append(out, id[0])
		}
		return out, nil
	}
	if ch.Districts != nil {
		if c.DistrictIDs, err = ids("districts", "districts", "", *ch.Districts); err != nil {
			return err
		}
	}
	if ch.Stewards != nil {
		if c.StewardIDs, err = ids("stewards", "accounts", accounts.RoleSteward, *ch.Stewards); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		field string
		v     *string
		dst   *int64
	}{{"vote_window", ch.VoteWindow, &c.VoteWindowUS}, {"max_emergency", ch.MaxEmergency, &c.MaxEmergencyUS},
		{"renewal_step", ch.RenewalStep, &c.RenewalStepUS}, {"renewal_cap", ch.RenewalCap, &c.RenewalCapUS}, {"cooldown", ch.Cooldown, &c.CooldownUS}} {
		if p.v != nil {
			d, err := parseDuration(p.field, *p.v)
			if err != nil {
				return err
			}
			*p.dst = d.Microseconds()
		}
	}
	if ch.SpendingCap != nil {
		if *ch.SpendingCap <= 0 {
			return levee.Invalid("spending_cap", "spending_cap must be positive")
		}
		c.SpendingCap = *ch.SpendingCap
	}
	if ch.PetitionThreshold != nil {
		if *ch.PetitionThreshold < 1 {
			return levee.Invalid("petition_threshold", "petition_threshold must be at least 1")
		}
		c.PetitionThreshold = *ch.PetitionThreshold
	}
	if ch.Quorum != nil {
		c.Quorum = *ch.Quorum
	}
	if c.RenewalCapUS < c.MaxEmergencyUS {
		return levee.Invalid("renewal_cap", "the renewal cap must be at least the longest emergency")
	}
	if ch.Neighbours != nil {
		for i, n := range *ch.Neighbours {
			if err := input.Length(fmt.Sprintf("neighbours[%d].name", i), n.Name, 1, 100); err != nil {
				return err
			}
			d, err := ids(fmt.Sprintf("neighbours[%d].delegate", i), "accounts", accounts.RoleDelegate, []string{n.Delegate})
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO neighbours (name, delegate_id) VALUES ($1, $2)
				ON CONFLICT (name) DO UPDATE SET delegate_id = EXCLUDED.delegate_id`, n.Name, d[0])
			if pgtx.IsUniqueViolation(err, "") {
				return levee.Invalid(fmt.Sprintf("neighbours[%d].delegate", i), "%s is already the delegate of another neighbour", n.Delegate)
			} else if err != nil {
				return err
			}
		}
	}
	var count int
	if err := tx.GetContext(ctx, &count, `SELECT count(*) FROM neighbours`); err != nil {
		return err
	}
	if c.Quorum < 1 || c.Quorum > max(count, 1) {
		return levee.Invalid("quorum", "the quorum must be from 1 to the number of neighbours (%d)", count)
	}
	c.Version++
	if _, err := tx.ExecContext(ctx, `UPDATE charter SET version = $1, district_ids = $2, steward_ids = $3, quorum = $4, vote_window_us = $5,
		max_emergency_us = $6, renewal_step_us = $7, renewal_cap_us = $8, spending_cap = $9, petition_threshold = $10, cooldown_us = $11, updated_at = $12`,
		c.Version, c.DistrictIDs, c.StewardIDs, c.Quorum, c.VoteWindowUS, c.MaxEmergencyUS, c.RenewalStepUS, c.RenewalCapUS,
		c.SpendingCap, c.PetitionThreshold, c.CooldownUS, s.now()); err != nil {
		return fmt.Errorf("update charter: %w", err)
	}
	b, _ := json.Marshal(ch)
	_, err = tx.ExecContext(ctx, `INSERT INTO charter_changes (version, changes, proposal_id, at) VALUES ($1, $2, $3, $4)`, c.Version, b, proposal, s.now())
	return err
}

// inScope reports whether district d is in ids (empty ids: every district).
func inScope(ids []int64, d int64) bool { return len(ids) == 0 || slices.Contains(ids, d) }
