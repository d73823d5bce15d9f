// Package residents is what a person may do about their own life in Levee
// (docs/privacy.md): take everything Levee holds about them (Export), and
// leave the city with what is theirs (Exit), which a treasurer completes
// by paying out what the treasury owes them (PayOut). It owns no table: it
// reads through the packages that own them and moves money through the
// ledger.
package residents

import (
	"context"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/accounts"
	"levee/budgets"
	"levee/contracting"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/outbox"
	"levee/settlement"
)

// Accounts is what residents needs of accounts.
type Accounts interface {
	Get(ctx context.Context, id int64) (accounts.Account, error)
	BeginExit(ctx context.Context, id int64, now time.Time) (time.Time, error)
	FinishExit(ctx context.Context, id int64, now time.Time) error
	AuditOf(ctx context.Context, id int64) ([]accounts.AuditEntry, error)
}

// Markets is what residents needs of the market engine.
type Markets interface {
	Positions(ctx context.Context, account int64) ([]engine.Position, error)
	TradesOf(ctx context.Context, account int64) ([]market.Trade, error)
	Quote(ctx context.Context, account, marketID int64, o market.Order) (market.Fill, *engine.Snapshot, error)
	Leave(account int64)
	WaitOrders(ctx context.Context, account int64) error
	SellForExit(ctx context.Context, account, marketID int64, outcome int, key string) (engine.Result, error)
	InvalidateCash(account int64)
}

// Cases is what residents needs of settlement.
type Cases interface {
	MyCases(ctx context.Context, account int64) ([]settlement.CaseSummary, error)
	BallotsOf(ctx context.Context, account int64) ([]settlement.Ballot, error)
	Notifications(ctx context.Context, account int64, limit int) ([]outbox.Notification, error)
}

// Budgets is what residents needs of budgets.
type Budgets interface {
	ContributionsOf(ctx context.Context, account int64) ([]budgets.ContributionRecord, error)
}

// Contracting is what residents needs of contracting.
type Contracting interface {
	BidsSubmittedBy(ctx context.Context, account int64) ([]contracting.SubmittedBid, error)
}

// Options are the services a Service reads; Budgets, Contracting and Cases
// may be nil (a node without them exports empty lists).
type Options struct {
	Accounts    Accounts
	Ledger      *ledger.Ledger
	Markets     Markets
	Cases       Cases
	Budgets     Budgets
	Contracting Contracting
	Clock       func() time.Time
	Logger      *slog.Logger
}

// Service exports people's records and runs their exits.
type Service struct {
	db   *sqlx.DB
	opts Options
}

// New returns a Service on db.
func New(db *sqlx.DB, opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, opts: opts}
}
