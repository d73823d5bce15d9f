-- The treasury's double-entry, hash-chained ledger. See docs/ledger.md.

-- A ledger account: a person's cash, the treasury, a market's collateral, a
-- contract's escrow... Keys are public ids such as 'cash:42' or 'treasury'.
CREATE TABLE ledger_accounts (
    key            text PRIMARY KEY CHECK (key ~ '^[a-z0-9_.:-]{1,100}$'),
    kind           text NOT NULL,
    may_go_negative boolean NOT NULL DEFAULT false,
    balance        numeric(20,6) NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (may_go_negative OR balance >= 0)
);

-- One journal entry; its postings sum to zero. seq is dense and hashes chain
-- in seq order, so appends are serialized by locking ledger_head.
CREATE TABLE ledger_entries (
    seq             bigint PRIMARY KEY,
    at              timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind ~ '^[a-z0-9_.:-]{1,64}$'),
    ref             text NOT NULL CHECK (ref ~ '^[a-z0-9_.:/-]{0,200}$'),
    idempotency_key text UNIQUE,
    prev_hash       bytea NOT NULL,
    hash            bytea NOT NULL
);

CREATE TABLE ledger_postings (
    entry_seq bigint NOT NULL REFERENCES ledger_entries (seq),
    idx       smallint NOT NULL,
    account   text NOT NULL REFERENCES ledger_accounts (key),
    amount    numeric(20,6) NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (entry_seq, idx)
);
CREATE INDEX ledger_postings_account_idx ON ledger_postings (account, entry_seq);

-- The head of the chain: the last seq and its hash. One row.
CREATE TABLE ledger_head (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint NOT NULL,
    hash bytea NOT NULL
);
INSERT INTO ledger_head (seq, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- The issuance account may go negative: it is where money enters the city.
INSERT INTO ledger_accounts (key, kind, may_go_negative) VALUES
    ('treasury:issuance', 'issuance', true),
    ('treasury', 'treasury', false),
    ('fees', 'fees', false),
    ('jury_fees', 'jury_fees', false);
