package accounts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/ledger"
	"levee/pgtx"
)

// SessionTTL is how long a browser session lasts.
const SessionTTL = 12 * time.Hour

// Service stores accounts and credentials in PostgreSQL.
type Service struct {
	db     *sqlx.DB
	tokens tokenCache
}

// New returns a Service on db.
func New(db *sqlx.DB) *Service { return &Service{db: db} }

// CreateDistrict adds a district. Errors: EINVALID (name), ECONFLICT (exists).
func (s *Service) CreateDistrict(ctx context.Context, actor int64, name string) (District, error) {
	if err := ValidateDistrictName(name); err != nil {
		return District{}, err
	}
	var d District
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &d, `INSERT INTO districts (name) VALUES ($1) RETURNING id, name`, name); err != nil {
			if pgtx.IsUniqueViolation(err, "") {
				return levee.Errorf(levee.ECONFLICT, "district %q already exists", name)
			}
			return fmt.Errorf("insert district: %w", err)
		}
		return audit(ctx, tx, actor, "district.create", map[string]any{"district_id": d.ID, "name": name})
	})
	return d, err
}

// Districts lists every district by name.
func (s *Service) Districts(ctx context.Context) ([]District, error) {
	ds := []District{}
	if err := s.db.SelectContext(ctx, &ds, `SELECT id, name FROM districts ORDER BY name`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list districts: %w", err))
	}
	return ds, nil
}

// CreateAccount opens an account, its cash account in the ledger, credits it
// from the treasury's issuance account and issues its first API token, all in
// one transaction. Errors: EINVALID (a field), ECONFLICT (name taken).
func (s *Service) CreateAccount(ctx context.Context, actor int64, n NewAccount) (Account, string, error) {
	if err := n.Validate(); err != nil {
		return Account{}, "", err
	}
	var pwHash sql.NullString
	if n.Password != "" {
		pwHash = sql.NullString{String: HashPassword(n.Password), Valid: true}
	}
	token, tokenHash := NewToken()
	var a Account
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		var districtID sql.NullInt64
		if n.District != "" {
			if err := tx.GetContext(ctx, &districtID, `SELECT id FROM districts WHERE name = $1`, n.District); errors.Is(err, sql.ErrNoRows) {
				return levee.Invalid("district", "unknown district %q", n.District)
			} else if err != nil {
				return fmt.Errorf("find district: %w", err)
			}
		}
		var id int64
		err := tx.GetContext(ctx, &id, `
			INSERT INTO accounts (name, kind, roles, district_id, password_hash)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			n.Name, n.Kind, pq.Array(n.Roles), districtID, pwHash)
		if pgtx.IsUniqueViolation(err, "") {
			return &levee.Error{Code: levee.ECONFLICT, Field: "name", Message: fmt.Sprintf("an account named %q already exists", n.Name)}
		} else if err != nil {
			return fmt.Errorf("insert account: %w", err)
		}
		if err := ledger.OpenAccount(ctx, tx, ledger.Cash(id), "cash", false); err != nil {
			return fmt.Errorf("open cash account: %w", err)
		}
		from := ledger.Issuance
		if n.Credit > 0 {
			// After founding no admin creates money: an admission's credit
			// is paid from the treasury.
			if founded, err := isFounded(ctx, tx); err != nil {
				return err
			} else if founded {
				from = ledger.Treasury
			}
			_, err := ledger.Post(ctx, tx, ledger.Transfer{
				Kind: "credit",
				Ref:  "account:" + levee.FormatID(id),
				Postings: []ledger.Posting{
					{Account: from, Amount: -n.Credit},
					{Account: ledger.Cash(id), Amount: n.Credit},
				},
			})
			if err != nil {
				return fmt.Errorf("credit account: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (account_id, token_hash, label) VALUES ($1, $2, 'initial')`, id, tokenHash); err != nil {
			return fmt.Errorf("insert token: %w", err)
		}
		a = Account{ID: id, Name: n.Name, Kind: n.Kind, Roles: n.Roles, District: n.District, Cash: n.Credit}
		return audit(ctx, tx, actor, "account.create", map[string]any{"account_id": id, "name": n.Name, "roles": n.Roles, "credit": n.Credit, "credit_from": from})
	})
	if err != nil {
		return Account{}, "", err
	}
	return a, token, nil
}

