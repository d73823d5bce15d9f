-- The treasury's double-entry, hash-chained ledger. See docs/ledger.md.
-- Lock order for every writer: ledger_head, then ledger_accounts rows in key order.

-- A ledger account: a person's cash, the treasury, a market's collateral, a
-- contract's escrow... Keys are public ids such as 'cash:42' or 'treasury'.
-- The key alphabet has no space or newline, which keeps the canonical entry
-- encoding that the hashes cover unambiguous.
CREATE TABLE ledger_accounts (
    key             text PRIMARY KEY CHECK (key ~ '^[a-z0-9_.:-]{1,100}$'),
    kind            text NOT NULL CHECK (kind ~ '^[a-z0-9_.:-]{1,64}$'),
    may_go_negative boolean NOT NULL DEFAULT false,
    balance         numeric(20,6) NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Named so the ledger can tell an overdraft from any other failure.
    CONSTRAINT ledger_accounts_no_overdraft CHECK (may_go_negative OR balance >= 0)
);

-- One journal entry; its postings sum to zero. seq is dense and hashes chain
-- in seq order, so appends are serialized by locking ledger_head.
CREATE TABLE ledger_entries (
    seq             bigint PRIMARY KEY CHECK (seq > 0),
    at              timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind ~ '^[a-z0-9_.:-]{1,64}$'),
    ref             text NOT NULL CHECK (ref ~ '^[a-z0-9_.:/-]{0,200}$'),
    -- Private: never part of the public export or of the hash.
    idempotency_key text CHECK (octet_length(idempotency_key) BETWEEN 1 AND 200),
    prev_hash       bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash            bytea NOT NULL CHECK (octet_length(hash) = 32)
);

-- Partial: most entries (trades) carry no key and need no index entry.
CREATE UNIQUE INDEX ledger_entries_idempotency_key_idx ON ledger_entries (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- No foreign keys, on purpose: they cost a trigger query per posting, about
-- a third of the time of a group commit, and the head lock makes that time
-- everyone's. What they would guarantee holds anyway: the only writer
-- (ledger.PostBatch) inserts an entry and its postings in one statement after
-- locking the accounts it names; entries cannot be deleted and accounts cannot
-- be deleted or renamed (triggers below); and Verify checks both.
CREATE TABLE ledger_postings (
    entry_seq bigint NOT NULL,
    idx       smallint NOT NULL CHECK (idx >= 0),
    account   text NOT NULL,
    amount    numeric(20,6) NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (entry_seq, idx)
);
CREATE INDEX ledger_postings_account_idx ON ledger_postings (account, entry_seq);

-- The head of the chain: the last seq and its hash. One row.
CREATE TABLE ledger_head (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint NOT NULL CHECK (seq >= 0),
    hash bytea NOT NULL CHECK (octet_length(hash) = 32)
);
INSERT INTO ledger_head (seq, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- Entries and postings are append-only. The hash chain detects tampering
-- after the fact; this refuses the honest mistake of an UPDATE or DELETE in
-- application code up front. (An owner can still disable the trigger, which
-- is exactly what the hash chain is for.)
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % refused: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
-- Balances change; keys and the accounts themselves stay, so every posting
-- keeps naming an account that exists.
CREATE TRIGGER ledger_accounts_keep BEFORE UPDATE OF key OR DELETE OR TRUNCATE ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- The issuance account may go negative: it is where money enters the city.
INSERT INTO ledger_accounts (key, kind, may_go_negative) VALUES
    ('treasury:issuance', 'issuance', true),
    ('treasury', 'treasury', false),
    ('fees', 'fees', false),
    ('jury_fees', 'jury_fees', false);
