-- Crisis mode: the node's charter, neighbour delegates and their quorum,
-- reallocation proposals, time-limited emergencies with their acts, resident
-- petitions, and direct awards (limited procurement) in contracting.
-- See docs/crisis.md.

-- Delegates of neighbour nodes sign in to vote on quorum proposals.
ALTER TABLE accounts DROP CONSTRAINT accounts_roles_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_roles_check
    CHECK (roles <@ ARRAY['resident','contractor','treasurer','steward','admin','delegate']::text[]);

-- One row: this node's charter. Changed only by a quorum proposal; each
-- change is kept in charter_changes.
CREATE TABLE charter (
    id                   boolean PRIMARY KEY DEFAULT true CHECK (id),
    version              integer NOT NULL DEFAULT 1,
    district_ids         bigint[] NOT NULL DEFAULT '{}',   -- empty: every district
    steward_ids          bigint[] NOT NULL DEFAULT '{}',
    quorum               integer NOT NULL DEFAULT 2 CHECK (quorum >= 1),
    vote_window_us       bigint NOT NULL DEFAULT 259200000000 CHECK (vote_window_us > 0),   -- 72 h
    max_emergency_us     bigint NOT NULL DEFAULT 604800000000 CHECK (max_emergency_us > 0), -- 7 days
    renewal_step_us      bigint NOT NULL DEFAULT 604800000000 CHECK (renewal_step_us > 0),  -- 7 days
    renewal_cap_us       bigint NOT NULL DEFAULT 3628800000000 CHECK (renewal_cap_us > 0),  -- 42 days
    spending_cap         numeric(20,6) NOT NULL DEFAULT 50000 CHECK (spending_cap > 0),
    petition_threshold   integer NOT NULL DEFAULT 50 CHECK (petition_threshold >= 1),
    cooldown_us          bigint NOT NULL DEFAULT 2592000000000 CHECK (cooldown_us >= 0),    -- 30 days
    updated_at           timestamptz NOT NULL DEFAULT now()
);
INSERT INTO charter DEFAULT VALUES;

CREATE TABLE neighbours (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    delegate_id bigint NOT NULL UNIQUE REFERENCES accounts (id),
    added_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE charter_changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version     integer NOT NULL,
    changes     jsonb NOT NULL,
    proposal_id bigint,               -- NULL only for the founding charter
    at          timestamptz NOT NULL
);

-- A decision for the neighbours' quorum: a reallocation, a charter change,
-- an emergency's renewal or end, a declaration inside the cooldown.
CREATE TABLE quorum_proposals (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('reallocation', 'charter', 'renew', 'end', 'declare')),
    payload      jsonb NOT NULL,
    reason       text NOT NULL,
    proposed_by  bigint NOT NULL REFERENCES accounts (id),
    created_at   timestamptz NOT NULL,
    closes_at    timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'executed', 'rejected', 'expired')),
    decided_at   timestamptz,
    approved_by_act bigint                -- an emergency act approved it instead of the quorum
);
CREATE INDEX quorum_proposals_open_idx ON quorum_proposals (closes_at) WHERE status = 'open';

CREATE TABLE quorum_votes (
    proposal_id  bigint NOT NULL REFERENCES quorum_proposals (id),
    neighbour_id bigint NOT NULL REFERENCES neighbours (id),
    delegate_id  bigint NOT NULL REFERENCES accounts (id),
    approve      boolean NOT NULL,
    at           timestamptz NOT NULL,
    PRIMARY KEY (proposal_id, neighbour_id)
);

CREATE TABLE emergencies (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    steward_id   bigint NOT NULL REFERENCES accounts (id),
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 5000),
    district_ids bigint[] NOT NULL CHECK (cardinality(district_ids) >= 1),
    cap          numeric(20,6) NOT NULL CHECK (cap > 0),
    declared_at  timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    renewals     integer NOT NULL DEFAULT 0,
    ended_at     timestamptz,
    end_reason   text CHECK (end_reason IN ('expired', 'petition', 'quorum')),
    reviews_opened boolean NOT NULL DEFAULT false,
    CHECK (ends_at > declared_at)
);
-- At most one emergency is active at a time.
CREATE UNIQUE INDEX emergencies_one_active_idx ON emergencies ((true)) WHERE ended_at IS NULL;

CREATE TABLE emergency_acts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    emergency_id  bigint NOT NULL REFERENCES emergencies (id),
    steward_id    bigint NOT NULL REFERENCES accounts (id),
    kind          text NOT NULL CHECK (kind IN ('reallocate', 'direct_award', 'approve_proposal')),
    detail        jsonb NOT NULL,
    amount        numeric(20,6) NOT NULL CHECK (amount >= 0),  -- counts against the cap
    reason        text NOT NULL CHECK (length(reason) BETWEEN 1 AND 5000),
    contract_id   bigint REFERENCES contracts (id),
    at            timestamptz NOT NULL,
    review        text CHECK (review IN ('ratify', 'refer')),
    reviewed_at   timestamptz,
    returned      numeric(20,6)        -- escrow returned to the treasury on referral
);
CREATE INDEX emergency_acts_emergency_idx ON emergency_acts (emergency_id, id);

CREATE TABLE emergency_petitions (
    emergency_id bigint NOT NULL REFERENCES emergencies (id),
    account_id   bigint NOT NULL REFERENCES accounts (id),
    at           timestamptz NOT NULL,
    PRIMARY KEY (emergency_id, account_id)
);

-- Contracting: a direct award (limited procurement) is a tender with no bid
-- window and no decision market, awarded at once.
ALTER TABLE tenders ADD COLUMN method text NOT NULL DEFAULT 'open' CHECK (method IN ('open', 'limited'));
ALTER TABLE tenders ADD COLUMN method_rationale text NOT NULL DEFAULT '';
ALTER TABLE contracts ALTER COLUMN market_id DROP NOT NULL;
ALTER TABLE contracts DROP CONSTRAINT contracts_status_check;
ALTER TABLE contracts ADD CONSTRAINT contracts_status_check CHECK (status IN ('active', 'completed', 'failed', 'referred'));
