package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/pgtx"
)

// The SQL of market leases (lease.go, docs/cluster.md). Every expiry is
// judged by PostgreSQL's clock (now()), never by an instance's, so the
// instances' clocks need not agree.

// leaseRow is a market's lease as another instance sees it.
type leaseRow struct {
	Owner string `db:"owner"`
	Epoch int64  `db:"epoch"`
	Live  bool   `db:"live"`
	// Left is how long the lease has to run, in microseconds.
	Left int64 `db:"left_us"`
}

// acquireLease takes market id's lease for node at the next epoch, unless a
// live lease of another instance holds it. With place set and the lease
// free, it first asks which live instance holds the fewest markets and
// leaves the market to it when that is not node. The market row is locked
// first (FOR UPDATE): that waits for any journal transaction of the old
// owner in flight, and the epoch written into it fences every later one.
// It returns the new epoch and the previous owner ("" if none), or a
// *NotOwnerError naming the instance to ask.
func acquireLease(ctx context.Context, db *sqlx.DB, id int64, node string, ttl time.Duration, place bool) (epoch int64, prev string, err error) {
	err = pgtx.Run(ctx, db, func(tx *sqlx.Tx) error {
		prev = ""
		// A market row locked by a stalled instance's transaction is not
		// waited for: the attempt fails (503, or the next adoption round)
		// and PostgreSQL ends that transaction soon (docs/cluster.md).
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '500ms'`); err != nil {
			return fmt.Errorf("lease of market %d: %w", id, err)
		}
		var cur int64
		if err := tx.GetContext(ctx, &cur, `SELECT epoch FROM markets WHERE id = $1 FOR UPDATE`, id); errors.Is(err, sql.ErrNoRows) {
			return levee.Errorf(levee.ENOTFOUND, "no market %d", id)
		} else if err != nil {
			return fmt.Errorf("lock market %d: %w", id, err)
		}
		var l leaseRow
		err := tx.GetContext(ctx, &l, `SELECT owner, epoch, expires_at > now() AS live,
			greatest(0, (extract(epoch FROM expires_at - now()) * 1000000)::bigint) AS left_us FROM market_leases WHERE market_id = $1 FOR UPDATE`, id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read lease of market %d: %w", id, err)
		case l.Live && l.Owner != node:
			return &NotOwnerError{Market: id, Owner: l.Owner, left: time.Duration(l.Left) * time.Microsecond}
		default:
			prev = l.Owner
		}
		free := errors.Is(err, sql.ErrNoRows) || !l.Live
		if place && free {
			target, err := leastLoaded(ctx, tx)
			if err != nil {
				return err
			}
			if target != "" && target != node {
				return &NotOwnerError{Market: id, Owner: target, Placed: true}
			}
		}
		epoch = cur + 1
		if _, err := tx.ExecContext(ctx, `INSERT INTO market_leases (market_id, owner, epoch, expires_at)
			VALUES ($1, $2, $3, now() + $4 * interval '1 microsecond')
			ON CONFLICT (market_id) DO UPDATE SET owner = EXCLUDED.owner, epoch = EXCLUDED.epoch, expires_at = EXCLUDED.expires_at, released = false`,
			id, node, epoch, ttl.Microseconds()); err != nil {
			return fmt.Errorf("write lease of market %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE markets SET epoch = $2 WHERE id = $1`, id, epoch); err != nil {
			return fmt.Errorf("fence market %d: %w", id, err)
		}
		return nil
	})
	if pe := (*pq.Error)(nil); errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available
		return 0, "", levee.Errorf(levee.EUNAVAILABLE, "market %d is moving between instances; try again", id)
	}
	return epoch, prev, err
}

// leastLoaded names the live instance holding the fewest live leases (ties
// by name), or "" when no instance has registered.
func leastLoaded(ctx context.Context, tx *sqlx.Tx) (string, error) {
	var node string
	err := tx.GetContext(ctx, &node, `SELECT n.node FROM cluster_nodes n
		LEFT JOIN market_leases l ON l.owner = n.node AND l.expires_at > now()
		WHERE n.expires_at > now()
		GROUP BY n.node ORDER BY count(l.market_id), n.node LIMIT 1`)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("least-loaded instance: %w", err)
	}
	return node, nil
}

