package contracting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/input"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/pgtx"
)

// Contract is an awarded tender's work, its price held in escrow.
type Contract struct {
	ID            int64               `json:"id,string" db:"id"`
	TenderID      int64               `json:"tender,string" db:"tender_id"`
	BidID         int64               `json:"bid,string" db:"bid_id"`
	ContractorID  int64               `json:"contractor,string" db:"contractor_id"`
	Price         levee.Micros        `json:"price" db:"price"`
	MarketID      *int64              `json:"market,string,omitempty" db:"market_id"` // nil for a direct award
	CompletionAt  time.Time           `json:"completion_at" db:"completion_at"`
	Status        string              `json:"status" db:"status"`
	CreatedAt     time.Time           `json:"created_at" db:"created_at"`
	SettledAt     *time.Time          `json:"settled_at,omitempty" db:"settled_at"`
	EscrowAccount string              `json:"escrow_account" db:"-"`
	Escrow        levee.Micros        `json:"escrow" db:"-"`
	Milestones    []ContractMilestone `json:"milestones" db:"-"`
}

// ContractMilestone is one milestone of a contract and its claim.
type ContractMilestone struct {
	N             int          `json:"n" db:"n"`
	Title         string       `json:"title" db:"title"`
	Share         levee.Micros `json:"share" db:"share"`
	Amount        levee.Micros `json:"amount" db:"amount"`
	DueAt         time.Time    `json:"due_at" db:"due_at"`
	Status        string       `json:"status" db:"status"`
	Evidence      string       `json:"evidence" db:"evidence"`
	ClaimedAt     *time.Time   `json:"claimed_at,omitempty" db:"claimed_at"`
	DisputeReason string       `json:"dispute_reason,omitempty" db:"dispute_reason"`
	DisputedAt    *time.Time   `json:"disputed_at,omitempty" db:"disputed_at"`
	AcceptedAt    *time.Time   `json:"accepted_at,omitempty" db:"accepted_at"`
	PaidSeq       *int64       `json:"paid_seq,omitempty" db:"paid_seq"`
}

const contractColumns = `id, tender_id, bid_id, contractor_id, price, market_id, completion_at, status, created_at, settled_at`

// ContractorOf returns the contractor of a contract. Errors: ENOTFOUND.
func ContractorOf(ctx context.Context, q sqlx.QueryerContext, contractID int64) (int64, error) {
	var contractor int64
	err := sqlx.GetContext(ctx, q, &contractor, `SELECT contractor_id FROM contracts WHERE id = $1`, contractID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, levee.Errorf(levee.ENOTFOUND, "no contract %d", contractID)
	} else if err != nil {
		return 0, pgtx.Unavailable(fmt.Errorf("contractor of %d: %w", contractID, err))
	}
	return contractor, nil
}

func getContract(ctx context.Context, q sqlx.QueryerContext, id int64, lock string) (Contract, error) {
	var c Contract
	err := sqlx.GetContext(ctx, q, &c, `SELECT `+contractColumns+` FROM contracts WHERE id = $1 `+lock, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Contract{}, levee.Errorf(levee.ENOTFOUND, "no contract %d", id)
	} else if err != nil {
		return Contract{}, pgtx.Unavailable(fmt.Errorf("load contract %d: %w", id, err))
	}
	if err := sqlx.SelectContext(ctx, q, &c.Milestones, `SELECT n, title, share, amount, due_at, status, evidence, claimed_at,
		dispute_reason, disputed_at, accepted_at, paid_seq FROM contract_milestones WHERE contract_id = $1 ORDER BY n`, id); err != nil {
		return Contract{}, pgtx.Unavailable(fmt.Errorf("contract milestones: %w", err))
	}
	c.EscrowAccount = ledger.Escrow(id)
	return c, nil
}

// Contract returns a contract, first accepting claims whose dispute window
// passed and settling it if it is due. Errors: ENOTFOUND.
func (s *Service) Contract(ctx context.Context, id int64) (Contract, error) {
	unlock, lerr := s.serial.Lock(ctx, s.db)
	if lerr != nil {
		return Contract{}, lerr
	}
	defer unlock()
	if err := s.advance(ctx, id); err != nil {
		return Contract{}, err
	}
	c, err := getContract(ctx, s.db, id, "")
	if err != nil {
		return Contract{}, err
	}
	if c.Escrow, err = ledger.Balance(ctx, s.db, c.EscrowAccount); err != nil {
		return Contract{}, err
	}
	return c, nil
}

