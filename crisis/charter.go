package crisis

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"encoding/hex"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/federation"
	"levee/input"
	"levee/pgtx"
)

// Charter is the node's constitution for crisis mode.
type Charter struct {
	Version           int            `json:"version" db:"version"`
	DistrictIDs       pq.Int64Array  `json:"-" db:"district_ids"`
	StewardIDs        pq.Int64Array  `json:"-" db:"steward_ids"`
	Quorum            int            `json:"quorum" db:"quorum"`
	VoteWindowUS      int64          `json:"-" db:"vote_window_us"`
	MaxEmergencyUS    int64          `json:"-" db:"max_emergency_us"`
	RenewalStepUS     int64          `json:"-" db:"renewal_step_us"`
	RenewalCapUS      int64          `json:"-" db:"renewal_cap_us"`
	SpendingCap       levee.Micros   `json:"spending_cap" db:"spending_cap"`
	PetitionThreshold int            `json:"petition_threshold" db:"petition_threshold"`
	CooldownUS        int64          `json:"-" db:"cooldown_us"`
	SilenceUS         int64          `json:"-" db:"neighbour_silence_us"`
	VoterRoles        pq.StringArray `json:"voter_roles" db:"voter_roles"`
	RetiredAt         *time.Time     `json:"founder_retired_at,omitempty" db:"retired_at"`
	UpdatedAt         time.Time      `json:"updated_at" db:"updated_at"`

	Districts    []accounts.Named `json:"districts" db:"-"` // empty: every district
	Stewards     []accounts.Named `json:"stewards" db:"-"`  // empty: every steward
	Neighbours   []Neighbour      `json:"neighbours" db:"-"`
	VoteWindow   string           `json:"vote_window" db:"-"`
	MaxEmergency string           `json:"max_emergency" db:"-"`
	RenewalStep  string           `json:"renewal_step" db:"-"`
	RenewalCap   string           `json:"renewal_cap" db:"-"`
	Cooldown     string           `json:"cooldown" db:"-"`
	// NeighbourSilence is how long a neighbour node may say nothing before
	// it is suspended and the quorum counted without it.
	NeighbourSilence string   `json:"neighbour_silence" db:"-"`
	Changes          []Change `json:"changes" db:"-"`
}

