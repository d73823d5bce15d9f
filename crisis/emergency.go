package crisis

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/contracting"
	"levee/input"
	"levee/pgtx"
	"levee/settlement"
)

// ended says how and when e ended, for the refusals of what comes after: a
// petition or the quorum ends an emergency before its scheduled end, and
// then that time, not the schedule, is the one that counts.
func (e Emergency) ended() string {
	if e.EndedAt != nil && e.EndReason != nil {
		at := e.EndedAt.UTC().Format(time.RFC3339)
		switch *e.EndReason {
		case "petition":
			return "was ended by petition at " + at
		case "quorum":
			return "was ended by the neighbours' quorum at " + at
		}
	}
	return "ended at " + e.EndsAt.UTC().Format(time.RFC3339) + ", its scheduled end"
}

// Declaration is what a steward states to declare an emergency.
type Declaration struct {
	Reason    string       `json:"reason"`
	Districts []string     `json:"districts"`
	Duration  string       `json:"duration"` // e.g. 72h or 3d, at most the charter's longest emergency
	Cap       levee.Micros `json:"cap"`      // at most the charter's spending cap
}

// Emergency is a declared emergency with its acts.
type Emergency struct {
	ID          int64            `json:"id,string" db:"id"`
	StewardID   int64            `json:"steward,string" db:"steward_id"`
	StewardName string           `json:"steward_name" db:"-"`
	Reason      string           `json:"reason" db:"reason"`
	DistrictIDs pq.Int64Array    `json:"-" db:"district_ids"`
	Districts   []accounts.Named `json:"districts" db:"-"`
	Cap         levee.Micros     `json:"cap" db:"cap"`
	CapUsed     levee.Micros     `json:"cap_used" db:"cap_used"`
	DeclaredAt  time.Time        `json:"declared_at" db:"declared_at"`
	EndsAt      time.Time        `json:"ends_at" db:"ends_at"`
	Renewals    int              `json:"renewals" db:"renewals"`
	EndedAt     *time.Time       `json:"ended_at,omitempty" db:"ended_at"`
	EndReason   *string          `json:"end_reason,omitempty" db:"end_reason"`
	Petitioners int              `json:"petitioners" db:"petitioners"`
	// Active is true until the emergency ends; TimeLeft counts down to EndsAt.
	Active   bool   `json:"active" db:"-"`
	TimeLeft string `json:"time_left,omitempty" db:"-"`
	Acts     []Act  `json:"acts" db:"-"`
}

// Act is one thing a steward did under emergency powers.
type Act struct {
	ID          int64         `json:"id,string" db:"id"`
	EmergencyID int64         `json:"emergency,string" db:"emergency_id"`
	Kind        string        `json:"kind" db:"kind"`
	Detail      jsonRaw       `json:"detail" db:"detail"`
	Amount      levee.Micros  `json:"amount" db:"amount"`
	Reason      string        `json:"reason" db:"reason"`
	ContractID  *int64        `json:"contract,omitempty,string" db:"contract_id"`
	At          time.Time     `json:"at" db:"at"`
	Review      *string       `json:"review,omitempty" db:"review"` // ratify or refer, once a jury decided
	ReviewedAt  *time.Time    `json:"reviewed_at,omitempty" db:"reviewed_at"`
	Returned    *levee.Micros `json:"returned,omitempty" db:"returned"`
	CaseID      *int64        `json:"case,omitempty,string" db:"case_id"`
}

const emergencyColumns = `e.id, e.steward_id, e.reason, e.district_ids, e.cap,
	(SELECT coalesce(sum(amount), 0) FROM emergency_acts x WHERE x.emergency_id = e.id) AS cap_used,
	e.declared_at, e.ends_at, e.renewals, e.ended_at, e.end_reason,
	(SELECT count(*) FROM emergency_petitions p WHERE p.emergency_id = e.id) AS petitioners`