// renewLeases registers node as alive and extends the leases it still holds
// at the epochs its books hold, returning the markets renewed; a book whose
// market is missing from the answer has lost its lease.
func renewLeases(ctx context.Context, db *sqlx.DB, node string, ttl time.Duration, ids, epochs []int64) (map[int64]bool, error) {
	if _, err := db.ExecContext(ctx, `INSERT INTO cluster_nodes (node, started_at, expires_at)
		VALUES ($1, now(), now() + $2 * interval '1 microsecond')
		ON CONFLICT (node) DO UPDATE SET expires_at = EXCLUDED.expires_at`, node, ttl.Microseconds()); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("register instance %s: %w", node, err))
	}
	renewed := make(map[int64]bool, len(ids))
	if len(ids) == 0 {
		return renewed, nil
	}
	var got []int64
	if err := db.SelectContext(ctx, &got, `UPDATE market_leases l SET expires_at = now() + $2 * interval '1 microsecond'
		FROM unnest($3::bigint[], $4::bigint[]) AS v(id, epoch)
		WHERE l.market_id = v.id AND l.epoch = v.epoch AND l.owner = $1
		RETURNING l.market_id`, node, ttl.Microseconds(), pq.Array(ids), pq.Array(epochs)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("renew leases of %s: %w", node, err))
	}
	for _, id := range got {
		renewed[id] = true
	}
	return renewed, nil
}

// releaseLease ends node's lease of market id at epoch at once, so that the
// next request places the market afresh (a book stopped, or rebalanced away).
func releaseLease(ctx context.Context, db *sqlx.DB, id int64, node string, epoch int64) error {
	_, err := db.ExecContext(ctx, `UPDATE market_leases SET expires_at = now() - interval '1 millisecond', released = true
		WHERE market_id = $1 AND owner = $2 AND epoch = $3`, id, node, epoch)
	if err != nil {
		return pgtx.Unavailable(fmt.Errorf("release lease of market %d: %w", id, err))
	}
	return nil
}

// leaseOf reads market id's lease: who holds it and whether it is live.
func leaseOf(ctx context.Context, db *sqlx.DB, id int64) (leaseRow, bool, error) {
	var l leaseRow
	err := db.GetContext(ctx, &l, `SELECT owner, epoch, expires_at > now() AS live,
		greatest(0, (extract(epoch FROM expires_at - now()) * 1000000)::bigint) AS left_us FROM market_leases WHERE market_id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return leaseRow{}, false, nil
	}
	if err != nil {
		return leaseRow{}, false, pgtx.Unavailable(fmt.Errorf("lease of market %d: %w", id, err))
	}
	return l, true, nil
}

// Placement is how many live leases each live instance holds.
type Placement map[string]int

// placement reads the live instances and their live leases.
func placement(ctx context.Context, db *sqlx.DB) (Placement, error) {
	var rows []struct {
		Node string `db:"node"`
		N    int    `db:"n"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT n.node, count(l.market_id) AS n FROM cluster_nodes n
		LEFT JOIN market_leases l ON l.owner = n.node AND l.expires_at > now()
		WHERE n.expires_at > now() GROUP BY n.node`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("placement: %w", err))
	}
	p := Placement{}
	for _, r := range rows {
		p[r.Node] = r.N
	}
	return p, nil
}

// epochOf reads market id's epoch.
func epochOf(ctx context.Context, q sqlx.QueryerContext, id int64) (int64, error) {
	var epoch int64
	err := sqlx.GetContext(ctx, q, &epoch, `SELECT epoch FROM markets WHERE id = $1`, id)
	return epoch, err
}

// marketRows reads the epoch and seq of markets ids: after a refused
// commit, they tell a market another instance took over (another epoch)
// from one whose previous batch did not commit (another seq).
func marketRows(ctx context.Context, db *sqlx.DB, ids []int64) (map[int64]marketRow, error) {
	var got []struct {
		ID    int64 `db:"id"`
		Epoch int64 `db:"epoch"`
		Seq   int64 `db:"seq"`
	}
	if err := db.SelectContext(ctx, &got, `SELECT id, epoch, seq FROM markets WHERE id = ANY($1)`, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("market rows: %w", err)
	}
	out := make(map[int64]marketRow, len(got))
	for _, r := range got {
		out[r.ID] = marketRow{epoch: r.Epoch, seq: r.Seq}
	}
	return out, nil
}

type marketRow struct{ epoch, seq int64 }

// orphanedLeases lists markets whose lease expired without being released:
// their instance died or stalled holding them (at most limit).
func orphanedLeases(ctx context.Context, db *sqlx.DB, limit int) ([]int64, error) {
	var ids []int64
	if err := db.SelectContext(ctx, &ids, `SELECT market_id FROM market_leases WHERE NOT released AND expires_at < now()
		ORDER BY expires_at LIMIT $1`, limit); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("orphaned leases: %w", err))
	}
	return ids, nil
}
