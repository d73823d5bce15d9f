package ledger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/pgtx"
)

// A person's pseudonym is the public name of their cash account: the hash
// chain commits to the names it shows, so the ledger, which keeps the chain,
// keeps them too (ledger_accounts.public). Everything else that shows a
// person publicly (jury pools, draws, ballots) uses the same pseudonym, read
// from here. Only the owner is told theirs (GET /me); docs/privacy.md says
// who else can link one to a name.

// pseudonymRe is what NewPseudonym makes: "p" and 20 hex digits (80 random
// bits, so neither guessed nor derived from the account id).
var pseudonymRe = regexp.MustCompile(`^p[0-9a-f]{20}$`)

// ValidPseudonym reports whether s is spelled as a pseudonym.
func ValidPseudonym(s string) bool { return pseudonymRe.MatchString(s) }

// NewPseudonym returns a fresh random pseudonym.
func NewPseudonym() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return "p" + hex.EncodeToString(b[:])
}

// OpenPersonal opens person id's cash account inside tx with a fresh
// pseudonym as its public name, or gives a person's existing cash account
// one if it has none (an account opened before pseudonyms). It returns the
// pseudonym. Errors as OpenAccount.
func OpenPersonal(ctx context.Context, tx *sqlx.Tx, id int64) (string, error) {
	if err := OpenAccount(ctx, tx, Cash(id), "cash", false); err != nil {
		return "", err
	}
	// Only an account without a name is written to (and so row-locked): a
	// posting elsewhere may hold the head and wait for this row.
	var public string
	err := tx.GetContext(ctx, &public, `SELECT coalesce(public, '') FROM ledger_accounts WHERE key = $1`, Cash(id))
	if err == nil && public == "" {
		err = tx.GetContext(ctx, &public, `
			UPDATE ledger_accounts SET public = coalesce(public, $2) WHERE key = $1 RETURNING public`,
			Cash(id), KindCash+":"+NewPseudonym())
	}
	if err != nil {
		return "", fmt.Errorf("name cash account of %d: %w", id, err)
	}
	return strings.TrimPrefix(public, KindCash+":"), nil
}

// Pseudonym returns the pseudonym of person id. Errors: ENOTFOUND for an
// account without one (an organisation, or no account).
func Pseudonym(ctx context.Context, q sqlx.QueryerContext, id int64) (string, error) {
	m, err := Pseudonyms(ctx, q, []int64{id})
	if err != nil {
		return "", err
	}
	p, ok := m[id]
	if !ok {
		return "", levee.Errorf(levee.ENOTFOUND, "account %d has no pseudonym", id)
	}
	return p, nil
}

// Pseudonyms returns the pseudonyms of those of ids that have one, by id.
func Pseudonyms(ctx context.Context, q sqlx.QueryerContext, ids []int64) (map[int64]string, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = Cash(id)
	}
	var rows []struct {
		Key    string `db:"key"`
		Public string `db:"public"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, `
		SELECT key, public FROM ledger_accounts WHERE key = ANY($1) AND public IS NOT NULL`, pq.StringArray(keys)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("pseudonyms: %w", err))
	}
	m := make(map[int64]string, len(rows))
	for _, r := range rows {
		k, ok := ParseKey(r.Key)
		if !ok {
			continue
		}
		m[k.ID] = strings.TrimPrefix(r.Public, KindCash+":")
	}
	return m, nil
}

// OpenExit opens the account that holds what the treasury owes person id
// after they leave (exit:<id>, shown as exit:<pseudonym>) inside tx, and
// returns its key. Errors: ENOTFOUND for an account without a pseudonym.
func OpenExit(ctx context.Context, tx *sqlx.Tx, id int64) (string, error) {
	p, err := Pseudonym(ctx, tx, id)
	if err != nil {
		return "", err
	}
	key := Exit(id)
	if err := OpenAccount(ctx, tx, key, "exit", false); err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE ledger_accounts SET public = $2 WHERE key = $1 AND public IS NULL`,
		key, KindExit+":"+p); err != nil {
		return "", fmt.Errorf("name exit account of %d: %w", id, err)
	}
	return key, nil
}

// publicName is the name a of the private epoch shows.
func publicName(a *account) string {
	if a.Public != "" {
		return a.Public
	}
	return a.Key
}

