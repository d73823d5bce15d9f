package settlement

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/pgtx"
	"levee/settlement/draw"
)

// errNoJury means nobody is left to draw: the case's default verdict stands.
var errNoJury = errors.New("no one left to draw")

// seatRound draws the jurors of a round and reserves their fees inside tx.
// A "first" or "appeal" round fixes a new pool and draws from it; a
// "redraw" (after a tie or too few reveals) continues the current draw's
// sequence, so its pool already leaves out everyone seated before.
func (s *Service) seatRound(ctx context.Context, tx *sqlx.Tx, c *Case, round int, why string, seats int, commitStart time.Time, excluded []int64) error {
	now := s.now()
	var d caseDraw
	var drawer *draw.Drawer
	if why == "redraw" {
		if err := tx.GetContext(ctx, &d, `SELECT `+drawColumns+` FROM case_draws WHERE case_id = $1 ORDER BY n DESC LIMIT 1`, c.ID); err != nil {
			return fmt.Errorf("case %d draw: %w", c.ID, err)
		}
		var err error
		if drawer, err = replay(ctx, tx, &d); err != nil {
			return err
		}
	} else {
		strata, err := s.pool(ctx, tx, c, excluded)
		if err != nil {
			return err
		}
		var pool []int64
		var members []string
		for _, st := range strata {
			members = append(members, st.IDs...)
		}
		// The pool is stored as the accounts in the order of their
		// pseudonyms, the order it is published and hashed in.
		members = draw.SortPool(members)
		owners, err := ledger.PseudonymOwners(ctx, tx, members)
		if err != nil {
			return err
		}
		for _, m := range members {
			pool = append(pool, owners[m])
		}
		d = caseDraw{CaseID: c.ID, Strata: strataJSON{strata}, Pool: pool, Excluded: len(excluded)}
		d.PoolHash = draw.PoolHash(members)
		if err := tx.GetContext(ctx, &d.N, `SELECT count(*) FROM case_draws WHERE case_id = $1`, c.ID); err != nil {
			return err
		}
		drawer = draw.NewDrawer(nil, strata) // for its size only; the seed comes after the beacon
	}
	seats = min(seats, drawer.Remaining())
	if seats == 0 {
		return errNoJury
	}
	// Reserve the seats' fees. The entry is appended after the pool is
	// fixed, and its hash (which chains the whole ledger before it and the
	// microsecond it was written) is the beacon of a new draw.
	reserve := levee.Micros(seats) * c.JurorFee
	fromPool, err := ledger.Balance(ctx, tx, ledger.CaseFees(c.ID))
	if err != nil {
		return err
	}
	fromPool = min(fromPool, reserve)
	ps := []ledger.Posting{{Account: ledger.CaseSeats(c.ID), Amount: reserve}}
	if fromPool > 0 {
		ps = append(ps, ledger.Posting{Account: ledger.CaseFees(c.ID), Amount: -fromPool})
	}
	if fromPool < reserve {
		ps = append(ps, ledger.Posting{Account: ledger.Treasury, Amount: fromPool - reserve})
	}
	e, err := ledger.Post(ctx, tx, ledger.Transfer{Kind: "jury_seats", Ref: caseRef(c.ID), At: now, Postings: ps})
	if err != nil {
		return fmt.Errorf("reserve juror fees: %w", err)
	}
	if why != "redraw" {
		d.BeaconSeq, d.Beacon = e.Seq, e.Hash
		d.Seed = draw.Seed(d.PoolHash, c.ID, d.Beacon)
		d.DrawnAt = now
		drawer = draw.NewDrawer(d.Seed, d.Strata.V)
		if _, err := tx.NamedExecContext(ctx, `INSERT INTO case_draws (case_id, n, pool, strata, pool_hash, beacon_seq, beacon, seed, excluded, drawn_at)
			VALUES (:case_id, :n, :pool, :strata, :pool_hash, :beacon_seq, :beacon, :seed, :excluded, :drawn_at)`, &d); err != nil {
			return fmt.Errorf("insert draw: %w", err)
		}
	}
	jurors, err := memberAccounts(ctx, tx, drawer.Next(seats))
	if err != nil {
		return err
	}
	commitUntil := commitStart.Add(c.commitPeriod())
	revealUntil := commitUntil.Add(c.revealPeriod())
	if _, err := tx.ExecContext(ctx, `INSERT INTO case_rounds (case_id, round, draw_n, why, seats, commit_until, reveal_until)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, c.ID, round, d.N, why, len(jurors), commitUntil, revealUntil); err != nil {
		return fmt.Errorf("insert round: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO jurors (case_id, round, account_id, draw_index)
		SELECT $1, $2, a, $3 + i - 1 FROM unnest($4::bigint[]) WITH ORDINALITY AS u(a, i)`,
		c.ID, round, d.Drawn, pq.Int64Array(jurors)); err != nil {
		return fmt.Errorf("seat jurors: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE case_draws SET drawn = drawn + $3 WHERE case_id = $1 AND n = $2`, c.ID, d.N, len(jurors)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE cases SET round = $2 WHERE id = $1`, c.ID, round); err != nil {
		return err
	}
	c.Round = round
	if err := s.bar(ctx, tx, c.ID, jurors, true); err != nil {
		return err
	}
	for _, j := range jurors {
		msg := fmt.Sprintf("You were drawn to the jury of case %d: %s. Commit your vote by %s and reveal it by %s.",
			c.ID, c.Question, commitUntil.Format(time.RFC3339), revealUntil.Format(time.RFC3339))
		if err := notify(ctx, tx, j, c.ID, "juror_seated", msg, &commitUntil, now); err != nil {
			return err
		}
	}
	return nil
}

// memberAccounts returns the accounts of drawn members: pseudonyms, or
// account ids in decimal in a draw made before pseudonyms (a redraw of an
// old case continues its old draw).
func memberAccounts(ctx context.Context, q sqlx.QueryerContext, members []string) ([]int64, error) {
	var owners map[string]int64
	out := make([]int64, len(members))
	for i, m := range members {
		if id, err := strconv.ParseInt(m, 10, 64); err == nil && levee.FormatID(id) == m {
			out[i] = id
			continue
		}
		if owners == nil {
			var err error
			if owners, err = ledger.PseudonymOwners(ctx, q, members); err != nil {
				return nil, err
			}
		}
		id, ok := owners[m]
		if !ok {
			return nil, fmt.Errorf("drawn member %s has no account", m)
		}
		out[i] = id
	}
	return out, nil
}

// pool lists who may be drawn for c, in strata of pseudonyms: the residents
// of each affected district (one stratum if the case is not stratified),
// and, with an outside share, the residents of every other district.
func (s *Service) pool(ctx context.Context, tx *sqlx.Tx, c *Case, excluded []int64) ([]draw.Stratum, error) {
	if excluded == nil {
		excluded = []int64{} // a NULL array would leave everyone out
	}
	residents, err := accounts.Residents(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("case %d pool: %w", c.ID, err)
	}
	// Left out: the excluded, who opted out, who sat or sits on this case,
	// and its parties.
	var out []int64
	err = tx.SelectContext(ctx, &out, `SELECT unnest($2::bigint[]) UNION SELECT account_id FROM jury_opt_outs
		UNION SELECT account_id FROM jurors WHERE case_id = $1 UNION SELECT account_id FROM case_parties WHERE case_id = $1`,
		c.ID, pq.Int64Array(excluded))
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("case %d pool: %w", c.ID, err))
	}
	leftOut := make(map[int64]bool, len(out))
	for _, id := range out {
		leftOut[id] = true
	}
	everyDistrict := len(c.DistrictIDs) == 0
	byDistrict := map[int64][]int64{}
	var outside []int64
	for _, r := range residents {
		if leftOut[r.ID] {
			continue
		}
		if everyDistrict || slices.Contains([]int64(c.DistrictIDs), r.DistrictID) {
			byDistrict[r.DistrictID] = append(byDistrict[r.DistrictID], r.ID)
		} else if c.OutsideShare > 0 {
			outside = append(outside, r.ID)
		}
	}
	ids := slices.Concat(outside)
	for _, d := range byDistrict {
		ids = append(ids, d...)
	}
	names, err := ledger.Pseudonyms(ctx, tx, ids)
	if err != nil {
		return nil, fmt.Errorf("case %d pool: %w", c.ID, err)
	}
	pseudonyms := func(ids []int64) []string {
		out := make([]string, 0, len(ids))
		for _, id := range ids {
			if p, ok := names[id]; ok { // a person without a cash account cannot be paid a fee: left out
				out = append(out, p)
			}
		}
		return draw.SortPool(out)
	}
	districts := make([]int64, 0, len(byDistrict))
	for d := range byDistrict {
		districts = append(districts, d)
	}
	slices.Sort(districts)
	var strata []draw.Stratum
	if c.Stratify {
		for _, d := range districts {
			strata = append(strata, draw.Stratum{Key: "district:" + levee.FormatID(d), IDs: pseudonyms(byDistrict[d])})
		}
	} else {
		var all []int64
		for _, d := range districts {
			all = append(all, byDistrict[d]...)
		}
		strata = append(strata, draw.Stratum{Key: "affected", IDs: pseudonyms(all)})
	}
	if c.OutsideShare > 0 {
		strata = append(strata, draw.Stratum{Key: "outside", IDs: pseudonyms(outside), Share: float64(c.OutsideShare) / float64(levee.Scale)})
	}
	return strata, nil
}

