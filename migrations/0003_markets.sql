-- Markets, their trades and the positions they create. See docs/engine.md.

CREATE TABLE markets (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    question         text NOT NULL CHECK (length(question) BETWEEN 1 AND 500),
    outcomes         text[] NOT NULL CHECK (cardinality(outcomes) BETWEEN 2 AND 100),
    liquidity        numeric(20,6) NOT NULL CHECK (liquidity > 0),  -- LMSR b
    subsidy          numeric(20,6) NOT NULL CHECK (subsidy >= 0),   -- worst-case loss, moved into collateral at opening
    -- The market maker's state: outstanding shares per outcome, written by
    -- the engine with every committed batch so a restart loads one row.
    q                numeric(20,6)[] NOT NULL,
    seq              bigint NOT NULL DEFAULT 0,                      -- gap-free per market
    volume           numeric(20,6) NOT NULL DEFAULT 0,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'resolved', 'void')),
    resolved_outcome integer,
    district_id      bigint REFERENCES districts (id),
    closes_at        timestamptz NOT NULL,
    created_by       bigint REFERENCES accounts (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    settled_at       timestamptz,
    CHECK (cardinality(q) = cardinality(outcomes)),
    CHECK ((status = 'resolved') = (resolved_outcome IS NOT NULL))
);
CREATE INDEX markets_status_idx ON markets (status, id);
CREATE INDEX markets_district_idx ON markets (district_id, id);

CREATE TABLE trades (
    market_id       bigint NOT NULL REFERENCES markets (id),
    seq             bigint NOT NULL,
    account_id      bigint NOT NULL REFERENCES accounts (id),
    outcome         smallint NOT NULL,
    side            text NOT NULL CHECK (side IN ('buy', 'sell')),
    shares          numeric(20,6) NOT NULL CHECK (shares > 0),
    amount          numeric(20,6) NOT NULL CHECK (amount >= 0),      -- cost of a buy, proceeds of a sell
    prices          numeric(20,6)[] NOT NULL,                        -- after the trade
    at              timestamptz NOT NULL,
    idempotency_key text,
    PRIMARY KEY (market_id, seq)
);
CREATE UNIQUE INDEX trades_idempotency_idx ON trades (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX trades_account_idx ON trades (account_id, market_id, seq);
CREATE INDEX trades_market_at_idx ON trades (market_id, at);

-- A trader's holding of one outcome. paid and received sum the money moved,
-- so a void refunds paid - received exactly.
CREATE TABLE positions (
    market_id  bigint NOT NULL REFERENCES markets (id),
    account_id bigint NOT NULL REFERENCES accounts (id),
    outcome    smallint NOT NULL,
    shares     numeric(20,6) NOT NULL CHECK (shares >= 0),
    paid       numeric(20,6) NOT NULL DEFAULT 0,
    received   numeric(20,6) NOT NULL DEFAULT 0,
    PRIMARY KEY (market_id, account_id, outcome)
);
CREATE INDEX positions_account_idx ON positions (account_id);