func getEmergency(ctx context.Context, q sqlx.QueryerContext, id int64, lock string) (Emergency, error) {
	var e Emergency
	err := sqlx.GetContext(ctx, q, &e, `SELECT `+emergencyColumns+` FROM emergencies e WHERE e.id = $1 `+lock, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Emergency{}, levee.Errorf(levee.ENOTFOUND, "no emergency %d", id)
	} else if err != nil {
		return Emergency{}, pgtx.Unavailable(fmt.Errorf("emergency %d: %w", id, err))
	}
	one := []Emergency{e}
	if err := nameStewards(ctx, q, one); err != nil {
		return Emergency{}, fmt.Errorf("emergency %d: %w", id, err)
	}
	return one[0], nil
}

// nameStewards fills in the names of the emergencies' stewards.
func nameStewards(ctx context.Context, q sqlx.QueryerContext, es []Emergency) error {
	return accounts.FillNames(ctx, q, es, func(e *Emergency) (int64, *string) { return e.StewardID, &e.StewardName })
}

// Declare declares an emergency at once, within the charter's limits. A
// declaration within the cooldown after the last emergency ended needs the
// quorum (a proposal of kind "declare").
// Errors: EINVALID, EFORBIDDEN (not a charter steward), ECONFLICT.
func (s *Service) Declare(ctx context.Context, who *accounts.Principal, d Declaration) (Emergency, error) {
	if err := s.Advance(ctx); err != nil {
		return Emergency{}, err
	}
	var id int64
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		var err error
		id, err = s.declare(ctx, tx, who.AccountID, d, false)
		return err
	})
	if err != nil {
		return Emergency{}, fmt.Errorf("declare an emergency: %w", err)
	}
	s.opts.Logger.Warn("emergency declared", "emergency", id, "steward", who.AccountID, "reason", d.Reason)
	return s.Emergency(ctx, id)
}