// AddMember records that person member acts for organisation org.
// Errors: ENOTFOUND, EINVALID (not an organisation / not a person).
func (s *Service) AddMember(ctx context.Context, actor, org, member int64) error {
	return pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		var kinds []string
		if err := tx.SelectContext(ctx, &kinds, `SELECT kind FROM accounts WHERE id = ANY($1) ORDER BY array_position($1, id)`, pq.Array([]int64{org, member})); err != nil {
			return fmt.Errorf("add member: %w", err)
		}
		if len(kinds) != 2 {
			return levee.Errorf(levee.ENOTFOUND, "no such account")
		}
		if kinds[0] != KindOrganisation {
			return levee.Invalid("organisation", "account %d is not an organisation", org)
		}
		if kinds[1] != KindPerson {
			return levee.Invalid("account", "only a person can be a member of an organisation")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO organisation_members (organisation_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, org, member); err != nil {
			return fmt.Errorf("add member: %w", err)
		}
		return audit(ctx, tx, actor, "organisation.add_member", map[string]any{"organisation_id": org, "member_id": member})
	})
}

// Get returns an account with its current cash. Errors: ENOTFOUND.
func (s *Service) Get(ctx context.Context, id int64) (Account, error) {
	var row struct {
		ID       int64          `db:"id"`
		Name     string         `db:"name"`
		Kind     string         `db:"kind"`
		Roles    pq.StringArray `db:"roles"`
		District sql.NullString `db:"district"`
	}
	err := s.db.GetContext(ctx, &row, `
		SELECT a.id, a.name, a.kind, a.roles, d.name AS district
		FROM accounts a
		LEFT JOIN districts d ON d.id = a.district_id
		WHERE a.id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, levee.Errorf(levee.ENOTFOUND, "no account %d", id)
	} else if err != nil {
		return Account{}, pgtx.Unavailable(fmt.Errorf("get account %d: %w", id, err))
	}
	// An account without a cash account (none today) has no cash.
	cash, err := ledger.Balance(ctx, s.db, ledger.Cash(id))
	if err != nil && levee.ErrorCode(err) != levee.ENOTFOUND {
		return Account{}, fmt.Errorf("get account %d: %w", id, err)
	}
	return Account{ID: row.ID, Name: row.Name, Kind: row.Kind, Roles: row.Roles, District: row.District.String, Cash: cash}, nil
}

// IDByName resolves an account name. Errors: ENOTFOUND.
func (s *Service) IDByName(ctx context.Context, name string) (int64, error) {
	var id int64
	err := s.db.GetContext(ctx, &id, `SELECT id FROM accounts WHERE name = $1`, name)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, levee.Errorf(levee.ENOTFOUND, "no account named %q", name)
	}
	return id, pgtx.Unavailable(err)
}

type principalRow struct {
	AccountID  int64          `db:"id"`
	Name       string         `db:"name"`
	Kind       string         `db:"kind"`
	Roles      pq.StringArray `db:"roles"`
	DistrictID sql.NullInt64  `db:"district_id"`
	CSRF       string         `db:"csrf_token"`
	TokenID    sql.NullInt64  `db:"token_id"`
}

func (r principalRow) principal(via string) *Principal {
	return &Principal{AccountID: r.AccountID, Name: r.Name, Kind: r.Kind, Roles: r.Roles, DistrictID: r.DistrictID.Int64, Via: via, CSRFToken: r.CSRF,
		TokenID: r.TokenID.Int64}
}

// Contractors lists the contractor organisations, by name: public, like
// their bids once a tender closes.
func (s *Service) Contractors(ctx context.Context) ([]Named, error) {
	out := []Named{}
	if err := s.db.SelectContext(ctx, &out, `SELECT id, name FROM accounts WHERE kind = 'organisation' AND 'contractor' = ANY (roles) AND NOT disabled ORDER BY name`); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("contractors: %w", err))
	}
	return out, nil
}

// OrganisationsOf lists the contractor organisations member acts for.
func (s *Service) OrganisationsOf(ctx context.Context, member int64) ([]Named, error) {
	out := []Named{}
	if err := s.db.SelectContext(ctx, &out, `SELECT a.id, a.name FROM organisation_members m JOIN accounts a ON a.id = m.organisation_id
		WHERE m.member_id = $1 ORDER BY a.name`, member); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("organisations of %d: %w", member, err))
	}
	return out, nil
}

// Principal acts as account id without credentials, for Levee's own
// programs (the demo seeding, the drill). Errors: ENOTFOUND.
func (s *Service) Principal(ctx context.Context, id int64) (*Principal, error) {
	var r principalRow
	err := s.db.GetContext(ctx, &r, `SELECT a.id, a.name, a.kind, a.roles, a.district_id, '' AS csrf_token FROM accounts a WHERE a.id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, levee.Errorf(levee.ENOTFOUND, "no account %d", id)
	} else if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("principal %d: %w", id, err))
	}
	return r.principal("internal"), nil
}

