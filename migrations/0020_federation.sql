-- A network of cities (docs/federation.md): every neighbour is its own Levee
-- node with its own Ed25519 key; every statement that crosses nodes is
-- signed, stored as received, delivered from an outbox, and published.

-- federation: statements this node signed or received, verified before
-- they are stored. hash = SHA-256 of the canonical encoding.
CREATE TABLE statements (
    seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,   -- export order
    hash        bytea PRIMARY KEY CHECK (length(hash) = 32),
    signer      bytea NOT NULL CHECK (length(signer) = 32),
    kind        text NOT NULL,
    at_us       bigint NOT NULL,                               -- the signed time, unix microseconds
    payload     text NOT NULL,                                 -- the exact bytes signed
    signature   bytea NOT NULL CHECK (length(signature) = 64),
    ours        boolean NOT NULL,
    received_at timestamptz NOT NULL,
    in_reply_to bytea REFERENCES statements (hash)             -- a cosignature answers a ledger head
);
CREATE INDEX statements_kind_idx ON statements (kind, seq);
CREATE INDEX statements_reply_idx ON statements (in_reply_to) WHERE in_reply_to IS NOT NULL;

-- federation: the delivery outbox. One row per statement and neighbour;
-- idempotent by statement hash on both sides.
CREATE TABLE deliveries (
    statement_hash  bytea NOT NULL REFERENCES statements (hash),
    peer_key        bytea NOT NULL CHECK (length(peer_key) = 32),
    url             text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_at         timestamptz NOT NULL,
    last_attempt_at timestamptz,
    last_error      text,
    delivered_at    timestamptz,
    refused_at      timestamptz,                                -- the neighbour answered 4xx: retrying cannot help
    PRIMARY KEY (statement_hash, peer_key)
);
CREATE INDEX deliveries_due_idx ON deliveries (next_at) WHERE delivered_at IS NULL AND refused_at IS NULL;

-- federation: statements refused on arrival, and why (forged, replayed,
-- late, from an unknown key).
CREATE TABLE refusals (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL,
    hash     bytea,
    signer   bytea,
    kind     text NOT NULL,
    reason   text NOT NULL
);

-- federation: public alarms (a neighbour's ledger does not extend the head
-- we cosigned; a neighbour told us ours does not).
CREATE TABLE alarms (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL,
    about          bytea NOT NULL,            -- the node whose ledger is in question
    raised_by      bytea NOT NULL,            -- the witness
    problem        text NOT NULL,
    statement_hash bytea REFERENCES statements (hash)
);

-- crisis: a neighbour is a node: its name, URL and pinned public key. The
-- delegate account stays only for charters not yet moved to nodes.
ALTER TABLE neighbours ALTER COLUMN delegate_id DROP NOT NULL;
ALTER TABLE neighbours ADD COLUMN url text;
ALTER TABLE neighbours ADD COLUMN public_key bytea UNIQUE CHECK (length(public_key) = 32);
ALTER TABLE neighbours ADD COLUMN last_heard_at timestamptz;
ALTER TABLE neighbours ADD COLUMN suspended_at timestamptz;
ALTER TABLE neighbours ADD CONSTRAINT neighbours_node_or_delegate CHECK (public_key IS NOT NULL OR delegate_id IS NOT NULL);

ALTER TABLE charter ADD COLUMN neighbour_silence_us bigint NOT NULL DEFAULT 2592000000000 CHECK (neighbour_silence_us > 0); -- 30 days
ALTER TABLE charter ADD COLUMN voter_roles text[] NOT NULL DEFAULT '{steward,treasurer}';
ALTER TABLE charter ADD COLUMN retired_at timestamptz;   -- levee admin retire: the founder stepped back

ALTER TABLE quorum_proposals ADD COLUMN statement_hash bytea UNIQUE;
ALTER TABLE quorum_proposals DROP CONSTRAINT quorum_proposals_kind_check;
ALTER TABLE quorum_proposals ADD CONSTRAINT quorum_proposals_kind_check
    CHECK (kind IN ('reallocation', 'charter', 'renew', 'end', 'declare', 'issue'));

ALTER TABLE quorum_votes ALTER COLUMN delegate_id DROP NOT NULL;
ALTER TABLE quorum_votes ADD COLUMN statement_hash bytea UNIQUE;
ALTER TABLE quorum_votes ADD CONSTRAINT quorum_votes_signed_or_delegate CHECK (statement_hash IS NOT NULL OR delegate_id IS NOT NULL);

