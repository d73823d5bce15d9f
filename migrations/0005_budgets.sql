-- Participatory budgets by quadratic funding, and the budget lines they fund.
-- See docs/budgets.md.

CREATE TABLE qf_rounds (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title             text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    pool              numeric(20,6) NOT NULL CHECK (pool > 0),
    cap_share         numeric(8,6) CHECK (cap_share > 0 AND cap_share <= 1), -- per-project cap as a share of the pool
    eligibility_rules text NOT NULL DEFAULT '',
    opens_at          timestamptz NOT NULL,
    closes_at         timestamptz NOT NULL,
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'final')),
    returned          numeric(20,6),          -- pool returned to the treasury at finalisation
    created_by        bigint REFERENCES accounts (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    finalized_at      timestamptz,
    CHECK (closes_at > opens_at),
    CHECK ((status = 'final') = (finalized_at IS NOT NULL))
);

CREATE TABLE qf_projects (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    round_id           bigint NOT NULL REFERENCES qf_rounds (id),
    title              text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description        text NOT NULL DEFAULT '',
    district_id        bigint NOT NULL REFERENCES districts (id),
    estimated_cost     numeric(20,6) NOT NULL CHECK (estimated_cost > 0),
    proposed_by        bigint NOT NULL REFERENCES accounts (id),
    eligible           boolean,                -- NULL until a treasurer decides
    eligibility_reason text NOT NULL DEFAULT '',
    decided_by         bigint REFERENCES accounts (id),
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX qf_projects_round_idx ON qf_projects (round_id, id);

-- One row per contribution; each is one ledger entry cash:<account> → qf:<round>:escrow.
CREATE TABLE qf_contributions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    round_id        bigint NOT NULL REFERENCES qf_rounds (id),
    project_id      bigint NOT NULL REFERENCES qf_projects (id),
    account_id      bigint NOT NULL REFERENCES accounts (id),
    amount          numeric(20,6) NOT NULL CHECK (amount > 0),
    ledger_seq      bigint NOT NULL UNIQUE,
    idempotency_key text,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX qf_contributions_round_idx ON qf_contributions (round_id, project_id, account_id);
CREATE INDEX qf_contributions_account_idx ON qf_contributions (account_id, round_id);
CREATE UNIQUE INDEX qf_contributions_idempotency_idx ON qf_contributions (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Money set aside for one funded project; tenders draw on its ledger account.
CREATE TABLE budget_lines (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint NOT NULL UNIQUE REFERENCES qf_projects (id),
    round_id    bigint NOT NULL REFERENCES qf_rounds (id),
    district_id bigint NOT NULL REFERENCES districts (id),
    title       text NOT NULL,
    funded      numeric(20,6) NOT NULL CHECK (funded >= 0), -- contributions + match at finalisation
    ledger_key  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX budget_lines_district_idx ON budget_lines (district_id, id);

-- The published breakdown of each project's match, written at finalisation.
CREATE TABLE qf_results (
    project_id     bigint PRIMARY KEY REFERENCES qf_projects (id),
    round_id       bigint NOT NULL REFERENCES qf_rounds (id),
    contributors   integer NOT NULL,
    contributed    numeric(20,6) NOT NULL,
    sum_sqrt       numeric NOT NULL,   -- Σ ⌊√c_i⌋, c_i in micro-units
    raw_match      numeric NOT NULL,   -- (Σ s_i)² − Σ s_i², in units (micro-units / 10^6)
    match          numeric(20,6) NOT NULL,
    capped         boolean NOT NULL,
    budget_line_id bigint REFERENCES budget_lines (id)
);
CREATE INDEX qf_results_round_idx ON qf_results (round_id);
