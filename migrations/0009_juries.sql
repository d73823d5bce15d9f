-- Optimistic resolution, disputes, cases and their juries: the draw, the
-- commit-reveal ballots, appeals, the notification outbox and the
-- exactly-once settlement record. See docs/juries.md.

-- Residents who asked not to be drawn.
CREATE TABLE jury_opt_outs (
    account_id bigint PRIMARY KEY REFERENCES accounts (id),
    at         timestamptz NOT NULL DEFAULT now()
);

-- An outcome proposed for a market after it closes; final after its dispute
-- window unless disputed (which opens a case). Milestone claims are their
-- own proposals (contract_milestones).
CREATE TABLE proposals (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject       text NOT NULL,
    verdict       text NOT NULL,
    evidence      text NOT NULL DEFAULT '',
    proposed_by   bigint NOT NULL REFERENCES accounts (id),
    proposed_at   timestamptz NOT NULL,
    dispute_until timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'disputed', 'settled')),
    case_id       bigint
);
CREATE UNIQUE INDEX proposals_subject_idx ON proposals (subject) WHERE status <> 'settled';
CREATE INDEX proposals_pending_idx ON proposals (dispute_until) WHERE status = 'pending';

CREATE TABLE cases (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject        text NOT NULL,                 -- market:<id>, milestone:<contract>/<n>, act:<id>
    kind           text NOT NULL,                 -- market, milestone, act
    question       text NOT NULL,
    verdicts       text[] NOT NULL CHECK (cardinality(verdicts) >= 2),
    district_ids   bigint[] NOT NULL,
    proposed       text,                          -- the verdict disputed (NULL for a review)
    default_verdict text NOT NULL,                -- if no jury can be formed
    opened_by      bigint REFERENCES accounts (id), -- the disputer; NULL when Levee opened it
    reason         text NOT NULL DEFAULT '',
    bond           numeric(20,6) NOT NULL DEFAULT 0 CHECK (bond >= 0),
    -- The rules, copied from the case type when the case opened.
    jury_size      integer NOT NULL CHECK (jury_size >= 1),
    supermajority  numeric(8,6) NOT NULL CHECK (supermajority >= 0.5 AND supermajority < 1),
    min_reveals    integer NOT NULL CHECK (min_reveals >= 1),
    juror_fee      numeric(20,6) NOT NULL CHECK (juror_fee > 0),
    appeal_bond    numeric(20,6) NOT NULL CHECK (appeal_bond > 0),
    max_appeals    integer NOT NULL CHECK (max_appeals >= 0),
    stratify       boolean NOT NULL,
    outside_share  numeric(8,6) NOT NULL CHECK (outside_share >= 0 AND outside_share < 1),
    commit_us      bigint NOT NULL CHECK (commit_us > 0),
    reveal_us      bigint NOT NULL CHECK (reveal_us > 0),
    appeal_us      bigint NOT NULL CHECK (appeal_us > 0),
    -- Where the case stands.
    status         text NOT NULL CHECK (status IN ('evidence', 'commit', 'reveal', 'appealable', 'final', 'settled')),
    round          integer NOT NULL DEFAULT 0,
    appeals        integer NOT NULL DEFAULT 0,
    verdict        text,                          -- of the last decided round
    evidence_until timestamptz NOT NULL,
    appeal_until   timestamptz,
    opened_at      timestamptz NOT NULL,
    final_at       timestamptz,
    settled_at     timestamptz
);
CREATE UNIQUE INDEX cases_subject_idx ON cases (subject) WHERE status <> 'settled';
CREATE INDEX cases_due_idx ON cases (status, id) WHERE status <> 'settled';

CREATE TABLE case_parties (
    case_id    bigint NOT NULL REFERENCES cases (id),
    account_id bigint NOT NULL REFERENCES accounts (id),
    role       text NOT NULL,                     -- proposer, disputer, contractor, steward, ...
    PRIMARY KEY (case_id, account_id)
);

-- One draw per pool: the first, and one for each appeal. Rounds that redraw
-- after a tie or too few reveals continue the same draw's sequence.
CREATE TABLE case_draws (
    case_id    bigint NOT NULL REFERENCES cases (id),
    n          integer NOT NULL,
    pool       bigint[] NOT NULL,                 -- canonical order
    strata     jsonb NOT NULL,                    -- [{key, ids, share}]
    pool_hash  bytea NOT NULL,
    beacon_seq bigint NOT NULL,                   -- the ledger entry whose hash is the beacon
    beacon     bytea NOT NULL,
    seed       bytea NOT NULL,
    drawn      integer NOT NULL DEFAULT 0,        -- jurors drawn so far from this draw
    excluded   integer NOT NULL DEFAULT 0,        -- accounts left out of the pool
    drawn_at   timestamptz NOT NULL,
    PRIMARY KEY (case_id, n)
);

CREATE TABLE case_rounds (
    case_id      bigint NOT NULL REFERENCES cases (id),
    round        integer NOT NULL,
    draw_n       integer NOT NULL,
    why          text NOT NULL CHECK (why IN ('first', 'redraw', 'appeal')),
    seats        integer NOT NULL,
    commit_until timestamptz NOT NULL,
    reveal_until timestamptz NOT NULL,
    verdict      text,                            -- NULL until tallied, or when the round failed
    tally        jsonb,
    appealed_by  bigint REFERENCES accounts (id),
    appeal_bond  numeric(20,6),
    PRIMARY KEY (case_id, round)
);

CREATE TABLE jurors (
    case_id      bigint NOT NULL REFERENCES cases (id),
    round        integer NOT NULL,
    account_id   bigint NOT NULL REFERENCES accounts (id),
    draw_index   integer NOT NULL,                -- position in the draw's order
    commitment   text,
    committed_at timestamptz,
    verdict      text,
    salt         text,
    revealed_at  timestamptz,
    paid         numeric(20,6),
    no_show      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (case_id, round, account_id)
);
CREATE INDEX jurors_account_idx ON jurors (account_id, case_id);

CREATE TABLE case_evidence (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      bigint NOT NULL REFERENCES cases (id),
    submitted_by bigint NOT NULL REFERENCES accounts (id),
    body         text NOT NULL,
    file_name    text,
    content_type text,
    content      bytea,
    sha256       bytea,
    created_at   timestamptz NOT NULL
);
CREATE INDEX case_evidence_case_idx ON case_evidence (case_id, id);

-- Deadlines and outcomes to tell people about. Delivery (email, SMS) can be
-- added by a worker that sends unsent rows and sets sent_at.
CREATE TABLE notifications (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    case_id    bigint REFERENCES cases (id),
    kind       text NOT NULL,
    message    text NOT NULL,
    deadline   timestamptz,
    created_at timestamptz NOT NULL,
    sent_at    timestamptz
);
CREATE INDEX notifications_account_idx ON notifications (account_id, id);
CREATE INDEX notifications_unsent_idx ON notifications (id) WHERE sent_at IS NULL;

-- The exactly-once key of a case's settlement: written in the same
-- transaction that applies the verdict to its subject.
CREATE TABLE case_settlements (
    case_id    bigint PRIMARY KEY REFERENCES cases (id),
    verdict    text NOT NULL,
    settled_at timestamptz NOT NULL
);
