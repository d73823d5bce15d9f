package residents

import (
	"context"
	"encoding/hex"
	"maps"
	"slices"
	"time"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/contracting"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/outbox"
	"levee/settlement"
)

// Export is everything Levee holds about one person, for them alone
// (GET /api/v1/me/export). Entries are their ledger entries exactly as the
// public export serves them, so they can recompute each hash and compare it
// with the public chain (docs/privacy.md, "Checking your own entries").
type Export struct {
	Format      string           `json:"format"` // "levee-export-v1"
	GeneratedAt time.Time        `json:"generated_at"`
	Account     accounts.Account `json:"account"`
	// LedgerNames are the names the person's money has in the public
	// ledger: cash:<pseudonym> (and exit:<pseudonym> after leaving), and
	// cash:<id> for entries from before the private epoch.
	LedgerNames   []string                     `json:"ledger_names"`
	PrivateFrom   int64                        `json:"private_from"`
	Positions     []engine.Position            `json:"positions"`
	Trades        []market.Trade               `json:"trades"`
	Statement     []StatementLine              `json:"statement"`
	Entries       []ledger.Entry               `json:"entries"`
	Contributions []budgets.ContributionRecord `json:"contributions"`
	Bids          []contracting.SubmittedBid   `json:"bids"`
	Cases         []settlement.CaseSummary     `json:"cases"`
	Ballots       []settlement.Ballot          `json:"ballots"`
	Notifications []outbox.Notification        `json:"notifications"`
	Audit         []accounts.AuditEntry        `json:"audit"`
}

// StatementLine is one movement of the person's money: the posting to one
// of their ledger names in entry Seq, with the entry's hash.
type StatementLine struct {
	Seq     int64        `json:"seq"`
	At      time.Time    `json:"at"`
	Kind    string       `json:"kind"`
	Ref     string       `json:"ref"`
	Account string       `json:"account"`
	Amount  levee.Micros `json:"amount"`
	Hash    string       `json:"hash"`
}

// ExportFormat names the shape of Export.
const ExportFormat = "levee-export-v1"

// Export gathers who's records. Errors: those of the services it reads.
func (s *Service) Export(ctx context.Context, who *accounts.Principal) (Export, error) {
	id := who.AccountID
	x := Export{Format: ExportFormat, GeneratedAt: s.opts.Clock().UTC(), Statement: []StatementLine{},
		Contributions: []budgets.ContributionRecord{}, Bids: []contracting.SubmittedBid{}, Cases: []settlement.CaseSummary{},
		Ballots: []settlement.Ballot{}, Notifications: []outbox.Notification{}}
	var err error
	if x.Account, err = s.opts.Accounts.Get(ctx, id); err != nil {
		return Export{}, err
	}
	if x.PrivateFrom, err = s.opts.Ledger.PrivateEpoch(ctx); err != nil {
		return Export{}, err
	}
	// The person's names: their keys' public names, and the key itself
	// for entries from before the private epoch (which show it).
	keys := []string{ledger.Cash(id), ledger.Exit(id)}
	mine := map[string]bool{}
	for _, k := range keys {
		if name, err := ledger.PublicName(ctx, s.db, k); err == nil {
			mine[name] = true
		} else if levee.ErrorCode(err) != levee.ENOTFOUND {
			return Export{}, err
		}
	}
	if x.Entries, err = s.opts.Ledger.EntriesOf(ctx, keys); err != nil {
		return Export{}, err
	}
	for _, e := range x.Entries {
		if x.PrivateFrom == 0 || e.Seq < x.PrivateFrom {
			mine[ledger.Cash(id)] = true
		}
	}
	for _, e := range x.Entries {
		for _, p := range e.Postings {
			if mine[p.Account] {
				x.Statement = append(x.Statement, StatementLine{Seq: e.Seq, At: e.At, Kind: e.Kind, Ref: e.Ref, Account: p.Account,
					Amount: p.Amount, Hash: hex.EncodeToString(e.Hash)})
			}
		}
	}
	x.LedgerNames = slices.Sorted(maps.Keys(mine))
	if x.LedgerNames == nil {
		x.LedgerNames = []string{}
	}
	if x.Positions, err = s.opts.Markets.Positions(ctx, id); err != nil {
		return Export{}, err
	}
	if x.Trades, err = s.opts.Markets.TradesOf(ctx, id); err != nil {
		return Export{}, err
	}
	if s.opts.Budgets != nil {
		if x.Contributions, err = s.opts.Budgets.ContributionsOf(ctx, id); err != nil {
			return Export{}, err
		}
	}
	if s.opts.Contracting != nil {
		if x.Bids, err = s.opts.Contracting.BidsSubmittedBy(ctx, id); err != nil {
			return Export{}, err
		}
	}
	if s.opts.Cases != nil {
		if x.Cases, err = s.opts.Cases.MyCases(ctx, id); err != nil {
			return Export{}, err
		}
		if x.Ballots, err = s.opts.Cases.BallotsOf(ctx, id); err != nil {
			return Export{}, err
		}
		if x.Notifications, err = s.opts.Cases.Notifications(ctx, id, 10000); err != nil {
			return Export{}, err
		}
	}
	if x.Audit, err = s.opts.Accounts.AuditOf(ctx, id); err != nil {
		return Export{}, err
	}
	if x.Entries == nil {
		x.Entries = []ledger.Entry{}
	}
	if x.Positions == nil {
		x.Positions = []engine.Position{}
	}
	if x.Cases == nil {
		x.Cases = []settlement.CaseSummary{}
	}
	if x.Notifications == nil {
		x.Notifications = []outbox.Notification{}
	}
	return x, nil
}