// Authenticate resolves a bearer token. Answers are cached for a few
// seconds (tokenCacheTTL): every API call authenticates, and a database
// round trip per order would cost more than pricing it. Revoking a token
// here clears the cache at once. Errors: EUNAUTHORIZED.
func (s *Service) Authenticate(ctx context.Context, token string) (*Principal, error) {
	hash := HashToken(token)
	if p, ok := s.tokens.get(hash); ok {
		return p, nil
	}
	p, err := s.authenticate(ctx, hash)
	if err == nil {
		s.tokens.put(hash, p)
	}
	return p, err
}

// CachedToken answers Authenticate from the token cache alone, with no
// query: ok is false when the token is not in it (unknown, bad, or not
// used lately). Revoking a token clears the cache.
func (s *Service) CachedToken(token string) (*Principal, bool) {
	if token == "" {
		return nil, false
	}
	return s.tokens.get(HashToken(token))
}

// AuthenticateSQL finds the account of a token hash ($1): the statement every
// API request runs, exported for tools that explain its plan.
const AuthenticateSQL = `
		SELECT a.id, a.name, a.kind, a.roles, a.district_id, '' AS csrf_token, t.id AS token_id
		FROM api_tokens t JOIN accounts a ON a.id = t.account_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND NOT a.disabled`

func (s *Service) authenticate(ctx context.Context, hash []byte) (*Principal, error) {
	var r principalRow
	err := s.db.GetContext(ctx, &r, AuthenticateSQL, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, levee.Errorf(levee.EUNAUTHORIZED, "invalid or revoked token")
	} else if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("authenticate: %w", err))
	}
	return r.principal("token"), nil
}

// Login checks a name and password and opens a browser session. It returns
// the session id for the cookie. Errors: EUNAUTHORIZED.
func (s *Service) Login(ctx context.Context, name, password string) (sessionID string, p *Principal, err error) {
	var row struct {
		ID   int64          `db:"id"`
		Hash sql.NullString `db:"password_hash"`
	}
	err = s.db.GetContext(ctx, &row, `SELECT id, password_hash FROM accounts WHERE name = $1 AND NOT disabled`, name)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", nil, pgtx.Unavailable(fmt.Errorf("login: %w", err))
	}
	if !row.Hash.Valid {
		CheckPassword(dummyHash, password) // same time whether or not the name exists
		return "", nil, levee.Errorf(levee.EUNAUTHORIZED, "wrong name or password")
	}
	if !CheckPassword(row.Hash.String, password) {
		return "", nil, levee.Errorf(levee.EUNAUTHORIZED, "wrong name or password")
	}
	return s.openSession(ctx, row.ID, nil)
}

// LoginWithToken opens a browser session for the holder of an API token. The
// session is tied to the token and ends when it is revoked.
func (s *Service) LoginWithToken(ctx context.Context, token string) (string, *Principal, error) {
	p, err := s.Authenticate(ctx, token)
	if err != nil {
		return "", nil, err
	}
	return s.openSession(ctx, p.AccountID, &p.TokenID)
}

// openSession opens a session for accountID, tied to the API token tokenID
// when it was opened with one.
func (s *Service) openSession(ctx context.Context, accountID int64, tokenID *int64) (string, *Principal, error) {
	sid, hash := NewToken()
	csrf, _ := NewToken()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sessions (token_hash, account_id, csrf_token, expires_at, token_id) VALUES ($1, $2, $3, $4, $5)`,
		hash, accountID, csrf, time.Now().Add(SessionTTL), tokenID); err != nil {
		return "", nil, pgtx.Unavailable(fmt.Errorf("open session: %w", err))
	}
	p, err := s.Session(ctx, sid)
	return sid, p, err
}

// Session resolves a session cookie. A session opened with an API token is
// valid only while the token is: however the token was revoked (by its
// holder, by a new LEVEE_ADMIN_TOKEN, in the database), its sessions end
// with it. Errors: EUNAUTHORIZED.
func (s *Service) Session(ctx context.Context, sessionID string) (*Principal, error) {
	var r principalRow
	err := s.db.GetContext(ctx, &r, `
		SELECT a.id, a.name, a.kind, a.roles, a.district_id, s.csrf_token, s.token_id
		FROM sessions s JOIN accounts a ON a.id = s.account_id
		LEFT JOIN api_tokens t ON t.id = s.token_id
		WHERE s.token_hash = $1 AND s.expires_at > now() AND NOT a.disabled
		  AND (s.token_id IS NULL OR t.revoked_at IS NULL)`, HashToken(sessionID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, levee.Errorf(levee.EUNAUTHORIZED, "session expired; sign in again")
	} else if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("session: %w", err))
	}
	return r.principal("session"), nil
}

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, sessionID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1`, HashToken(sessionID))
	return pgtx.Unavailable(err)
}

