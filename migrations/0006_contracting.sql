-- Contracting: tenders against budget lines, sealed bids, one decision
-- market per bid, awards, contracts with escrow, and milestones.
-- See docs/contracting.md.

-- The account that paid a market's subsidy and receives what is left of its
-- collateral at settlement (a tender's budget line for decision markets).
ALTER TABLE markets ADD COLUMN funded_by text NOT NULL DEFAULT 'treasury';

CREATE TABLE tenders (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    budget_line_id      bigint NOT NULL REFERENCES budget_lines (id),
    title               text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    scope               text NOT NULL DEFAULT '',
    district_ids        bigint[] NOT NULL,
    budget_cap          numeric(20,6) NOT NULL CHECK (budget_cap > 0),
    opens_at            timestamptz NOT NULL,
    closes_at           timestamptz NOT NULL,
    decision_at         timestamptz NOT NULL,
    min_confidence      numeric(8,6) NOT NULL CHECK (min_confidence >= 0 AND min_confidence <= 1),
    twap_window_us      bigint NOT NULL CHECK (twap_window_us > 0),     -- microseconds before decision_at
    dispute_window_us   bigint NOT NULL CHECK (dispute_window_us > 0),  -- after a milestone claim
    liquidity           numeric(20,6) NOT NULL CHECK (liquidity > 0),   -- LMSR b of each decision market
    acceptance_criteria text NOT NULL DEFAULT '',
    status              text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'awarded', 'unsuccessful')),
    created_by          bigint NOT NULL REFERENCES accounts (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (closes_at > opens_at),
    CHECK (decision_at > closes_at)
);
CREATE INDEX tenders_line_idx ON tenders (budget_line_id);

CREATE TABLE tender_milestones (
    tender_id bigint NOT NULL REFERENCES tenders (id),
    n         integer NOT NULL CHECK (n >= 1),
    title     text NOT NULL,
    share     numeric(8,6) NOT NULL CHECK (share > 0 AND share <= 1),
    PRIMARY KEY (tender_id, n)
);

-- Changes asked for after the bid window opened: the tender row keeps what
-- bidders first saw; the effective text applies these in order.
CREATE TABLE tender_amendments (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tender_id  bigint NOT NULL REFERENCES tenders (id),
    changes    jsonb NOT NULL,
    reason     text NOT NULL,
    created_by bigint NOT NULL REFERENCES accounts (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tender_amendments_tender_idx ON tender_amendments (tender_id, id);

CREATE TABLE bids (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tender_id        bigint NOT NULL REFERENCES tenders (id),
    organisation_id  bigint NOT NULL REFERENCES accounts (id),
    submitted_by     bigint NOT NULL REFERENCES accounts (id),
    price            numeric(20,6) NOT NULL CHECK (price > 0),
    completion_at    timestamptz NOT NULL,
    milestone_dates  jsonb NOT NULL,                -- RFC 3339 times, one per tender milestone
    method_statement text NOT NULL DEFAULT '',
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'withdrawn')),
    market_id        bigint REFERENCES markets (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX bids_one_active_idx ON bids (tender_id, organisation_id) WHERE status = 'active';
CREATE INDEX bids_tender_idx ON bids (tender_id, id);

-- The published decision: rule, inputs and result.
CREATE TABLE tender_awards (
    tender_id  bigint PRIMARY KEY REFERENCES tenders (id),
    record     jsonb NOT NULL,
    decided_by bigint NOT NULL REFERENCES accounts (id),
    decided_at timestamptz NOT NULL
);

CREATE TABLE contracts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tender_id     bigint NOT NULL UNIQUE REFERENCES tenders (id),
    bid_id        bigint NOT NULL UNIQUE REFERENCES bids (id),
    contractor_id bigint NOT NULL REFERENCES accounts (id),
    price         numeric(20,6) NOT NULL CHECK (price > 0),
    market_id     bigint NOT NULL REFERENCES markets (id),
    completion_at timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'failed')),
    created_at    timestamptz NOT NULL,
    settled_at    timestamptz
);

CREATE TABLE contract_milestones (
    contract_id    bigint NOT NULL REFERENCES contracts (id),
    n              integer NOT NULL CHECK (n >= 1),
    title          text NOT NULL,
    share          numeric(8,6) NOT NULL,
    amount         numeric(20,6) NOT NULL CHECK (amount >= 0),
    due_at         timestamptz NOT NULL,
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'disputed', 'accepted', 'rejected')),
    evidence       text NOT NULL DEFAULT '',
    claimed_by     bigint REFERENCES accounts (id),
    claimed_at     timestamptz,
    dispute_reason text NOT NULL DEFAULT '',
    disputed_by    bigint REFERENCES accounts (id),
    disputed_at    timestamptz,
    decided_by     bigint REFERENCES accounts (id),
    accepted_at    timestamptz,
    paid_seq       bigint,
    PRIMARY KEY (contract_id, n)
);