-- crisis: proposals of neighbour nodes that the people who answer for this
-- city vote on, and the emergency notices neighbours announce.
CREATE TABLE incoming_requests (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    neighbour_id   bigint NOT NULL REFERENCES neighbours (id),
    statement_hash bytea NOT NULL UNIQUE,
    remote_id      bigint NOT NULL,
    kind           text NOT NULL,
    payload        jsonb NOT NULL,
    reason         text NOT NULL,
    summary        text NOT NULL,          -- the payload in words, as the proposing node put it
    closes_at      timestamptz NOT NULL,
    received_at    timestamptz NOT NULL,
    approve        boolean,
    voted_by       bigint REFERENCES accounts (id),
    voted_at       timestamptz,
    vote_hash      bytea
);

CREATE TABLE neighbour_notices (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    neighbour_id   bigint NOT NULL REFERENCES neighbours (id),
    statement_hash bytea NOT NULL UNIQUE,
    kind           text NOT NULL,
    message        text NOT NULL,
    detail         jsonb NOT NULL,
    at             timestamptz NOT NULL
);

-- crisis: a neighbour node may propose to end this city's emergency; such a
-- proposal has no local proposer.
ALTER TABLE quorum_proposals ALTER COLUMN proposed_by DROP NOT NULL;
ALTER TABLE quorum_proposals ADD COLUMN proposed_by_neighbour bigint REFERENCES neighbours (id);
ALTER TABLE quorum_proposals ADD CONSTRAINT quorum_proposals_proposer CHECK (proposed_by IS NOT NULL OR proposed_by_neighbour IS NOT NULL);

-- crisis: residents may petition to replace a neighbour suspended for its
-- silence; at the charter's petition_threshold the replacement is made.
CREATE TABLE neighbour_petitions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    neighbour_id bigint NOT NULL REFERENCES neighbours (id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    url          text NOT NULL,
    public_key   bytea NOT NULL CHECK (length(public_key) = 32),
    reason       text NOT NULL,
    opened_by    bigint NOT NULL REFERENCES accounts (id),
    opened_at    timestamptz NOT NULL,
    executed_at  timestamptz
);
CREATE TABLE neighbour_petition_signatures (
    petition_id bigint NOT NULL REFERENCES neighbour_petitions (id),
    account_id  bigint NOT NULL REFERENCES accounts (id),
    at          timestamptz NOT NULL,
    PRIMARY KEY (petition_id, account_id)
);

-- Local delegate accounts no longer vote for another city. Their role goes;
-- a neighbour that was only a delegate is suspended until the charter names
-- its node (by the remaining neighbours' quorum, or by a resident petition
-- to replace it), and the charter records why.
UPDATE accounts SET roles = array_remove(roles, 'delegate') WHERE 'delegate' = ANY (roles);
ALTER TABLE accounts DROP CONSTRAINT accounts_roles_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_roles_check
    CHECK (roles <@ ARRAY['resident','contractor','treasurer','steward','admin']::text[]);
UPDATE neighbours SET suspended_at = now() WHERE public_key IS NULL AND suspended_at IS NULL;
INSERT INTO charter_changes (version, changes, proposal_id, at)
    SELECT version + 1, '{"migration":"neighbours are nodes: each neighbour known only by a local delegate account is suspended until the charter names its node (url and public_key)"}', NULL, now()
    FROM charter WHERE EXISTS (SELECT 1 FROM neighbours WHERE public_key IS NULL);
UPDATE charter SET version = version + 1, updated_at = now() WHERE EXISTS (SELECT 1 FROM neighbours WHERE public_key IS NULL);

-- accounts: after founding no admin creates money; an admission's credit is
-- paid from the treasury. Charters founded already are marked.
INSERT INTO settings (key, value) SELECT 'charter_founded_at', now()::text WHERE EXISTS (SELECT 1 FROM charter_changes)
    ON CONFLICT (key) DO NOTHING;

-- federation: the public key this node's database was first run with, so an
-- instance started with another key (a cluster instance without the shared
-- key file, a restore without the key) is told at once.
ALTER TABLE node ADD COLUMN public_key bytea CHECK (length(public_key) = 32);