// checkDeclaration validates d against the charter and returns the
// district ids in scope.
func (s *Service) checkDeclaration(ctx context.Context, tx *sqlx.Tx, steward int64, d *Declaration) ([]int64, error) {
	c, err := getCharter(ctx, tx, "")
	if err != nil {
		return nil, err
	}
	isSteward, err := accounts.HasActiveRole(ctx, tx, steward, accounts.RoleSteward)
	if err != nil {
		return nil, err
	}
	if !isSteward || len(c.StewardIDs) > 0 && !slices.Contains([]int64(c.StewardIDs), steward) {
		return nil, levee.Errorf(levee.EFORBIDDEN, "only the stewards the charter names may declare an emergency")
	}
	if err := input.Length("reason", d.Reason, 1, 5000); err != nil {
		return nil, err
	}
	dur, err := parseDuration("duration", d.Duration)
	if err != nil {
		return nil, err
	}
	if dur > us(c.MaxEmergencyUS) {
		return nil, levee.Invalid("duration", "the charter allows an emergency of at most %s", durationText(us(c.MaxEmergencyUS)))
	}
	if d.Cap <= 0 || d.Cap > c.SpendingCap {
		return nil, levee.Invalid("cap", "the cap must be positive and at most the charter's spending cap of %s", c.SpendingCap)
	}
	if len(d.Districts) == 0 {
		return nil, levee.Invalid("districts", "name the districts in scope")
	}
	var ids []int64
	for _, name := range d.Districts {
		id, ok, err := accounts.DistrictNamed(ctx, tx, name)
		if err != nil {
			return nil, err
		}
		if !ok || !inScope(c.DistrictIDs, id) {
			return nil, levee.Invalid("districts", "%q is not a district of this node's charter", name)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// declare writes an emergency inside tx; byQuorum skips the cooldown.
func (s *Service) declare(ctx context.Context, tx *sqlx.Tx, steward int64, d Declaration, byQuorum bool) (int64, error) {
	c, err := getCharter(ctx, tx, "FOR UPDATE")
	if err != nil {
		return 0, err
	}
	ids, err := s.checkDeclaration(ctx, tx, steward, &d)
	if err != nil {
		return 0, err
	}
	now := s.now()
	var last *time.Time
	if err := tx.GetContext(ctx, &last, `SELECT max(ended_at) FROM emergencies`); err != nil {
		return 0, err
	}
	if !byQuorum && last != nil && now.Before(last.Add(us(c.CooldownUS))) {
		return 0, levee.Errorf(levee.ECONFLICT, "an emergency ended %s; declaring another within %s needs the quorum (propose kind \"declare\")",
			last.Format(time.RFC3339), durationText(us(c.CooldownUS)))
	}
	dur, _ := parseDuration("duration", d.Duration)
	var id int64
	err = tx.GetContext(ctx, &id, `INSERT INTO emergencies (steward_id, reason, district_ids, cap, declared_at, ends_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, steward, d.Reason, pq.Int64Array(ids), d.Cap, now, now.Add(dur))
	if pgtx.IsUniqueViolation(err, "") {
		return 0, levee.Errorf(levee.ECONFLICT, "an emergency is already active")
	}
	if err != nil {
		return 0, err
	}
	return id, s.tellDeclared(ctx, tx, id)
}

// ActRequest is a steward's act under emergency powers.
type ActRequest struct {
	Kind   string `json:"kind"` // reallocate, direct_award, approve_proposal
	Reason string `json:"reason"`
	// reallocate
	FromLine int64        `json:"from_line,string,omitempty"`
	ToLine   int64        `json:"to_line,string,omitempty"`
	Amount   levee.Micros `json:"amount,omitempty"`
	// direct_award
	BudgetLine         int64                         `json:"budget_line,string,omitempty"`
	Contractor         int64                         `json:"contractor,string,omitempty"`
	Title              string                        `json:"title,omitempty"`
	Scope              string                        `json:"scope,omitempty"`
	AcceptanceCriteria string                        `json:"acceptance_criteria,omitempty"`
	Price              levee.Micros                  `json:"price,omitempty"`
	CompletionAt       time.Time                     `json:"completion_at,omitempty"`
	Milestones         []contracting.DirectMilestone `json:"milestones,omitempty"`
	// approve_proposal
	Proposal int64 `json:"proposal,string,omitempty"`
}

// forbiddenActs are powers an emergency never grants, with why.
var forbiddenActs = map[string]string{
	"change_charter": "the charter changes only by the neighbours' quorum",
	"resolve_market": "markets are resolved by proposals and juries, never by emergency powers",
	"void_market":    "markets are resolved by proposals and juries, never by emergency powers",
	"change_verdict": "verdicts belong to juries",
	"edit_ledger":    "the ledger's history cannot be changed by anyone",
	"release_escrow": "escrow committed to a contract is released only by its milestones",
	"pay":            "emergency powers pay contractors only through a direct award's milestones",
}

// Act does one thing under the active emergency, within its scope and cap,
// and records it with its reason. Errors: EINVALID, EFORBIDDEN (not the
// declaring steward, a power never granted, paying oneself), ENOTFOUND,
// ECONFLICT (no active emergency, over the cap, out of scope, not enough
// unencumbered money).
func (s *Service) Act(ctx context.Context, who *accounts.Principal, emergencyID int64, r ActRequest) (Act, error) {
	if why, ok := forbiddenActs[r.Kind]; ok {
		return Act{}, levee.Errorf(levee.EFORBIDDEN, "emergency powers do not extend to %s: %s", r.Kind, why)
	}
	if err := input.Length("reason", r.Reason, 1, 5000); err != nil {
		return Act{}, err
	}
	if err := s.Advance(ctx); err != nil {
		return Act{}, err
	}
	var act Act
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		// Lock first, so that two acts cannot both fit under the cap.
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM emergencies WHERE id = $1 FOR UPDATE`, emergencyID); err != nil {
			return err
		}
		e, err := getEmergency(ctx, tx, emergencyID, "")
		if err != nil {
			return err
		}
		// Expiry is checked here, on every act, not only by the ticker.
		if e.EndedAt != nil || !s.now().Before(e.EndsAt) {
			return levee.Errorf(levee.ECONFLICT, "emergency %d %s; nothing more is accepted under it", e.ID, e.ended())
		}
		if who.AccountID != e.StewardID {
			return levee.Errorf(levee.EFORBIDDEN, "only the steward who declared emergency %d acts under it", e.ID)
		}
		act = Act{EmergencyID: e.ID, Kind: r.Kind, Reason: r.Reason, At: s.now()}
		var detail any
		switch r.Kind {
		case "reallocate":
			detail, err = s.actReallocate(ctx, tx, &e, r, &act)
		case "direct_award":
			detail, err = s.actDirectAward(ctx, tx, &e, who, r, &act)
		case "approve_proposal":
			detail, err = s.actApprove(ctx, tx, &e, r, &act)
		default:
			return levee.Invalid("kind", "kind must be reallocate, direct_award or approve_proposal")
		}
		if err != nil {
			return err
		}
		if e.CapUsed+act.Amount > e.Cap {
			return levee.Errorf(levee.ECONFLICT, "this act of %s would pass the emergency's cap of %s (%s used)", act.Amount, e.Cap, e.CapUsed)
		}
		b, _ := json.Marshal(detail)
		act.Detail = b
		if err := tx.GetContext(ctx, &act.ID, `INSERT INTO emergency_acts (emergency_id, steward_id, kind, detail, amount, reason, contract_id, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`, e.ID, who.AccountID, act.Kind, b, act.Amount, act.Reason, act.ContractID, act.At); err != nil {
			return err
		}
		return s.tellAct(ctx, tx, e.ID, &act)
	})
	if err != nil {
		return Act{}, fmt.Errorf("emergency %d: %w", emergencyID, err)
	}
	s.opts.Logger.Warn("emergency act", "emergency", emergencyID, "act", act.ID, "kind", act.Kind, "amount", act.Amount)
	return act, nil
}

// unencumbered checks that a line is in the emergency's scope and holds
// amount beyond what open tenders may still take from it.
func unencumbered(ctx context.Context, tx *sqlx.Tx, e *Emergency, line int64, field string, amount levee.Micros) error {
	l, err := budgets.Line(ctx, tx, line)
	if err != nil {
		return err
	}
	if !slices.Contains([]int64(e.DistrictIDs), l.DistrictID) {
		return levee.Errorf(levee.ECONFLICT, "budget line %d (%s) is outside the emergency's districts", line, l.District)
	}
	enc, err := contracting.Encumbered(ctx, tx, line)
	if err != nil {
		return err
	}
	if free := l.Balance - enc; amount > free {
		return levee.Errorf(levee.ECONFLICT, "budget line %d has %s unspent and unencumbered, less than %s", line, max(free, 0), amount)
	}
	return nil
}

func (s *Service) actReallocate(ctx context.Context, tx *sqlx.Tx, e *Emergency, r ActRequest, act *Act) (any, error) {
	if r.Amount <= 0 {
		return nil, levee.Invalid("amount", "amount must be positive")
	}
	if err := unencumbered(ctx, tx, e, r.FromLine, "from_line", r.Amount); err != nil {
		return nil, err
	}
	if err := unencumbered(ctx, tx, e, r.ToLine, "to_line", 0); err != nil {
		return nil, err
	}
	if _, err := budgets.Move(ctx, tx, r.FromLine, r.ToLine, r.Amount, "emergency_reallocation", "emergency/"+levee.FormatID(e.ID)); err != nil {
		return nil, err
	}
	act.Amount = r.Amount
	return Reallocation{FromLine: r.FromLine, ToLine: r.ToLine, Amount: r.Amount}, nil
}

func (s *Service) actDirectAward(ctx context.Context, tx *sqlx.Tx, e *Emergency, who *accounts.Principal, r ActRequest, act *Act) (any, error) {
	own, err := accounts.ActsFor(ctx, tx, who.AccountID, r.Contractor)
	if err != nil {
		return nil, err
	}
	if own {
		return nil, levee.Errorf(levee.EFORBIDDEN, "a steward may not award work to itself or to an organisation it belongs to")
	}
	if r.Price <= 0 {
		return nil, levee.Invalid("price", "price must be positive")
	}
	if err := unencumbered(ctx, tx, e, r.BudgetLine, "budget_line", r.Price); err != nil {
		return nil, err
	}
	if s.opts.Contracts == nil {
		return nil, fmt.Errorf("crisis: no contracting service wired")
	}
	cid, err := s.opts.Contracts.AwardDirect(ctx, tx, contracting.DirectAward{BudgetLineID: r.BudgetLine, Contractor: r.Contractor,
		Title: r.Title, Scope: r.Scope, AcceptanceCriteria: r.AcceptanceCriteria, Price: r.Price, CompletionAt: r.CompletionAt,
		Milestones: r.Milestones, Rationale: fmt.Sprintf("Emergency %d: %s — %s", e.ID, e.Reason, r.Reason), DecidedBy: who.AccountID})
	if err != nil {
		return nil, err
	}
	act.Amount, act.ContractID = r.Price, &cid
	return map[string]any{"budget_line": levee.FormatID(r.BudgetLine), "contractor": levee.FormatID(r.Contractor), "title": r.Title, "price": r.Price, "contract": levee.FormatID(cid)}, nil
}

func (s *Service) actApprove(ctx context.Context, tx *sqlx.Tx, e *Emergency, r ActRequest, act *Act) (any, error) {
	p, err := getProposal(ctx, tx, r.Proposal, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	if p.Kind != KindReallocation || p.Status != "open" {
		return nil, levee.Errorf(levee.ECONFLICT, "only open reallocation proposals can be approved under emergency powers (proposal %d is a %s, %s)", p.ID, p.Kind, p.Status)
	}
	var re Reallocation
	if err := json.Unmarshal(p.Payload, &re); err != nil {
		return nil, err
	}
	if err := unencumbered(ctx, tx, e, re.FromLine, "proposal", re.Amount); err != nil {
		return nil, err
	}
	if err := unencumbered(ctx, tx, e, re.ToLine, "proposal", 0); err != nil {
		return nil, err
	}
	if err := s.execute(ctx, tx, &p, nil); err != nil {
		return nil, err
	}
	act.Amount = re.Amount
	// The act's id is not known yet; the proposal records the emergency.
	if err := s.decideProposal(ctx, tx, p.ID, "executed", nil); err != nil {
		return nil, err
	}
	return map[string]any{"proposal": levee.FormatID(p.ID), "reallocation": re}, nil
}

// Petition adds a resident's signature to end an emergency early; at the
// charter's threshold it ends. Errors: EFORBIDDEN (not a resident),
// ENOTFOUND, ECONFLICT (ended, signed already).
func (s *Service) Petition(ctx context.Context, who *accounts.Principal, emergencyID int64) (Emergency, error) {
	if !who.Has(accounts.RoleResident) {
		return Emergency{}, levee.Errorf(levee.EFORBIDDEN, "only residents petition to end an emergency")
	}
	if err := s.Advance(ctx); err != nil {
		return Emergency{}, err
	}
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		c, err := getCharter(ctx, tx, "")
		if err != nil {
			return err
		}
		// Signatures are counted under the emergency's lock: without it two
		// last signatures each counted the other's as missing (both read
		// the count before either committed) and the threshold passed
		// without ending the emergency. The lock comes first, so the reads
		// after it see every signature committed before it.
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM emergencies WHERE id = $1 FOR UPDATE`, emergencyID); err != nil {
			return fmt.Errorf("lock emergency: %w", err)
		}
		e, err := getEmergency(ctx, tx, emergencyID, "")
		if err != nil {
			return err
		}
		if e.EndedAt != nil {
			return levee.Errorf(levee.ECONFLICT, "emergency %d %s", e.ID, e.ended())
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO emergency_petitions (emergency_id, account_id, at) VALUES ($1, $2, $3)`,
			e.ID, who.AccountID, s.now()); pgtx.IsUniqueViolation(err, "") {
			return levee.Errorf(levee.ECONFLICT, "you have already signed")
		} else if err != nil {
			return err
		}
		if e.Petitioners+1 >= c.PetitionThreshold {
			return s.end(ctx, tx, e.ID, "petition")
		}
		return nil
	})
	if err != nil {
		return Emergency{}, fmt.Errorf("petition: %w", err)
	}
	return s.Emergency(ctx, emergencyID)
}

