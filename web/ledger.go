package web

import (
	"context"
	"encoding/hex"
	"net/http"

	"github.com/labstack/echo/v5"

	"levee/accounts"
	"levee/ledger"
)

// ledgerEntries is the public export of the treasury ledger: amounts and
// ledger account ids only, enough to recompute every hash (docs/ledger.md).
func (s *Server) ledgerEntries(c *echo.Context) error {
	after, err := queryInt(c, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	page, err := s.deps.Ledger.Page(c.Request().Context(), after, int(limit))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

// ledgerVerify serves the cached verification of the hash chain and trial
// balance, with its age (verified_at, age_seconds, through_seq): recomputing
// the whole chain per anonymous call would let a few callers stall trading.
func (s *Server) ledgerVerify(c *echo.Context) error {
	r, err := s.deps.Ledger.Verified(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// ledgerPage is the data of /ledger.
type ledgerPage struct {
	Report  ledger.Verified
	Entries []ledgerRow
	Next    int64 // after= for the next, newer page
	After   int64
	Older   *int64 // after= for the previous, older page, if any
}

// ledgerRow is one entry as the page shows it.
type ledgerRow struct {
	ledger.Entry
	HashHex string
}

// pageLedger shows the treasury ledger: verification status and a page of
// entries with their hashes, oldest first from ?after=.
func (s *Server) pageLedger(c *echo.Context) error {
	after, err := queryInt(c, "after", 0, 0, 1<<62)
	if err != nil {
		return s.renderError(c, err)
	}
	ctx := c.Request().Context()
	d := &ledgerPage{After: after}
	if d.Report, err = s.deps.Ledger.Verified(ctx); err != nil {
		return s.renderError(c, err)
	}
	if after == 0 && d.Report.HeadSeq > 50 {
		after = d.Report.HeadSeq - 50 // open on the newest entries
		d.After = after
	}
	pg, err := s.deps.Ledger.Page(ctx, after, 50)
	if err != nil {
		return s.renderError(c, err)
	}
	for _, e := range pg.Entries {
		d.Entries = append(d.Entries, ledgerRow{Entry: e, HashHex: hex.EncodeToString(e.Hash)})
	}
	d.Next = pg.NextAfter
	if after > 0 {
		older := max(after-50, 0)
		d.Older = &older
	}
	p := newPage(c, "Treasury ledger", "ledger")
	p.Data = d
	return s.render(c, http.StatusOK, "ledger", p)
}

// statement is an account's cash movements for its holder.
type statement struct {
	Account   accounts.Named    `json:"account"`
	Movements []ledger.Movement `json:"movements"`
}

// statements returns the caller's cash movements and those of every
// contractor organisation the caller acts for (its payments received).
func (s *Server) statements(ctx context.Context, who *accounts.Principal, limit int) ([]statement, error) {
	owners := []accounts.Named{{ID: who.AccountID, Name: who.Name}}
	orgs, err := s.deps.Accounts.OrganisationsOf(ctx, who.AccountID)
	if err != nil {
		return nil, err
	}
	var out []statement
	for _, o := range append(owners, orgs...) {
		ms, err := s.deps.Ledger.History(ctx, ledger.Cash(o.ID), limit)
		if err != nil {
			return nil, err
		}
		out = append(out, statement{Account: o, Movements: ms})
	}
	return out, nil
}

// myHistory is GET /api/v1/me/history: the caller's cash statement (trades,
// payouts, bonds, fees) and its organisations' (milestone payments).
func (s *Server) myHistory(c *echo.Context) error {
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	st, err := s.statements(c.Request().Context(), principal(c), int(limit))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"statements": st})
}
