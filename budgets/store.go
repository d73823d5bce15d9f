package budgets

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/pgtx"
)

// CashInvalidator is told when a trader's cash moved outside the market
// engine, which caches cash (the engine satisfies it).
type CashInvalidator interface {
	InvalidateCash(account int64)
}

// Options configure a Service. Every field is optional.
type Options struct {
	Cash   CashInvalidator  // told after every committed contribution
	Now    func() time.Time // the clock; time.Now when nil
	Logger *slog.Logger
}

// Service stores rounds, projects, contributions and budget lines in
// PostgreSQL and moves their money through the ledger.
type Service struct {
	db     *sqlx.DB
	cash   CashInvalidator
	now    func() time.Time
	logger *slog.Logger
}

// New returns a Service on db.
func New(db *sqlx.DB, opts Options) *Service {
	s := &Service{db: db, cash: opts.Cash, now: opts.Now, logger: opts.Logger}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	// PostgreSQL keeps microseconds (rounding, not truncating), so a time
	// compared with a stored one must be in microseconds too.
	s.now = func() time.Time { return now().Truncate(time.Microsecond) }
	if s.logger == nil {
		s.logger = slog.Default()
	}
	return s
}

const roundColumns = `id, title, pool, cap_share, eligibility_rules, opens_at, closes_at, status, returned,
	coalesce(created_by, 0) AS created_by, created_at, finalized_at`

// OpenRound opens a round and moves its pool from the treasury into the
// round's pool account, in one transaction. Errors: EINVALID (a field),
// ECONFLICT (the treasury lacks the pool).
func (s *Service) OpenRound(ctx context.Context, n NewRound) (Round, error) {
	now := s.now()
	if err := n.Validate(now); err != nil {
		return Round{}, err
	}
	var capShare *levee.Micros
	if n.CapShare > 0 {
		capShare = &n.CapShare
	}
	var r Round
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &r, `
			INSERT INTO qf_rounds (title, pool, cap_share, eligibility_rules, opens_at, closes_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, 0)) RETURNING `+roundColumns,
			n.Title, n.Pool, capShare, n.EligibilityRules, n.OpensAt, n.ClosesAt, n.CreatedBy)
		if err != nil {
			return fmt.Errorf("insert round: %w", err)
		}
		if err := accounts.WriteAudit(ctx, tx, n.CreatedBy, "qf.open_round", map[string]any{"round_id": r.ID, "pool": n.Pool}); err != nil {
			return err
		}
		for _, key := range []string{ledger.RoundPool(r.ID), ledger.RoundEscrow(r.ID)} {
			if err := ledger.OpenAccount(ctx, tx, key, "qf", false); err != nil {
				return err
			}
		}
		_, err = ledger.Post(ctx, tx, ledger.Transfer{Kind: "qf_pool", Ref: "qf/round/" + levee.FormatID(r.ID), Postings: []ledger.Posting{
			{Account: ledger.Treasury, Amount: -n.Pool}, {Account: ledger.RoundPool(r.ID), Amount: n.Pool},
		}})
		return err
	})
	if err != nil {
		return Round{}, fmt.Errorf("open round: %w", err)
	}
	r.fill(now)
	return r, nil
}

// MaxRoundPage is the most rounds one page of the list holds.
const MaxRoundPage = 200

// Rounds lists up to limit rounds with ids below before (0: from the
// newest), newest first.
func (s *Service) Rounds(ctx context.Context, before int64, limit int) ([]Round, error) {
	rs := []Round{}
	// before is cast to bigint: compared with 0 alone the parameter would
	// be typed integer, and an id past int4 would be a database error.
	if err := s.db.SelectContext(ctx, &rs, `SELECT `+roundColumns+` FROM qf_rounds
		WHERE ($1::bigint = 0 OR id < $1::bigint) ORDER BY id DESC LIMIT $2`,
		before, min(max(limit, 1), MaxRoundPage)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list rounds: %w", err))
	}
	now := s.now()
	for i := range rs {
		rs[i].fill(now)
	}
	return rs, nil
}