// Token describes an API token without revealing it.
type Token struct {
	ID        int64      `json:"id,string" db:"id"`
	Label     string     `json:"label" db:"label"`
	CreatedAt time.Time  `json:"created_at" db:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty" db:"revoked_at"`
}

// CreateToken issues another API token for an account.
func (s *Service) CreateToken(ctx context.Context, accountID int64, label string) (Token, string, error) {
	if len(label) > 100 {
		return Token{}, "", levee.Invalid("label", "label must be at most 100 characters")
	}
	token, hash := NewToken()
	var t Token
	err := s.db.GetContext(ctx, &t, `INSERT INTO api_tokens (account_id, token_hash, label) VALUES ($1, $2, $3) RETURNING id, label, created_at, revoked_at`,
		accountID, hash, label)
	if err != nil {
		return Token{}, "", pgtx.Unavailable(fmt.Errorf("create token: %w", err))
	}
	return t, token, nil
}

// Tokens lists an account's tokens.
func (s *Service) Tokens(ctx context.Context, accountID int64) ([]Token, error) {
	ts := []Token{}
	err := s.db.SelectContext(ctx, &ts, `SELECT id, label, created_at, revoked_at FROM api_tokens WHERE account_id = $1 ORDER BY id`, accountID)
	return ts, pgtx.Unavailable(err)
}

// RevokeToken revokes one of the account's own tokens and ends the browser
// sessions opened with it. Another account's token is "not found", so ids
// reveal nothing. Errors: ENOTFOUND.
func (s *Service) RevokeToken(ctx context.Context, accountID, tokenID int64) error {
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL`, tokenID, accountID)
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return levee.Errorf(levee.ENOTFOUND, "no active token %d", tokenID)
		}
		// Session refuses them anyway; deleting keeps the table small.
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_id = $1`, tokenID); err != nil {
			return fmt.Errorf("revoke token: end its sessions: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.tokens.clear()
	return nil
}

// EnsureAdmin makes sure the bootstrap admin account exists and can sign in.
// With a configured token it is stored (hashed) if new, and every other
// bootstrap token of the admin (an earlier LEVEE_ADMIN_TOKEN, or one
// generated before any was set) is revoked: changing the setting is how an
// operator replaces a leaked token, so the old one must stop working. Tokens
// the admin issued itself are kept. Without a configured token, one is
// generated only when the admin has none, and returned so the caller prints
// it once; otherwise "" is returned.
func (s *Service) EnsureAdmin(ctx context.Context, configured string) (generated string, err error) {
	err = pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		generated = ""
		var retired bool
		if err := tx.GetContext(ctx, &retired, `SELECT EXISTS (SELECT 1 FROM settings WHERE key = $1)`, retiredSetting); err != nil {
			return fmt.Errorf("ensure admin: %w", err)
		}
		if retired { // levee admin retire: the founder stepped back for good
			return nil
		}
		var id int64
		err := tx.GetContext(ctx, &id, `
			INSERT INTO accounts (name, kind, roles) VALUES ('admin', 'person', '{admin}')
			ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id`)
		if err != nil {
			return fmt.Errorf("ensure admin: %w", err)
		}
		if err := ledger.OpenAccount(ctx, tx, ledger.Cash(id), "cash", false); err != nil {
			return fmt.Errorf("ensure admin: %w", err)
		}
		if configured != "" {
			hash := HashToken(configured)
			if _, err := tx.ExecContext(ctx, `
				UPDATE api_tokens SET revoked_at = now()
				WHERE account_id = $1 AND label IN ('LEVEE_ADMIN_TOKEN', 'bootstrap') AND token_hash <> $2 AND revoked_at IS NULL`,
				id, hash); err != nil {
				return fmt.Errorf("ensure admin: revoke the old token: %w", err)
			}
			// Setting a token that was once replaced brings it back: the
			// operator chose it again.
			_, err := tx.ExecContext(ctx, `
				INSERT INTO api_tokens (account_id, token_hash, label) VALUES ($1, $2, 'LEVEE_ADMIN_TOKEN')
				ON CONFLICT (token_hash) DO UPDATE SET revoked_at = NULL
				WHERE api_tokens.account_id = $1 AND api_tokens.label = 'LEVEE_ADMIN_TOKEN'`,
				id, hash)
			return err
		}
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM api_tokens WHERE account_id = $1 AND revoked_at IS NULL`, id); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		token, hash := NewToken()
		if _, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (account_id, token_hash, label) VALUES ($1, $2, 'bootstrap')`, id, hash); err != nil {
			return err
		}
		generated = token
		return nil
	})
	s.tokens.clear()
	return generated, err
}