// advance does what time has made due: claims past their dispute window
// are accepted and paid; a contract whose milestones are all accepted, or
// whose completion date passed with work unclaimed, is settled (the unspent
// escrow back to the budget line) and its decision market resolved.
// Assumes s.mu is held.
func (s *Service) advance(ctx context.Context, id int64) error {
	var paid []int64
	var resolve = -1
	var marketID *int64
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		paid, resolve = nil, -1
		c, err := getContract(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		marketID = c.MarketID
		if c.Status != ContractActive {
			return nil
		}
		t, err := getTender(ctx, tx, c.TenderID, "")
		if err != nil {
			return err
		}
		now := s.now()
		window := time.Duration(t.DisputeWindowUS) * time.Microsecond
		for i := range c.Milestones {
			m := &c.Milestones[i]
			if m.Status == MilestoneClaimed && !now.Before(m.ClaimedAt.Add(window)) {
				if err := s.release(ctx, tx, &c, m, m.ClaimedAt.Add(window)); err != nil {
					return err
				}
				paid = append(paid, c.ContractorID)
			}
		}
		allAccepted, inTime, unclaimed := true, true, false
		for _, m := range c.Milestones {
			allAccepted = allAccepted && m.Status == MilestoneAccepted
			inTime = inTime && m.ClaimedAt != nil && !m.ClaimedAt.After(c.CompletionAt)
			unclaimed = unclaimed || m.Status == MilestonePending || m.Status == MilestoneRejected
		}
		status := ""
		switch {
		case allAccepted && inTime:
			status, resolve = ContractCompleted, yesOutcome
		case allAccepted:
			status, resolve = ContractCompleted, noOutcome
		case now.After(c.CompletionAt) && unclaimed:
			status, resolve = ContractFailed, noOutcome
		default:
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE contracts SET status = $2, settled_at = $3 WHERE id = $1`, id, status, now); err != nil {
			return err
		}
		left, err := ledger.Balance(ctx, tx, ledger.Escrow(id))
		if err != nil || left == 0 {
			return err
		}
		_, err = ledger.Post(ctx, tx, ledger.Transfer{Kind: "escrow_return", Ref: "contract/" + levee.FormatID(id), At: now,
			Postings: []ledger.Posting{{Account: ledger.Escrow(id), Amount: -left}, {Account: ledger.BudgetLine(t.BudgetLineID), Amount: left}}})
		return err
	})
	if err != nil {
		return fmt.Errorf("contract %d: %w", id, err)
	}
	for _, a := range paid {
		s.markets.InvalidateCash(a)
	}
	if marketID == nil {
		return nil // a direct award has no decision market
	}
	if resolve < 0 {
		// A settled contract whose market resolution was interrupted.
		c, err := getContract(ctx, s.db, id, "")
		if err != nil || c.Status == ContractActive {
			return err
		}
		resolve = noOutcome
		if c.Status == ContractCompleted {
			resolve = yesOutcome
			for _, m := range c.Milestones {
				if m.ClaimedAt == nil || m.ClaimedAt.After(c.CompletionAt) {
					resolve = noOutcome
				}
			}
		}
	}
	snap, err := s.markets.Snapshot(ctx, *marketID)
	if err != nil {
		return err
	}
	if st := snap.Market.Status; st == market.StatusResolved || st == market.StatusVoid {
		return nil
	}
	if err := s.markets.Resolve(ctx, *marketID, resolve); err != nil {
		return fmt.Errorf("contract %d: resolve market %d: %w", id, *marketID, err)
	}
	return nil
}

// release pays an accepted milestone's amount from escrow to the contractor.
func (s *Service) release(ctx context.Context, tx *sqlx.Tx, c *Contract, m *ContractMilestone, at time.Time) error {
	var seq *int64
	if m.Amount > 0 {
		e, err := ledger.Post(ctx, tx, ledger.Transfer{Kind: "milestone_payment", Ref: "contract/" + levee.FormatID(c.ID), At: s.now(),
			Postings: []ledger.Posting{{Account: ledger.Escrow(c.ID), Amount: -m.Amount}, {Account: ledger.Cash(c.ContractorID), Amount: m.Amount}}})
		if err != nil {
			return err
		}
		seq = &e.Seq
	}
	m.Status, m.AcceptedAt, m.PaidSeq = MilestoneAccepted, &at, seq
	if _, err := tx.ExecContext(ctx, `UPDATE contract_milestones SET status = 'accepted', accepted_at = $3, paid_seq = $4
		WHERE contract_id = $1 AND n = $2`, c.ID, m.N, at, seq); err != nil {
		return err
	}
	return s.tellPaid(ctx, tx, c, m)
}

// milestoneAction runs f on one milestone of an active contract, after
// advance, and then advances again (f may complete the contract).
func (s *Service) milestoneAction(ctx context.Context, contractID int64, n int, f func(tx *sqlx.Tx, c *Contract, t *Tender, m *ContractMilestone) error) (Contract, error) {
	unlock, lerr := s.serial.Lock(ctx, s.db)
	if lerr != nil {
		return Contract{}, lerr
	}
	if err := s.advance(ctx, contractID); err != nil {
		unlock()
		return Contract{}, err
	}
	var paid bool
	var contractor int64
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		c, err := getContract(ctx, tx, contractID, "FOR UPDATE")
		if err != nil {
			return err
		}
		contractor = c.ContractorID
		if n < 1 || n > len(c.Milestones) {
			return levee.Errorf(levee.ENOTFOUND, "contract %d has no milestone %d", contractID, n)
		}
		t, err := getTender(ctx, tx, c.TenderID, "")
		if err != nil {
			return err
		}
		if c.Status != ContractActive {
			return levee.Errorf(levee.ECONFLICT, "contract %d is %s", contractID, c.Status)
		}
		m := &c.Milestones[n-1]
		before := m.Status
		if err := f(tx, &c, &t, m); err != nil {
			return err
		}
		paid = before != MilestoneAccepted && m.Status == MilestoneAccepted
		return nil
	})
	if err == nil && paid {
		s.markets.InvalidateCash(contractor)
	}
	if err == nil {
		err = s.advance(ctx, contractID)
	}
	unlock()
	if err != nil {
		return Contract{}, fmt.Errorf("contract %d milestone %d: %w", contractID, n, err)
	}
	return s.Contract(ctx, contractID)
}

// Claim says a milestone is done, with evidence. Only the contractor (or a
// member acting for it) may claim. Errors: ENOTFOUND, EINVALID, EFORBIDDEN,
// ECONFLICT (not claimable now).
func (s *Service) Claim(ctx context.Context, who *accounts.Principal, contractID int64, n int, evidence string) (Contract, error) {
	if err := input.Length("evidence", evidence, 1, 20000); err != nil {
		return Contract{}, err
	}
	return s.milestoneAction(ctx, contractID, n, func(tx *sqlx.Tx, c *Contract, t *Tender, m *ContractMilestone) error {
		if err := actsFor(ctx, tx, who, c.ContractorID); err != nil {
			return levee.Errorf(levee.EFORBIDDEN, "only the contractor can claim its milestones")
		}
		if m.Status != MilestonePending && m.Status != MilestoneRejected {
			return levee.Errorf(levee.ECONFLICT, "milestone %d is %s", m.N, m.Status)
		}
		now := s.now()
		_, err := tx.ExecContext(ctx, `UPDATE contract_milestones SET status = 'claimed', evidence = $3, claimed_by = $4, claimed_at = $5,
			dispute_reason = '', disputed_by = NULL, disputed_at = NULL WHERE contract_id = $1 AND n = $2`, c.ID, m.N, evidence, who.AccountID, now)
		m.Status = MilestoneClaimed
		return err
	})
}

// MilestoneFacts is what a case about a milestone claim needs to know.
type MilestoneFacts struct {
	Question  string
	Districts []int64
	// Parties: the contractor organisation and its members, and the
	// official who tendered the work.
	Parties map[int64]string
	// Excluded from its juries: traders and holders of any decision market
	// of the tender, and the contractor's members.
	Excluded []int64
	// Markets tied to the case: every decision market of the tender.
	Markets []int64
}

// DescribeMilestone describes milestone n of a contract through q.
// Errors: ENOTFOUND.
func DescribeMilestone(ctx context.Context, q sqlx.QueryerContext, contractID int64, n int) (MilestoneFacts, error) {
	c, err := getContract(ctx, q, contractID, "")
	if err != nil {
		return MilestoneFacts{}, err
	}
	if n < 1 || n > len(c.Milestones) {
		return MilestoneFacts{}, levee.Errorf(levee.ENOTFOUND, "contract %d has no milestone %d", contractID, n)
	}
	t, err := getTender(ctx, q, c.TenderID, "")
	if err != nil {
		return MilestoneFacts{}, err
	}
	m := c.Milestones[n-1]
	f := MilestoneFacts{
		Question:  fmt.Sprintf("Was milestone %d (%q) of %q delivered to the tender's acceptance criteria, as claimed?", n, m.Title, t.Title),
		Districts: []int64(t.DistrictIDs),
		Parties:   map[int64]string{c.ContractorID: "contractor", t.CreatedBy: "official"},
	}
	members, err := accounts.Members(ctx, q, c.ContractorID)
	if err != nil {
		return MilestoneFacts{}, fmt.Errorf("contractor members: %w", err)
	}
	for _, id := range members {
		f.Parties[id] = "contractor"
	}
	if err := sqlx.SelectContext(ctx, q, &f.Markets, `SELECT market_id FROM bids WHERE tender_id = $1 AND market_id IS NOT NULL ORDER BY market_id`, t.ID); err != nil {
		return MilestoneFacts{}, pgtx.Unavailable(fmt.Errorf("tender markets: %w", err))
	}
	if f.Excluded, err = engine.HoldersOf(ctx, q, f.Markets); err != nil {
		return MilestoneFacts{}, fmt.Errorf("tender traders: %w", err)
	}
	return f, nil
}

// HoldMilestone disputes a claim within its dispute window, inside tx (the
// transaction that opens the jury's case). A resident of one of the
// tender's districts, a treasurer, or a rival bidder may dispute.
// Errors: ENOTFOUND, EUNAUTHORIZED, EFORBIDDEN, ECONFLICT (not claimed, or
// the window has passed).
func (s *Service) HoldMilestone(ctx context.Context, tx *sqlx.Tx, who *accounts.Principal, contractID int64, n int) error {
	if who == nil {
		return levee.Errorf(levee.EUNAUTHORIZED, "sign in first")
	}
	c, err := getContract(ctx, tx, contractID, "FOR UPDATE")
	if err != nil {
		return err
	}
	if n < 1 || n > len(c.Milestones) {
		return levee.Errorf(levee.ENOTFOUND, "contract %d has no milestone %d", contractID, n)
	}
	t, err := getTender(ctx, tx, c.TenderID, "")
	if err != nil {
		return err
	}
	may := who.Has(accounts.RoleTreasurer) || who.Has(accounts.RoleResident) && slices.Contains([]int64(t.DistrictIDs), who.DistrictID)
	if !may {
		orgs, err := accounts.OrganisationIDs(ctx, tx, who.AccountID)
		if err != nil {
			return err
		}
		var rival bool
		if err := tx.GetContext(ctx, &rival, `SELECT EXISTS (SELECT 1 FROM bids b WHERE b.tender_id = $1 AND b.organisation_id <> $2
			AND (b.organisation_id = $3 OR b.organisation_id = ANY($4)))`,
			t.ID, c.ContractorID, who.AccountID, pq.Array(orgs)); err != nil {
			return err
		}
		may = rival
	}
	if !may {
		return levee.Errorf(levee.EFORBIDDEN, "only residents of the tender's districts, treasurers and rival bidders can dispute")
	}
	m := c.Milestones[n-1]
	window := time.Duration(t.DisputeWindowUS) * time.Microsecond
	if c.Status != ContractActive || m.Status != MilestoneClaimed || !s.now().Before(m.ClaimedAt.Add(window)) {
		return levee.Errorf(levee.ECONFLICT, "milestone %d is %s and cannot be disputed now", m.N, m.Status)
	}
	_, err = tx.ExecContext(ctx, `UPDATE contract_milestones SET status = 'disputed', disputed_by = $3, disputed_at = $4
		WHERE contract_id = $1 AND n = $2`, c.ID, m.N, who.AccountID, s.now())
	return err
}

// SettleMilestone applies a jury's verdict on a disputed claim in one
// transaction, calling within first inside it: accepted pays the milestone
// from escrow, rejected lets the contractor claim again.
// Errors: ENOTFOUND, ECONFLICT (not disputed), and within's.
func (s *Service) SettleMilestone(ctx context.Context, contractID int64, n int, accept bool, within func(ctx context.Context, tx *sqlx.Tx) error) error {
	_, err := s.milestoneAction(ctx, contractID, n, func(tx *sqlx.Tx, c *Contract, t *Tender, m *ContractMilestone) error {
		if m.Status != MilestoneDisputed {
			return levee.Errorf(levee.ECONFLICT, "milestone %d is %s, not disputed", m.N, m.Status)
		}
		if err := within(ctx, tx); err != nil {
			return err
		}
		if accept {
			return s.release(ctx, tx, c, m, s.now())
		}
		m.Status = MilestoneRejected
		_, err := tx.ExecContext(ctx, `UPDATE contract_milestones SET status = 'rejected' WHERE contract_id = $1 AND n = $2`, c.ID, m.N)
		return err
	})
	return err
}