func getRound(ctx context.Context, q sqlx.QueryerContext, id int64, lock string) (Round, error) {
	var r Round
	err := sqlx.GetContext(ctx, q, &r, `SELECT `+roundColumns+` FROM qf_rounds WHERE id = $1 `+lock, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Round{}, levee.Errorf(levee.ENOTFOUND, "no round %d", id)
	} else if err != nil {
		return Round{}, pgtx.Unavailable(fmt.Errorf("load round %d: %w", id, err))
	}
	return r, nil
}

const projectColumns = `p.id, p.round_id, p.title, p.description, p.district_id, p.estimated_cost, p.proposed_by,
	p.eligible, p.eligibility_reason, p.created_at,
	(SELECT count(DISTINCT c.account_id) FROM qf_contributions c WHERE c.project_id = p.id) AS contributors,
	(SELECT coalesce(sum(c.amount), 0) FROM qf_contributions c WHERE c.project_id = p.id) AS contributed`

func getProject(ctx context.Context, q sqlx.QueryerContext, id int64) (Project, error) {
	var p Project
	err := sqlx.GetContext(ctx, q, &p, `SELECT `+projectColumns+` FROM qf_projects p WHERE p.id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Project{}, levee.Errorf(levee.ENOTFOUND, "no project %d", id)
	} else if err != nil {
		return Project{}, pgtx.Unavailable(fmt.Errorf("load project %d: %w", id, err))
	}
	one := []Project{p}
	if err := nameProjectDistricts(ctx, q, one); err != nil {
		return Project{}, fmt.Errorf("load project %d: %w", id, err)
	}
	return one[0], nil
}

// nameProjectDistricts fills in the names of the projects' districts.
func nameProjectDistricts(ctx context.Context, q sqlx.QueryerContext, ps []Project) error {
	if len(ps) == 0 {
		return nil
	}
	names, err := accounts.DistrictNames(ctx, q)
	if err != nil {
		return err
	}
	for i := range ps {
		ps[i].District = names[ps[i].DistrictID]
	}
	return nil
}

// Round returns a round with its projects and, once final, its results.
// Errors: ENOTFOUND.
func (s *Service) Round(ctx context.Context, id int64) (RoundDetail, error) {
	r, err := getRound(ctx, s.db, id, "")
	if err != nil {
		return RoundDetail{}, err
	}
	r.fill(s.now())
	d := RoundDetail{Round: r, Projects: []Project{}}
	if err := s.db.SelectContext(ctx, &d.Projects, `SELECT `+projectColumns+`
		FROM qf_projects p WHERE p.round_id = $1 ORDER BY p.id`, id); err != nil {
		return RoundDetail{}, pgtx.Unavailable(fmt.Errorf("load projects of round %d: %w", id, err))
	}
	if err := nameProjectDistricts(ctx, s.db, d.Projects); err != nil {
		return RoundDetail{}, fmt.Errorf("load projects of round %d: %w", id, err)
	}
	if r.Status == StatusFinal {
		d.Results = []Result{}
		if err := s.db.SelectContext(ctx, &d.Results, `
			SELECT q.project_id, p.title, q.contributors, q.contributed, q.sum_sqrt::text AS sum_sqrt,
				q.raw_match::text AS raw_match, q.match, q.capped, q.budget_line_id
			FROM qf_results q JOIN qf_projects p ON p.id = q.project_id
			WHERE q.round_id = $1 ORDER BY q.project_id`, id); err != nil {
			return RoundDetail{}, pgtx.Unavailable(fmt.Errorf("load results of round %d: %w", id, err))
		}
	}
	return d, nil
}

// Propose adds a resident's project to a round that has not closed.
// Errors: EFORBIDDEN (not a resident), ENOTFOUND (round), EINVALID (a field,
// unknown district), ECONFLICT (the round has closed).
func (s *Service) Propose(ctx context.Context, who *accounts.Principal, roundID int64, n NewProject) (Project, error) {
	if !who.Has(accounts.RoleResident) {
		return Project{}, levee.Errorf(levee.EFORBIDDEN, "only residents can propose projects")
	}
	if err := n.Validate(); err != nil {
		return Project{}, err
	}
	var p Project
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		r, err := getRound(ctx, tx, roundID, "FOR SHARE")
		if err != nil {
			return err
		}
		if r.Status != StatusOpen || !s.now().Before(r.ClosesAt) {
			return levee.Errorf(levee.ECONFLICT, "round %d has closed; projects can no longer be proposed", roundID)
		}
		district, ok, err := accounts.DistrictNamed(ctx, tx, n.District)
		if err != nil {
			return fmt.Errorf("insert project: %w", err)
		}
		if !ok {
			return levee.Invalid("district", "unknown district %q", n.District)
		}
		var id int64
		err = tx.GetContext(ctx, &id, `
			INSERT INTO qf_projects (round_id, title, description, district_id, estimated_cost, proposed_by)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			roundID, n.Title, n.Description, district, n.EstimatedCost, who.AccountID)
		if err != nil {
			return fmt.Errorf("insert project: %w", err)
		}
		p, err = getProject(ctx, tx, id)
		return err
	})
	if err != nil {
		return Project{}, fmt.Errorf("propose project: %w", err)
	}
	return p, nil
}