// SetPassword sets an account's password (for the demo seed and admins).
func (s *Service) SetPassword(ctx context.Context, accountID int64, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `UPDATE accounts SET password_hash = $2 WHERE id = $1`, accountID, HashPassword(password))
	return pgtx.Unavailable(err)
}

// Setting reads a node setting; ok is false when it is unset.
func (s *Service) Setting(ctx context.Context, key string) (value string, ok bool, err error) {
	err = s.db.GetContext(ctx, &value, `SELECT value FROM settings WHERE key = $1`, key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return value, err == nil, pgtx.Unavailable(err)
}

// SetSetting writes a node setting.
func (s *Service) SetSetting(ctx context.Context, key, value string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, key, value)
	return pgtx.Unavailable(err)
}

// AuditEntry is one admin action.
type AuditEntry struct {
	ID      int64           `json:"id,string" db:"id"`
	At      time.Time       `json:"at" db:"at"`
	ActorID sql.NullInt64   `json:"-" db:"actor_id"`
	Action  string          `json:"action" db:"action"`
	Detail  json.RawMessage `json:"detail" db:"detail"`
}

// Audit lists the newest admin actions first.
func (s *Service) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	es := []AuditEntry{}
	err := s.db.SelectContext(ctx, &es, `SELECT id, at, actor_id, action, detail FROM audit_log ORDER BY id DESC LIMIT $1`, limit)
	return es, pgtx.Unavailable(err)
}

// Admissions counts the accounts opened by an admin (audit action
// account.create), for the census.
func (s *Service) Admissions(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM audit_log WHERE action = 'account.create'`)
	return n, pgtx.Unavailable(err)
}

// WriteAudit records an official's action in the audit log inside the
// caller's transaction, so the record and the act commit together.
func WriteAudit(ctx context.Context, tx *sqlx.Tx, actor int64, action string, detail map[string]any) error {
	return audit(ctx, tx, actor, action, detail)
}

func audit(ctx context.Context, tx *sqlx.Tx, actor int64, action string, detail map[string]any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	var actorID sql.NullInt64
	if actor != 0 {
		actorID = sql.NullInt64{Int64: actor, Valid: true}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (actor_id, action, detail) VALUES ($1, $2, $3)`, actorID, action, b); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// IssueToTreasury creates money: it moves amount from the treasury's
// issuance account into the treasury, recorded in the ledger and the audit
// log. Errors: EINVALID (amount).
func (s *Service) IssueToTreasury(ctx context.Context, actor int64, amount levee.Micros, memo string) (ledger.Entry, error) {
	var e ledger.Entry
	err := pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		var err error
		e, err = IssueInTx(ctx, tx, actor, amount, memo, "admin:"+levee.FormatID(actor))
		return err
	})
	return e, err
}

// IssueInTx creates money inside tx: by an admin before founding, or by a
// quorum decision of kind issue (actor 0, ref "quorum/ID") after it.
// Errors: EINVALID (amount, memo).
func IssueInTx(ctx context.Context, tx *sqlx.Tx, actor int64, amount levee.Micros, memo, ref string) (ledger.Entry, error) {
	if amount <= 0 {
		return ledger.Entry{}, levee.Invalid("amount", "amount must be positive")
	}
	if len(memo) > 500 {
		return ledger.Entry{}, levee.Invalid("memo", "memo must be at most 500 characters")
	}
	e, err := ledger.Post(ctx, tx, ledger.Transfer{Kind: "treasury_issue", Ref: ref,
		Postings: []ledger.Posting{{Account: ledger.Issuance, Amount: -amount}, {Account: ledger.Treasury, Amount: amount}}})
	if err != nil {
		return ledger.Entry{}, err
	}
	return e, audit(ctx, tx, actor, "treasury.issue", map[string]any{"amount": amount, "memo": memo, "ledger_seq": e.Seq, "by": ref})
}