// renew extends an active emergency by the charter's step, up to its cap.
func (s *Service) renew(ctx context.Context, tx *sqlx.Tx, id int64) error {
	c, err := getCharter(ctx, tx, "")
	if err != nil {
		return err
	}
	e, err := getEmergency(ctx, tx, id, "")
	if err != nil {
		return err
	}
	if e.EndedAt != nil || !s.now().Before(e.EndsAt) {
		return levee.Errorf(levee.ECONFLICT, "emergency %d %s and cannot be renewed", id, e.ended())
	}
	ends := e.EndsAt.Add(us(c.RenewalStepUS))
	if ends.Sub(e.DeclaredAt) > us(c.RenewalCapUS) {
		return levee.Errorf(levee.ECONFLICT, "renewing would pass the charter's cap of %s in all", durationText(us(c.RenewalCapUS)))
	}
	if _, err = tx.ExecContext(ctx, `UPDATE emergencies SET ends_at = $2, renewals = renewals + 1 WHERE id = $1`, id, ends); err != nil {
		return err
	}
	return s.tellEmergency(ctx, tx, id, "emergency_renewed", fmt.Sprintf("Emergency %d is renewed by the neighbours' quorum until %s.", id, when(ends)), &ends)
}

// end ends an active emergency now.
func (s *Service) end(ctx context.Context, tx *sqlx.Tx, id int64, reason string) error {
	res, err := tx.ExecContext(ctx, `UPDATE emergencies SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL`, id, s.now(), reason)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return levee.Errorf(levee.ECONFLICT, "emergency %d has already ended", id)
	}
	how := map[string]string{"petition": "ended by residents' petition", "quorum": "ended by the neighbours' quorum"}[reason]
	if how == "" {
		how = reason
	}
	return s.tellEnded(ctx, tx, id, how)
}

