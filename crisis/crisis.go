// Package crisis is how the city acts when consensus is too slow, and how
// it stays accountable when it does. The node's charter (held in the
// database, changed only by its neighbours' quorum) names its districts,
// stewards, neighbour nodes (their URLs and pinned keys), the quorum, and the limits
// of emergency powers. Routine reallocations between budget lines wait for
// the quorum; in an emergency a steward may act alone, within the declared
// scope, cap and time, and every act goes to a jury for review afterwards
// (settlement's stratified draw). See docs/crisis.md.
//
// Lock order: docs/locks.md (charter, emergency, quorum proposal, then
// contracting's and budgets' rows, the ledger last).
package crisis

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/contracting"
	"levee/pgtx"
	"levee/settlement"
)

// Contracts is what crisis needs of contracting: direct awards and their
// referral.
type Contracts interface {
	AwardDirect(ctx context.Context, tx *sqlx.Tx, d contracting.DirectAward) (int64, error)
	ReferDirectAward(ctx context.Context, tx *sqlx.Tx, contractID int64) (levee.Micros, error)
}

// Reviews opens the jury reviews of acts (settlement.Service).
type Reviews interface {
	OpenReview(ctx context.Context, subject, reason string) (settlement.Case, error)
}

// Options configure a Service.
type Options struct {
	Contracts Contracts
	Reviews   Reviews
	Clock     func() time.Time
	Logger    *slog.Logger
	// Node is this node in the network; nil on a node without neighbours
	// that are nodes (and in tests of this package alone).
	Node Node
	// HTTP fetches neighbours' /api/v1/node at founding.
	HTTP *http.Client
}

// Service runs the charter, quorum proposals and emergencies.
type Service struct {
	db   *sqlx.DB
	opts Options
	// advancing serialises Advance across every instance (docs/cluster.md):
	// opening an ended emergency's reviews reads which acts have a case and
	// then opens the others, which two instances must not do at once.
	advancing pgtx.Serial
}

// New returns a Service over db.
func New(db *sqlx.DB, opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	s := &Service{db: db, opts: opts, advancing: pgtx.Serial{Key: pgtx.SerialCrisis}}
	s.registerHandlers()
	return s
}

func (s *Service) now() time.Time { return s.opts.Clock().UTC().Truncate(time.Microsecond) }

// SetReviews wires the jury reviews once settlement exists.
func (s *Service) SetReviews(r Reviews) { s.opts.Reviews = r }

// Advance does what the clock has made due: quorum proposals past their
// window expire, an emergency past its end ends, and the acts of ended
// emergencies go to review. Every act and read also does it first.
func (s *Service) Advance(ctx context.Context) error {
	unlock, err := s.advancing.Lock(ctx, s.db)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.expire(ctx); err != nil {
		return err
	}
	if err := s.suspendSilent(ctx); err != nil {
		return err
	}
	return s.openReviews(ctx)
}