// PublicName returns the name key shows in the export from the private
// epoch on. Errors: ENOTFOUND.
func PublicName(ctx context.Context, q sqlx.QueryerContext, key string) (string, error) {
	var public string
	err := sqlx.GetContext(ctx, q, &public, `SELECT coalesce(public, key) FROM ledger_accounts WHERE key = $1`, key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", levee.Errorf(levee.ENOTFOUND, "no ledger account %s", key)
	} else if err != nil {
		return "", pgtx.Unavailable(fmt.Errorf("public name of %s: %w", key, err))
	}
	return public, nil
}

// Epoch is the ledger's privacy epoch: from seq PrivateFrom on, entries are
// hashed and exported under public names. Carry is the seqs of the entries
// that carried people's balances across (docs/ledger.md, "Epochs").
type Epoch struct {
	PrivateFrom int64   `json:"private_from"`
	Carry       []int64 `json:"carry_seqs,omitempty"`
}

// carryAccount holds people's balances for the instant between the two
// halves of the epoch change.
const carryAccount = "epoch:2:carry"

// BeginPrivateEpoch starts the private epoch on a ledger that has entries
// from before it (a new ledger starts in it: migration 0021), without
// changing any entry: it appends, under one head lock,
//
//  1. entries (kind "epoch", ref "epoch/2") that move every person's
//     balance from cash:<id> to epoch:2:carry, still under the old names;
//  2. then the first entries of the private epoch, which move the same
//     money from epoch:2:carry to cash:<pseudonym>, one posting per person
//     in the order of the pseudonyms (not of the ids).
//
// The first private entry's prev_hash is the hash of the old chain's last
// entry, so the new epoch commits to the old head and the old export still
// verifies as it was. It returns the epoch; calling it again changes nothing.
func (l *Ledger) BeginPrivateEpoch(ctx context.Context) (Epoch, error) {
	var ep Epoch
	err := pgtx.Run(ctx, l.db, func(tx *sqlx.Tx) error {
		ep = Epoch{}
		var head struct {
			Seq         int64         `db:"seq"`
			PrivateFrom sql.NullInt64 `db:"private_from"`
		}
		if err := tx.GetContext(ctx, &head, `SELECT seq, private_from FROM ledger_head FOR UPDATE`); err != nil {
			return fmt.Errorf("lock head: %w", err)
		}
		if head.PrivateFrom.Valid {
			ep.PrivateFrom = head.PrivateFrom.Int64
			return nil
		}
		var rows []struct {
			Key     string       `db:"key"`
			Public  string       `db:"public"`
			Balance levee.Micros `db:"balance"`
		}
		if err := tx.SelectContext(ctx, &rows, `
			SELECT key, public, balance FROM ledger_accounts
			WHERE public IS NOT NULL AND balance <> 0 ORDER BY key`); err != nil {
			return fmt.Errorf("read personal balances: %w", err)
		}
		if len(rows) == 0 {
			ep.PrivateFrom = head.Seq + 1
			_, err := tx.ExecContext(ctx, `UPDATE ledger_head SET private_from = $1`, ep.PrivateFrom)
			return err
		}
		if err := OpenAccount(ctx, tx, carryAccount, "epoch", false); err != nil {
			return err
		}
		var out, in []Transfer
		for chunk := range slices.Chunk(rows, MaxPostings-1) {
			var sum levee.Micros
			t := Transfer{Kind: "epoch", Ref: "epoch/2"}
			for _, r := range chunk {
				t.Postings = append(t.Postings, Posting{Account: r.Key, Amount: -r.Balance})
				sum += r.Balance
			}
			t.Postings = append(t.Postings, Posting{Account: carryAccount, Amount: sum})
			out = append(out, t)
		}
		slices.SortFunc(rows, func(a, b struct {
			Key     string       `db:"key"`
			Public  string       `db:"public"`
			Balance levee.Micros `db:"balance"`
		}) int {
			return strings.Compare(a.Public, b.Public)
		})
		for chunk := range slices.Chunk(rows, MaxPostings-1) {
			var sum levee.Micros
			t := Transfer{Kind: "epoch", Ref: "epoch/2"}
			t.Postings = append(t.Postings, Posting{Account: carryAccount})
			for _, r := range chunk {
				t.Postings = append(t.Postings, Posting{Account: r.Key, Amount: r.Balance})
				sum += r.Balance
			}
			t.Postings[0].Amount = -sum
			in = append(in, t)
		}
		ep.PrivateFrom = head.Seq + int64(len(out)) + 1
		if _, err := tx.ExecContext(ctx, `UPDATE ledger_head SET private_from = $1`, ep.PrivateFrom); err != nil {
			return fmt.Errorf("mark the private epoch: %w", err)
		}
		es, err := PostBatch(ctx, tx, append(out, in...))
		if err != nil {
			return err
		}
		for _, e := range es {
			ep.Carry = append(ep.Carry, e.Seq)
		}
		return nil
	})
	if err != nil {
		return Epoch{}, fmt.Errorf("begin private epoch: %w", err)
	}
	return ep, nil
}

