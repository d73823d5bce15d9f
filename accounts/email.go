package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/pgtx"
)

// The categories of notifications a person can choose to get by email.
const (
	MailSeats       = "seats"       // jury seats and their deadlines, cases opened, evidence
	MailVerdicts    = "verdicts"    // verdicts, appeals, final and settled cases
	MailQuorum      = "quorum"      // the quorum's answers to proposers
	MailEmergencies = "emergencies" // emergency declarations, acts, renewals and ends
	MailPayments    = "payments"    // money paid to you (milestones, market payouts and refunds, bonds, jurors' fees), awards, milestones due
)

// MailCategories lists every category, in the order forms show them.
var MailCategories = []string{MailSeats, MailVerdicts, MailQuorum, MailEmergencies, MailPayments}

// EmailConfirmTTL is how long a confirmation link works.
const EmailConfirmTTL = 24 * time.Hour

// EmailSettings are an account's address and what it wants to be told.
// Only a confirmed address receives mail.
type EmailSettings struct {
	Address    string   `json:"address"` // empty: no address, no mail
	Confirmed  bool     `json:"confirmed"`
	Categories []string `json:"categories"` // the categories mailed, of MailCategories
}

// Wants reports whether category is mailed.
func (e EmailSettings) Wants(category string) bool { return slices.Contains(e.Categories, category) }

type emailRow struct {
	Address   string         `db:"address"`
	Confirmed *time.Time     `db:"confirmed_at"`
	Muted     pq.StringArray `db:"muted"`
}

func (r emailRow) settings() EmailSettings {
	e := EmailSettings{Address: r.Address, Confirmed: r.Confirmed != nil, Categories: []string{}}
	for _, c := range MailCategories {
		if !slices.Contains(r.Muted, c) {
			e.Categories = append(e.Categories, c)
		}
	}
	return e
}

// Email returns an account's email settings; an account without an address
// has an empty one (and every category chosen, for when it adds one).
func (s *Service) Email(ctx context.Context, account int64) (EmailSettings, error) {
	var r emailRow
	err := s.db.GetContext(ctx, &r, `SELECT address, confirmed_at, muted FROM account_emails WHERE account_id = $1`, account)
	if errors.Is(err, sql.ErrNoRows) {
		return emailRow{}.settings(), nil
	}
	if err != nil {
		return EmailSettings{}, pgtx.Unavailable(fmt.Errorf("email of %d: %w", account, err))
	}
	return r.settings(), nil
}

// ValidateEmail checks an address: a bare addr-spec (no display name), at
// most 254 characters, with a dot in its domain. Errors: EINVALID.
func ValidateEmail(address string) error {
	bad := levee.Invalid("address", "address must be an email address such as alice@example.org")
	if len(address) < 3 || len(address) > 254 || strings.ContainsAny(address, " \t\r\n<>\"") {
		return bad
	}
	a, err := mail.ParseAddress(address)
	if err != nil || a.Name != "" || a.Address != address {
		return bad
	}
	at := strings.LastIndexByte(address, '@')
	if at < 1 || !strings.Contains(address[at+1:], ".") || strings.HasSuffix(address, ".") {
		return bad
	}
	return nil
}

// SetEmail gives an account a new, unconfirmed address and returns the
// one-time token of its confirmation link (kept only as its hash, valid
// for EmailConfirmTTL). Setting an address again sends a new link and
// makes the old one void; the categories chosen stay. Errors: EINVALID.
func (s *Service) SetEmail(ctx context.Context, account int64, address string) (EmailSettings, string, error) {
	if err := ValidateEmail(address); err != nil {
		return EmailSettings{}, "", err
	}
	token, hash := NewToken()
	now := time.Now().UTC()
	var r emailRow
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &r, `INSERT INTO account_emails (account_id, address, token_hash, token_expires_at, updated_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (account_id) DO UPDATE SET address = $2, confirmed_at = NULL, token_hash = $3, token_expires_at = $4, updated_at = $5
			RETURNING address, confirmed_at, muted`, account, address, hash, now.Add(EmailConfirmTTL), now)
	})
	if err != nil {
		return EmailSettings{}, "", fmt.Errorf("set email of %d: %w", account, err)
	}
	return r.settings(), token, nil
}

// ConfirmEmail confirms the address whose confirmation link carries token;
// the link works once. Errors: ENOTFOUND (an unknown, used or expired link).
func (s *Service) ConfirmEmail(ctx context.Context, token string) (EmailSettings, error) {
	var r emailRow
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &r, `UPDATE account_emails SET confirmed_at = $2, token_hash = NULL, token_expires_at = NULL, updated_at = $2
			WHERE token_hash = $1 AND token_expires_at > $2
			RETURNING address, confirmed_at, muted`, HashToken(token), time.Now().UTC())
	})
	if errors.Is(err, sql.ErrNoRows) {
		return EmailSettings{}, levee.Errorf(levee.ENOTFOUND, "this confirmation link is unknown, used or expired; set your address again for a new one")
	}
	if err != nil {
		return EmailSettings{}, fmt.Errorf("confirm email: %w", err)
	}
	return r.settings(), nil
}

// SetEmailCategories chooses the categories mailed to an account; the
// others stay in the app. Errors: EINVALID (an unknown category),
// ENOTFOUND (no address set).
func (s *Service) SetEmailCategories(ctx context.Context, account int64, categories []string) (EmailSettings, error) {
	muted := []string{}
	for _, c := range categories {
		if !slices.Contains(MailCategories, c) {
			return EmailSettings{}, levee.Invalid("categories", "categories must be some of %s", strings.Join(MailCategories, ", "))
		}
	}
	for _, c := range MailCategories {
		if !slices.Contains(categories, c) {
			muted = append(muted, c)
		}
	}
	var r emailRow
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &r, `UPDATE account_emails SET muted = $2, updated_at = $3 WHERE account_id = $1
			RETURNING address, confirmed_at, muted`, account, pq.StringArray(muted), time.Now().UTC())
	})
	if errors.Is(err, sql.ErrNoRows) {
		return EmailSettings{}, levee.Errorf(levee.ENOTFOUND, "set an email address first")
	}
	if err != nil {
		return EmailSettings{}, fmt.Errorf("email categories of %d: %w", account, err)
	}
	return r.settings(), nil
}

// RemoveEmail forgets an account's address: no more mail, everything stays
// in the app. Removing an address that is not there is not an error.
func (s *Service) RemoveEmail(ctx context.Context, account int64) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM account_emails WHERE account_id = $1`, account); err != nil {
		return pgtx.Unavailable(fmt.Errorf("remove email of %d: %w", account, err))
	}
	return nil
}