// caseDraw is one published draw.
type caseDraw struct {
	CaseID    int64         `db:"case_id"`
	N         int           `db:"n"`
	Pool      pq.Int64Array `db:"pool"`
	Strata    strataJSON    `db:"strata"`
	PoolHash  []byte        `db:"pool_hash"`
	BeaconSeq int64         `db:"beacon_seq"`
	Beacon    []byte        `db:"beacon"`
	Seed      []byte        `db:"seed"`
	Drawn     int           `db:"drawn"`
	Excluded  int           `db:"excluded"`
	DrawnAt   time.Time     `db:"drawn_at"`
}

const drawColumns = `case_id, n, pool, strata, pool_hash, beacon_seq, beacon, seed, drawn, excluded, drawn_at`

// replay rebuilds a draw's state after the rounds already drawn from it.
func replay(ctx context.Context, q sqlx.QueryerContext, d *caseDraw) (*draw.Drawer, error) {
	var seats []int
	if err := sqlx.SelectContext(ctx, q, &seats, `SELECT seats FROM case_rounds WHERE case_id = $1 AND draw_n = $2 ORDER BY round`, d.CaseID, d.N); err != nil {
		return nil, fmt.Errorf("case %d draw %d rounds: %w", d.CaseID, d.N, err)
	}
	dr := draw.NewDrawer(d.Seed, d.Strata.V)
	for _, k := range seats {
		dr.Next(k)
	}
	return dr, nil
}

// jsonColumn stores a value as a jsonb column.
type jsonColumn[T any] struct{ V T }

func (j jsonColumn[T]) Value() (driver.Value, error) { return pgtx.JSONValue(j.V) }
func (j *jsonColumn[T]) Scan(src any) error          { return pgtx.ScanJSON(src, &j.V) }
func (j jsonColumn[T]) MarshalJSON() ([]byte, error) { return json.Marshal(j.V) }

type strataJSON = jsonColumn[[]draw.Stratum]

// Tally counts a round's revealed votes.
type Tally struct {
	Seats     int            `json:"seats"`
	Committed int            `json:"committed"`
	Revealed  int            `json:"revealed"`
	Votes     map[string]int `json:"votes"`
	Outcome   string         `json:"outcome"` // verdict, tie, too_few_reveals
}

type jsonTally = jsonColumn[Tally]