// Neighbour is a neighbouring node: its URL and pinned public key (or, on
// a charter from before nodes, the local delegate who once voted for it:
// such a neighbour is suspended until the charter names its node).
type Neighbour struct {
	ID           int64      `json:"id,string" db:"id"`
	Name         string     `json:"name" db:"name"`
	URL          string     `json:"url,omitempty" db:"url"`
	PublicKey    string     `json:"public_key,omitempty" db:"public_key"`
	Fingerprint  string     `json:"fingerprint,omitempty" db:"-"`
	LastHeardAt  *time.Time `json:"last_heard_at,omitempty" db:"last_heard_at"`
	SuspendedAt  *time.Time `json:"suspended_at,omitempty" db:"suspended_at"`
	DelegateID   *int64     `json:"delegate,omitempty,string" db:"delegate_id"`
	DelegateName string     `json:"delegate_name,omitempty" db:"-"`
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
		renewal_cap_us, spending_cap, petition_threshold, cooldown_us, neighbour_silence_us, voter_roles, retired_at, updated_at FROM charter `+lock); err != nil {
		return Charter{}, pgtx.Unavailable(fmt.Errorf("charter: %w", err))
	}
	c.VoteWindow, c.MaxEmergency = durationText(us(c.VoteWindowUS)), durationText(us(c.MaxEmergencyUS))
	c.RenewalStep, c.RenewalCap, c.Cooldown = durationText(us(c.RenewalStepUS)), durationText(us(c.RenewalCapUS)), durationText(us(c.CooldownUS))
	c.NeighbourSilence = durationText(us(c.SilenceUS))
	return c, nil
}

// Charter returns the charter with its neighbours and the record of its
// changes.
func (s *Service) Charter(ctx context.Context) (Charter, error) {
	if err := s.suspendSilent(ctx); err != nil {
		return Charter{}, err
	}
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
	err := sqlx.SelectContext(ctx, q, &ns, `SELECT n.id, n.name, coalesce(n.url, '') AS url, coalesce(encode(n.public_key, 'hex'), '') AS public_key,
		n.last_heard_at, n.suspended_at, n.delegate_id FROM neighbours n ORDER BY n.id`)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("neighbours: %w", err))
	}
	for i := range ns {
		if k, err := hex.DecodeString(ns[i].PublicKey); err == nil && len(k) > 0 {
			ns[i].Fingerprint = federation.Fingerprint(k)
		}
	}
	if err := accounts.FillNames(ctx, q, ns, func(n *Neighbour) (int64, *string) {
		if n.DelegateID == nil {
			return 0, &n.DelegateName
		}
		return *n.DelegateID, &n.DelegateName
	}); err != nil {
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
	Neighbours        *[]NeighbourSpec `json:"neighbours,omitempty"` // added, or their URL or key changed
	Quorum            *int             `json:"quorum,omitempty"`
	VoteWindow        *string          `json:"vote_window,omitempty"`
	MaxEmergency      *string          `json:"max_emergency,omitempty"`
	RenewalStep       *string          `json:"renewal_step,omitempty"`
	RenewalCap        *string          `json:"renewal_cap,omitempty"`
	SpendingCap       *levee.Micros    `json:"spending_cap,omitempty"`
	PetitionThreshold *int             `json:"petition_threshold,omitempty"`
	Cooldown          *string          `json:"cooldown,omitempty"`
	NeighbourSilence  *string          `json:"neighbour_silence,omitempty"`
	// Voters are the roles whose holders answer the neighbours' requests
	// on this node (default steward and treasurer).
	Voters *[]string `json:"voters,omitempty"`
}

// NeighbourSpec names a neighbour node: its name, URL and Ed25519 public
// key (hex, as its GET /api/v1/node shows).
type NeighbourSpec struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	PublicKey string `json:"public_key,omitempty"`
}

// Found sets the founding charter. An admin may do it once; every later
// change goes through the quorum. Errors: EINVALID, ECONFLICT (founded).
func (s *Service) Found(ctx context.Context, actor int64, ch CharterChange) (Charter, error) {
	if err := s.confirmNodes(ctx, ch); err != nil {
		return Charter{}, err
	}
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
		if err := accounts.MarkFounded(ctx, tx, s.now()); err != nil {
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
		{"renewal_step", ch.RenewalStep, &c.RenewalStepUS}, {"renewal_cap", ch.RenewalCap, &c.RenewalCapUS}, {"cooldown", ch.Cooldown, &c.CooldownUS},
		{"neighbour_silence", ch.NeighbourSilence, &c.SilenceUS}} {
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
	if ch.Voters != nil {
		if len(*ch.Voters) == 0 {
			return levee.Invalid("voters", "voters must name at least one role")
		}
		for _, r := range *ch.Voters {
			if !slices.Contains(accounts.AllRoles, r) {
				return levee.Invalid("voters", "%q is not a role (%v)", r, accounts.AllRoles)
			}
		}
		c.VoterRoles = *ch.Voters
	}
	if c.RenewalCapUS < c.MaxEmergencyUS {
		return levee.Invalid("renewal_cap", "the renewal cap must be at least the longest emergency")
	}
	if ch.Neighbours != nil {
		for i, n := range *ch.Neighbours {
			if err := input.Length(fmt.Sprintf("neighbours[%d].name", i), n.Name, 1, 100); err != nil {
				return err
			}
			if n.PublicKey != "" || n.URL != "" {
				key, err := checkNodeSpec(i, n)
				if err != nil {
					return err
				}
				// Changing a neighbour's key is this: a charter decision.
				// A new key is a new node: it has said nothing yet.
				_, err = tx.ExecContext(ctx, `INSERT INTO neighbours (name, url, public_key, added_at) VALUES ($1, $2, $3, $4)
					ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, public_key = EXCLUDED.public_key, delegate_id = NULL,
					suspended_at = CASE WHEN neighbours.public_key = EXCLUDED.public_key THEN neighbours.suspended_at END,
					last_heard_at = CASE WHEN neighbours.public_key = EXCLUDED.public_key THEN neighbours.last_heard_at END,
					added_at = CASE WHEN neighbours.public_key = EXCLUDED.public_key THEN neighbours.added_at ELSE EXCLUDED.added_at END`, n.Name, n.URL, key, s.now())
				if pgtx.IsUniqueViolation(err, "") {
					return levee.Invalid(fmt.Sprintf("neighbours[%d].public_key", i), "another neighbour already has this key")
				} else if err != nil {
					return err
				}
				continue
			}
			// A local account voting on behalf of another city is what
			// neighbours were before they were nodes; a charter names nodes.
			return levee.Invalid(fmt.Sprintf("neighbours[%d].url", i),
				"a neighbour is a node: give its url and public_key (as its GET /api/v1/node shows); local delegate accounts no longer vote for another city")
		}
	}
	var count int
	if err := tx.GetContext(ctx, &count, `SELECT count(*) FROM neighbours`); err != nil {
		return err
	}
	if count == 0 && ch.Neighbours != nil {
		return levee.Invalid("neighbours", "a charter names at least one neighbour")
	}
	if c.Quorum < 1 || c.Quorum > max(count, 1) {
		return levee.Invalid("quorum", "the quorum must be from 1 to the number of neighbours (%d)", count)
	}
	c.Version++
	if _, err := tx.ExecContext(ctx, `UPDATE charter SET version = $1, district_ids = $2, steward_ids = $3, quorum = $4, vote_window_us = $5,
		max_emergency_us = $6, renewal_step_us = $7, renewal_cap_us = $8, spending_cap = $9, petition_threshold = $10, cooldown_us = $11, updated_at = $12,
		neighbour_silence_us = $13, voter_roles = $14`,
		c.Version, c.DistrictIDs, c.StewardIDs, c.Quorum, c.VoteWindowUS, c.MaxEmergencyUS, c.RenewalStepUS, c.RenewalCapUS,
		c.SpendingCap, c.PetitionThreshold, c.CooldownUS, s.now(), c.SilenceUS, c.VoterRoles); err != nil {
		return fmt.Errorf("update charter: %w", err)
	}
	b, _ := json.Marshal(ch)
	_, err = tx.ExecContext(ctx, `INSERT INTO charter_changes (version, changes, proposal_id, at) VALUES ($1, $2, $3, $4)`, c.Version, b, proposal, s.now())
	return err
}

// inScope reports whether district d is in ids (empty ids: every district).
func inScope(ids []int64, d int64) bool { return len(ids) == 0 || slices.Contains(ids, d) }

// confirmNodes fetches each neighbour node's GET /api/v1/node at founding.
// A neighbour given without a key is refused with the key and fingerprint
// its node answers, for the admin to confirm (read over the phone) and
// send back as public_key; a key that differs from what the node answers
// is refused loudly. A node that cannot be reached keeps the key the admin
// confirmed.
func (s *Service) confirmNodes(ctx context.Context, ch CharterChange) error {
	if ch.Neighbours == nil {
		return nil
	}
	for i, n := range *ch.Neighbours {
		if n.URL == "" {
			continue
		}
		field := fmt.Sprintf("neighbours[%d]", i)
		id, err := fetchNode(ctx, s.opts.HTTP, n.URL)
		if err != nil {
			if n.PublicKey == "" {
				return levee.Invalid(field+".public_key", "the node at %s cannot be reached (%v): give its public_key as its operator reads it to you", n.URL, err)
			}
			continue
		}
		if n.PublicKey == "" {
			return levee.Invalid(field+".public_key", "the node at %s is %q with key %s, fingerprint %s: check the fingerprint with its operator and send the key as public_key to confirm",
				n.URL, id.Name, id.PublicKey, id.Fingerprint)
		}
		if !strings.EqualFold(n.PublicKey, id.PublicKey) {
			return levee.Invalid(field+".public_key", "KEY MISMATCH: the node at %s answers with key %s (fingerprint %s), not the key given: do not found with it until its operator explains",
				n.URL, id.PublicKey, id.Fingerprint)
		}
	}
	return nil
}

func fetchNode(ctx context.Context, client *http.Client, base string) (federation.Identity, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/api/v1/node", nil)
	if err != nil {
		return federation.Identity{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return federation.Identity{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return federation.Identity{}, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var id federation.Identity
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&id); err != nil {
		return federation.Identity{}, err
	}
	return id, nil
}