// SetEligibility records a treasurer's decision on a project, with the
// reason. A decision can change until the project receives its first
// contribution. Errors: ENOTFOUND, EINVALID (reason), ECONFLICT (the round is
// final or the project already has contributions).
func (s *Service) SetEligibility(ctx context.Context, actor, projectID int64, eligible bool, reason string) (Project, error) {
	if len(reason) > 2000 {
		return Project{}, levee.Invalid("reason", "reason must be at most 2000 characters")
	}
	if !eligible && reason == "" {
		return Project{}, levee.Invalid("reason", "say why the project is not eligible")
	}
	var p Project
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		var roundID int64
		if err := tx.GetContext(ctx, &roundID, `SELECT round_id FROM qf_projects WHERE id = $1`, projectID); errors.Is(err, sql.ErrNoRows) {
			return levee.Errorf(levee.ENOTFOUND, "no project %d", projectID)
		} else if err != nil {
			return fmt.Errorf("load project: %w", err)
		}
		r, err := getRound(ctx, tx, roundID, "FOR SHARE")
		if err != nil {
			return err
		}
		if r.Status == StatusFinal {
			return levee.Errorf(levee.ECONFLICT, "round %d is final", roundID)
		}
		// Lock first, then look, in two statements: a contribution holds
		// the project FOR SHARE until it commits, so once this lock is
		// ours every contribution has committed or given up, and the next
		// statement's snapshot (READ COMMITTED: one per statement) sees it.
		// In one statement the check ran on the snapshot taken before the
		// wait and missed a contribution that committed meanwhile.
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM qf_projects WHERE id = $1 FOR UPDATE`, projectID); err != nil {
			return fmt.Errorf("lock project: %w", err)
		}
		var has bool
		if err := tx.GetContext(ctx, &has, `SELECT EXISTS (SELECT 1 FROM qf_contributions WHERE project_id = $1)`, projectID); err != nil {
			return fmt.Errorf("check contributions: %w", err)
		}
		if has {
			return levee.Errorf(levee.ECONFLICT, "project %d already has contributions; its eligibility can no longer change", projectID)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE qf_projects SET eligible = $2, eligibility_reason = $3, decided_by = NULLIF($4, 0) WHERE id = $1`,
			projectID, eligible, reason, actor); err != nil {
			return fmt.Errorf("update project: %w", err)
		}
		if err := accounts.WriteAudit(ctx, tx, actor, "qf.eligibility", map[string]any{"project_id": projectID, "eligible": eligible, "reason": reason}); err != nil {
			return err
		}
		p, err = getProject(ctx, tx, projectID)
		return err
	})
	if err != nil {
		return Project{}, fmt.Errorf("project %d eligibility: %w", projectID, err)
	}
	return p, nil
}

// MaxIdempotencyKey bounds a caller's idempotency key.
const MaxIdempotencyKey = 100