// Emergency returns an emergency with its acts.
func (s *Service) Emergency(ctx context.Context, id int64) (Emergency, error) {
	if err := s.Advance(ctx); err != nil {
		return Emergency{}, err
	}
	e, err := getEmergency(ctx, s.db, id, "")
	if err != nil {
		return Emergency{}, err
	}
	return e, s.fill(ctx, &e)
}

func (s *Service) fill(ctx context.Context, e *Emergency) error {
	now := s.now()
	e.Active = e.EndedAt == nil && now.Before(e.EndsAt)
	if e.Active {
		e.TimeLeft = timeLeft(e.EndsAt.Sub(now))
	}
	e.Districts, e.Acts = []accounts.Named{}, []Act{}
	var err error
	if e.Districts, err = accounts.NamedDistricts(ctx, s.db, e.DistrictIDs); err != nil {
		return err
	}
	if err := s.db.SelectContext(ctx, &e.Acts, `SELECT x.id, x.emergency_id, x.kind, x.detail, x.amount, x.reason, x.contract_id, x.at, x.review,
		x.reviewed_at, x.returned, NULL::bigint AS case_id
		FROM emergency_acts x WHERE x.emergency_id = $1 ORDER BY x.id DESC`, e.ID); err != nil {
		return pgtx.Unavailable(fmt.Errorf("emergency %d acts: %w", e.ID, err))
	}
	subjects := make([]string, len(e.Acts))
	for i, a := range e.Acts {
		subjects[i] = ActSubject(a.ID)
	}
	cases, err := settlement.LatestCases(ctx, s.db, subjects)
	if err != nil {
		return fmt.Errorf("emergency %d acts: %w", e.ID, err)
	}
	for i := range e.Acts {
		if id, ok := cases[subjects[i]]; ok {
			e.Acts[i].CaseID = &id
		}
	}
	return nil
}