// PrivateEpoch returns the first seq of the private epoch (0 if it has not
// begun).
func (l *Ledger) PrivateEpoch(ctx context.Context) (int64, error) {
	var from sql.NullInt64
	if err := l.db.GetContext(ctx, &from, `SELECT private_from FROM ledger_head`); err != nil {
		return 0, pgtx.Unavailable(fmt.Errorf("private epoch: %w", err))
	}
	return from.Int64, nil
}

// PseudonymOwners returns the accounts whose pseudonyms are among ps, by
// pseudonym: the inverse of Pseudonyms, for code that draws by pseudonym
// and seats accounts (settlement). It is never served to anyone.
func PseudonymOwners(ctx context.Context, q sqlx.QueryerContext, ps []string) (map[string]int64, error) {
	publics := make([]string, len(ps))
	for i, p := range ps {
		publics[i] = KindCash + ":" + p
	}
	var rows []struct {
		Key    string `db:"key"`
		Public string `db:"public"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, `
		SELECT key, public FROM ledger_accounts WHERE public = ANY($1)`, pq.StringArray(publics)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("pseudonym owners: %w", err))
	}
	m := make(map[string]int64, len(rows))
	for _, r := range rows {
		if k, ok := ParseKey(r.Key); ok && k.Kind == KindCash {
			m[strings.TrimPrefix(r.Public, KindCash+":")] = k.ID
		}
	}
	return m, nil
}

// EntriesOf returns, in seq order and in their public form (as the export
// serves them), every entry that posts to any of the accounts keys: a
// person's own entries, which they can check against the public chain.
func (l *Ledger) EntriesOf(ctx context.Context, keys []string) ([]Entry, error) {
	var rows []entryRow
	if err := l.db.SelectContext(ctx, &rows, `
		SELECT seq, at, kind, ref, prev_hash, hash FROM ledger_entries
		WHERE seq IN (SELECT entry_seq FROM ledger_postings WHERE account = ANY($1)) ORDER BY seq`, pq.StringArray(keys)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("entries of %v: %w", keys, err))
	}
	es := make([]Entry, len(rows))
	for i, r := range rows {
		es[i] = r.entry()
	}
	if err := attachPostings(ctx, l.db, es, true); err != nil {
		return nil, pgtx.Unavailable(err)
	}
	return es, nil
}

// Owed is what the treasury owes one person who left the city: the balance
// of exit:<pseudonym>, and what has arrived in their cash since (a position
// kept until its market resolved, a bond returned), which a payout sweeps
// in first.
type Owed struct {
	Pseudonym string       `json:"pseudonym"`
	Account   string       `json:"account"` // exit:<pseudonym>
	Held      levee.Micros `json:"held"`
	InCash    levee.Micros `json:"in_cash"`
	Total     levee.Micros `json:"total"`
	id        int64
}

// ID is the account of the person owed, for the code that pays them.
func (o Owed) ID() int64 { return o.id }

// ExitsOwed lists what the treasury owes to people who left, by
// pseudonym, those owed anything first.
func (l *Ledger) ExitsOwed(ctx context.Context) ([]Owed, error) {
	var rows []struct {
		Key    string       `db:"key"`
		Public string       `db:"public"`
		Held   levee.Micros `db:"held"`
		InCash levee.Micros `db:"in_cash"`
	}
	if err := l.db.SelectContext(ctx, &rows, `
		SELECT e.key, e.public, e.balance AS held, coalesce(c.balance, 0) AS in_cash
		FROM ledger_accounts e LEFT JOIN ledger_accounts c ON c.key = 'cash:' || substr(e.key, 6)
		WHERE e.kind = 'exit' ORDER BY (e.balance + coalesce(c.balance, 0)) = 0, e.public`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("exits owed: %w", err))
	}
	out := make([]Owed, 0, len(rows))
	for _, r := range rows {
		k, ok := ParseKey(r.Key)
		if !ok {
			continue
		}
		p := strings.TrimPrefix(r.Public, KindExit+":")
		out = append(out, Owed{Pseudonym: p, Account: r.Public, Held: r.Held, InCash: r.InCash, Total: r.Held + r.InCash, id: k.ID})
	}
	return out, nil
}