// Contribute moves amount from the caller's cash into the round's escrow for
// an eligible project, during the round's window. Only a person with the
// resident role may contribute: one account is one person. With a key, a
// retry returns the first contribution and moves money once.
// Errors: EINVALID (amount, key), EFORBIDDEN (not a resident person),
// ENOTFOUND (project), ECONFLICT (outside the window, round final, project
// not eligible, insufficient funds, key reused for another contribution).
func (s *Service) Contribute(ctx context.Context, who *accounts.Principal, projectID int64, amount levee.Micros, key string) (ContributionRecord, error) {
	if who == nil || !who.Has(accounts.RoleResident) || who.Kind != accounts.KindPerson {
		return ContributionRecord{}, levee.Errorf(levee.EFORBIDDEN, "only residents (people) can contribute")
	}
	// Contractors could bid on the works these projects become, and
	// officials decide them: neither may steer the match.
	for _, r := range []string{accounts.RoleContractor, accounts.RoleTreasurer, accounts.RoleSteward, accounts.RoleAdmin} {
		if who.Has(r) {
			return ContributionRecord{}, levee.Errorf(levee.EFORBIDDEN, "a %s cannot contribute: contractors could bid on these projects and officials decide them", r)
		}
	}
	if amount <= 0 {
		return ContributionRecord{}, levee.Invalid("amount", "amount must be positive")
	}
	if len(key) > MaxIdempotencyKey {
		return ContributionRecord{}, levee.Invalid("idempotency_key", "Idempotency-Key must be at most %d bytes", MaxIdempotencyKey)
	}
	var c ContributionRecord
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		orgs, err := accounts.OrganisationIDs(ctx, tx, who.AccountID)
		if err != nil {
			return fmt.Errorf("check membership: %w", err)
		}
		if len(orgs) > 0 {
			return levee.Errorf(levee.EFORBIDDEN, "members of contractor organisations cannot contribute: they could bid on these projects")
		}
		if key != "" {
			// Requests racing with one key queue here, so the later ones
			// find the first one's contribution below and answer with it,
			// rather than all missing it and then colliding on its ledger
			// entry (a 500). Taken first: it orders before every row lock.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
				"qf-contribution:"+levee.FormatID(who.AccountID)+":"+key); err != nil {
				return fmt.Errorf("lock idempotency key: %w", err)
			}
			err := tx.GetContext(ctx, &c, `SELECT id, project_id, round_id, account_id, amount, ledger_seq, at
				FROM qf_contributions WHERE account_id = $1 AND idempotency_key = $2`, who.AccountID, key)
			if err == nil {
				if c.ProjectID != projectID || c.Amount != amount {
					return levee.Errorf(levee.ECONFLICT, "Idempotency-Key reused for a different contribution")
				}
				return nil
			} else if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("find contribution by key: %w", err)
			}
		}
		var st struct {
			RoundID  int64     `db:"round_id"`
			Eligible *bool     `db:"eligible"`
			Status   string    `db:"status"`
			OpensAt  time.Time `db:"opens_at"`
			ClosesAt time.Time `db:"closes_at"`
		}
		err = tx.GetContext(ctx, &st, `
			SELECT p.round_id, p.eligible, r.status, r.opens_at, r.closes_at
			FROM qf_projects p JOIN qf_rounds r ON r.id = p.round_id WHERE p.id = $1 FOR SHARE`, projectID)
		if errors.Is(err, sql.ErrNoRows) {
			return levee.Errorf(levee.ENOTFOUND, "no project %d", projectID)
		} else if err != nil {
			return fmt.Errorf("load project: %w", err)
		}
		now := s.now()
		switch {
		case st.Status != StatusOpen:
			return levee.Errorf(levee.ECONFLICT, "round %d is final", st.RoundID)
		case now.Before(st.OpensAt):
			return levee.Errorf(levee.ECONFLICT, "round %d takes contributions from %s", st.RoundID, st.OpensAt.UTC().Format(time.RFC3339))
		case !now.Before(st.ClosesAt):
			return levee.Errorf(levee.ECONFLICT, "round %d closed for contributions at %s", st.RoundID, st.ClosesAt.UTC().Format(time.RFC3339))
		case st.Eligible == nil || !*st.Eligible:
			return levee.Errorf(levee.ECONFLICT, "project %d is not eligible for contributions", projectID)
		}
		t := ledger.Transfer{Kind: "qf_contribution", Ref: "qf/project/" + levee.FormatID(projectID), At: now, Postings: []ledger.Posting{
			{Account: ledger.Cash(who.AccountID), Amount: -amount}, {Account: ledger.RoundEscrow(st.RoundID), Amount: amount},
		}}
		if key != "" {
			t.IdempotencyKey = "qf-contribution:" + levee.FormatID(who.AccountID) + ":" + key
		}
		e, err := ledger.Post(ctx, tx, t)
		if err != nil {
			return err
		}
		var nk sql.NullString
		if key != "" {
			nk = sql.NullString{String: key, Valid: true}
		}
		return tx.GetContext(ctx, &c, `
			INSERT INTO qf_contributions (round_id, project_id, account_id, amount, ledger_seq, idempotency_key, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, project_id, round_id, account_id, amount, ledger_seq, at`,
			st.RoundID, projectID, who.AccountID, amount, e.Seq, nk, e.At)
	})
	if err != nil {
		return ContributionRecord{}, fmt.Errorf("contribute to project %d: %w", projectID, err)
	}
	if s.cash != nil {
		s.cash.InvalidateCash(who.AccountID)
	}
	return c, nil
}

