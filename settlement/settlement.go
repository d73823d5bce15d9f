// Package settlement decides what is contested: an outcome proposed for a
// closed market, a milestone claim, an emergency act under review. Most
// proposals are not disputed and become final after their dispute window. A
// dispute (with a reason and a bond) opens a case; a jury of residents drawn
// at random in a way anyone can recompute (draw.go, docs/juries.md) commits
// and then reveals its votes; a party may appeal to a larger jury; and the
// final verdict settles the subject exactly once, in one transaction with
// the record that it did (settle.go).
//
// Settlement does not own what it settles. Each kind of subject has an Owner
// (declared here, implemented by the package that owns the subject, wired in
// cmd/levee), so settlement never imports contracting.
//
// Lock order: docs/locks.md (a case's row, then the subject's, the ledger
// last).
package settlement

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/pgtx"
)

// Case statuses, in the order a case passes through them.
const (
	StatusEvidence   = "evidence"   // parties submit evidence; jurors are seated and read it
	StatusCommit     = "commit"     // jurors commit SHA-256(verdict ":" salt)
	StatusReveal     = "reveal"     // jurors reveal verdict and salt
	StatusAppealable = "appealable" // a verdict stands; a party may appeal
	StatusFinal      = "final"      // the verdict is final, settlement pending
	StatusSettled    = "settled"    // applied to its subject, exactly once
)

// Verdicts shared by several kinds of case.
const (
	VerdictVoid   = "void"
	VerdictAccept = "accept"
	VerdictReject = "reject"
)

// Facts describe a case's subject, as its owner sees it.
type Facts struct {
	Kind      string // market, milestone, act
	Question  string
	Verdicts  []string
	Default   string  // the verdict that stands if no jury can be formed
	Districts []int64 // affected districts; empty means every district
	// Parties may submit evidence and appeal (account → role).
	Parties map[int64]string
	// Excluded are never drawn: traders and holders of markets tied to the
	// case, members of contractor parties, the officials involved.
	Excluded []int64
	// Markets are the markets tied to the case: from seating until the
	// case is settled its jurors and parties may not trade in them.
	Markets []int64
}

// Owner is the package that owns one kind of subject. ref is the part of
// the subject after "<kind>:".
type Owner interface {
	// Facts describes the subject. Errors: ENOTFOUND.
	Facts(ctx context.Context, q sqlx.QueryerContext, ref string) (Facts, error)
	// Hold marks the subject disputed by who inside tx (the case's opening
	// transaction) and returns the verdict that was proposed. It refuses a
	// subject that cannot be disputed now (ECONFLICT) and a caller who may
	// not dispute it (EFORBIDDEN).
	Hold(ctx context.Context, tx *sqlx.Tx, who *accounts.Principal, ref string) (proposed string, err error)
	// Settle applies verdict to the subject in one transaction of the
	// owner's, calling mark inside it; if mark fails nothing is applied.
	// A subject that can no longer take the verdict returns ECONFLICT.
	Settle(ctx context.Context, ref, verdict string, mark func(ctx context.Context, tx *sqlx.Tx) error) error
}

// Rules are a kind of case's parameters, copied into each case when it
// opens so that later changes never alter a case under way.
type Rules struct {
	DisputeWindow  time.Duration // from a proposal to its finality
	Bond           levee.Micros  // a dispute's bond; into the case's fee pool
	JurySize       int
	Supermajority  levee.Micros // share of revealed votes a verdict must exceed (0.500000: a simple majority)
	MinReveals     int          // fewer reveals start a new round
	JurorFee       levee.Micros // per seat, paid to jurors who reveal
	AppealBond     levee.Micros
	MaxAppeals     int
	Stratify       bool         // seats per district in proportion to its share of the pool
	OutsideShare   levee.Micros // share of seats drawn from residents of other districts
	EvidencePeriod time.Duration
	CommitPeriod   time.Duration
	RevealPeriod   time.Duration
	AppealWindow   time.Duration
}

// DefaultRules are the rules of each kind of case unless Options say
// otherwise.
func DefaultRules() map[string]Rules {
	base := Rules{
		DisputeWindow: 48 * time.Hour, Bond: 10 * levee.Scale, JurySize: 5, Supermajority: levee.Scale / 2,
		MinReveals: 3, JurorFee: levee.Scale, AppealBond: 20 * levee.Scale, MaxAppeals: 2,
		EvidencePeriod: 48 * time.Hour, CommitPeriod: 48 * time.Hour, RevealPeriod: 24 * time.Hour, AppealWindow: 48 * time.Hour,
	}
	act := base
	act.Bond, act.Stratify = 0, true
	return map[string]Rules{"market": base, "milestone": base, "act": act}
}

// Cash is what settlement needs from the market engine's wallets: money it
// moves out of or into a cash account must be re-read.
type Cash interface{ InvalidateCash(account int64) }

// Options configure a Service.
type Options struct {
	Owners  map[string]Owner // by kind
	Rules   map[string]Rules // by kind; DefaultRules when nil or missing
	Cash    Cash
	Trading Trading // nil: no trading bars (tests of settlement alone)
	Clock   func() time.Time
	Logger  *slog.Logger
	// FailAfterMark, when set, runs inside every settlement transaction
	// after its record is written; an error rolls everything back. Tests
	// use it to prove a settlement interrupted midway is all or nothing.
	FailAfterMark func(caseID int64) error
}

// Service runs proposals, disputes, cases and juries.
type Service struct {
	db   *sqlx.DB
	opts Options
	// serial serialises advancing cases across every instance, so two
	// callers never settle the same case at once; the database's unique
	// keys make it safe even if they did.
	serial pgtx.Serial
}

// New returns a Service over db.
func New(db *sqlx.DB, opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	rules := DefaultRules()
	for k, r := range opts.Rules {
		rules[k] = r
	}
	opts.Rules = rules
	if opts.Owners == nil {
		opts.Owners = map[string]Owner{}
	}
	return &Service{db: db, opts: opts, serial: pgtx.Serial{Key: pgtx.SerialSettlement}}
}

// SetOwner registers the owner of a kind of subject (cmd/levee wires them
// once the owners exist).
func (s *Service) SetOwner(kind string, o Owner) { s.opts.Owners[kind] = o }

// FailSettlementsWith sets Options.FailAfterMark (fault tests).
func (s *Service) FailSettlementsWith(f func(caseID int64) error) {
	if unlock, err := s.serial.Lock(context.Background(), s.db); err == nil {
		defer unlock()
	}
	s.opts.FailAfterMark = f
}

// Rules returns the rules of a kind of case.
func (s *Service) Rules(kind string) Rules { return s.opts.Rules[kind] }

func (s *Service) now() time.Time { return s.opts.Clock().UTC().Truncate(time.Microsecond) }

// owner splits a subject "<kind>:<ref>" and finds its owner.
func (s *Service) owner(subject string) (Owner, string, string, error) {
	kind, ref, ok := strings.Cut(subject, ":")
	o := s.opts.Owners[kind]
	if !ok || o == nil || ref == "" {
		return nil, "", "", levee.Invalid("subject", "subject must be market:<id>, milestone:<contract>/<n> or act:<id>")
	}
	return o, kind, ref, nil
}

func (s *Service) invalidate(ids ...int64) {
	if s.opts.Cash == nil {
		return
	}
	for _, id := range ids {
		if id != 0 {
			s.opts.Cash.InvalidateCash(id)
		}
	}
}

// caseRef is the ledger reference of a case's entries.
func caseRef(caseID int64) string { return "case:" + levee.FormatID(caseID) }