// Current returns the active emergency, or nil. It only reads (the banner
// asks on every page view): an emergency past its end is not active even
// before Advance records that it ended.
func (s *Service) Current(ctx context.Context) (*Emergency, error) {
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, `SELECT id FROM emergencies WHERE ended_at IS NULL AND ends_at > $1`, s.now()); err != nil {
		return nil, pgtx.Unavailable(err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	e, err := getEmergency(ctx, s.db, ids[0], "")
	if err != nil {
		return nil, err
	}
	return &e, s.fill(ctx, &e)
}

// MaxEmergencyPage is the most emergencies one page of the list holds.
const MaxEmergencyPage = 200

// Emergencies lists up to limit emergencies with ids below before (0: from
// the newest), newest first, without acts.
func (s *Service) Emergencies(ctx context.Context, before int64, limit int) ([]Emergency, error) {
	if err := s.Advance(ctx); err != nil {
		return nil, err
	}
	es := []Emergency{}
	// before is cast to bigint: compared with 0 alone the parameter would
	// be typed integer, and an id past int4 would be a database error.
	if err := s.db.SelectContext(ctx, &es, `SELECT `+emergencyColumns+` FROM emergencies e
		WHERE ($1::bigint = 0 OR e.id < $1::bigint) ORDER BY e.id DESC LIMIT $2`,
		before, min(max(limit, 1), MaxEmergencyPage)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list emergencies: %w", err))
	}
	if err := nameStewards(ctx, s.db, es); err != nil {
		return nil, err
	}
	for i := range es {
		es[i].Active = es[i].EndedAt == nil && s.now().Before(es[i].EndsAt)
	}
	return es, nil
}

// StewardRecord is a steward's public record under emergency powers.
type StewardRecord struct {
	Steward     accounts.Named `json:"steward"`
	Emergencies []Emergency    `json:"emergencies"`
	Acts        int            `json:"acts"`
	Ratified    int            `json:"ratified"`
	Referred    int            `json:"referred"`
	Pending     int            `json:"pending_review"`
}

// Record returns a steward's public record. Errors: ENOTFOUND.
func (s *Service) Record(ctx context.Context, steward int64) (StewardRecord, error) {
	if err := s.Advance(ctx); err != nil {
		return StewardRecord{}, err
	}
	r := StewardRecord{Emergencies: []Emergency{}}
	var err error
	if r.Steward, err = accounts.AccountNamed(ctx, s.db, steward); err != nil {
		return StewardRecord{}, err
	}
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, `SELECT id FROM emergencies WHERE steward_id = $1 ORDER BY id DESC`, steward); err != nil {
		return StewardRecord{}, pgtx.Unavailable(err)
	}
	for _, id := range ids {
		e, err := s.Emergency(ctx, id)
		if err != nil {
			return StewardRecord{}, err
		}
		for _, a := range e.Acts {
			r.Acts++
			switch deref(a.Review) {
			case "ratify":
				r.Ratified++
			case "refer":
				r.Referred++
			default:
				r.Pending++
			}
		}
		r.Emergencies = append(r.Emergencies, e)
	}
	return r, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// timeLeft reads like "2d 23h" or "5h 12m".
func timeLeft(d time.Duration) string {
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	if h >= 24 {
		return fmt.Sprintf("%dd %dh", h/24, h%24)
	}
	return fmt.Sprintf("%dh %dm", h, m)
}