// contributions returns the contributions of a round's eligible projects.
func contributions(ctx context.Context, q sqlx.QueryerContext, roundID int64) ([]Contribution, error) {
	var rows []struct {
		Project int64        `db:"project_id"`
		Account int64        `db:"account_id"`
		Amount  levee.Micros `db:"amount"`
	}
	err := sqlx.SelectContext(ctx, q, &rows, `
		SELECT c.project_id, c.account_id, sum(c.amount) AS amount
		FROM qf_contributions c JOIN qf_projects p ON p.id = c.project_id
		WHERE c.round_id = $1 AND p.eligible
		GROUP BY c.project_id, c.account_id ORDER BY c.project_id, c.account_id`, roundID)
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("load contributions of round %d: %w", roundID, err))
	}
	cs := make([]Contribution, len(rows))
	for i, r := range rows {
		cs[i] = Contribution{Project: r.Project, Account: r.Account, Amount: r.Amount}
	}
	return cs, nil
}

// Finalize computes a closed round's matches and pays out, in one
// transaction: each eligible project's match from the pool and its
// contributions from the escrow into a new budget line, contributions to any
// project that is not eligible back to their contributors, and the pool's
// remainder back to the treasury. Errors: ENOTFOUND, ECONFLICT (the round
// has not closed yet, or is already final).
func (s *Service) Finalize(ctx context.Context, actor, roundID int64) (RoundDetail, error) {
	var refundedTo []int64
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		refundedTo = nil // pgtx.Run may retry
		r, err := getRound(ctx, tx, roundID, "FOR UPDATE")
		if err != nil {
			return err
		}
		if r.Status == StatusFinal {
			return levee.Errorf(levee.ECONFLICT, "round %d is already final", roundID)
		}
		now := s.now()
		if now.Before(r.ClosesAt) {
			return levee.Errorf(levee.ECONFLICT, "round %d closes at %s; it can be finalised after that", roundID, r.ClosesAt.UTC().Format(time.RFC3339))
		}
		var projects []struct {
			ID         int64  `db:"id"`
			Title      string `db:"title"`
			DistrictID int64  `db:"district_id"`
		}
		if err := tx.SelectContext(ctx, &projects, `SELECT id, title, district_id FROM qf_projects WHERE round_id = $1 AND eligible ORDER BY id`, roundID); err != nil {
			return fmt.Errorf("load projects: %w", err)
		}
		cs, err := contributions(ctx, tx, roundID)
		if err != nil {
			return err
		}
		ids := make([]int64, len(projects))
		for i, p := range projects {
			ids[i] = p.ID
		}
		var capAmount levee.Micros
		if r.CapShare != nil {
			capAmount = CapOf(r.Pool, *r.CapShare)
		}
		m := Match(ids, cs, r.Pool, capAmount)

		// Contributions to a project that is not eligible (none since
		// SetEligibility locks before it looks, but a round may predate
		// that) go back to their contributors, exactly, so that the
		// escrow always balances and a round can always be finalised.
		ts, back, err := refunds(ctx, tx, roundID, now)
		if err != nil {
			return err
		}
		escrowed := back.total
		for _, p := range m.Projects {
			escrowed += p.Sum
		}
		if bal, err := ledger.Balance(ctx, tx, ledger.RoundEscrow(roundID)); err != nil {
			return err
		} else if bal != escrowed {
			return fmt.Errorf("round %d: escrow holds %s but contributions sum to %s", roundID, bal, escrowed)
		}
		refundedTo = back.accounts

		ref := "qf/round/" + levee.FormatID(roundID)
		for i, p := range m.Projects {
			funded := p.Sum + p.Match
			var lineID *int64
			if funded > 0 {
				var id int64
				if err := tx.GetContext(ctx, &id, `SELECT nextval(pg_get_serial_sequence('budget_lines', 'id'))`); err != nil {
					return fmt.Errorf("next budget line id: %w", err)
				}
				if _, err := tx.ExecContext(ctx, `
					INSERT INTO budget_lines (id, project_id, round_id, district_id, title, funded, ledger_key)
					OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7)`,
					id, p.Project, roundID, projects[i].DistrictID, projects[i].Title, funded, ledger.BudgetLine(id)); err != nil {
					return fmt.Errorf("insert budget line: %w", err)
				}
				lineID = &id
				if err := ledger.OpenAccount(ctx, tx, ledger.BudgetLine(id), "budget_line", false); err != nil {
					return err
				}
				t := ledger.Transfer{Kind: "qf_payout", Ref: ref, At: now}
				if p.Match > 0 {
					t.Postings = append(t.Postings, ledger.Posting{Account: ledger.RoundPool(roundID), Amount: -p.Match})
				}
				if p.Sum > 0 {
					t.Postings = append(t.Postings, ledger.Posting{Account: ledger.RoundEscrow(roundID), Amount: -p.Sum})
				}
				t.Postings = append(t.Postings, ledger.Posting{Account: ledger.BudgetLine(id), Amount: funded})
				ts = append(ts, t)
			}
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO qf_results (project_id, round_id, contributors, contributed, sum_sqrt, raw_match, match, capped, budget_line_id)
				VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric, $7, $8, $9)`,
				p.Project, roundID, p.Contributors, p.Sum, p.SumSqrt.String(), MicrosString(p.Raw), p.Match, p.Capped, lineID); err != nil {
				return fmt.Errorf("insert result: %w", err)
			}
		}
		if m.Returned > 0 {
			ts = append(ts, ledger.Transfer{Kind: "qf_return", Ref: ref, At: now, Postings: []ledger.Posting{
				{Account: ledger.RoundPool(roundID), Amount: -m.Returned}, {Account: ledger.Treasury, Amount: m.Returned},
			}})
		}
		if _, err := tx.ExecContext(ctx, `UPDATE qf_rounds SET status = 'final', returned = $2, finalized_at = $3 WHERE id = $1`,
			roundID, m.Returned, now); err != nil {
			return fmt.Errorf("mark round final: %w", err)
		}
		if err := accounts.WriteAudit(ctx, tx, actor, "qf.finalize", map[string]any{"round_id": roundID, "returned": m.Returned}); err != nil {
			return err
		}
		if len(ts) > 0 {
			if _, err := ledger.PostBatch(ctx, tx, ts); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return RoundDetail{}, fmt.Errorf("finalise round %d: %w", roundID, err)
	}
	if s.cash != nil {
		for _, a := range refundedTo {
			s.cash.InvalidateCash(a)
		}
	}
	s.logger.Info("qf round finalised", slog.Int64("round_id", roundID), slog.Int64("actor_id", actor), slog.Int("refunded", len(refundedTo)))
	return s.Round(ctx, roundID)
}

// refunded is what refunds gives back: the total and to whom.
type refunded struct {
	total    levee.Micros
	accounts []int64
}

// refunds returns the transfers that give each contributor to a project of
// the round that is not eligible exactly what they put in, one per project:
// `qf_refund`, `qf/project/<id>`. Assumes the round is locked FOR UPDATE
// (no contribution can commit meanwhile).
func refunds(ctx context.Context, tx *sqlx.Tx, roundID int64, now time.Time) ([]ledger.Transfer, refunded, error) {
	var rows []struct {
		Project int64        `db:"project_id"`
		Account int64        `db:"account_id"`
		Amount  levee.Micros `db:"amount"`
	}
	if err := tx.SelectContext(ctx, &rows, `
		SELECT c.project_id, c.account_id, sum(c.amount) AS amount
		FROM qf_contributions c JOIN qf_projects p ON p.id = c.project_id
		WHERE c.round_id = $1 AND p.eligible IS NOT TRUE
		GROUP BY c.project_id, c.account_id ORDER BY c.project_id, c.account_id`, roundID); err != nil {
		return nil, refunded{}, fmt.Errorf("load contributions to refund: %w", err)
	}
	var ts []ledger.Transfer
	var r refunded
	for i, row := range rows {
		if i == 0 || rows[i-1].Project != row.Project {
			ts = append(ts, ledger.Transfer{Kind: "qf_refund", Ref: "qf/project/" + levee.FormatID(row.Project), At: now,
				Postings: []ledger.Posting{{Account: ledger.RoundEscrow(roundID)}}})
		}
		t := &ts[len(ts)-1]
		t.Postings[0].Amount -= row.Amount
		t.Postings = append(t.Postings, ledger.Posting{Account: ledger.Cash(row.Account), Amount: row.Amount})
		r.total += row.Amount
		r.accounts = append(r.accounts, row.Account)
	}
	return ts, r, nil
}

// ContributionsOf returns every contribution of account, oldest first: for
// its owner's data export.
func (s *Service) ContributionsOf(ctx context.Context, account int64) ([]ContributionRecord, error) {
	cs := []ContributionRecord{}
	if err := s.db.SelectContext(ctx, &cs, `SELECT id, project_id, round_id, account_id, amount, ledger_seq, at
		FROM qf_contributions WHERE account_id = $1 ORDER BY id`, account); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("contributions of %d: %w", account, err))
	}
	return cs, nil
}

// ExplainView is what a contributor's contributions added to each project.
type ExplainView struct {
	Round    int64     `json:"round,string"`
	Account  int64     `json:"account,string"`
	Projects []Explain `json:"projects"`
}

// Explain shows, for account, each project it contributed to in a round and
// the project's raw match with and without its contributions.
// Errors: ENOTFOUND (round).
func (s *Service) Explain(ctx context.Context, account, roundID int64) (ExplainView, error) {
	if _, err := getRound(ctx, s.db, roundID, ""); err != nil {
		return ExplainView{}, err
	}
	cs, err := contributions(ctx, s.db, roundID)
	if err != nil {
		return ExplainView{}, err
	}
	v := ExplainView{Round: roundID, Account: account, Projects: ExplainFor(account, cs)}
	if v.Projects == nil {
		v.Projects = []Explain{}
	}
	return v, nil
}

// BudgetLines lists every budget line, oldest first, with its current
// ledger balance.
func (s *Service) BudgetLines(ctx context.Context) ([]BudgetLine, error) {
	ls := []BudgetLine{}
	if err := s.db.SelectContext(ctx, &ls, `
		SELECT `+lineColumns+` FROM budget_lines b ORDER BY b.id`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list budget lines: %w", err))
	}
	names, err := accounts.DistrictNames(ctx, s.db)
	if err != nil {
		return nil, fmt.Errorf("list budget lines: %w", err)
	}
	keys := make([]string, len(ls))
	for i := range ls {
		keys[i] = ls[i].LedgerKey
	}
	balances, err := ledger.Balances(ctx, s.db, keys)
	if err != nil {
		return nil, fmt.Errorf("list budget lines: %w", err)
	}
	for i := range ls {
		ls[i].Balance = balances[ls[i].LedgerKey]
		ls[i].District = names[ls[i].DistrictID]
	}
	return ls, nil
}
